import torch

from helpers import demo_config, write_config
from wanlora_engine.config import load_config
from wanlora_engine.gpu_memory import GIB, apply_gpu_memory_limit, memory_fraction


class Warnings:
    def __init__(self) -> None:
        self.codes: list[tuple[str, str]] = []

    def warning(self, code: str, message: str) -> None:
        self.codes.append((code, message))


def test_the_limit_is_a_fraction_of_the_card():
    assert memory_fraction(0.0, 80 * GIB) is None
    assert memory_fraction(40.0, 80 * GIB) == 0.5
    assert memory_fraction(60.0, 80 * GIB) == 0.75
    assert memory_fraction(100.0, 80 * GIB) == 1.0  # more than the card: the whole card


def test_on_a_cpu_the_limit_is_ignored_and_said(tmp_path):
    config = load_config(write_config(tmp_path, demo_config(hardware={"gpu_memory_limit": 40})))
    assert config.hardware.gpu_memory_limit == 40.0
    warnings = Warnings()
    assert apply_gpu_memory_limit(config, torch.device("cpu"), warnings) is None
    assert warnings.codes == [("gpu_memory_limit_ignored",
                               "hardware.gpu_memory_limit = 40 GiB is ignored: this stage runs on the cpu")]
    # No limit (0, the default): nothing to say.
    unset = load_config(write_config(tmp_path, demo_config(), "unset.json"))
    assert unset.hardware.gpu_memory_limit == 0.0
    assert apply_gpu_memory_limit(unset, torch.device("cpu"), warnings) is None and len(warnings.codes) == 1
