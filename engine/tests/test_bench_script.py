import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "engine_step.py"


def test_engine_step_benchmark_runs_on_a_tiny_model(tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, str(BENCH), "--tiny", "--check", "--profile", "1:engine", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())
    cases = {(r["frames"], r["variant"]) for r in data["results"]}
    assert cases == {(1, "diffusers"), (1, "engine"), (5, "diffusers"), (5, "engine")}
    assert all(r["seconds_per_sample"] > 0 for r in data["results"])
    assert data["header"]["lora_parameters"] == 2 * 8 * 16 * (16 + 16)
    # --check: the engine's prediction and LoRA gradients against diffusers' (float32 on the CPU: equal to rounding)
    check = data["header"]["check"]["engine"]
    assert check["prediction"] < 1e-5 and check["lora_gradients"] < 1e-5 and check["worst_lora_tensor"] < 1e-5
    # --profile 1:engine: one step's operators by class (CPU operators here; CUDA kernels on a GPU)
    (profile,) = data["header"]["profiles"]
    assert (profile["frames"], profile["variant"]) == (1, "engine") and profile["device_seconds"] > 0
    assert abs(sum(profile["by_class"].values()) - profile["device_seconds"]) < 1e-9 and profile["by_class"]["gemm"] > 0


def test_counted_flops_match_spec_section_8():
    sys.path.insert(0, str(BENCH.parent))
    from engine_step import A14B, counted_flops

    # SPEC §8: 11.5 PFLOP at 49 frames (46,800 tokens), 26.6 PFLOP at 81 frames (75,600 tokens)
    assert abs(counted_flops(46_800, A14B, 512) / 1e15 - 11.5) < 0.1
    assert abs(counted_flops(75_600, A14B, 512) / 1e15 - 26.6) < 0.15


def test_stream_step_benchmark_streams_the_tiny_model(tmp_path):
    out = tmp_path / "stream.json"
    result = subprocess.run([sys.executable, str(BENCH.parent / "stream_step.py"), "--tiny", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["cap_gib"], r["frames"]) for r in rows] == [(0, 1), (0, 5), (24, 1), (24, 5)]
    assert all(r["seconds_per_sample"] > 0 for r in rows)
    # uncapped: nothing streams; "capped" (tiny: room for one block): 1 resident, 3 streamed; 3 steps (1 warm-up,
    # 2 timed): the first copies 2·(3 - 2) + 2 = 4 blocks, each later one 2·(3 - 2) = 2 (docs/streaming.md)
    assert [r["plan"]["streamed"] for r in rows] == [0, 0, 3, 3]
    assert [r["weight_copies"] for r in rows] == [0, 0, 8, 8]
