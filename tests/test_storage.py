import json

import h5py
import numpy as np
import pytest

from physground.errors import DataIntegrityError, ValidationError
from physground.provenance import file_sha256
from physground.storage import Dataset, DatasetSpec, generate_dataset

CONFIG = {"num_frames": 12, "render": False}


def spec(**kw):
    base = dict(scenario="rigid/projectile", split="test_id", count=6, seed=3, shard_size=2,
                config=CONFIG)
    base.update(kw)
    return DatasetSpec(**base)


def test_same_seed_gives_byte_identical_shards(tmp_path):
    a = generate_dataset(spec(), tmp_path / "a", progress=False)
    b = generate_dataset(spec(), tmp_path / "b", progress=False)
    shards = [s["file"] for s in a.manifest["shards"]]
    assert len(shards) == 3
    for name in shards:
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes()
    first_a, first_b = next(iter(a)), next(iter(b))
    np.testing.assert_array_equal(first_a.states["pos"], first_b.states["pos"])


def test_different_seed_gives_different_data(tmp_path):
    a = next(iter(generate_dataset(spec(), tmp_path, progress=False)))
    b = next(iter(generate_dataset(spec(seed=4), tmp_path, progress=False)))
    assert a.params != b.params


def test_interrupted_generation_resumes_without_redoing_shards(tmp_path, monkeypatch):
    import physground.storage as storage

    calls = []
    real = storage._simulate_checked

    def dying(scenario, params, seeds, split):
        calls.append(list(seeds))
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while simulating the second shard
        return real(scenario, params, seeds, split)

    monkeypatch.setattr(storage, "_simulate_checked", dying)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(spec(), tmp_path, progress=False)
    partial = next(tmp_path.rglob("manifest.json")).parent
    manifest = json.loads((partial / "manifest.json").read_text())
    assert not manifest["complete"] and len(manifest["shards"]) == 1
    with pytest.raises(DataIntegrityError, match="incomplete"):
        Dataset(partial)
    first_shard = partial / "shard-00000.h5"
    stat_before = first_shard.stat()
    assert not list(partial.glob("*.tmp"))  # nothing half-written

    calls.clear()
    monkeypatch.setattr(storage, "_simulate_checked", lambda *a: calls.append(a[2]) or real(*a))
    done = generate_dataset(spec(), tmp_path, progress=False)
    assert len(calls) == 2  # only the two missing shards were simulated
    assert first_shard.stat().st_mtime_ns == stat_before.st_mtime_ns
    assert len(done) == 6
    reference = generate_dataset(spec(), tmp_path / "fresh", progress=False)
    for s_done, s_ref in zip(done.manifest["shards"], reference.manifest["shards"], strict=True):
        assert s_done["sha256"] == s_ref["sha256"]


def test_flipped_byte_is_refused_naming_the_shard(tmp_path):
    ds = generate_dataset(spec(), tmp_path, progress=False)
    shard = ds.path / "shard-00001.h5"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataIntegrityError, match=r"shard-00001\.h5 fails its sha256 check"):
        list(Dataset(ds.path))


def test_truncated_shard_is_refused(tmp_path):
    ds = generate_dataset(spec(), tmp_path, progress=False)
    shard = ds.path / "shard-00002.h5"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(DataIntegrityError, match=r"shard-00002\.h5"):
        Dataset(ds.path).verify()


def test_manifest_records_versions_and_hashes(tmp_path):
    ds = generate_dataset(spec(), tmp_path, progress=False)
    m = ds.manifest
    assert m["versions"]["mujoco"] and len(m["config_hash"]) == 64
    for s in m["shards"]:
        assert file_sha256(ds.path / s["file"]) == s["sha256"]
    rollout = next(iter(ds))
    assert rollout.meta["content_hash"] and rollout.meta["scenario_config"]["num_frames"] == 12
    with h5py.File(ds.path / "shard-00000.h5") as fh:
        assert len(fh) == 2


def test_blown_up_rollouts_are_rejected_not_stored(tmp_path, monkeypatch):
    from physground.simulators.mujoco.projectile import ScenarioProjectile

    real = ScenarioProjectile.simulate

    def nan_for_odd_seeds(self, params, seeds, split):
        out = real(self, params, seeds, split)
        for r in out:
            if r.seed % 2:
                r.states["pos"][5:] = np.nan
        return out

    monkeypatch.setattr(ScenarioProjectile, "simulate", nan_for_odd_seeds)
    ds = generate_dataset(spec(), tmp_path, progress=False)
    rejected = [r for s in ds.manifest["shards"] for r in s["rejected"]]
    assert rejected and all("NaN or Inf" in r["reason"] for r in rejected)
    assert all(r.seed % 2 == 0 and np.isfinite(r.states["pos"]).all() for r in ds)
    assert len(ds) + len(rejected) == 6


def test_fixed_param_outside_physical_range_is_rejected(tmp_path):
    with pytest.raises(ValidationError, match="'restitution' = 1.5 1 is outside"):
        generate_dataset(spec(fixed_params={"restitution": 1.5}), tmp_path, progress=False)
