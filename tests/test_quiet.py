"""Quiet output: one CUDA-absent notice per run at most, compact reprs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import multiprocessing as mp

    def work(_):
        from physground.simulators.warp.common import start_warp
        start_warp()
        return 1

    if __name__ == "__main__":
        from physground.device import resolve_device
        resolve_device("auto")
        with mp.get_context("spawn").Pool(2) as pool:
            print(sum(pool.map(work, range(4))))
""")


def test_one_cuda_notice_per_run_however_many_workers_start_warp(tmp_path):
    import torch

    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"
    assert "Warp CUDA warning" not in result.stderr
    notices = [line for line in result.stderr.splitlines() if "CUDA" in line]
    assert len(notices) == (0 if torch.cuda.is_available() else 1), result.stderr


def test_rollout_and_prediction_reprs_are_one_short_line():
    import numpy as np

    from physground.rollout import Prediction, Rollout

    pos = np.random.default_rng(0).normal(size=(500, 20, 3))
    truth = Rollout(scenario="rigid/projectile", split="test_id", seed=3,
                    params={"gravity": 9.81}, dt=0.02, states={"pos": pos},
                    static={"mass": np.ones(20), "ground_height": 0.0})
    text = repr(truth)
    assert "\n" not in text and len(text) < 250, text
    assert "pos[500,20,3] float64" in text and "gravity=9.81" in text
    assert "ground_height=0" in text and str(pos[0, 0, 0])[:6] not in text
    pred = Prediction.for_rollout(truth, model="m", context=4, horizon=6,
                                  states={"pos": pos[4:10]}, failure="NaN at step 2")
    text = repr(pred)
    assert "model='m'" in text and "pos[6,20,3]" in text and "failure='NaN at step 2'" in text
