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


def test_attention_kernel_benchmark_runs_and_checks_against_float32(tmp_path):
    out = tmp_path / "attention.json"
    result = subprocess.run([sys.executable, str(BENCH.parent / "attention_kernels.py"), "--tiny", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    report = json.loads(out.read_text())
    # On the CPU the float32 kernel is the reference's own math: its output and gradients equal it
    assert report["accuracy"]["cpu"] == {"out": 0.0, "dq": 0.0, "dk": 0.0, "dv": 0.0}
    row = report["rows"][0]
    assert (row["batch"], row["tokens"]) == (1, 64) and row["forward_s"] > 0 and row["backward_s"] > 0
    # forward FLOPs 4·B·H·N²·D over the time (2 heads x 8 on the tiny shape), backward 2.5x the forward's
    assert abs(row["forward_tflops"] - 4 * 2 * 64 * 64 * 8 / row["forward_s"] / 1e12) < 1e-12


def test_stream_step_cases_name_their_attention_kernel():
    sys.path.insert(0, str(BENCH.parent))
    from stream_step import parse_ours

    assert parse_ours(["0:49,81", "24:49:k24:fa3", "40:49:cudnn"]) == [
        (0.0, 49, 0, "auto"), (0.0, 81, 0, "auto"), (24.0, 49, 24, "fa3"), (40.0, 49, 0, "cudnn")]
