"""Datasets on disk: a directory with ``manifest.json`` and HDF5 shards of rollouts.

Every shard is written atomically (temp file, fsync, rename) and recorded with its sha256 in
the manifest, which is rewritten atomically after each shard; an interrupted generation
resumes from the finished shards. Readers verify each shard's checksum and refuse a
corrupted or truncated one, naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm.auto import tqdm

from physground.atomic import atomic_path, write_json_atomic
from physground.dataset_card import write_dataset_card
from physground.errors import (
    DataIntegrityError,
    SimulationError,
    UnknownNameError,
    ValidationError,
)
from physground.provenance import content_hash, file_sha256, library_versions
from physground.rollout import SPLITS, Camera, Rollout
from physground.scenario import Scenario, get_scenario
from physground.units import unit_of

MANIFEST = "manifest.json"
CARD = "README.md"
# 2: floating-point arrays stored as float32 (as The Well and most learned-simulator data),
#    each HDF5 dataset carries a ``units`` attribute, a dataset card beside the manifest.
FORMAT_VERSION = 2


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """What to generate: scenario, split, number of rollouts, seed and overrides."""

    scenario: str
    split: str
    count: int
    seed: int = 0
    shard_size: int = 16
    config: dict[str, Any] = field(default_factory=dict)  # ScenarioConfig overrides
    fixed_params: dict[str, float] = field(default_factory=dict)  # pin params to values

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValidationError(f"split '{self.split}' is not one of {SPLITS}")
        if self.count < 1:
            raise ValidationError(f"count = {self.count}, expected >= 1 rollouts")
        if self.shard_size < 1:
            raise ValidationError(f"shard_size = {self.shard_size}, expected >= 1")

    def rollout_seeds(self) -> list[int]:
        """Per-rollout seeds, a deterministic function of (seed, index)."""
        return [int(np.random.SeedSequence([self.seed, i]).generate_state(1)[0])
                for i in range(self.count)]


def _scenario_for(spec: DatasetSpec) -> Scenario:
    scenario = get_scenario(spec.scenario, **spec.config)
    space = scenario.param_space
    for name, value in spec.fixed_params.items():
        # unknown names fail with a did-you-mean; values outside the physical range fail
        space.param(name).check(float(value), where=f"{spec.scenario}: ")
    return scenario


def dataset_identity(spec: DatasetSpec, scenario: Scenario) -> dict[str, Any]:
    """Everything that determines the bytes of a dataset; hashed into its name."""
    return {
        "format": FORMAT_VERSION,
        "spec": asdict(spec),
        "scenario": scenario.describe(),
        "versions": library_versions(),
    }


def dataset_path(root: Path, spec: DatasetSpec, scenario: Scenario | None = None) -> Path:
    """Deterministic location ``root/<family>/<name>/<split>-n<count>-s<seed>-<hash8>``."""
    scenario = scenario or _scenario_for(spec)
    digest = content_hash(dataset_identity(spec, scenario))[:12]
    return Path(root) / spec.scenario / f"{spec.split}-n{spec.count}-s{spec.seed}-{digest}"


def generate_dataset(
    spec: DatasetSpec, root: Path, *, out: Path | None = None, progress: bool = True
) -> Dataset:
    """Generate (or finish generating) the dataset for ``spec``; returns it opened.

    Finished shards whose checksum matches are kept; missing ones are simulated.
    Rollouts that blow up are recorded under ``rejected`` and never stored.
    """
    scenario = _scenario_for(spec)
    identity = dataset_identity(spec, scenario)
    config_hash = content_hash(identity)
    path = Path(out) if out is not None else dataset_path(root, spec, scenario)
    manifest = _load_or_start_manifest(path, spec, identity, config_hash)
    if manifest.get("complete"):
        return Dataset(path)

    seeds = spec.rollout_seeds()
    shards = [seeds[i : i + spec.shard_size] for i in range(0, len(seeds), spec.shard_size)]
    done = {s["file"]: s for s in manifest["shards"]}
    bar = tqdm(total=spec.count, desc=f"generate {spec.scenario} {spec.split}", unit="rollout",
               disable=not progress)
    for index, shard_seeds in enumerate(shards):
        name = f"shard-{index:05d}.h5"
        if name in done and (path / name).exists() and file_sha256(path / name) == \
                done[name]["sha256"]:
            bar.update(len(shard_seeds))
            continue
        params = [{**scenario.sample_params(spec.split, s), **spec.fixed_params}
                  for s in shard_seeds]
        rollouts, rejected = _simulate_checked(scenario, params, shard_seeds, spec.split)
        with atomic_path(path / name) as tmp:
            write_shard(tmp, rollouts)
        done[name] = {
            "file": name,
            "sha256": file_sha256(path / name),
            "count": len(rollouts),
            "seeds": [r.seed for r in rollouts],
            "rejected": rejected,
        }
        manifest["shards"] = [done[k] for k in sorted(done)]
        write_json_atomic(path / MANIFEST, manifest)
        bar.update(len(shard_seeds))
    bar.close()
    manifest["shards"] = [done[k] for k in sorted(done)]
    manifest["stored"] = sum(s["count"] for s in manifest["shards"])
    manifest["rejected"] = sum(len(s["rejected"]) for s in manifest["shards"])
    manifest["complete"] = True
    write_json_atomic(path / MANIFEST, manifest)
    write_dataset_card(path, manifest, scenario)
    return Dataset(path)


def _simulate_checked(
    scenario: Scenario, params: list[dict[str, float]], seeds: list[int], split: str
) -> tuple[list[Rollout], list[dict[str, Any]]]:
    """Simulate a batch; drop and record rollouts that blow up (never stored as truth)."""
    kept: list[Rollout] = []
    rejected: list[dict[str, Any]] = []
    try:
        rollouts = scenario.generate(params, seeds, split)
    except SimulationError as err:  # the whole batch failed: retry one by one to isolate
        if len(seeds) == 1:
            return [], [{"seed": seeds[0], "reason": str(err)}]
        for p, s in zip(params, seeds, strict=True):
            k, r = _simulate_checked(scenario, [p], [s], split)
            kept += k
            rejected += r
        return kept, rejected
    for rollout in rollouts:
        reason = check_rollout(rollout) or scenario.check(rollout)
        if reason is None:
            kept.append(rollout)
        else:
            rejected.append({"seed": rollout.seed, "reason": reason})
    return kept, rejected


def check_rollout(rollout: Rollout) -> str | None:
    """Why a simulated rollout is not valid ground truth (NaN/Inf states), or None."""
    for name, arr in rollout.states.items():
        if not np.isfinite(arr).all():
            first = int(np.argwhere(~np.isfinite(arr))[0][0])
            return f"states['{name}'] has NaN or Inf from frame {first} (simulator blow-up)"
    return None


def _load_or_start_manifest(
    path: Path, spec: DatasetSpec, identity: dict[str, Any], config_hash: str
) -> dict[str, Any]:
    manifest_file = path / MANIFEST
    if manifest_file.exists():
        manifest = read_manifest(path)
        if manifest.get("config_hash") != config_hash:
            raise DataIntegrityError(
                f"{manifest_file} was generated from a different config "
                f"(hash {str(manifest.get('config_hash'))[:12]}, now {config_hash[:12]}); "
                "choose another output directory or delete it"
            )
        return manifest
    path.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT_VERSION,
        "scenario": spec.scenario,
        "split": spec.split,
        "count": spec.count,
        "seed": spec.seed,
        "config_hash": config_hash,
        "identity": identity,
        "versions": identity["versions"],
        "shards": [],
        "complete": False,
    }
    write_json_atomic(manifest_file, manifest)
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_file = Path(path) / MANIFEST
    try:
        return json.loads(manifest_file.read_text())
    except FileNotFoundError:
        raise DataIntegrityError(f"{manifest_file} not found: not a physground dataset") from None
    except json.JSONDecodeError as err:
        raise DataIntegrityError(f"{manifest_file} is not valid JSON ({err})") from None


# ---------------------------------------------------------------------------- HDF5 shards


def storage_array(value: Any) -> np.ndarray:
    """The array as stored: floating point as float32, everything else unchanged."""
    array = np.asarray(value)
    return array.astype(np.float32) if np.issubdtype(array.dtype, np.floating) else array


def _write_arrays(group: h5py.Group, arrays: Mapping[str, Any],
                  units: Mapping[str, str] | None = None) -> None:
    for key in sorted(arrays):
        value = storage_array(arrays[key])
        big = value.size > 1024 and value.dtype != object
        dataset = group.create_dataset(
            key, data=value, track_times=False,
            compression="gzip" if big else None, shuffle=big, compression_opts=4 if big else None,
        )
        dataset.attrs["units"] = unit_of(key, units)


def write_shard(path: Path, rollouts: Sequence[Rollout]) -> None:
    """Write rollouts to one HDF5 file, deterministically (no timestamps, sorted keys)."""
    with h5py.File(path, "w", track_order=False) as fh:
        fh.attrs["format"] = FORMAT_VERSION
        for i, rollout in enumerate(rollouts):
            g = fh.create_group(f"rollout-{i:05d}")
            g.attrs["scenario"] = rollout.scenario
            g.attrs["split"] = rollout.split
            g.attrs["seed"] = rollout.seed
            g.attrs["dt"] = rollout.dt
            g.attrs["params"] = json.dumps(rollout.params, sort_keys=True)
            g.attrs["meta"] = json.dumps(rollout.meta, sort_keys=True, default=_json_default)
            if rollout.camera is not None:
                g.attrs["camera"] = json.dumps(rollout.camera.to_dict(), sort_keys=True)
            units = _scenario_units(rollout.scenario)
            _write_arrays(g.create_group("states"), rollout.states, units)
            _write_arrays(g.create_group("static"), rollout.static, units)
            images = {}
            if rollout.frames is not None:
                images["frames"] = rollout.frames
            if rollout.masks is not None:
                images["masks"] = rollout.masks
            _write_arrays(g, images)


def _scenario_units(name: str) -> dict[str, str]:
    """Units a scenario declares beyond the shared table (its ``units`` class attribute)."""
    from physground.scenario import SCENARIOS

    try:
        factory = SCENARIOS.get(name)
    except UnknownNameError:  # a plugin scenario that is no longer installed
        return {}
    return dict(getattr(getattr(factory, "func", factory), "units", {}) or {})


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in rollout meta")


def read_shard(path: Path) -> list[Rollout]:
    """Read every rollout of one shard (no checksum check: see `Dataset`)."""
    try:
        with h5py.File(path, "r") as fh:
            return [_read_rollout(fh[name]) for name in sorted(fh)]
    except (OSError, KeyError, ValueError) as err:
        raise DataIntegrityError(f"shard {path} is unreadable or truncated ({err})") from None


def _read_rollout(g: h5py.Group) -> Rollout:
    camera = g.attrs.get("camera")
    return Rollout(
        scenario=str(g.attrs["scenario"]),
        split=str(g.attrs["split"]),
        seed=int(g.attrs["seed"]),
        dt=float(g.attrs["dt"]),
        params=json.loads(g.attrs["params"]),
        meta=json.loads(g.attrs["meta"]),
        camera=Camera.from_dict(json.loads(camera)) if camera is not None else None,
        states={k: v[()] for k, v in g["states"].items()},
        static={k: v[()] for k, v in g["static"].items()},
        frames=g["frames"][()] if "frames" in g else None,
        masks=g["masks"][()] if "masks" in g else None,
    )


class Dataset:
    """A generated dataset directory; iterating yields verified `Rollout`s in order."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        if not self.manifest.get("complete"):
            raise DataIntegrityError(
                f"dataset {self.path} is incomplete (generation was interrupted); "
                "rerun generation to finish it"
            )
        self._verified: set[str] = set()

    @property
    def scenario(self) -> str:
        return str(self.manifest["scenario"])

    @property
    def split(self) -> str:
        return str(self.manifest["split"])

    def __len__(self) -> int:
        return int(sum(s["count"] for s in self.manifest["shards"]))

    def verify(self) -> None:
        """Check every shard's sha256 against the manifest."""
        for shard in self.manifest["shards"]:
            self._verify_shard(shard)

    def _verify_shard(self, shard: Mapping[str, Any]) -> Path:
        file = self.path / shard["file"]
        if shard["file"] in self._verified:
            return file
        if not file.exists():
            raise DataIntegrityError(f"shard {file} listed in the manifest is missing")
        if file_sha256(file) != shard["sha256"]:
            raise DataIntegrityError(
                f"shard {file} fails its sha256 check (corrupted or truncated); "
                "delete it and rerun generation to rebuild it"
            )
        self._verified.add(shard["file"])
        return file

    def __iter__(self) -> Iterator[Rollout]:
        for shard in self.manifest["shards"]:
            yield from read_shard(self._verify_shard(shard))

    def rollouts(self) -> list[Rollout]:
        return list(self)
