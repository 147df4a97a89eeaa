"""The engine's metrics against the reference packages, on the same random weights saved to files.

    python3 bench/evaluate_parity.py [--json parity.json] [--size 299] [--tolerance 1e-4]

Random weights are written under the real files' names (`wanlora_engine.evaluate.random_weights`), loaded once
through the engine (`networks.load_*`, the user's path) and once into each reference package as that package
loads them, and both are run on the same random inputs:
- Inception-v3 logits: the engine vs torchvision.models.inception_v3 (load_state_dict of the same file);
- LPIPS (alex, vgg): the engine vs the `lpips` package (its linear layers read by the package from the file via
  `model_path`, the backbone file into its slices) and vs torchmetrics' LPIPS network (torchmetrics ≥ 1.9 no
  longer saves the input-scaling constants: its state dict has no `scaling_layer.*`);
- Inception Score: the engine's `inception_score` vs torchmetrics' InceptionScore on the same logits (mean and
  std; torchmetrics permutes the samples with torch's generator, the engine gets them in that order);
- Fréchet distance (FVD/FID formula): the engine's vs torchmetrics' `_compute_fid` on the same statistics;
- the multilingual text encoder: the engine's vs sentence-transformers where that package imports.
The I3D of FVD has no reference package on PyPI (the FVD reference is TensorFlow code); it is not compared here.
Exit status 1 when any difference exceeds --tolerance, 2 when a reference package is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from wanlora_engine.evaluate import random_weights  # noqa: E402
from wanlora_engine.evaluate.metrics import frechet_distance, gaussian_statistics, inception_score  # noqa: E402
from wanlora_engine.evaluate.networks import load_inception, load_lpips  # noqa: E402
from wanlora_engine.evaluate.reference import import_lpips, import_torchvision  # noqa: E402


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def package_backbone_state(reference: torch.nn.Module, linear: Path, backbone: Path, net: str) -> dict:
    """The state dict a reference LPIPS network gets from the two files: its own keys, each read from a file
    (`features.N` → `net.sliceK.N`), only the input-scaling constants (if it has them) its own."""
    from wanlora_engine.evaluate.lpips import backbone_key_map
    from wanlora_engine.evaluate.networks import _linear_aliases

    files = _linear_aliases(torch.load(linear, weights_only=True)) | {
        backbone_key_map(net)[k]: v for k, v in torch.load(backbone, weights_only=True).items()}
    state = reference.state_dict()
    unread = sorted(k for k in state if k not in files and not k.startswith("scaling_layer."))
    if unread:
        raise SystemExit(f"the reference network has keys no file holds: {unread[:3]}")
    return state | {k: v for k, v in files.items() if k in state}


@torch.no_grad()
def compare_lpips(folder: Path, net: str, size: int, results: dict) -> None:
    linear, backbone = random_weights.write_lpips(folder / random_weights.LPIPS_LINEAR_FILES[net],
                                                  folder / random_weights.LPIPS_BACKBONE_FILES[net], net, seed=2)
    ours = load_lpips(net, linear, backbone)
    a, b = torch.rand(3, 3, size, size) * 2 - 1, torch.rand(3, 3, size, size) * 2 - 1
    value = ours(a, b)
    results[f"lpips_{net}_value_example"] = float(value[0])

    lpips = import_lpips()
    package = lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, model_path=str(linear), verbose=False).eval()
    package.load_state_dict(package_backbone_state(package, linear, backbone, net), strict=True)
    results[f"lpips_{net}_vs_lpips_package_max_abs_diff"] = max_diff(value, package(a, b).flatten())

    from torchmetrics.functional.image.lpips import _LPIPS

    metric = _LPIPS(pretrained=False, net=net, pnet_rand=True).eval()
    metric.load_state_dict(package_backbone_state(metric, linear, backbone, net), strict=True)
    results[f"lpips_{net}_vs_torchmetrics_max_abs_diff"] = max_diff(value, metric(a, b).flatten())


@torch.no_grad()
def compare_inception(folder: Path, size: int, results: dict) -> None:
    path = random_weights.write_inception(folder / random_weights.INCEPTION_FILE, seed=1)
    ours = load_inception(path)
    reference = import_torchvision().models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                                         transform_input=False).eval()
    reference.load_state_dict(torch.load(path, weights_only=True), strict=True)
    x = torch.rand(4, 3, size, size) * 2 - 1
    results["inception_v3_logits_vs_torchvision_max_abs_diff"] = max_diff(ours(x), reference(x))


def compare_inception_score(results: dict, samples: int = 203, classes: int = 1000, splits: int = 10) -> None:
    """203 samples in 10 splits: torch.chunk's parts (21 × 9 + 14) differ from np.array_split's (21 × 3 + 20 × 7)."""
    from torchmetrics.image.inception import InceptionScore

    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(samples, classes, generator=generator, dtype=torch.float64) * 3
    metric = InceptionScore(feature=torch.nn.Identity(), splits=splits)
    metric.update(logits)
    torch.manual_seed(11)
    order = torch.randperm(samples)
    torch.manual_seed(11)  # the same permutation inside compute()
    mean, std = metric.compute()
    ours = inception_score(torch.softmax(logits[order], dim=1).numpy(), splits=splits)
    results["inception_score_value_example"] = ours.mean
    results["inception_score_mean_vs_torchmetrics_abs_diff"] = abs(ours.mean - float(mean))
    results["inception_score_std_vs_torchmetrics_abs_diff"] = abs(ours.std - float(std))


def compare_frechet(results: dict, samples: int = 300, dims: int = 64) -> None:
    from torchmetrics.image.fid import _compute_fid

    rng = np.random.default_rng(7)
    first = rng.normal(size=(samples, dims)) @ rng.normal(size=(dims, dims)) * 0.3
    second = rng.normal(size=(samples, dims)) @ rng.normal(size=(dims, dims)) * 0.3 + 0.2
    a, b = gaussian_statistics(first), gaussian_statistics(second)
    ours = frechet_distance(a.mean, a.covariance, b.mean, b.covariance)
    theirs = float(_compute_fid(*(torch.from_numpy(v) for v in (a.mean, a.covariance, b.mean, b.covariance))))
    results["frechet_distance_value_example"] = ours
    results["frechet_distance_vs_torchmetrics_rel_diff"] = abs(ours - theirs) / abs(theirs)


@torch.no_grad()
def compare_text_encoder(folder: Path, results: dict) -> None:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        results["text_encoder_vs_sentence_transformers"] = f"not run: {error}"
        return
    from wanlora_engine.evaluate.clip import TextEncoder

    _, text_folder = random_weights.write_clip_pair(folder / "clip", folder / "text", seed=1)
    texts = ["한 남자가 거리를 걷고 있다.", "강가에 벚꽃이 피어 있다.", "밤하늘 아래 등불 축제가 열리고 있다."]
    ours = TextEncoder(text_folder)(texts).embeddings
    reference = SentenceTransformer(str(text_folder), device="cpu").encode(texts, convert_to_tensor=True)
    results["text_encoder_vs_sentence_transformers_max_abs_diff"] = max_diff(ours, reference)


def run(size: int, lpips_size: int) -> dict:
    torchvision = import_torchvision()  # before torchmetrics, which imports it too
    import torchmetrics

    torch.manual_seed(0)
    results: dict[str, object] = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                                  "torchmetrics": torchmetrics.__version__}
    with tempfile.TemporaryDirectory() as folder:
        compare_inception(Path(folder), size, results)
        for net in ("alex", "vgg"):
            compare_lpips(Path(folder), net, lpips_size, results)
        compare_inception_score(results)
        compare_frechet(results)
        compare_text_encoder(Path(folder), results)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--size", type=int, default=299, help="Inception-v3 input side (299 as the metric uses)")
    parser.add_argument("--lpips-size", type=int, default=128, help="LPIPS input side")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    try:
        results = run(args.size, args.lpips_size)
    except ImportError as error:
        print(f"a reference package is missing: {error}", file=sys.stderr)
        return 2
    failed = [k for k, v in results.items() if "_diff" in k and isinstance(v, float) and not v <= args.tolerance]
    results["tolerance"] = args.tolerance
    results["failed"] = failed
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
