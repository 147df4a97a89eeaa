import os
import stat

import pytest
import torch
from safetensors.torch import load_file

from wanlora_engine.files import process_umask, save_safetensors, write_atomically, write_text_atomically


@pytest.fixture
def umask():
    """Set the process umask for one test and put the old one back."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert process_umask() == mask
    lora = save_safetensors({"a": torch.arange(3.0)}, tmp_path / "lora.safetensors", {"format": "pt"})
    text = write_text_atomically(tmp_path / "cache.json", '{"schema_version": 1}')
    # safetensors alone writes 0600 whatever the umask: the reason for the helper.
    assert _mode(lora) == expected and _mode(text) == expected
    assert load_file(str(lora))["a"].tolist() == [0.0, 1.0, 2.0]
    assert text.read_text() == '{"schema_version": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.json", "lora.safetensors"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = write_text_atomically(tmp_path / "index.json", "old")

    def fail(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_atomically(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]
