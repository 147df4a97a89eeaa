"""Random-weight stand-ins of every metric network, saved under the real files' names and key names.

For the tests and `make -C engine demo` (no real weights can be downloaded here). The I3D, Inception-v3 and
LPIPS files have the real architectures at full size (their shapes are fixed); the CLIP pair keeps the real
classes (transformers' CLIPModel, DistilBERT + mean pooling + Dense in sentence-transformers layout) at a
small width so the demo stays fast on a CPU. Numbers computed with these are meaningless as quality scores;
they show that the pipeline runs and that real files in the same layout load.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# The file names the Swift config layer expects inside eval.weights_dir (docs/evaluate.md).
I3D_FILE = "i3d_pretrained_400.pt"
INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"
LPIPS_LINEAR_FILES = {"alex": "lpips/v0.1/alex.pth", "vgg": "lpips/v0.1/vgg.pth"}
LPIPS_BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
CLIP_IMAGE_FOLDER = "clip-vit-base-patch32"
CLIP_TEXT_FOLDER = "clip-ViT-B-32-multilingual-v1"


def _randomise_batch_norm(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Non-trivial BN statistics, so loading them is visible in the outputs."""
    for child in module.modules():
        if isinstance(child, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            child.running_mean.copy_(torch.randn(child.running_mean.shape, generator=generator) * 0.1)
            child.running_var.copy_(torch.rand(child.running_var.shape, generator=generator) + 0.5)


def write_i3d(path: Path, seed: int = 0) -> Path:
    from .i3d import InceptionI3D

    torch.manual_seed(seed)
    model = InceptionI3D()
    _randomise_batch_norm(model, torch.Generator().manual_seed(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def write_inception(path: Path, seed: int = 0) -> Path:
    from .inception import InceptionV3

    torch.manual_seed(seed)
    model = InceptionV3()
    _randomise_batch_norm(model, torch.Generator().manual_seed(seed + 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def write_lpips(linear_path: Path, backbone_path: Path, net: str = "alex", seed: int = 0) -> tuple[Path, Path]:
    """The package's linear-layer file (lin*.model.1.weight, ≥ 0 as trained) and torchvision's backbone file
    (features.N.weight/bias), written separately as the real ones come."""
    from .lpips import LPIPS, backbone_key_map

    torch.manual_seed(seed)
    model = LPIPS(net)
    state = model.state_dict()
    linear = {k: v.abs() for k, v in state.items() if k.startswith("lin")}
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
    from safetensors.torch import save_file
    from transformers import BertTokenizerFast, CLIPConfig, CLIPModel, DistilBertConfig, DistilBertModel

    from ..demo_data import CAPTIONS

    torch.manual_seed(seed)
    projection = 16
    clip = CLIPModel(CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=64, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=8),
        projection_dim=projection))
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
    save_file({"linear.weight": torch.randn(projection, 32) * 0.2}, str(text_folder / "2_Dense" / "model.safetensors"))
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
    paths["clip_image"], paths["clip_text"] = write_clip_pair(folder / CLIP_IMAGE_FOLDER, folder / CLIP_TEXT_FOLDER, seed)
    (folder / "README.txt").write_text(
        "RANDOM WEIGHTS written by `python -m wanlora_engine eval-weights` for tests and the demo.\n"
        "Metrics computed with them are meaningless; put the real files here (docs/evaluate.md).\n")
    return paths
