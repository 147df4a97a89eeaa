"""One rank of a sample run for the layout tests: `python -m wanlora_engine sample` as torchrun starts it, with
the latents each video is decoded from saved (test_sample_distributed.py compares them across layouts).

    [torchrun --nproc-per-node N] sample_worker.py --config OUT/sample-job.json --latents DIR [--ulysses U] [--fsdp]

The only change to the stage: the latents a video is decoded from are saved as DIR/<video id>.pt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wanlora_engine import sample  # noqa: E402
from wanlora_engine.__main__ import main  # noqa: E402


def keep_latents(folder: Path) -> None:
    """Save the latents of each video the stage writes as DIR/<id>.pt (the MP4's name gives the id)."""
    decode, write = sample.decode_latents, sample.write_mp4
    folder.mkdir(parents=True, exist_ok=True)
    last: list[torch.Tensor] = []

    def decode_and_keep(vae, latents, device):  # type: ignore[no-untyped-def]
        last[:] = [latents.detach().cpu().clone()]
        return decode(vae, latents, device)

    def write_and_keep(pixels, path, fps, crf):  # type: ignore[no-untyped-def]
        torch.save(last.pop(), folder / f"{Path(path).stem}.pt")
        return write(pixels, path, fps, crf)

    sample.decode_latents = decode_and_keep
    sample.write_mp4 = write_and_keep


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--latents", type=Path, required=True)
    args, rest = parser.parse_known_args()
    keep_latents(args.latents)
    sys.exit(main(["sample", *rest]))
