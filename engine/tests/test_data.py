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
