"""Datasets other tools read: float32 with units, the dataset card, The Well and HF copies.

The Well copy is read back with plain h5py against The Well's documented layout
(docs/data_format.md of PolymathicAI/the_well), the HF copy with `datasets.load_from_disk`;
both must give back exactly the values physground's own reader returns.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from physground.cli import app
from physground.exports import STAGGERED_STATES
from physground.storage import Dataset, DatasetSpec, generate_dataset

ROOT_ATTRS = {"dataset_name", "grid_type", "n_spatial_dims", "n_trajectories",
              "simulation_parameters"}
GROUPS = {"dimensions", "boundary_conditions", "scalars", "t0_fields", "t1_fields", "t2_fields"}


@pytest.fixture(scope="module")
def datasets_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
    root = tmp_path_factory.mktemp("data")
    specs = {
        # 5 or 6 spheres: entity counts differ between rollouts
        "rigid/collision": {"num_frames": 8, "image_size": 16},
        "fluid/smoke": {"num_frames": 5, "image_size": 16},
    }
    return {name: generate_dataset(DatasetSpec(scenario=name, split="test_ood", count=4,
                                               config=cfg), root, progress=False)
            for name, cfg in specs.items()}


def test_shards_store_float32_with_units(datasets_dir: dict[str, Dataset]) -> None:
    dataset = datasets_dir["rigid/collision"]
    shard = dataset.path / dataset.manifest["shards"][0]["file"]
    with h5py.File(shard) as fh:
        group = fh[sorted(fh)[0]]
        assert group["states/pos"].dtype == np.float32
        assert group["states/pos"].attrs["units"] == "m"
        assert group["states/vel"].attrs["units"] == "m s-1"
        assert group["static/mass"].attrs["units"] == "kg"
        assert group["frames"].dtype == np.uint8


def test_dataset_card(datasets_dir: dict[str, Dataset]) -> None:
    dataset = datasets_dir["rigid/collision"]
    card = (dataset.path / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0")
    assert "`rigid/collision`, split `test_ood`" in card
    assert "| num_spheres | 1 | [2, 6] | {2, 3, 4} | {2, 3, 4} | {5, 6} |" in card
    assert "| states/pos | [8," in card and "| float32 | m |" in card
    assert f"config hash: `{dataset.manifest['config_hash']}`" in card
    assert "@software{physground" in card
    assert "test_ood*" in card  # the split this dataset was drawn from


@pytest.mark.parametrize("scenario", ["rigid/collision", "fluid/smoke"])
def test_the_well_round_trip(datasets_dir: dict[str, Dataset], tmp_path: Path,
                             scenario: str) -> None:
    dataset = datasets_dir[scenario]
    result = CliRunner().invoke(app, ["export", str(dataset.path), "--format", "the-well",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = list(tmp_path.glob("*/data/test_ood/*.hdf5"))
    assert len(files) == 1
    rollouts = dataset.rollouts()
    with h5py.File(files[0]) as fh:
        assert set(fh.attrs) >= ROOT_ATTRS and set(fh) >= GROUPS
        n, spatial = int(fh.attrs["n_trajectories"]), list(fh["dimensions"].attrs["spatial_dims"])
        assert n == len(rollouts) and int(fh.attrs["n_spatial_dims"]) == len(spatial)
        steps = fh["dimensions/time"][()]
        assert steps.dtype == np.float32
        np.testing.assert_allclose(np.diff(steps), rollouts[0].dt, rtol=1e-6)
        sizes = [len(fh["dimensions"][name]) for name in spatial]
        for order in (0, 1, 2):
            group = fh[f"t{order}_fields"]
            assert set(group.attrs["field_names"]) == set(group)
            for field in group.values():
                assert field.dtype == np.float32
                assert list(field.shape[:2 + len(spatial)]) == [n, len(steps), *sizes]
                assert field.ndim == 2 + len(spatial) + order
                assert bool(field.attrs["sample_varying"]) and bool(field.attrs["time_varying"])
        fields = {name: fh[f"t{o}_fields"][name][()] for o in (0, 1, 2)
                  for name in fh[f"t{o}_fields"]}
        assert set(fields) == set(rollouts[0].states) - STAGGERED_STATES
        counts = (fh["scalars/entity_count"][()] if "entity_count" in fh["scalars"]
                  else [None] * n)
        for i, rollout in enumerate(rollouts):
            for name, value in rollout.states.items():
                if name in STAGGERED_STATES:
                    continue
                stored = fields[name][i]
                if counts[i] is not None:
                    assert np.isnan(stored[:, counts[i]:]).all()  # padding is NaN
                    stored = stored[:, :counts[i]]
                np.testing.assert_array_equal(stored, value)
            for name, value in rollout.params.items():
                assert fh["scalars"][name][i] == np.float32(value)
            for name, value in rollout.static.items():
                if f"static.{name}" in fh["scalars"]:
                    assert fh["scalars"][f"static.{name}"][i] == value
                else:
                    shape = json.loads(fh["static"][name].attrs["shapes"])[i]
                    stored = fh["static"][name][i][tuple(slice(0, s) for s in shape)]
                    np.testing.assert_array_equal(stored, value)
    if scenario == "rigid/collision":
        assert len(set(counts)) > 1, "the fixture should have varying body counts"


def test_hf_round_trip(datasets_dir: dict[str, Dataset], tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")  # a dev dependency: present in CI
    dataset = datasets_dir["rigid/collision"]
    result = CliRunner().invoke(app, ["export", str(dataset.path), "--format", "hf",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    loaded = datasets.load_from_disk(str(tmp_path / "rigid_collision" / "test_ood"))
    loaded = loaded.with_format("numpy")
    rollouts = dataset.rollouts()
    assert len(loaded) == len(rollouts)
    for row, rollout in zip(loaded, rollouts, strict=True):
        assert row["seed"] == rollout.seed and row["scenario"] == "rigid/collision"
        for name, value in rollout.states.items():
            np.testing.assert_array_equal(row[f"state.{name}"], value)
            assert row[f"state.{name}"].dtype == np.float32
        for name, value in rollout.params.items():
            assert row[f"param.{name}"] == value
        np.testing.assert_array_equal(row["frames"], rollout.frames)
        np.testing.assert_array_equal(row["masks"], rollout.masks)


def test_export_refuses_unknown_format(datasets_dir: dict[str, Dataset], tmp_path: Path) -> None:
    from physground.errors import ValidationError
    from physground.exports import export_dataset

    with pytest.raises(ValidationError, match="--format is 'netcdf', expected one of"):
        export_dataset(datasets_dir["fluid/smoke"].path, tmp_path, "netcdf")


def test_torch_window_dataset_and_loader(datasets_dir: dict[str, Dataset]) -> None:
    import torch
    from torch.utils.data import DataLoader

    from physground.learned.torch_dataset import WindowDataset, collate_windows

    dataset = datasets_dir["rigid/collision"]
    windows = WindowDataset(dataset, context=3, horizon=2, stride=2, states=["pos", "vel"])
    rollouts = dataset.rollouts()
    assert len(windows) == len(rollouts) * 2  # starts 0 and 2 fit in 8 frames
    item = windows[3]
    rollout = rollouts[item["rollout"]]
    start = item["start"]
    np.testing.assert_array_equal(item["context"]["pos"].numpy(),
                                  rollout.states["pos"][start:start + 3])
    np.testing.assert_array_equal(item["target"]["vel"].numpy(),
                                  rollout.states["vel"][start + 3:start + 5])
    assert item["context"]["pos"].dtype == torch.float32
    loader = DataLoader(windows, batch_size=len(windows), collate_fn=collate_windows)
    batch = next(iter(loader))
    counts = [r.states["pos"].shape[1] for r in rollouts for _ in range(2)]
    assert batch["context"]["pos"].shape == (len(windows), 3, max(counts), 3)
    assert batch["mask"].sum(1).tolist() == counts  # padded entities are masked out
    assert (batch["context"]["pos"][~batch["mask"][:, None, :].expand(-1, 3, -1)] == 0).all()
    assert batch["static"]["radius"].shape == (len(windows), max(counts))
    assert "mass" not in batch["static"]  # latent: only the conditioned track shows it
    conditioned = WindowDataset(dataset, context=3, horizon=2, track="conditioned")
    assert "mass" in conditioned[0]["static"]
    from physground.errors import ValidationError

    with pytest.raises(ValidationError, match="no window of context 6 \\+ horizon 5 fits"):
        WindowDataset(dataset, context=6, horizon=5)
    with pytest.raises(ValidationError, match="states \\['density'\\] are not in"):
        WindowDataset(dataset, context=2, horizon=2, states=["density"])
