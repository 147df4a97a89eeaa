"""One rank of a distributed test run (started by torchrun from test_distributed.py).

For each requested layout it builds the trainer exactly as `python -m wanlora_engine train` does under
torchrun (distributed.start, then Trainer with the groups), trains a few steps and, on rank 0, saves what
the test compares with a one-process run: the loss of every step, the LoRA gradients of the first step
(summed over all ranks, as the optimizer sees them) and the LoRA weights at the end, with which blocks ran
and, under Ulysses, the token counts of the forward passes (true count, tokens per rank).

    torchrun --nproc-per-node N dist_worker.py --config CONFIG --out DIR --steps S \
        --layout NAME:ULYSSES:FSDP(0|1):GRAD_ACCUM:MICRO_BATCH:EXPERT_GROUPING[:BLOCKS] ...

BLOCKS: "fast" (the config's blocks), "fast_recompute" (fast, keep_attention false: self-attention
recomputed in the backward), "diffusers" (diffusers' blocks, Ulysses through the attention processor).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wanlora_engine import distributed  # noqa: E402
from wanlora_engine.config import load_config, replace_keys  # noqa: E402
from wanlora_engine.events import EventWriter, set_log_enabled  # noqa: E402
from wanlora_engine.lora import lora_parameters  # noqa: E402
from wanlora_engine.train import Trainer  # noqa: E402


def blocks_used(trainer: Trainer) -> str:
    """'fast', 'fast+ulysses' (every block's self-attention sequence-parallel) or 'diffusers'."""
    if not trainer.fast_blocks:
        return "diffusers"
    runners = [r for e in trainer.experts for r in trainer.models[e]._wanlora_fast_blocks.runners]
    if all(r.sequence is not None for r in runners):
        return "fast+ulysses"
    assert not any(r.sequence is not None for r in runners)
    return "fast"


def record_run(trainer: Trainer, steps: int) -> dict:
    losses, grads = [], {}
    token_counts: list[tuple[int, int]] = []
    for expert in trainer.experts:
        model = trainer.models[expert]
        context = getattr(model, "_wanlora_sequence", None)
        if context is not None:
            model.blocks[0].register_forward_pre_hook(
                lambda module, args, context=context: token_counts.append((context.tokens, args[0].shape[1])))
    for step in range(steps):
        record = trainer.train_step()
        losses.append(record.loss)
        if step == 0:
            for expert in trainer.experts:
                for name, param in lora_parameters(trainer.models[expert]).items():
                    if param.grad is not None:
                        grads[f"{expert}/{name}"] = param.grad.detach().cpu().clone()
    weights = {f"{expert}/{name}": param.detach().cpu().clone()
               for expert in trainer.experts for name, param in lora_parameters(trainer.models[expert]).items()}
    return {"losses": losses, "grads": grads, "weights": weights, "samples_per_step": trainer.samples_per_step,
            "grouping": trainer.grouping, "blocks": blocks_used(trainer),
            "keep_attention": trainer.config.training.keep_attention, "token_counts": token_counts}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--layout", action="append", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for spec in args.layout:
        name, ulysses, fsdp, accum, micro, grouping, *blocks = spec.split(":")
        layout = distributed.layout_from_environment(int(ulysses), fsdp == "1")
        set_log_enabled(layout.is_main)
        config = load_config(args.config)
        blocks_keys = {
            "fast": {"blocks": "fast"},
            "fast_recompute": {"blocks": "fast", "keep_attention": False},
            "diffusers": {"blocks": "diffusers"},
        }[blocks[0] if blocks else "fast"]
        config = replace_keys(config, training={"grad_accumulation": int(accum), "micro_batch": int(micro),
                                                "expert_grouping": grouping, **blocks_keys})
        groups = distributed.start(layout, "cpu")
        trainer = Trainer(config, EventWriter(None, echo=False, enabled=False), groups)
        result = record_run(trainer, args.steps)
        if layout.is_main:
            args.out.mkdir(parents=True, exist_ok=True)
            torch.save(result, args.out / f"{name}.pt")
        distributed.barrier()
    distributed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
