"""torchvision next to a CPU-only torch: its model definitions import, its compiled operators are left out.

PyPI's torchvision wheels carry compiled operators (nms, roi_align, …) linked against the CUDA build of torch.
Next to the CPU-only torch of the engine's tests they do not load, and `import torchvision` then stops in the
registration of those operators ("operator torchvision::nms does not exist"), taking with it every import of
transformers and diffusers that imports torchvision too. The engine calls none of those operators; it uses
torchvision's pure-Python networks (evaluate/inception.py, evaluate/lpips.py). So on a torch without CUDA, the
module registering them is replaced by an empty one before anything imports torchvision. Reading two file
names, it imports neither torch nor torchvision.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

REGISTRATIONS = "torchvision._meta_registrations"


def torch_has_gpu_libraries() -> bool:
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return False
    lib = Path(spec.origin).parent / "lib"
    return (lib / "libtorch_cuda.so").exists() or (lib / "libtorch_hip.so").exists()


def allow_torchvision_without_its_operators() -> None:
    if "torchvision" in sys.modules or REGISTRATIONS in sys.modules:
        return
    if importlib.util.find_spec("torchvision") is None or torch_has_gpu_libraries():
        return
    sys.modules[REGISTRATIONS] = types.ModuleType(REGISTRATIONS, "left out: torchvision_guard.py")
