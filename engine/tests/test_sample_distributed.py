"""`wanlora sample` over several processes (torchrun, gloo, CPU, float32, the tiny model): the same prompt and
seed give the same latents in every layout, and a killed run continues where it stopped."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_sample import job_dict, write_job

from wanlora_engine.distributed import Layout
from wanlora_engine.events import read_events
from wanlora_engine.sample import videos_of_group

ENGINE = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "sample_worker.py"
PROMPTS = [
    {"id": f"v{i}", "prompt": text, "category": None, "seed": seed}
    for i, (text, seed) in enumerate([("축제의 밤, 등불을 든 사람들", 5), ("눈 덮인 산과 호수", 6),
                                      ("오래된 궁궐의 지붕", 7)], start=1)
]


def sample_command(job: Path, latents: Path, nproc: int, *options: str) -> list[str]:
    """sample_worker.py on `nproc` processes (torchrun, gloo) or in this interpreter's one."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] \
        if nproc > 1 else [sys.executable]
    return [*launcher, str(WORKER), "--latents", str(latents), "--config", str(job), *options]


def worker_env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ENGINE), PYTHONUNBUFFERED="1")


def sample_run(job: Path, latents: Path, nproc: int, *options: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(sample_command(job, latents, nproc, *options), env=worker_env(), capture_output=True,
                          text=True, timeout=timeout)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def make_job(root: Path, model: Path, prompts: list[dict], steps: int = 4) -> Path:
    out = root / "samples"
    return write_job(out, job_dict(out, model, copy.deepcopy(prompts), sampler={"steps": steps, "solver": "unipc"}))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, tiny_diffusers):
    root = tmp_path_factory.mktemp("one")
    result = sample_run(make_job(root, tiny_diffusers, PROMPTS), root / "latents", 1)
    assert result.returncode == 0, result.stderr[-3000:]
    return {item["id"]: torch.load(root / "latents" / f"{item['id']}.pt") for item in PROMPTS}


@pytest.mark.parametrize("layout,options", [("ulysses", ["--ulysses", "2"]), ("data_parallel", []),
                                            ("fsdp", ["--fsdp"])])
def test_two_processes_give_the_one_process_latents(tmp_path, tiny_diffusers, one_process, layout, options):
    result = sample_run(make_job(tmp_path, tiny_diffusers, PROMPTS), tmp_path / "latents", 2, *options)
    assert result.returncode == 0, result.stderr[-3000:]
    for item in PROMPTS:
        ours = torch.load(tmp_path / "latents" / f"{item['id']}.pt")
        reference = one_process[item["id"]]
        assert ours.shape == reference.shape == (1, 16, 2, 6, 8)
        assert torch.allclose(ours, reference, atol=1e-6, rtol=0), (layout, (ours - reference).abs().max())
    # one gallery: every video and sidecar in the one folder, one event each, in job order, from rank 0
    events = read_events(tmp_path / "samples" / "sample-events.jsonl")
    videos = [e for e in events if e["event"] == "sample_video"]
    assert [e["id"] for e in videos] == ["v1", "v2", "v3"] and not any(e["existing"] for e in videos)
    plan = next(e for e in events if e["event"] == "sample_plan")
    assert (plan["world_size"], plan["ulysses_degree"]) == (2, 2 if layout == "ulysses" else 1)
    finished = events[-1]
    assert finished["status"] == "completed" and finished["summary"]["videos_new"] == 3
    for item in PROMPTS:
        sidecar = json.loads((tmp_path / "samples" / "videos" / f"{item['id']}.json").read_text())
        assert sidecar["seed"] == item["seed"]
    # and the comparison can fail: the videos differ from one another
    assert (one_process["v1"] - one_process["v2"]).abs().max() > 0.1


def test_videos_are_dealt_round_robin_to_the_data_parallel_groups():
    todo = ["a", "b", "c", "d", "e"]
    assert videos_of_group(todo, Layout(world_size=4, rank=0, ulysses=2)) == ["a", "c", "e"]
    assert videos_of_group(todo, Layout(world_size=4, rank=3, ulysses=2)) == ["b", "d", None]
    assert videos_of_group(todo, Layout()) == todo


def test_a_killed_two_process_run_continues_where_it_stopped(tmp_path, tiny_diffusers, one_process):
    """SIGKILL to torchrun and its ranks after the first videos are written; the same command again makes only
    the rest (the finished ones are checked against their sidecars and kept), and they equal the one-process run."""
    prompts = PROMPTS + [dict(PROMPTS[0], id="v4", seed=8), dict(PROMPTS[1], id="v5", seed=9)]
    job = make_job(tmp_path, tiny_diffusers, prompts)
    videos = tmp_path / "samples" / "videos"
    process = subprocess.Popen(sample_command(job, tmp_path / "first", 2), env=worker_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(videos.glob("*.json"))) < 2 and process.poll() is None:
        time.sleep(0.2)
    ranks = children(process.pid)  # torchrun starts each rank in a session of its own
    for pid in [process.pid, *ranks]:  # torchrun and both ranks, at once, mid-run
        os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)
    for pid in ranks:
        while Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text():
            time.sleep(0.05)
    done = sorted(p.stem for p in videos.glob("*.json"))
    assert 2 <= len(done) < 5, done
    # a video cut short: its MP4 no longer has the size its sidecar recorded, so it is made again
    cut = videos / f"{done[0]}.mp4"
    cut.write_bytes(cut.read_bytes()[:100])

    result = sample_run(job, tmp_path / "second", 2)
    assert result.returncode == 0, result.stderr[-3000:]
    events = read_events(tmp_path / "samples" / "sample-events.jsonl")
    last_start = max(i for i, e in enumerate(events) if e["event"] == "run_started")
    rerun = events[last_start:]
    plan = next(e for e in rerun if e["event"] == "sample_plan")
    assert plan["videos_existing"] == len(done) - 1
    made = sorted(e["id"] for e in rerun if e["event"] == "sample_video" and not e["existing"])
    assert made == sorted({p["id"] for p in prompts} - set(done[1:]))
    assert sorted(p.stem for p in videos.glob("*.mp4")) == [p["id"] for p in prompts]
    for name in ("v1", "v2", "v3"):
        if name in made:
            assert torch.allclose(torch.load(tmp_path / "second" / f"{name}.pt"), one_process[name], atol=1e-6, rtol=0)


@pytest.mark.parametrize("layout,options", [("data_parallel", []), ("ulysses", ["--ulysses", "2"])])
def test_sigterm_to_a_two_process_run_ends_it_interrupted_on_every_rank(tmp_path, tiny_diffusers, layout, options):
    """A scheduler's preemption: SIGTERM to torchrun, which passes it on to both ranks, while the third video is
    made. Data-parallel: rank 0 makes it while rank 1, with no video left, waits for it in the round's gather;
    Ulysses: both ranks make it, exchanging tokens each step. Rank 0 stops at once, which fails the collective
    rank 1 is in; that is the same stop, not a failure: the events end `interrupted` with no `error`, no rank
    reports the broken collective, and the same command again makes only the third video."""
    job = make_job(tmp_path, tiny_diffusers, PROMPTS, steps=400)
    events_file = tmp_path / "samples" / "sample-events.jsonl"
    stderr = tmp_path / "stderr.txt"
    process = subprocess.Popen(sample_command(job, tmp_path / "first", 2, *options), env=worker_env(),
                               stdout=subprocess.DEVNULL, stderr=open(stderr, "w"))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None and not (events_file.is_file() and any(
            e["event"] == "sample_step" and e["video"] == 3 and e["step"] >= 2 for e in read_events(events_file))):
        time.sleep(0.05)
    assert process.poll() is None, stderr.read_text()[-3000:]
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    log = stderr.read_text()
    events = read_events(events_file)
    assert [e for e in events if e["event"] == "error"] == [], log[-3000:]
    assert (events[-1]["event"], events[-1]["status"]) == ("run_finished", "interrupted"), log[-3000:]
    assert [e["id"] for e in events if e["event"] == "sample_video"] == ["v1", "v2"]
    for broken in ("Connection closed by peer", "Connection reset by peer", "RuntimeError", "internal"):
        assert broken not in log, log[-3000:]
    assert log.count("interrupted: finished videos are kept") == 1, log[-3000:]

    again = sample_run(job, tmp_path / "second", 2, *options)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = read_events(events_file)
    rerun = rerun[max(i for i, e in enumerate(rerun) if e["event"] == "run_started"):]
    assert [(e["id"], e["existing"]) for e in rerun if e["event"] == "sample_video"] == [
        ("v1", True), ("v2", True), ("v3", False)]
    assert rerun[-1]["status"] == "completed"


WANLORA = ENGINE.parent / ".build" / "debug" / "wanlora"


@pytest.mark.skipif(not WANLORA.is_file(), reason="the Swift CLI is not built (swift build; make test builds it first)")
def test_wanlora_sample_starts_torchrun_with_two_ranks(tiny_diffusers, tmp_path):
    """The whole chain: `wanlora sample --gpus 2 --ulysses 2` (Swift: TOML -> sample-job.json -> torchrun) ->
    2 engine processes (gloo) -> one gallery."""
    (tmp_path / "model").symlink_to(tiny_diffusers)
    (tmp_path / "wanlora.toml").write_text((ENGINE.parent / "configs" / "demo.toml").read_text())
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ENGINE))
    env.pop("WANLORA_ENGINE_PYTHON", None)
    result = subprocess.run([str(WANLORA), "sample", "--config", "wanlora.toml", "--engine-python", sys.executable,
                             "--prompt", "한옥 마을", "--prompt", "등불 축제", "--prompt", "바다", "--out", "s",
                             "--device", "cpu", "--steps", "2", "--resolution", "64x48", "--frames", "5",
                             "--gpus", "2", "--ulysses", "2", "--quiet"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    events = read_events(tmp_path / "s" / "sample-events.jsonl")
    assert (events[0]["world_size"], events[0]["ulysses_degree"]) == (2, 2)
    assert [e["id"] for e in events if e["event"] == "sample_video"] == ["0001", "0002", "0003"]
    assert sorted(p.name for p in (tmp_path / "s" / "videos").glob("*.mp4")) == ["0001.mp4", "0002.mp4", "0003.mp4"]
    assert (tmp_path / "s" / "index.html").is_file()
