"""Manifests cannot lie: every edit of the issue is refused with one line naming the file;
`generate` repairs missing or corrupt shards; limits and the root lock."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from test_cli import assert_one_line_error, physground

from physground.errors import DataIntegrityError, ValidationError
from physground.provenance import file_sha256
from physground.storage import MANIFEST, Dataset, DatasetSpec, generate_dataset

CONFIG = {"num_frames": 8, "render": False}


@pytest.fixture
def dataset(tmp_path) -> Dataset:
    spec = DatasetSpec(scenario="rigid/projectile", split="test_id", count=6, seed=3,
                       shard_size=2, config=CONFIG)
    return generate_dataset(spec, tmp_path, out=tmp_path / "ds", progress=False)


def _edit(dataset: Dataset, change) -> None:
    file = dataset.path / MANIFEST
    manifest = json.loads(file.read_text())
    manifest = change(manifest)
    file.write_text(json.dumps(manifest))


def _count_halved(m):
    m["count"] = 4
    m["shards"] = m["shards"][:2]
    m["stored"] = 4
    return m


def _shard_removed(m):
    m["shards"] = m["shards"][:-1]
    return m


def _without_sha(m):
    del m["shards"][0]["sha256"]
    return m


def _shards_null(m):
    m["shards"] = None
    return m


EDITS = {"count 6 -> 4": _count_halved, "shard and entry removed": _shard_removed,
         "[]": lambda m: [], "missing sha256": _without_sha, "shards null": _shards_null,
         "seeds of shard 1 listed twice": lambda m: {**m, "shards": [m["shards"][0],
                                                                     m["shards"][0],
                                                                     m["shards"][2]]}}


@pytest.mark.parametrize("edit", EDITS)
def test_each_manifest_edit_is_refused_with_one_line(dataset, edit):
    if edit == "shard and entry removed":
        (dataset.path / "shard-00002.h5").unlink()
    _edit(dataset, EDITS[edit])
    with pytest.raises(DataIntegrityError) as err:
        list(Dataset(dataset.path))
    message = str(err.value)
    assert "\n" not in message and str(dataset.path / MANIFEST) in message, message


def test_shard_replaced_by_a_copy_of_another_is_refused(dataset):
    """Copy shard 0 over shard 1 and update its sha256: the shard's own seeds give it away."""
    shutil.copy(dataset.path / "shard-00000.h5", dataset.path / "shard-00001.h5")
    _edit(dataset, lambda m: {**m, "shards": [
        {**s, "sha256": file_sha256(dataset.path / s["file"])} for s in m["shards"]]})
    with pytest.raises(DataIntegrityError, match="seeds") as err:
        list(Dataset(dataset.path))
    assert str(dataset.path / "shard-00001.h5") in str(err.value)


def test_shard_from_another_dataset_is_refused(tmp_path, dataset):
    other = generate_dataset(DatasetSpec(scenario="rigid/projectile", split="test_id",
                                         count=6, seed=3, shard_size=2,
                                         config={**CONFIG, "num_frames": 9}),
                             tmp_path, out=tmp_path / "other", progress=False)
    shutil.copy(other.path / "shard-00000.h5", dataset.path / "shard-00000.h5")
    _edit(dataset, lambda m: {**m, "shards": [
        {**s, "sha256": file_sha256(dataset.path / s["file"])} for s in m["shards"]]})
    with pytest.raises(DataIntegrityError, match="another dataset"):
        list(Dataset(dataset.path))


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_generate_repairs_exactly_the_damaged_shard(tmp_path, damage):
    args = ["generate", "rigid/projectile", "--count", "6", "--shard-size", "2",
            "--config", "num_frames=8", "--config", "render=false", "--root", str(tmp_path),
            "--out", str(tmp_path / "ds"), "-q"]
    assert physground(*args).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "ds").glob("shard-*.h5")}
    victim = tmp_path / "ds" / "shard-00001.h5"
    if damage == "delete":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(DataIntegrityError, match="shard-00001.h5"):
        list(Dataset(tmp_path / "ds"))
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ds").glob("shard-*.h5")}
    result = physground(*args)
    assert result.returncode == 0, result.stderr
    assert "re-simulated shard-00001.h5" in result.stdout
    after = {p.name: p.read_bytes() for p in (tmp_path / "ds").glob("shard-*.h5")}
    assert after == before  # rebuilt bytes identical to the original
    for name in ("shard-00000.h5", "shard-00002.h5"):  # the intact ones untouched
        assert (tmp_path / "ds" / name).stat().st_mtime_ns == mtimes[name]
    assert len(Dataset(tmp_path / "ds").rollouts()) == 6


def test_huge_count_is_refused_within_two_seconds(tmp_path):
    start = time.perf_counter()
    result = physground("generate", "rigid/projectile", "--count", "1000000000",
                        "--root", str(tmp_path))
    assert_one_line_error(result, "count", "1000000000", "PHYSGROUND_MAX_COUNT")
    assert time.perf_counter() - start < 10  # interpreter start-up included; see below
    start = time.perf_counter()
    with pytest.raises(ValidationError, match="exceeds the maximum"):
        DatasetSpec(scenario="rigid/projectile", split="train", count=10**9)
    with pytest.raises(ValidationError, match="exceeds the maximum"):
        DatasetSpec(scenario="rigid/projectile", split="train", count=8,
                    config={"image_size": 10**6})
    assert time.perf_counter() - start < 2


def test_limits_are_overridable(monkeypatch):
    monkeypatch.setenv("PHYSGROUND_MAX_COUNT", "5")
    with pytest.raises(ValidationError, match="maximum 5"):
        DatasetSpec(scenario="rigid/projectile", split="train", count=6)


def test_suite_values_out_of_range_are_refused(tmp_path):
    for body, fragment in [
        ('[[scenario]]\nname = "rigid/projectile"\nrollouts = 1000000000\n', "rollouts"),
        ('[[scenario]]\nname = "rigid/projectile"\n[[training]]\nmodel = "state-gnn"\n'
         'steps = -5\n', "steps"),
    ]:
        suite = tmp_path / "s.toml"
        suite.write_text('name = "s"\nmodels = ["state-gnn"]\n' + body)
        result = physground("run", "--suite", str(suite), "--root", str(tmp_path / "r"))
        assert_one_line_error(result, fragment)


def test_second_process_on_a_locked_root_names_the_holder(tmp_path):
    from physground.lock import root_lock

    with root_lock(tmp_path):
        result = physground("generate", "rigid/projectile", "--count", "2", "--root",
                            str(tmp_path), "-q")
    import os

    assert_one_line_error(result, f"in use by physground process {os.getpid()}")


def test_stale_temporaries_are_removed_at_start(tmp_path):
    from physground.lock import root_lock

    stale = tmp_path / "data" / "x" / ".shard-00000.h5.abc123.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"partial")
    keep = tmp_path / "data" / "x" / "shard-00000.h5"
    keep.write_bytes(b"kept")
    with root_lock(tmp_path) as removed:
        assert removed == [stale]
    assert not stale.exists() and keep.exists()
