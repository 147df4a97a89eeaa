"""The engine's metrics against the reference packages on the same weights (bench/evaluate_parity.py, small)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from wanlora_engine.evaluate import random_weights
from wanlora_engine.evaluate.metrics import inception_score
from wanlora_engine.evaluate.networks import load_lpips
from wanlora_engine.evaluate.reference import import_torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import_torchvision()  # before torchmetrics, which imports torchvision without the CPU-torch fallback

from evaluate_parity import compare_frechet, compare_inception_score, compare_lpips  # noqa: E402


def test_inception_score_equals_torchmetrics_on_uneven_splits():
    results: dict = {}
    compare_inception_score(results, samples=23, classes=7, splits=4)  # torch.chunk: 6, 6, 6, 5
    assert results["inception_score_mean_vs_torchmetrics_abs_diff"] < 1e-12
    assert results["inception_score_std_vs_torchmetrics_abs_diff"] < 1e-12


def test_inception_score_cuts_splits_as_torch_chunk():
    # 10 samples in 4 splits: parts of 3, 3, 3, 1 (np.array_split would make 3, 3, 2, 2); the lone last sample
    # is a split of its own and scores 1, the others see one class each (also 1), except the third: 2 classes
    p = np.vstack([np.tile([1.0, 0.0], (6, 1)), [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], [[0.0, 1.0]]])
    score = inception_score(p, splits=4)
    third = np.exp(1 / 3 * np.log(3) + 2 / 3 * np.log(3 / 2))
    assert score.splits == 4 and score.mean == pytest.approx((3 + third) / 4, rel=1e-12)
    assert score.std == pytest.approx(np.std([1, 1, third, 1], ddof=1), rel=1e-12)


def test_frechet_distance_equals_torchmetrics():
    results: dict = {}
    compare_frechet(results, samples=40, dims=6)
    assert results["frechet_distance_vs_torchmetrics_rel_diff"] < 1e-10


def test_lpips_equals_the_lpips_package_and_torchmetrics_on_the_same_files(tmp_path):
    results: dict = {}
    compare_lpips(tmp_path, "alex", 64, results)
    assert results["lpips_alex_value_example"] > 0
    assert results["lpips_alex_vs_lpips_package_max_abs_diff"] < 1e-6
    assert results["lpips_alex_vs_torchmetrics_max_abs_diff"] < 1e-6


def test_lpips_loads_a_torchmetrics_state_dict_without_the_scaling_constants(tmp_path):
    from torchmetrics.functional.image.lpips import _LPIPS

    linear, backbone = random_weights.write_lpips(tmp_path / "alex.pth", tmp_path / "alexnet.pth", "alex", seed=9)
    engine = load_lpips("alex", linear, backbone)
    reference = _LPIPS(pretrained=False, net="alex", pnet_rand=True).eval()
    reference.load_state_dict({k: v for k, v in engine.model.state_dict().items()
                               if k in reference.state_dict()}, strict=True)
    state = reference.state_dict()
    torch.save(state, tmp_path / "torchmetrics.pth")
    loaded = load_lpips("alex", tmp_path / "torchmetrics.pth", None)
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(loaded(x, y), reference(x, y).flatten(), atol=1e-6)


def test_the_lpips_package_s_shipped_linear_layers_load(tmp_path):
    import lpips

    shipped = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    saved = torch.load(shipped, map_location="cpu", weights_only=True)
    assert set(saved) == {f"lin{i}.model.1.weight" for i in range(5)}
    _, backbone = random_weights.write_lpips(tmp_path / "alex.pth", tmp_path / "alexnet.pth", "alex", seed=4)
    model = load_lpips("alex", shipped, backbone)
    assert torch.equal(model.model.lins[3].model[1].weight, saved["lin3.model.1.weight"])
