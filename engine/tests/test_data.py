import pytest
import torch

from wanlora_engine.data import EpochSampler, class_balanced_weights, pad_text
from wanlora_engine.errors import DataError


def test_weighted_sampler_frequencies_match_the_weights():
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0])
    sampler = EpochSampler(weights, seed=42)
    draws = torch.tensor(sampler.take(0, 100_000))
    counts = torch.bincount(draws, minlength=5).double() / len(draws)
    expected = weights.double() / weights.sum()
    assert counts[4] == 0.0  # weight 0 is never drawn
    for observed, p in zip(counts[:4].tolist(), expected[:4].tolist()):
        assert observed == pytest.approx(p, abs=4 * (p * (1 - p) / len(draws)) ** 0.5)


def test_uniform_weights_give_a_permutation_per_epoch_and_resume_by_position():
    sampler = EpochSampler(torch.ones(7), seed=3)
    first = sampler.take(0, 7)
    second = sampler.take(7, 7)
    assert sorted(first) == list(range(7)) and sorted(second) == list(range(7))
    assert first != second
    again = EpochSampler(torch.ones(7), seed=3)
    assert again.take(5, 6) == (first + second)[5:11]
    assert EpochSampler(torch.ones(7), seed=4).take(0, 7) != first


def test_sampler_rejects_bad_weights():
    with pytest.raises(DataError):
        EpochSampler(torch.tensor([0.0, 0.0]), seed=0)
    with pytest.raises(DataError):
        EpochSampler(torch.tensor([1.0, -1.0]), seed=0)


def test_class_balanced_weights_hand_values():
    # beta 0.5: n=1 -> 0.5/0.5 = 1; n=3 -> 0.5/0.875 = 4/7; mean over 4 items = (1 + 3 * 4/7) / 4 = 19/28
    table = class_balanced_weights(["a", "b", "b", "b"], beta=0.5)
    assert table["a"] == pytest.approx(1 / (19 / 28))
    assert table["b"] == pytest.approx((4 / 7) / (19 / 28))
    assert (table["a"] + 3 * table["b"]) / 4 == pytest.approx(1.0)


def test_pad_text_zero_pads_and_cuts():
    embedding = torch.ones(3, 4)
    padded = pad_text(embedding, 5)
    assert padded.shape == (5, 4) and padded[3:].abs().sum() == 0 and padded[:3].sum() == 12
    assert pad_text(torch.ones(6, 4), 5).shape == (5, 4)


def test_training_text_is_padded_to_the_models_512_tokens_as_sampling_is(cached):
    """The cache keeps at most training.text_length tokens (the demo config: 32); what the model reads in training
    is those tokens and zeros up to 512, the length Wan2.2 and WanPipeline pad to when sampling."""
    import json

    from wanlora_engine.data import MODEL_TEXT_TOKENS, CachedDataset, load_empty_prompt

    length = json.loads((cached / "config.resolved.json").read_text())["training"]["text_length"]
    cache_dir = cached / "cache"
    train = CachedDataset(cache_dir, "train", length)
    text = train.text(0)
    stored = train._handle("text", train.items[0].shard).get_tensor(train.items[0].id)
    assert MODEL_TEXT_TOKENS == 512 and text.shape == (512, stored.shape[1])
    assert stored.shape[0] <= length
    assert torch.equal(text[:stored.shape[0]], stored) and text[stored.shape[0]:].abs().sum() == 0
    # a shorter cut than the cache holds is honoured; the empty prompt too is 512 tokens
    assert CachedDataset(cache_dir, "train", 2).text(0)[2:].abs().sum() == 0
    assert load_empty_prompt(cache_dir, length).shape == (512, stored.shape[1])
