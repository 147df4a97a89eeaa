"""Writing output files whole and with the permissions the user asked for, written once.

Every file the engine publishes (LoRAs, checkpoint files, cache shards and indexes) goes through
`write_atomically`: the content is written to a temporary name beside the target, flushed to the disk, given
the mode a plain `open()` would have given it (0666 less the process umask) and renamed over the target, so a
reader sees the old file or the new one, never half of one. The mode matters because safetensors writes its
files 0600 whatever the umask, which locks colleagues out of LoRAs and caches on a shared cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def process_umask() -> int:
    """The umask of this process, read without changing it (Linux reports it in /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    # Elsewhere the only way is to set it and put it back (racy only against threads creating files meanwhile).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode `open(path, "w")` gives a new file: 0666 less the umask (0644 under the usual umask 022)."""
    return 0o666 & ~process_umask()


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries, to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, write: Callable[[Path], None], *, durable: bool = True) -> Path:
    """Publish `path` whole: `write(tmp)` fills a temporary file beside it, which gets the umask's mode, is
    flushed to the disk (`durable`) and renamed over `path`. On an error the temporary file is removed."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.chmod(tmp, default_file_mode())
        if durable:
            fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None,
                     *, durable: bool = True) -> Path:
    """`safetensors.torch.save_file` through `write_atomically` (so the file follows the umask)."""
    from safetensors.torch import save_file

    contiguous = {key: value.contiguous() for key, value in tensors.items()}
    return write_atomically(path, lambda tmp: save_file(contiguous, str(tmp), metadata=metadata), durable=durable)


def write_text_atomically(path: Path, text: str, *, durable: bool = True) -> Path:
    """UTF-8 text through `write_atomically`."""
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), durable=durable)


def torch_save_atomically(value: Any, path: Path, *, durable: bool = True) -> Path:
    """`torch.save` through `write_atomically`."""
    return write_atomically(path, lambda tmp: torch.save(value, tmp), durable=durable)
