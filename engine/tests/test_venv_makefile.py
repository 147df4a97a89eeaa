"""`make -C engine venv` picks the torch build from the machine: CUDA when nvidia-smi lists a GPU (#22.10).

The recipe is read with `make -n` (nothing is installed) under a stand-in nvidia-smi on PATH.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def planned_commands(tmp_path: Path, nvidia_smi: str | None, *variables: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if nvidia_smi is not None:
        tool = bin_dir / "nvidia-smi"
        tool.write_text("#!/bin/sh\n" + nvidia_smi)
        tool.chmod(0o755)
    environment = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ENGINE), "venv", f"VENV={tmp_path / 'venv'}", *variables],
        capture_output=True, text=True, env=environment, check=True)
    return result.stdout


def test_a_gpu_machine_gets_the_cuda_build_and_bitsandbytes(tmp_path):
    commands = planned_commands(
        tmp_path, "echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0f1e2d3c)'\n")
    assert 'pip install -q  "torch==2.13.0"' in commands
    assert "+cpu" not in commands.replace('"+cpu" not in torch.__version__', "")
    assert '-e ".[test,gpu]"' in commands
    assert "torch.cuda.is_available()" in commands  # it says whether the GPU is usable
    assert commands.rstrip().endswith(f"touch {tmp_path / 'venv'}/.installed-cuda")


@pytest.mark.parametrize("nvidia_smi", [None, "echo 'NVIDIA-SMI has failed' >&2\nexit 9\n"])
def test_a_machine_without_a_gpu_keeps_the_cpu_wheel(tmp_path, nvidia_smi):
    commands = planned_commands(tmp_path, nvidia_smi)
    assert '--find-links /opt/wheels "torch==2.13.0+cpu"' in commands
    assert '-e ".[test]"' in commands and "gpu]" not in commands
    assert commands.rstrip().endswith(f"touch {tmp_path / 'venv'}/.installed")


def test_the_choice_can_be_forced_and_another_cuda_index_named(tmp_path):
    commands = planned_commands(
        tmp_path, None, "TORCH=cuda", "TORCH_INDEX=https://download.pytorch.org/whl/cu126")
    assert '--index-url https://download.pytorch.org/whl/cu126 "torch==2.13.0"' in commands
