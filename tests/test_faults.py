"""Fault injection: a run killed anywhere (mid-shard, mid-checkpoint, mid-training, between
evaluations, before the results table) and rerun gives a results table byte-identical to an
uninterrupted run; killing the main process alone leaves no worker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SUITE = """name = "faults"
seed = 0
models = ["copy-last", "constant-velocity"]
metrics = "auto"
[defaults]
rollouts = 4
train_rollouts = 6
context = 3
horizon = 5
splits = ["test_id", "test_ood"]
[[scenario]]
name = "rigid/projectile"
models = ["state-gnn"]
config = {{ num_frames = 10, render = false }}
[[training]]
model = "state-gnn"
steps = {steps}
options = {{ batch_size = 4, checkpoint_every = 10, model_config = {{ hidden = 16, layers = 1 }} }}
"""

KILL_POINTS = ["generate.shard@2", "checkpoint.publish@2", "train.step@2",
               "evaluate.stored@2", "results.write"]


def _evaluate(root: Path, suite: Path, *, failpoint: str | None = None,
              executor: str = "sequential") -> subprocess.CompletedProcess:
    env = {**os.environ, "PHYSGROUND_FAILPOINT": failpoint or ""}
    return subprocess.run(
        [sys.executable, "-m", "physground.cli", "evaluate", "--suite", str(suite),
         "--root", str(root), "--executor", executor, "-q"],
        capture_output=True, text=True, env=env, timeout=600)


def _results(root: Path) -> bytes:
    (csv,) = root.glob("runs/*/results.csv")
    return csv.read_bytes()


@pytest.mark.slow
def test_killed_runs_resume_to_the_uninterrupted_table(tmp_path):
    suite = tmp_path / "faults.toml"
    suite.write_text(SUITE.format(steps=30))
    clean = _evaluate(tmp_path / "clean", suite)
    assert clean.returncode == 0, clean.stderr
    expected = _results(tmp_path / "clean")
    for point in KILL_POINTS:
        root = tmp_path / point.replace("@", "-")
        killed = _evaluate(root, suite, failpoint=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr)
        assert not list(root.glob("runs/*/results.csv")) or point == "results.write"
        rerun = _evaluate(root, suite)
        assert rerun.returncode == 0, (point, rerun.stderr)
        assert _results(root) == expected, point
        left = [p for p in root.rglob(".*") if p.name.endswith((".tmp", ".old"))]
        assert not left, (point, left)
        logs = list(root.glob("runs/*/checkpoints/**/log.jsonl"))
        for log in logs:  # no duplicated training log lines after the resume
            steps = [line.split('"step": ')[1].split(",")[0]
                     for line in log.read_text().splitlines()]
            assert len(steps) == len(set(steps)), (point, log)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_do_not_outlive_the_main_process(tmp_path, sig):
    """kill -9 (or kill) of the main PID alone: every pool worker is gone within 5 s; with
    SIGTERM the main process says what is kept and exits 143."""
    suite = tmp_path / "faults.toml"
    big = SUITE.format(steps=100000).replace("rollouts = 4", "rollouts = 400").replace(
        "num_frames = 10, render = false", "num_frames = 40, render = true")
    suite.write_text(big)
    proc = subprocess.Popen(
        [sys.executable, "-m", "physground.cli", "evaluate", "--suite", str(suite), "--root",
         str(tmp_path / "root"), "--executor", "local", "--workers", "2", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = [c for c in _children(proc.pid) if "spawn_main" in
                   Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]
    assert len(workers) >= 2 and proc.poll() is None, "the pool never started"
    time.sleep(2)  # workers busy generating
    os.kill(proc.pid, sig)
    _, stderr = proc.communicate(timeout=60)
    killed_at = time.monotonic()
    while any(_alive(w) for w in workers) and time.monotonic() - killed_at < 5:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), [w for w in workers if _alive(w)]
    if sig == signal.SIGTERM:
        assert proc.returncode == 143, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and "rerun the same command to resume" in lines[0], stderr
