"""Simulator blow-ups (energy explosion, NaN / MuJoCo reset) are detected and never stored."""

import dataclasses

import numpy as np
import pytest

from physground.errors import SimulationError
from physground.scenario import get_scenario
from physground.storage import Dataset, DatasetSpec, generate_dataset, read_manifest


def test_energy_explosion_from_a_huge_timestep_is_rejected_and_not_written(tmp_path):
    # One RK4 step per 1/30 s frame on a contact spring of sqrt(k) = 141 rad/s: w h = 4.7,
    # far outside RK4's stability region, so every bounce pumps energy in.
    spec = DatasetSpec(scenario="rigid/bounce", split="test_ood", count=3, shard_size=3,
                       config={"substeps": 1, "render": False, "num_frames": 30})
    dataset = generate_dataset(spec, tmp_path, progress=False)
    manifest = read_manifest(dataset.path)
    assert manifest["stored"] == 0 and manifest["rejected"] == 3
    reasons = [r["reason"] for s in manifest["shards"] for r in s["rejected"]]
    assert all("energy explosion" in reason for reason in reasons)
    assert len(Dataset(dataset.path)) == 0 and dataset.rollouts() == []


def test_diverged_simulation_is_rejected_and_not_written(tmp_path):
    # A double pendulum stepped at 0.5 s diverges; MuJoCo resets it, the clock check sees it.
    spec = DatasetSpec(scenario="rigid/double_pendulum", split="train", count=2, shard_size=2,
                       config={"substeps": 1, "dt": 0.5, "render": False, "num_frames": 20})
    dataset = generate_dataset(spec, tmp_path, progress=False)
    manifest = read_manifest(dataset.path)
    assert manifest["stored"] == 0 and manifest["rejected"] == 2
    reasons = [r["reason"] for s in manifest["shards"] for r in s["rejected"]]
    assert all("diverged" in reason for reason in reasons)


def test_stable_rollouts_are_kept_beside_rejected_ones(tmp_path):
    spec = DatasetSpec(scenario="rigid/projectile", split="test_ood", count=4, shard_size=4,
                       config={"substeps": 10, "render": False, "num_frames": 30})
    manifest = read_manifest(generate_dataset(spec, tmp_path, progress=False).path)
    # measured: 2 of these 4 bounce unstably at 10 substeps (RK4 at w h = 2.4 on the
    # 5e5 / s^2 contact spring), 2 stay within tolerance
    assert manifest["stored"] + manifest["rejected"] == 4
    assert manifest["stored"] >= 1 and manifest["rejected"] >= 1


def test_check_flags_energy_rise_only_where_the_laws_forbid_it():
    scenario = get_scenario("rigid/pendulum", render=False, num_frames=10)
    (rollout,) = scenario.generate([scenario.sample_params("train", 0)], [0], "train")
    assert scenario.check(rollout) is None
    energy = np.asarray(rollout.meta["energy"])
    pumped = dataclasses.replace(rollout, meta={**rollout.meta,
                                                "energy": list(energy + np.linspace(0, 5, 10))})
    assert "energy explosion" in scenario.check(pumped)
    nan = dataclasses.replace(rollout, meta={**rollout.meta, "energy": [np.nan] * 10})
    assert "NaN" in scenario.check(nan)


def test_simulate_raises_for_a_diverged_batch():
    scenario = get_scenario("rigid/double_pendulum", render=False, num_frames=20, dt=0.5,
                            substeps=1)
    with pytest.raises(SimulationError, match="diverged"):
        scenario.simulate([scenario.sample_params("train", 0)], [0], "train")
