"""Command line of the engine: `python -m wanlora_engine <stage> --config config.resolved.json`.

Stages:
    cache       VAE latents + UMT5 embeddings of the train/val manifests into data.cache_dir
    train       LoRA training; --resume continues from the run folder's latest checkpoint
    sample      text-to-video with both experts and their LoRAs: --config OUT/sample-job.json (wanlora sample)
    tiny-model  write a tiny random Wan2.2 T2V model (tests, `make demo`): --out DIR --layout official|diffusers
    demo-data   write a small prepared dataset of real media (PNG + H.264 via ffmpeg): --out DIR
    evaluate    FVD, IS, LPIPS, CLIP score, temporal consistency: --config OUT/evaluate.json (docs/evaluate.md)
    eval-weights  write random-weight stand-ins of the metric networks (tests, demo): --out DIR
    morphemes   Korean morphemes and content words of captions with Kiwi (wanlora analyze --morphemes):
                --input CAPTIONS --output MORPHEMES --vocabulary VOCAB.json (formats in morphemes.py)

stdout carries JSON-lines events only (docs/engine-contract.md); logs go to stderr.
Exit codes: 0 completed, 1 failed, 2 bad config or arguments, 3 non-finite loss, 130 interrupted (after
saving a checkpoint).

Several GPUs or nodes: run `cache`, `train` or `sample` under torchrun, one process per GPU (`wanlora cache
--gpus N`, `wanlora train --gpus N`, `wanlora sample --gpus N` build the command); each process reads RANK,
WORLD_SIZE and LOCAL_RANK from the environment. `cache` gives each rank a disjoint share of the shards
(cache.py). `--ulysses U` splits
each sample's tokens over U GPUs, `--fsdp` shards the frozen experts over all of them (docs/distributed.md).
Only rank 0 writes events and logs; the first rank that fails reports its error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _run_morphemes(args: argparse.Namespace) -> int:
    """The morphemes stage: no config, no run folder; events on stdout only."""
    from . import stage
    from .errors import EngineError
    from .events import EventWriter
    from .morphemes import run_morphemes

    with EventWriter(None) as events:
        try:
            if args.workers < 0 or args.batch < 1:
                from .errors import ConfigError

                raise ConfigError(f"--workers {args.workers} --batch {args.batch}: workers must be 0 or more, "
                                  "batch 1 or more", "pass e.g. --workers 0 --batch 2048")
            run_morphemes(args.input, args.output, args.vocabulary, args.workers, args.batch, events, args.unit)
        except EngineError as error:
            events.emit("error", code=error.code, problem=error.problem, remedy=error.remedy, step=None,
                        last_checkpoint=None)
            print(str(error), file=sys.stderr, flush=True)
            return error.exit_code
        except KeyboardInterrupt:
            return stage.EXIT_INTERRUPTED
    return stage.EXIT_OK


ALLOCATOR_DEFAULT = "expandable_segments:True"


def default_allocator_settings(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """Give PyTorch's CUDA caching allocator expandable segments unless the user configured it.

    Training draws clips of different lengths (49 and 81 frames in one run): with fixed-size segments the
    freed blocks of the short shapes fragment the memory the long ones need (issue 13 measured 9.4 GiB
    reserved but unusable when FSDP moved from 49 to 81 frames). Must run before the first CUDA allocation
    (main() calls it before it imports torch). Returns the value set, or None when PYTORCH_CUDA_ALLOC_CONF or
    PYTORCH_ALLOC_CONF was already there.
    """
    if environ.get("PYTORCH_CUDA_ALLOC_CONF") or environ.get("PYTORCH_ALLOC_CONF"):
        return None
    environ["PYTORCH_CUDA_ALLOC_CONF"] = ALLOCATOR_DEFAULT
    return ALLOCATOR_DEFAULT


def main(argv: list[str] | None = None) -> int:
    default_allocator_settings(os.environ)
    from .stage import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_OK, run_stage

    parser = argparse.ArgumentParser(prog="python -m wanlora_engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True)
    for name, text in (("cache", "cache VAE latents and UMT5 embeddings"), ("train", "train the LoRA adapters")):
        stage = sub.add_parser(name, help=text)
        stage.add_argument("--config", required=True, type=Path, help="config.resolved.json written by wanlora")
        if name == "train":
            stage.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
            stage.add_argument("--ulysses", type=int, default=1, metavar="U",
                               help="GPUs that share one sample's tokens (Ulysses; divides the GPUs and 40 heads)")
            stage.add_argument("--fsdp", action="store_true",
                               help="shard the frozen expert weights over all GPUs (FSDP2, per block)")
    sample = sub.add_parser("sample", help="generate videos (MP4 + JSON sidecar per prompt)")
    sample.add_argument("--config", required=True, type=Path, help="sample-job.json written by wanlora sample")
    sample.add_argument("--ulysses", type=int, default=1, metavar="U",
                        help="GPUs that share one video's tokens (Ulysses; divides the GPUs and 40 heads)")
    sample.add_argument("--fsdp", action="store_true", help="shard both experts over all GPUs (FSDP2, per block)")
    tiny = sub.add_parser("tiny-model", help="write a tiny random Wan2.2 T2V model")
    tiny.add_argument("--out", required=True, type=Path, help="empty or new folder")
    tiny.add_argument("--layout", choices=("official", "diffusers"), default="diffusers")
    tiny.add_argument("--seed", type=int, default=0)
    demo = sub.add_parser("demo-data", help="write a small prepared dataset (train.csv, val.csv, media/)")
    demo.add_argument("--out", required=True, type=Path)
    demo.add_argument("--images", type=int, default=8)
    demo.add_argument("--videos", type=int, default=8)
    demo.add_argument("--frames", type=int, default=9, help="frames per clip at 16 fps")
    evaluate = sub.add_parser("evaluate", help="metrics of generated videos against reference clips")
    evaluate.add_argument("--config", required=True, type=Path, help="evaluate.json written by `wanlora evaluate`")
    weights = sub.add_parser("eval-weights", help="write random-weight metric networks under their real file names")
    weights.add_argument("--out", required=True, type=Path)
    weights.add_argument("--seed", type=int, default=0)
    weights.add_argument("--lpips-net", choices=("alex", "vgg"), default="alex")
    morphemes = sub.add_parser("morphemes", help="Korean morphemes and content words of captions (Kiwi)")
    morphemes.add_argument("--input", required=True, type=Path, help="caption file written by wanlora")
    morphemes.add_argument("--output", required=True, type=Path, help="binary result file to write")
    morphemes.add_argument("--vocabulary", required=True, type=Path, help="JSON vocabulary file to write")
    morphemes.add_argument("--workers", type=int, default=0, help="Kiwi's threads (0: one per core)")
    morphemes.add_argument("--batch", type=int, default=2048, help="captions per progress event")
    morphemes.add_argument("--unit", choices=("word", "caption"), default="word",
                           help="analyse each distinct space-separated word once (fast) or each caption whole")
    args = parser.parse_args(argv)

    if args.stage == "morphemes":
        return _run_morphemes(args)

    if args.stage == "eval-weights":
        from .evaluate.random_weights import write_random_weights

        paths = write_random_weights(args.out, seed=args.seed, net=args.lpips_net)
        print(f"wrote random-weight metric networks (not real ones) to {args.out}: "
              + ", ".join(p.name for p in paths.values()), file=sys.stderr)
        return EXIT_OK

    if args.stage == "demo-data":
        from .demo_data import write_dataset

        write_dataset(args.out, images=args.images, videos=args.videos, video_frames=args.frames)
        write_dataset(args.out, images=max(1, args.images // 4), videos=max(1, args.videos // 4),
                      video_frames=args.frames, name="val.csv", start=1000)
        print(f"wrote {args.out}/train.csv and val.csv", file=sys.stderr)
        return EXIT_OK

    if args.stage == "tiny-model":
        from .tiny import write_tiny_model

        try:
            out = write_tiny_model(args.out, args.layout, seed=args.seed)
        except FileExistsError as error:
            print(f"error: {error}; pick an empty folder", file=sys.stderr)
            return EXIT_CONFIG
        print(f"wrote a tiny {args.layout}-layout Wan2.2 T2V model to {out}", file=sys.stderr)
        return EXIT_OK
    if args.stage in ("cache", "train", "sample"):
        from . import distributed

        if args.stage == "cache":
            code = run_stage("cache", args.config)
        else:
            code = run_stage(args.stage, args.config, getattr(args, "resume", False), ulysses=args.ulysses,
                             fsdp=args.fsdp)
        if distributed.is_started() and (code not in (EXIT_OK, EXIT_INTERRUPTED)
                                         or not distributed.can_stop_together()):
            # Leave at once: tearing the process group down would wait for ranks that are blocked in a
            # collective with this one (a failure, or a signal that stopped this rank where it was); torchrun
            # sees the exit and stops them.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        if distributed.is_started():
            distributed.stop()
            # Skip the interpreter's finalization: objects that still refer to finished gloo work (FSDP's
            # reduce-scatter handles) would be freed while the interpreter is torn down, which aborts the
            # process now and then ("terminate called without an active exception", exit -6) although every
            # file of the run is written and closed by now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    return run_stage(args.stage, args.config)


if __name__ == "__main__":
    sys.exit(main())
