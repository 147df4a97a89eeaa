"""Command line of the engine: `python -m wanlora_engine <stage> --config config.resolved.json`.

Stages:
    cache       VAE latents + UMT5 embeddings of the train/val manifests into data.cache_dir
    train       LoRA training; --resume continues from the run folder's latest checkpoint
    sample      text-to-video with both experts and their LoRAs: --config OUT/sample-job.json (wanlora sample)
    tiny-model  write a tiny random Wan2.2 T2V model (tests, `make demo`): --out DIR --layout official|diffusers
    demo-data   write a small prepared dataset of real media (PNG + H.264 via ffmpeg): --out DIR
    evaluate    FVD, IS, LPIPS, CLIP score, temporal consistency: --config OUT/evaluate.json (docs/evaluate.md)
    eval-weights  write random-weight stand-ins of the metric networks (tests, demo): --out DIR

stdout carries JSON-lines events only (docs/engine-contract.md); logs go to stderr.
Exit codes: 0 completed, 1 failed, 2 bad config or arguments, 3 non-finite loss, 130 interrupted (after
saving a checkpoint).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


def _versions() -> dict[str, str]:
    import diffusers
    import torch

    from . import __version__

    return {"engine_version": __version__, "torch_version": torch.__version__, "diffusers_version": diffusers.__version__}


def _device_fields(name: str) -> dict[str, object]:
    import torch

    use_cuda = name == "cuda" or (name == "auto" and torch.cuda.is_available())
    if use_cuda and torch.cuda.is_available():
        return {"device": "cuda", "device_name": torch.cuda.get_device_name(0)}
    return {"device": "cpu", "device_name": "cpu"}


def run_stage(stage: str, config_path: Path, resume: bool, echo: bool = True) -> int:
    """Run one stage with its events; returns the process exit code."""
    from .config import load_config
    from .errors import ConfigError, EngineError
    from .events import EventWriter, log

    try:
        config = load_config(config_path)
    except ConfigError as error:
        # No run folder is known yet: the error event goes to stdout only.
        with EventWriter(None, echo=echo) as events:
            events.emit("error", code=error.code, problem=error.problem, remedy=error.remedy, step=None,
                        last_checkpoint=None)
        log(str(error))
        return error.exit_code

    events_path = config.run.dir / ("events.jsonl" if stage == "train" else f"{stage}-events.jsonl")
    with EventWriter(events_path, echo=echo) as events:
        device = config.cache.device if stage == "cache" else config.train.device
        resumed_from = None
        if stage == "train" and resume:
            from .train import checkpoint_dirs

            found = checkpoint_dirs(config.run.dir)
            resumed_from = int(found[-1].name.split("-")[1]) if found else None
        events.emit("run_started", stage=stage, run_name=config.run.name, **_versions(), **_device_fields(device),
                    world_size=1, config_path=str(config.source_path), resumed_from_step=resumed_from)
        status, step, outputs, summary, code = "failed", None, {}, {}, EXIT_FAILED
        import time

        started = time.monotonic()
        try:
            if stage == "cache":
                from .cache import run_cache

                summary = run_cache(config, events)
                status, code = "completed", EXIT_OK
            else:
                from .train import run_train

                status, outputs, summary = run_train(config, events, resume)
                step = summary.get("steps_done")
                code = EXIT_OK if status == "completed" else EXIT_INTERRUPTED
        except EngineError as error:
            if error.code != "non_finite_loss":  # that one already reported its step and checkpoint
                events.emit("error", code=error.code, problem=error.problem, remedy=error.remedy, step=None,
                            last_checkpoint=None)
            status = "diverged" if error.code == "non_finite_loss" else "failed"
            code = error.exit_code
            log(str(error))
        except KeyboardInterrupt:
            status, code = "interrupted", EXIT_INTERRUPTED
        except Exception as error:  # an engine bug or an environment failure (out of memory, CUDA error)
            tail = traceback.format_exc().strip().splitlines()[-12:]
            events.emit("error", code="internal", problem=f"{type(error).__name__}: {error}",
                        remedy="see the traceback in the engine log; report it if it is not an out-of-memory error",
                        step=None, last_checkpoint=None, traceback=tail)
            traceback.print_exc()
        events.emit("run_finished", stage=stage, status=status, step=step, seconds=time.monotonic() - started,
                    outputs=outputs, summary=summary)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wanlora_engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True)
    for name, text in (("cache", "cache VAE latents and UMT5 embeddings"), ("train", "train the LoRA adapters")):
        stage = sub.add_parser(name, help=text)
        stage.add_argument("--config", required=True, type=Path, help="config.resolved.json written by wanlora")
        if name == "train":
            stage.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    sample = sub.add_parser("sample", help="generate videos (MP4 + JSON sidecar per prompt)")
    sample.add_argument("--config", required=True, type=Path, help="sample-job.json written by wanlora sample")
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
    args = parser.parse_args(argv)

    if args.stage == "evaluate":
        from .evaluate.run import run_evaluate_stage

        return run_evaluate_stage(args.config)

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

    if args.stage == "sample":
        from .sample import run_sample_stage

        return run_sample_stage(args.config)

    if args.stage == "tiny-model":
        from .tiny import write_tiny_model

        try:
            out = write_tiny_model(args.out, args.layout, seed=args.seed)
        except FileExistsError as error:
            print(f"error: {error}; pick an empty folder", file=sys.stderr)
            return EXIT_CONFIG
        print(f"wrote a tiny {args.layout}-layout Wan2.2 T2V model to {out}", file=sys.stderr)
        return EXIT_OK
    return run_stage(args.stage, args.config, getattr(args, "resume", False))


if __name__ == "__main__":
    sys.exit(main())
