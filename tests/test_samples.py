"""Stochastic models: N samples per rollout (suite key ``samples``), scored per sample
and reported as mean and standard deviation over samples."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch

from physground.benchmarks.executors import run_sequential
from physground.benchmarks.runner import run_suite
from physground.errors import ValidationError
from physground.metrics.scores import normalized_scores
from physground.rollout import Prediction
from physground.suite import parse_suite
from physground.world_model import MODELS


class NoisyConstantVelocity:
    """Constant velocity plus torch-seeded noise of 5 cm: a stochastic test model."""

    name: ClassVar[str] = "test-noisy"
    modalities: ClassVar[frozenset] = frozenset({"state"})

    def predict(self, context, horizon):
        base = MODELS.get("constant-velocity")().predict(context, horizon)
        states = dict(base.states)
        noise = torch.randn(np.shape(states["pos"]), dtype=torch.float64).numpy()
        states["pos"] = states["pos"] + 0.05 * noise
        return Prediction.for_observation(context, model=self.name, horizon=horizon,
                                          states=states)


@pytest.fixture(scope="module", autouse=True)
def noisy_model():
    if "test-noisy" not in MODELS:
        MODELS.register("test-noisy", NoisyConstantVelocity)


def suite(samples: int):
    return parse_suite({
        "name": "samples", "models": ["copy-last", "test-noisy"], "samples": samples,
        "metrics": ["position_rmse"],
        "defaults": {"rollouts": 3, "context": 4, "horizon": 5, "splits": ["test_id"]},
        "scenario": [{"name": "rigid/projectile",
                      "config": {"num_frames": 10, "render": False}}],
    }, "samples.toml")


def test_each_sample_is_scored_and_the_spread_reported(tmp_path):
    run = run_suite(suite(3), root=tmp_path, executor=run_sequential, progress=False,
                    report=False)
    results = pd.read_parquet(run / "results.parquet")
    noisy = results[results["model"] == "test-noisy"]
    assert (noisy["failure"].fillna("") == "").all(), noisy["failure"].unique()
    assert sorted(noisy["sample"].unique()) == [0, 1, 2]
    assert (results[results["model"] == "truth"]["sample"] == 0).all()
    per_sample = noisy.groupby("sample")["value"].mean()
    assert per_sample.nunique() == 3  # differently seeded samples differ
    table = normalized_scores(results).set_index("model")
    row = table.loc["test-noisy"]
    assert row["samples"] == 3 and np.isfinite(row["score_std"])
    assert table.loc["copy-last", "score_std"] == 0.0  # deterministic: equal samples
    assert np.isnan(table.loc["truth", "score_std"])  # anchors: one sample


def test_samples_must_be_positive():
    with pytest.raises(ValidationError, match="samples: expected >= 1, got 0"):
        suite(0)
