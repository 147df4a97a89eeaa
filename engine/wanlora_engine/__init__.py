"""wanlora_engine: the GPU side of wanlora (cache and LoRA training of Wan2.2-T2V-A14B), driven by the
Swift CLI through one resolved config file and a JSON-lines event stream (docs/engine-contract.md)."""

__version__ = "0.1.0"

from .torchvision_guard import allow_torchvision_without_its_operators  # noqa: E402

allow_torchvision_without_its_operators()  # before transformers or diffusers import torchvision
