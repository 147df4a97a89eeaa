"""wanlora_engine: the GPU side of wanlora (cache and LoRA training of Wan2.2-T2V-A14B), driven by the
Swift CLI through one resolved config file and a JSON-lines event stream (docs/engine-contract.md)."""

__version__ = "0.1.0"
