"""Random-weight stand-ins of every metric network, saved under the real files' names and key names.

For the tests and `make -C engine demo` (no real weights can be downloaded here). The I3D, Inception-v3 and
LPIPS files have the real architectures at full size (their shapes are fixed); the CLIP pair keeps the real
classes (transformers' CLIPModel, DistilBERT + mean pooling + Dense in sentence-transformers layout) at a
small width so the demo stays fast on a CPU. Numbers computed with these are meaningless as quality scores;
they show that the pipeline runs and that real files in the same layout load.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

import torch

# The file names the Swift config layer expects inside eval.weights_dir (docs/evaluate.md).
I3D_FILE = "i3d_pretrained_400.pt"
INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"
LPIPS_LINEAR_FILES = {"alex": "lpips/v0.1/alex.pth", "vgg": "lpips/v0.1/vgg.pth"}
LPIPS_BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
CLIP_IMAGE_FOLDER = "clip-vit-base-patch32"
CLIP_TEXT_FOLDER = "clip-ViT-B-32-multilingual-v1"


@torch.no_grad()
def _calibrate(module: torch.nn.Module, run: typing.Callable[[], object]) -> None:
    """He-initialised convolutions and batch-norm statistics measured on one random batch.

    With torch's default initialisation every layer shrinks its input, and after ~60 layers every input gives
    the same output (FVD 0, IS 1 for any videos): a pipeline bug would go unseen. Normalised activations keep
    the random network's outputs dependent on its input, as a trained network's are.
    """
    for child in module.modules():
        if isinstance(child, (torch.nn.Conv2d, torch.nn.Conv3d)):
            torch.nn.init.kaiming_normal_(child.weight, nonlinearity="relu")
        if isinstance(child, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            child.reset_running_stats()
            child.momentum = None  # cumulative average over the calibration batch
    module.train()
    run()
    module.eval()
    for child in module.modules():
        if isinstance(child, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            child.momentum = 0.01 if isinstance(child, torch.nn.BatchNorm3d) else 0.1


@torch.no_grad()
def _normalise_head(weight: torch.Tensor, bias: torch.Tensor, features: torch.Tensor) -> None:
    """A classifier whose logits vary by about 1 between inputs: each feature is centred and scaled by its
    spread over the calibration batch, so the softmax is neither one-hot nor uniform for every input."""
    # the scale of each feature (not only its spread over this small batch, which real frames exceed)
    mean = features.mean(0)
    spread = (features.std(0) + mean.abs()).clamp(min=1e-3)
    # 0.02: frames unlike the calibration batch drive a random deep network far out of its calibrated range
    # (features ~100× the batch's spread); this keeps their softmax from saturating too
    matrix = 0.02 * torch.randn(weight.shape[0], features.shape[1]) / (features.shape[1] ** 0.5) / spread
    weight.copy_(matrix.reshape(weight.shape))
    bias.copy_(-(matrix @ mean))


def _calibration_images(n: int, channels_first: tuple[int, ...]) -> torch.Tensor:
    """Random inputs in [-1, 1] shaped like pictures rather than noise: saturated colour regions with soft
    edges (random 4×4 grids, bilinearly enlarged) plus a little grain, one layout per sample."""
    channels, *spatial = channels_first
    grid = torch.rand(n, channels, *([4] * len(spatial))) * 2 - 1
    mode = "trilinear" if len(spatial) == 3 else "bilinear"
    images = torch.nn.functional.interpolate(grid, size=tuple(spatial), mode=mode, align_corners=False)
    return (images + 0.05 * torch.randn_like(images)).clamp(-1, 1)


def write_i3d(path: Path, seed: int = 0) -> Path:
    from .i3d import InceptionI3D

    torch.manual_seed(seed)
    model = InceptionI3D()
    batch = _calibration_images(8, (3, 9, 64, 64))
    _calibrate(model, lambda: model.features(batch))
    _normalise_head(model.logits.conv3d.weight, model.logits.conv3d.bias, model.features(batch).mean(dim=(2, 3, 4)))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def write_inception(path: Path, seed: int = 0) -> Path:
    from .inception import inception_v3, pool_features

    torch.manual_seed(seed)
    model = inception_v3()
    batch = _calibration_images(8, (3, 160, 160))
    # the auxiliary classifier (unused at inference) needs 299-pixel input in training mode: set aside meanwhile
    aux, model.AuxLogits = model.AuxLogits, None
    _calibrate(model, lambda: pool_features(model, batch))
    model.AuxLogits = aux
    _normalise_head(model.fc.weight, model.fc.bias, pool_features(model, batch))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def write_lpips(linear_path: Path, backbone_path: Path, net: str = "alex", seed: int = 0) -> tuple[Path, Path]:
    """The package's linear-layer file (lin*.model.1.weight, ≥ 0 as trained) and torchvision's backbone file
    (features.N.weight/bias), written separately as the real ones come."""
    from .lpips import LPIPS, backbone_key_map

    torch.manual_seed(seed)
    state = LPIPS(net).model.state_dict()
    # the package's file names each layer once, `linN.model.1.weight` (its network also has them as `lins.N`)
    linear = {k: v.abs() for k, v in state.items() if k.startswith("lin") and not k.startswith("lins.")}
    inverse = {ours: theirs for theirs, ours in backbone_key_map(net).items()}
    backbone = {inverse[k]: v for k, v in state.items() if k in inverse}
    for path, values in ((linear_path, linear), (backbone_path, backbone)):
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(values, path)
    return linear_path, backbone_path


def write_clip_pair(image_folder: Path, text_folder: Path, seed: int = 0, image_size: int = 32) -> tuple[Path, Path]:
    """A small CLIPModel (image side) and a sentence-transformers multilingual text encoder projecting into its
    embedding space (DistilBERT, mean pooling, Dense without bias), with a WordPiece vocabulary that covers the
    demo captions' Hangul syllables."""
    from transformers import BertTokenizerFast, CLIPConfig, CLIPModel, DistilBertConfig, DistilBertModel

    from ..demo_data import CAPTIONS
    from ..files import save_safetensors

    torch.manual_seed(seed)
    projection = 16
    clip = CLIPModel(CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=64, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=8),
        projection_dim=projection))
    with torch.no_grad():  # the default 0.02 init drowns the pixels in the position embeddings
        clip.vision_model.embeddings.patch_embedding.weight.mul_(50.0)
    image_folder.mkdir(parents=True, exist_ok=True)
    clip.save_pretrained(str(image_folder))
    (image_folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": image_size},
        "crop_size": {"height": image_size, "width": image_size}, "do_center_crop": True, "do_normalize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3}, indent=2))

    characters = sorted({c for caption in CAPTIONS for c in caption if not c.isspace()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + characters + ["##" + c for c in characters]
    text_folder.mkdir(parents=True, exist_ok=True)
    (text_folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(text_folder / "vocab.txt"), do_lower_case=False,
                                  tokenize_chinese_chars=True, model_max_length=512)
    tokenizer.save_pretrained(str(text_folder))
    encoder = DistilBertModel(DistilBertConfig(vocab_size=len(vocab), dim=32, hidden_dim=64, n_layers=2, n_heads=2,
                                               max_position_embeddings=512))
    encoder.save_pretrained(str(text_folder))
    (text_folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    (text_folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}], indent=2))
    (text_folder / "1_Pooling").mkdir(exist_ok=True)
    (text_folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    (text_folder / "2_Dense").mkdir(exist_ok=True)
    (text_folder / "2_Dense" / "config.json").write_text(json.dumps({
        "in_features": 32, "out_features": projection, "bias": False,
        "activation_function": "torch.nn.modules.linear.Identity"}))
    dense = {"linear.weight": torch.randn(projection, 32) * 0.2}
    save_safetensors(dense, text_folder / "2_Dense" / "model.safetensors", durable=False)
    return image_folder, text_folder


def write_random_weights(folder: Path, seed: int = 0, net: str = "alex") -> dict[str, Path]:
    """Every file of docs/evaluate.md's weights folder, with random values, under `folder`."""
    folder = Path(folder)
    paths = {
        "i3d": write_i3d(folder / I3D_FILE, seed),
        "inception": write_inception(folder / INCEPTION_FILE, seed),
    }
    paths["lpips_linear"], paths["lpips_backbone"] = write_lpips(folder / LPIPS_LINEAR_FILES[net],
                                                                 folder / LPIPS_BACKBONE_FILES[net], net, seed)
    paths["clip_image"], paths["clip_text"] = write_clip_pair(folder / CLIP_IMAGE_FOLDER, folder / CLIP_TEXT_FOLDER,
                                                              seed)
    (folder / "README.txt").write_text(
        "RANDOM WEIGHTS written by `python -m wanlora_engine eval-weights` for tests and the demo.\n"
        "Metrics computed with them are meaningless; put the real files here (docs/evaluate.md).\n")
    return paths
