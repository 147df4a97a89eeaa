import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sample_step.py"


def test_sample_step_benchmark_runs_on_a_tiny_model(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(BENCH), "--tiny", "--profile", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())
    # 6 steps at shift 12 (wan schedule): t = 999, 983, 959, 922 | 856, 705 -> 4 high, 2 low; one timed step each
    assert (data["header"]["steps_high"], data["header"]["steps_low"]) == (4, 2)
    engines = data["engines"]
    assert list(engines) == ["diffusers", "fast"]
    # after the warm-up step (step 1): diffusers times one step (its cost does not depend on the expert), the fast
    # blocks one of each expert, guidance in one batch of two
    assert [(s["step"], s["expert"]) for s in engines["diffusers"]["steps"]] == [(2, "high")]
    assert [(s["step"], s["expert"]) for s in engines["fast"]["steps"]] == [(2, "high"), (5, "low")]
    assert engines["fast"]["cfg_batch"] and not engines["diffusers"]["cfg_batch"]
    fast = engines["fast"]
    expected = 4 * fast["seconds_per_step_high"] + 2 * fast["seconds_per_step_low"]
    assert abs(fast["denoise_seconds"] - expected) < 1e-9
    summary = data["summary"]
    assert summary["projected"] and summary["decode_seconds"] > 0
    assert abs(fast["video_seconds"] - fast["denoise_seconds"] - summary["decode_seconds"]) < 1e-9
    # float32 on the CPU: the fast blocks' first step is diffusers' to rounding
    assert 0 <= fast["first_step_max_abs_difference"] < 1e-5 < fast["first_step_reference_max_abs"]
    assert summary["official_h100_seconds"] == 1041.5
    # --profile: the first timed step once more, its operators' time by class within the step's wall time
    for engine in engines.values():
        profile = engine["profile"]
        assert profile["step"] == 2 and 0 < profile["device_seconds"] <= profile["wall_seconds"] * 1.05
        assert abs(sum(profile["by_class"].values()) - profile["device_seconds"]) < 1e-9
        assert profile["by_class"]["gemm"] > 0 and profile["top_kernels"]


def test_forward_flops_of_an_a14b_expert():
    sys.path.insert(0, str(BENCH.parent))
    from sample_step import A14B, forward_flops

    # 81 frames at 1280x720: 75,600 tokens. Linears 40 x 75,600 x 2 x (6 x 5120^2 + 2 x 5120 x 13,824) = 1.81 PFLOP,
    # self-attention 40 x 4 x 75,600^2 x 5120 = 4.68 PFLOP, cross-attention and text k/v 0.03 PFLOP:
    # 6.52 PFLOP a forward, two forwards a step with CFG (at 798 TFLOP/s at best 16.3 s a step, 654 s for 40).
    assert abs(forward_flops(75_600, A14B, 512) / 1e15 - 6.52) < 0.01
