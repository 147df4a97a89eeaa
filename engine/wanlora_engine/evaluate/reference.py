"""The reference packages behind the metric networks: torchvision (Inception-v3, the LPIPS backbones) and `lpips`.

The metrics use the packages' own definitions, so a number is the reference package's number on the same
weights (bench/evaluate_parity.py checks it); only the weights come from the user's files (docs/evaluate.md).
A torchvision built for CUDA also imports next to a CPU-only torch (torchvision_guard.py).
"""

from __future__ import annotations

import types

from ..errors import ModelLoadError
from ..torchvision_guard import allow_torchvision_without_its_operators

# pip requirement of each package, as engine/pyproject.toml pins it (shown when one is missing).
REQUIREMENTS = {"torchvision": "torchvision", "lpips": "lpips==0.1.4"}


def _missing(package: str, error: ImportError) -> ModelLoadError:
    return ModelLoadError(
        f"the evaluation metrics need the Python package {package!r}, which the engine's Python cannot import "
        f"({error})",
        f"install the engine's dependencies: `make -C engine venv`, or `python -m pip install "
        f"'{REQUIREMENTS[package]}'` with the engine's Python (a torchvision built for the installed torch)")


def import_torchvision() -> types.ModuleType:
    """torchvision, also where its compiled operators do not match the installed torch build."""
    allow_torchvision_without_its_operators()
    try:
        import torchvision

        return torchvision
    except ImportError as error:
        raise _missing("torchvision", error) from error


def import_lpips() -> types.ModuleType:
    """The `lpips` package (Zhang et al.'s reference code; it imports torchvision itself)."""
    import_torchvision()
    try:
        import lpips

        return lpips
    except ImportError as error:
        raise _missing("lpips", error) from error
