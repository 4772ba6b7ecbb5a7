"""The learned-vs-simulator rollout speed benchmark runs and prints its columns (no timing
assertion: targets are read from its output, measured side by side)."""

from __future__ import annotations


def test_rollout_speed_benchmark_runs_at_tiny_size(capsys) -> None:
    from physground.benchmarks.speed import bench_rollout

    bench_rollout.main(["--batch", "2", "--horizon", "3", "--repeats", "1", "--train-steps",
                        "1", "--scenario", "rigid/projectile", "--no-compile"])
    out = capsys.readouterr().out
    assert "rigid/projectile" in out and "learned RMSE" in out and "cloth" not in out
    row = out.splitlines()[1].split()
    assert row[:2] == ["rigid/projectile", "2"] and row[5] == "nan"  # compiled: not timed
