"""Copies of a physground dataset in layouts other tools read.

- ``the-well``: The Well's HDF5 specification (PolymathicAI/the_well, ``docs/data_format.md``):
  one file per dataset under ``<out>/<name>/data/<split>/``, float32 fields of shape
  ``[n_trajectories, n_steps, *spatial, (components)]`` in ``t0_fields`` (scalar) and
  ``t1_fields`` (vector), the time axis and grid coordinates in ``dimensions``, walls in
  ``boundary_conditions``, the physical parameters in ``scalars`` (``sample_varying`` where
  they change between trajectories) and as root attributes where they are constant.
  Grid scenarios (smoke: ``grid_spacing`` in the statics) are ``grid_type = "cartesian"``
  on cell centres. Bodies, cloth nodes and SPH particles have no grid: they are written on
  one index axis ``entity`` with ``grid_type = "entities"`` (a physground extension of the
  layout), NaN-padded to the largest count with ``scalars/entity_count`` per trajectory.
  Statics that are arrays go to a ``static`` group (padded likewise, each with a ``shapes``
  attribute). Frames are not part of The Well's layout and are not written.
- ``hf``: a Hugging Face ``datasets`` copy (Arrow, ``Dataset.save_to_disk``), one row per
  rollout with identity columns, ``param.<name>``, ``state.<name>``, ``static.<name>``,
  frames and masks; ``datasets.load_from_disk`` opens it. Needs the ``hf`` extra.

Each array keeps its SI unit (``units`` attributes in HDF5, the Arrow schema metadata).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from physground.errors import ValidationError
from physground.rollout import Rollout
from physground.storage import Dataset, storage_array
from physground.units import unit_of

FORMATS = ("the-well", "hf")


# Staggered (MAC face) velocities of the smoke: The Well fields live on the cell grid, where
# the cell-centred `velocity` carries the same flow.
STAGGERED_STATES = frozenset({"face_u", "face_v"})


def export_name(dataset: Dataset) -> str:
    """``<family>_<name>``: the scenario as one path component."""
    return dataset.scenario.replace("/", "_")


def export_dataset(dataset_dir: Path, out: Path, fmt: str) -> Path:
    """Write ``dataset_dir`` (a physground dataset) as ``fmt`` under ``out``; returns the path."""
    writers: dict[str, Callable[[Dataset, list[Rollout], Path], Path]] = {
        "the-well": write_the_well, "hf": write_hf,
    }
    if fmt not in writers:
        raise ValidationError(f"--format is '{fmt}', expected one of {', '.join(FORMATS)}")
    dataset = Dataset(Path(dataset_dir))
    rollouts = dataset.rollouts()
    if not rollouts:
        raise ValidationError(f"dataset {dataset_dir} stores no rollouts; nothing to export")
    return writers[fmt](dataset, rollouts, Path(out))


# ------------------------------------------------------------------------------ The Well


def _padded(arrays: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """Stack arrays that may differ in length along ``axis`` (NaN/-1/False padding)."""
    arrays = [storage_array(a) for a in arrays]
    size = max(a.shape[axis] for a in arrays) if arrays[0].ndim > axis else 0
    dtype = arrays[0].dtype
    fill: Any = np.nan if np.issubdtype(dtype, np.floating) else (
        False if dtype == np.bool_ else -1)
    out = []
    for a in arrays:
        if a.ndim > axis and a.shape[axis] < size:
            pad = [(0, 0)] * a.ndim
            pad[axis] = (0, size - a.shape[axis])
            a = np.pad(a, pad, constant_values=fill)
        out.append(a)
    shapes = {a.shape for a in out}
    if len(shapes) > 1:  # shapes differ along more than the entity axis: pad every axis
        full = tuple(max(s[i] for s in shapes) for i in range(out[0].ndim))
        out = [np.pad(a, [(0, f - n) for f, n in zip(full, a.shape, strict=True)],
                      constant_values=fill) for a in out]
    return np.stack(out)


def _names(values: Sequence[str]) -> np.ndarray:
    """A list of names as an HDF5 string array (an empty list stays a string array)."""
    return np.asarray(list(values), dtype=h5py.string_dtype())


def _mark(dataset: h5py.Dataset, *, sample: bool, time: bool, unit: str,
          dims: Sequence[bool] | None = None) -> None:
    dataset.attrs["sample_varying"] = sample
    dataset.attrs["time_varying"] = time
    dataset.attrs["units"] = unit
    if dims is not None:
        dataset.attrs["dim_varying"] = np.asarray(dims, dtype=bool)


def write_the_well(dataset: Dataset, rollouts: list[Rollout], out: Path) -> Path:
    """The Well's HDF5 layout (see the module docstring); returns the file written."""
    from physground.atomic import atomic_path

    first = rollouts[0]
    grid = "grid_spacing" in first.static
    path = out / export_name(dataset) / "data" / dataset.split / \
        f"{export_name(dataset)}_{dataset.split}.hdf5"
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=False) as fh:
        params = sorted(first.params)
        constant = [p for p in params if len({r.params[p] for r in rollouts}) == 1]
        fh.attrs["dataset_name"] = export_name(dataset)
        fh.attrs["grid_type"] = "cartesian" if grid else "entities"
        fh.attrs["n_trajectories"] = len(rollouts)
        fh.attrs["simulation_parameters"] = _names(constant)
        for name in constant:
            fh.attrs[name] = float(first.params[name])
        fh.attrs["physground_scenario"] = dataset.scenario
        fh.attrs["physground_split"] = dataset.split
        fh.attrs["physground_seeds"] = np.asarray([r.seed for r in rollouts], dtype=np.int64)

        dims = fh.create_group("dimensions")
        time = dims.create_dataset("time", data=(np.arange(first.num_frames) * first.dt)
                                   .astype(np.float32))
        _mark(time, sample=False, time=True, unit="s")
        if grid:
            spatial = ["y", "x"]  # array axes [H, W] are rows (y) then columns (x)
            dx = float(first.static["grid_spacing"])
            height, width = np.shape(first.states["density"])[1:3]
            for name, n in (("y", height), ("x", width)):
                coord = dims.create_dataset(name, data=((np.arange(n) + 0.5) * dx)
                                            .astype(np.float32))
                _mark(coord, sample=False, time=False, unit="m")
        else:
            spatial = ["entity"]
            counts = [int(np.shape(next(iter(r.states.values())))[1]) for r in rollouts]
            index = dims.create_dataset("entity", data=np.arange(max(counts), dtype=np.float32))
            _mark(index, sample=False, time=False, unit="index")
        dims.attrs["spatial_dims"] = _names(spatial)
        fh.attrs["n_spatial_dims"] = len(spatial)

        bcs = fh.create_group("boundary_conditions")
        if grid:
            for side, axis in (("y_wall", "y"), ("x_wall", "x")):
                bc = bcs.create_group(side)
                bc.attrs["associated_dims"] = _names([axis])
                bc.attrs["associated_fields"] = _names([])
                bc.attrs["bc_type"] = "wall"
                bc.attrs["sample_varying"] = False
                bc.attrs["time_varying"] = False
                mask = np.zeros(len(dims[axis]), dtype=bool)
                mask[[0, -1]] = True
                bc.create_dataset("mask", data=mask)

        scalars = fh.create_group("scalars")
        names = []
        for name in params:
            ds = scalars.create_dataset(name, data=np.asarray(
                [r.params[name] for r in rollouts], dtype=np.float32))
            _mark(ds, sample=name not in constant, time=False,
                  unit=dataset_param_unit(dataset, name))
            names.append(name)
        ds = scalars.create_dataset("dt", data=np.float32(first.dt))
        _mark(ds, sample=False, time=False, unit="s")
        names.append("dt")
        if not grid:
            ds = scalars.create_dataset("entity_count", data=np.asarray(counts, np.int64))
            _mark(ds, sample=True, time=False, unit="1")
            names.append("entity_count")

        groups = {order: fh.create_group(f"t{order}_fields") for order in (0, 1, 2)}
        fields: dict[int, list[str]] = {0: [], 1: [], 2: []}
        for name in sorted(first.states):
            if grid and name in STAGGERED_STATES:  # not on the cell grid; `velocity` is
                continue
            stacked = _padded([r.states[name] for r in rollouts], axis=1)
            order = stacked.ndim - 2 - len(spatial)  # components beyond [B, T, *spatial]
            if order not in groups:
                raise ValidationError(f"states['{name}'] of {dataset.scenario} has shape "
                                      f"{list(stacked.shape[1:])}: no The Well field order")
            ds = groups[order].create_dataset(name, data=stacked, compression="gzip")
            _mark(ds, sample=True, time=True, unit=unit_of(name), dims=[True] * len(spatial))
            if order == 2:
                ds.attrs["symmetric"] = False
                ds.attrs["antisymmetric"] = False
            fields[order].append(name)
        for order, group in groups.items():
            group.attrs["field_names"] = _names(fields[order])

        static = fh.create_group("static")
        for name in sorted(first.static):
            values = [np.asarray(r.static[name]) for r in rollouts]
            if np.ndim(values[0]) == 0 and np.issubdtype(values[0].dtype, np.number):
                continue  # a scalar static is in `scalars` below
            ds = static.create_dataset(name, data=_padded(values, axis=0))
            ds.attrs["shapes"] = json.dumps([list(v.shape) for v in values])
            ds.attrs["units"] = unit_of(name)
        for name in sorted(first.static):
            value = np.asarray(first.static[name])
            if np.ndim(value) == 0 and np.issubdtype(value.dtype, np.number):
                data = np.asarray([r.static[name] for r in rollouts])
                ds = scalars.create_dataset(f"static.{name}", data=storage_array(data))
                _mark(ds, sample=True, time=False, unit=unit_of(name))
                names.append(f"static.{name}")
        scalars.attrs["field_names"] = _names(names)
    return path


def dataset_param_unit(dataset: Dataset, name: str) -> str:
    """The unit a scenario's ParamSpace gives parameter ``name``."""
    from physground.scenario import get_scenario

    return get_scenario(dataset.scenario, render=False).param_space.param(name).unit


# ---------------------------------------------------------------------- Hugging Face


def _feature(arrays: Sequence[np.ndarray]) -> Any:
    """A `datasets` feature for one column: fixed-shape ArrayND where possible, else lists."""
    import datasets

    first = arrays[0]
    dtype = str(first.dtype)
    tails = {a.shape[1:] for a in arrays}
    if first.ndim == 0:
        return datasets.Value(dtype)
    if 2 <= first.ndim <= 5 and len(tails) == 1:
        array_type = {2: datasets.Array2D, 3: datasets.Array3D, 4: datasets.Array4D,
                      5: datasets.Array5D}[first.ndim]
        return array_type(shape=(None, *first.shape[1:]), dtype=dtype)
    feature: Any = datasets.Value(dtype)
    for _ in range(first.ndim):
        feature = datasets.List(feature)
    return feature


def _hf_columns(rollout: Rollout) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scenario": rollout.scenario, "split": rollout.split, "seed": int(rollout.seed),
        "dt": float(rollout.dt),
        "camera": json.dumps(rollout.camera.to_dict()) if rollout.camera else "",
    }
    row.update({f"param.{k}": float(v) for k, v in rollout.params.items()})
    row.update({f"state.{k}": storage_array(v) for k, v in rollout.states.items()})
    row.update({f"static.{k}": storage_array(v) for k, v in rollout.static.items()})
    if rollout.frames is not None:
        row["frames"] = np.asarray(rollout.frames)
    if rollout.masks is not None:
        row["masks"] = np.asarray(rollout.masks)
    return row


def write_hf(dataset: Dataset, rollouts: list[Rollout], out: Path) -> Path:
    """A `datasets.Dataset.save_to_disk` directory at ``<out>/<name>/<split>``."""
    try:
        import datasets
    except ImportError:
        raise ValidationError("--format hf needs the Hugging Face `datasets` package: "
                              "pip install 'physground[hf]'") from None
    rows = [_hf_columns(r) for r in rollouts]
    columns = list(rows[0])
    if any(list(r) != columns for r in rows):
        raise ValidationError(f"rollouts of {dataset.path} do not all store the same arrays")
    features = {}
    for name in columns:
        values = [r[name] for r in rows]
        if isinstance(values[0], str):
            features[name] = datasets.Value("string")
        elif isinstance(values[0], int):
            features[name] = datasets.Value("int64")
        elif isinstance(values[0], float):
            features[name] = datasets.Value("float64")
        else:
            features[name] = _feature(values)
    units = {name: unit_of(name.split(".", 1)[-1]) for name in columns
             if name.startswith(("state.", "static.")) or name in ("frames", "masks")}
    info = datasets.DatasetInfo(
        description=f"physground {dataset.scenario} {dataset.split}; SI units: "
                    + json.dumps(units, sort_keys=True),
    )
    target = out / export_name(dataset) / dataset.split
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as cache:
        hf = datasets.Dataset.from_generator(
            lambda: iter(rows), features=datasets.Features(features), info=info,
            cache_dir=cache,
        )
        staging = Path(cache) / "staged"
        hf.save_to_disk(str(staging))
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), target)
    return target
