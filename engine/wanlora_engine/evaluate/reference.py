"""The reference packages behind the metric networks: torchvision (Inception-v3, the LPIPS backbones) and `lpips`.

The metrics use the packages' own definitions, so a number is the reference package's number on the same
weights (bench/evaluate_parity.py checks it); only the weights come from the user's files (docs/evaluate.md).

torchvision's wheels on PyPI carry compiled operators (nms, roi_align, …) linked against the CUDA build of
torch; next to the CPU-only torch of the engine's tests they do not load, and `import torchvision` stops in
the registration of those operators ("operator torchvision::nms does not exist"). The metrics call none of
them, only the pure-Python model definitions, so in that case the import is retried without the operators'
registrations.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings

from ..errors import ModelLoadError

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
    try:
        import torchvision

        return torchvision
    except ImportError as error:
        raise _missing("torchvision", error) from error
    except RuntimeError as error:
        if "torchvision::" not in str(error):
            raise
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    with warnings.catch_warnings():  # "Failed to load image Python extension": no image decoding is used here
        warnings.simplefilter("ignore")
        return importlib.import_module("torchvision")


def import_lpips() -> types.ModuleType:
    """The `lpips` package (Zhang et al.'s reference code; it imports torchvision itself)."""
    import_torchvision()
    try:
        import lpips

        return lpips
    except ImportError as error:
        raise _missing("lpips", error) from error
