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

Several GPUs or nodes: run `train` under torchrun, one process per GPU (`wanlora train --gpus N` builds the
command); each process reads RANK, WORLD_SIZE and LOCAL_RANK from the environment. `--ulysses U` splits
each sample's tokens over U GPUs, `--fsdp` shards the frozen experts over all of them (docs/distributed.md).
Only rank 0 writes events and logs; the first rank that fails reports its error.
"""

from __future__ import annotations

import argparse
import os
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


def run_stage(stage: str, config_path: Path, resume: bool, echo: bool = True, ulysses: int = 1,
              fsdp: bool = False) -> int:
    """Run one stage with its events; returns the process exit code.

    Under torchrun (WORLD_SIZE > 1) every rank calls this; `ulysses` and `fsdp` choose the layout.
    """
    from . import distributed
    from .config import load_config
    from .errors import ConfigError, EngineError
    from .events import EventWriter, log, set_log_enabled

    try:
        layout = distributed.layout_from_environment(ulysses, fsdp)
        set_log_enabled(layout.is_main)
        config = load_config(config_path)
        if stage != "train" and layout.distributed:
            raise ConfigError(f"the {stage} stage runs in one process, but WORLD_SIZE is {layout.world_size}",
                              f"start `python -m wanlora_engine {stage}` without torchrun")
    except ConfigError as error:
        # No run folder is known yet: the error event goes to stdout only. Every rank reads the same
        # config and environment, so rank 0 speaks for all.
        if os.environ.get("RANK", "0") in ("0", ""):
            with EventWriter(None, echo=echo) as events:
                events.emit("error", code=error.code, problem=error.problem, remedy=error.remedy, step=None,
                            last_checkpoint=None)
            log(str(error))
        return error.exit_code

    events_path = config.run.dir / ("events.jsonl" if stage == "train" else f"{stage}-events.jsonl")
    with EventWriter(events_path, echo=echo, enabled=layout.is_main) as events:
        device = config.cache.device if stage == "cache" else config.train.device
        resumed_from = None
        if stage == "train" and resume:
            from .train import checkpoint_dirs

            found = checkpoint_dirs(config.run.dir)
            resumed_from = int(found[-1].name.split("-")[1]) if found else None
        events.emit("run_started", stage=stage, run_name=config.run.name, **_versions(), **_device_fields(device),
                    config_path=str(config.source_path), resumed_from_step=resumed_from,
                    cuda_alloc_conf=os.environ.get("PYTORCH_CUDA_ALLOC_CONF") or os.environ.get("PYTORCH_ALLOC_CONF"),
                    **layout.describe())
        status, step, outputs, summary, code = "failed", None, {}, {}, EXIT_FAILED
        failure: dict[str, object] | None = None  # the error event, when this rank has one to report
        import time

        started = time.monotonic()
        try:
            if stage == "cache":
                from .cache import run_cache

                summary = run_cache(config, events)
                status, code = "completed", EXIT_OK
            else:
                from .train import resolve_device, run_train

                groups = distributed.start(layout, resolve_device(config.train.device).type)
                status, outputs, summary = run_train(config, events, resume, groups)
                step = summary.get("steps_done")
                code = EXIT_OK if status == "completed" else EXIT_INTERRUPTED
        except EngineError as error:
            if error.code != "non_finite_loss":  # that one already reported its step and checkpoint
                failure = dict(code=error.code, problem=error.problem, remedy=error.remedy, step=None,
                               last_checkpoint=None)
            status = "diverged" if error.code == "non_finite_loss" else "failed"
            code = error.exit_code
            print(str(error), file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            status, code = "interrupted", EXIT_INTERRUPTED
        except Exception as error:  # an engine bug or an environment failure (out of memory, CUDA error)
            tail = traceback.format_exc().strip().splitlines()[-12:]
            failure = dict(code="internal", problem=f"{type(error).__name__}: {error}",
                           remedy="see the traceback in the engine log; report it if it is not an out-of-memory error",
                           step=None, last_checkpoint=None, traceback=tail)
            traceback.print_exc()
        finished = dict(stage=stage, status=status, step=step, seconds=time.monotonic() - started, outputs=outputs,
                        summary=summary)
        if failure is not None and layout.distributed:
            # One rank failed on its own (the others wait in a collective until torchrun stops them): the
            # first rank to fail reports, whatever its number, naming itself.
            if distributed.claim_failure_report():
                with EventWriter(events_path, echo=echo) as reporter:
                    reporter.started_at(events)  # elapsed_s continues the run's clock
                    reporter.emit("error", rank=layout.rank, **failure)
                    reporter.emit("run_finished", rank=layout.rank, **finished)
            return code
        if failure is not None:
            events.emit("error", **failure)
        events.emit("run_finished", **finished)
    return code


def _run_morphemes(args: argparse.Namespace) -> int:
    """The morphemes stage: no config, no run folder; events on stdout only."""
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
            return EXIT_INTERRUPTED
    return EXIT_OK


ALLOCATOR_DEFAULT = "expandable_segments:True"


def default_allocator_settings(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """Give PyTorch's CUDA caching allocator expandable segments unless the user configured it.

    Training draws clips of different lengths (49 and 81 frames in one run): with fixed-size segments the
    freed blocks of the short shapes fragment the memory the long ones need (issue 13 measured 9.4 GiB
    reserved but unusable when FSDP moved from 49 to 81 frames). Must run before the first CUDA allocation.
    Returns the value set, or None when PYTORCH_CUDA_ALLOC_CONF or PYTORCH_ALLOC_CONF was already there.
    """
    if environ.get("PYTORCH_CUDA_ALLOC_CONF") or environ.get("PYTORCH_ALLOC_CONF"):
        return None
    environ["PYTORCH_CUDA_ALLOC_CONF"] = ALLOCATOR_DEFAULT
    return ALLOCATOR_DEFAULT


def main(argv: list[str] | None = None) -> int:
    default_allocator_settings(os.environ)
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
    if args.stage == "train":
        from . import distributed

        code = run_stage("train", args.config, args.resume, ulysses=args.ulysses, fsdp=args.fsdp)
        if code not in (EXIT_OK, EXIT_INTERRUPTED) and distributed.is_started():
            # Leave at once: tearing the process group down would wait for ranks that are blocked in a
            # collective with this one; torchrun sees the exit and stops them.
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
    return run_stage(args.stage, args.config, False)


if __name__ == "__main__":
    sys.exit(main())
