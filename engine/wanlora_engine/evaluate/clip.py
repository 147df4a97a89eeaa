"""CLIP embeddings for the CLIP score (text ↔ frame) and temporal consistency (frame ↔ next frame).

Captions are Korean, and OpenAI's CLIP text encoder reads English only, so the default pairs a multilingual
text encoder trained to land in CLIP's embedding space with the CLIP image encoder it was distilled from:

- image: a CLIP model folder in transformers format (`config.json` of model_type "clip", `model.safetensors`
  or `pytorch_model.bin`, optionally `preprocessor_config.json`), default openai/clip-vit-base-patch32. A
  sentence-transformers CLIP folder works too: its `0_CLIPModel/` subfolder is used. The image embedding is
  `visual_projection(vision_model(pixels).pooler_output)`.
- text: a sentence-transformers folder (`modules.json`; the transformer at the root or in `0_Transformer/`,
  `1_Pooling/config.json`, `2_Dense/config.json` + weights), default
  sentence-transformers/clip-ViT-B-32-multilingual-v1 (multilingual DistilBERT, mean pooling, 768→512 linear
  without bias), whose outputs share ViT-B/32's space. A CLIP model folder is also accepted (its own text
  tower, `text_projection(text_model(ids).pooler_output)`), e.g. a Korean CLIP.

Frames are prepared as CLIPImageProcessor does: shortest side resized to `size` (bicubic), centre crop to
`crop_size`, scaled to [0, 1], normalised by the processor's mean and std (OpenAI's when the folder has no
preprocessor_config.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelLoadError
from .weights import read_state_dict, require_folder

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


@dataclass(frozen=True)
class ImagePreprocessing:
    size: int = 224  # shortest side after resizing
    crop: int = 224
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD

    @staticmethod
    def from_folder(folder: Path, image_size: int) -> ImagePreprocessing:
        path = folder / "preprocessor_config.json"
        if not path.is_file():
            return ImagePreprocessing(size=image_size, crop=image_size)
        raw = json.loads(path.read_text(encoding="utf-8"))

        def side(value: object, default: int) -> int:
            if isinstance(value, dict):
                return int(value.get("shortest_edge") or value.get("height") or default)
            return int(value) if value is not None else default

        return ImagePreprocessing(
            size=side(raw.get("size"), image_size), crop=side(raw.get("crop_size"), image_size),
            mean=tuple(raw.get("image_mean", OPENAI_MEAN)), std=tuple(raw.get("image_std", OPENAI_STD)),
        )

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [N, H, W, 3] → float32 [N, 3, crop, crop]."""
        x = frames.permute(0, 3, 1, 2).float()
        h, w = x.shape[2:]
        scale = self.size / min(h, w)
        new_h, new_w = max(self.size, round(h * scale)), max(self.size, round(w * scale))
        x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True).clamp(0, 255)
        top, left = (new_h - self.crop) // 2, (new_w - self.crop) // 2
        x = x[:, :, top:top + self.crop, left:left + self.crop] / 255.0
        mean = torch.tensor(self.mean, device=x.device)[None, :, None, None]
        std = torch.tensor(self.std, device=x.device)[None, :, None, None]
        return (x - mean) / std


def _clip_folder(path: Path) -> Path:
    """A CLIP model folder, or the `0_CLIPModel` folder of a sentence-transformers CLIP."""
    if (path / "0_CLIPModel" / "config.json").is_file():
        return path / "0_CLIPModel"
    return path


def _is_clip(folder: Path) -> bool:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type") == "clip"
    except (OSError, json.JSONDecodeError):
        return False


class ImageEncoder(nn.Module):
    def __init__(self, folder: Path, config_key: str = "clip.image_model") -> None:
        super().__init__()
        from transformers import CLIPModel

        _quiet_transformers()
        folder = _clip_folder(Path(folder))
        require_folder(folder, "clip_image", config_key)
        if not _is_clip(folder):
            raise ModelLoadError(f"{folder}/config.json is not a CLIP model (model_type 'clip')",
                                 f"point '{config_key}' at a CLIP folder such as openai/clip-vit-base-patch32")
        try:
            model = CLIPModel.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, RuntimeError) as error:
            raise ModelLoadError(f"cannot load the CLIP image model from {folder}: {error}",
                                 "check that the folder holds config.json and the weights of one CLIP model") from None
        self.vision_model = model.vision_model
        self.visual_projection = model.visual_projection
        self.preprocess = ImagePreprocessing.from_folder(folder, model.config.vision_config.image_size)
        self.eval()

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [N, H, W, 3] → [N, D] image embeddings (not normalised)."""
        pixels = self.preprocess(frames.to(self.visual_projection.weight.device))
        pooled = self.vision_model(pixel_values=pixels.to(self.visual_projection.weight.dtype)).pooler_output
        return self.visual_projection(pooled)


@dataclass(frozen=True)
class EncodedTexts:
    embeddings: torch.Tensor  # [N, D]
    tokens: list[int]  # tokens of each text before truncation
    max_tokens: int


class TextEncoder(nn.Module):
    """Multilingual sentence-transformers encoder (mean pooling + Dense), or a CLIP text tower."""

    def __init__(self, folder: Path, config_key: str = "clip.text_model") -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer, CLIPModel

        _quiet_transformers()
        folder = Path(folder)
        clip_folder = _clip_folder(folder)
        self.kind = "clip" if _is_clip(clip_folder) else "sentence_transformers"
        if self.kind == "clip":
            model = CLIPModel.from_pretrained(str(clip_folder), local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(str(clip_folder), local_files_only=True)
            self.text_model, self.projection = model.text_model, model.text_projection
            self.max_tokens = int(model.config.text_config.max_position_embeddings)
            self.pooling = "clip"
        else:
            modules_file = folder / "modules.json"
            if not modules_file.is_file():
                raise ModelLoadError(
                    f"text encoder not found: {modules_file} does not exist (and {folder} is no CLIP model folder)",
                    f"put sentence-transformers/clip-ViT-B-32-multilingual-v1 (or a CLIP folder) at {folder}, or "
                    f"point '{config_key}' at your copy (docs/evaluate.md lists the files)")
            modules = json.loads(modules_file.read_text(encoding="utf-8"))
            by_type = {m["type"].rsplit(".", 1)[-1]: folder / m.get("path", "") for m in modules}
            for needed in ("Transformer", "Pooling"):
                if needed not in by_type:
                    raise ModelLoadError(f"{modules_file} lists no {needed} module",
                                         "use a sentence-transformers model with Transformer and Pooling modules")
            transformer = require_folder(by_type["Transformer"], "clip_text", config_key)
            self.text_model = AutoModel.from_pretrained(str(transformer), local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(str(transformer), local_files_only=True)
            st_config = transformer / "sentence_bert_config.json"
            self.max_tokens = int(json.loads(st_config.read_text())["max_seq_length"]) if st_config.is_file() else 128
            pooling = json.loads((by_type["Pooling"] / "config.json").read_text(encoding="utf-8"))
            if pooling.get("pooling_mode_mean_tokens"):
                self.pooling = "mean"
            elif pooling.get("pooling_mode_cls_token"):
                self.pooling = "cls"
            else:
                raise ModelLoadError(f"{by_type['Pooling']}/config.json: only mean or CLS pooling is supported",
                                     "use a model with pooling_mode_mean_tokens or pooling_mode_cls_token")
            self.projection = self._dense(by_type.get("Dense"))
        self.eval()

    @staticmethod
    def _dense(folder: Path | None) -> nn.Module:
        if folder is None:
            return nn.Identity()
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        weights = next((folder / name for name in ("model.safetensors", "pytorch_model.bin")
                        if (folder / name).is_file()), None)
        if weights is None:
            raise ModelLoadError(f"{folder} has no model.safetensors or pytorch_model.bin",
                                 "copy the Dense module's weights of the sentence-transformers model")
        activation = config.get("activation_function", "torch.nn.modules.linear.Identity").rsplit(".", 1)[-1]
        if activation not in ("Identity", "Tanh"):
            raise ModelLoadError(f"{folder}/config.json: activation {activation} is not supported",
                                 "use a Dense module with Identity or Tanh activation")
        linear = nn.Linear(config["in_features"], config["out_features"], bias=bool(config.get("bias", True)))
        state = read_state_dict(weights)
        from .weights import load_exact

        load_exact(linear, {k.removeprefix("linear."): v for k, v in state.items()}, weights)
        return nn.Sequential(linear, nn.Tanh()) if activation == "Tanh" else linear

    @torch.no_grad()
    def forward(self, texts: list[str]) -> EncodedTexts:
        full = self.tokenizer(texts, truncation=False)["input_ids"]
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_tokens, padding=True, return_tensors="pt")
        device = next(self.text_model.parameters()).device
        ids, mask = encoded["input_ids"].to(device), encoded["attention_mask"].to(device)
        output = self.text_model(input_ids=ids, attention_mask=mask)
        if self.pooling == "clip":
            pooled = output.pooler_output
        elif self.pooling == "cls":
            pooled = output.last_hidden_state[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(output.last_hidden_state.dtype)
            pooled = (output.last_hidden_state * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return EncodedTexts(embeddings=self.projection(pooled), tokens=[len(t) for t in full],
                            max_tokens=self.max_tokens)
