"""Our metric networks against the reference packages, where those packages import (a machine with a torch
build that torchvision matches; not the CPU-only test environment).

    python3 bench/evaluate_parity.py [--json parity.json]

Checks, each with random weights copied under the real key names from one model into the other:
- Inception-v3: our InceptionV3 vs torchvision.models.inception_v3 (logits, eval mode, 299×299);
- LPIPS backbones: our slices vs torchvision's alexnet().features / vgg16().features (the five ReLU outputs);
- LPIPS: our LPIPS vs torchmetrics' LPIPS network (the lpips package's definition, with its shipped v0.1 linear
  layers) on the same inputs;
- the multilingual text encoder: ours vs sentence-transformers' SentenceTransformer on the same folder.
Prints the largest absolute difference of each; a faithful definition gives float rounding (≤ 1e-4).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from wanlora_engine.evaluate.inception import InceptionV3  # noqa: E402
from wanlora_engine.evaluate.lpips import BACKBONES, LPIPS, backbone_key_map  # noqa: E402


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


@torch.no_grad()
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    results: dict[str, object] = {"torch": torch.__version__}

    import torchvision

    results["torchvision"] = torchvision.__version__
    ours = InceptionV3().eval()
    for module in ours.modules():  # non-trivial BN statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    theirs = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                             transform_input=False).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.rand(4, 3, 299, 299) * 2 - 1
    results["inception_v3_logits_max_abs_diff"] = max_diff(ours(x), theirs(x))

    for net, builder in (("alex", torchvision.models.alexnet), ("vgg", torchvision.models.vgg16)):
        model = LPIPS(net).eval()
        reference = builder(weights=None).features.eval()
        mapping = backbone_key_map(net)
        reference.load_state_dict({k.removeprefix("features."): model.state_dict()[v] for k, v in mapping.items()})
        image = torch.rand(2, 3, 96, 128)
        ours_out = model.net(image)
        relu_ends = [end - 1 for end in BACKBONES[net]["slice_ends"]]
        diffs, h = [], image
        for index, layer in enumerate(reference):
            h = layer(h)
            if index in relu_ends:
                diffs.append(max_diff(ours_out[relu_ends.index(index)], h))
        results[f"lpips_{net}_backbone_max_abs_diff"] = max(diffs)

    try:
        from torchmetrics.functional.image.lpips import _LPIPS

        reference = _LPIPS(pretrained=True, net="alex", pnet_rand=True).eval()
        model = LPIPS("alex").eval()
        model.load_state_dict(reference.state_dict(), strict=True)
        a, b = torch.rand(3, 3, 64, 64) * 2 - 1, torch.rand(3, 3, 64, 64) * 2 - 1
        results["lpips_alex_vs_torchmetrics_max_abs_diff"] = max_diff(model(a, b), reference(a, b).flatten())
        results["lpips_value_example"] = float(model(a, b)[0])
    except ImportError as error:
        results["lpips_alex_vs_torchmetrics"] = f"not run: {error}"

    try:
        from sentence_transformers import SentenceTransformer

        from wanlora_engine.evaluate.clip import TextEncoder
        from wanlora_engine.evaluate.random_weights import write_clip_pair

        with tempfile.TemporaryDirectory() as folder:
            _, text_folder = write_clip_pair(Path(folder) / "clip", Path(folder) / "text", seed=1)
            texts = ["한 남자가 거리를 걷고 있다.", "강가에 벚꽃이 피어 있다.", "밤하늘 아래 등불 축제가 열리고 있다."]
            ours_text = TextEncoder(text_folder)(texts).embeddings
            reference = SentenceTransformer(str(text_folder), device="cpu").encode(texts, convert_to_tensor=True)
            results["text_encoder_vs_sentence_transformers_max_abs_diff"] = max_diff(ours_text, reference)
    except ImportError as error:
        results["text_encoder_vs_sentence_transformers"] = f"not run: {error}"

    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
