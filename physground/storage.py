"""Datasets on disk: a directory with ``manifest.json`` and HDF5 shards of rollouts.

Every shard is written atomically (temp file, fsync, rename) and recorded with its sha256 in
the manifest, which is rewritten atomically after each shard; an interrupted generation
resumes from the finished shards. Readers verify each shard's checksum and refuse a
corrupted or truncated one, naming the file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm.auto import tqdm

from physground import limits
from physground.atomic import atomic_path, write_json_atomic
from physground.dataset_card import write_dataset_card
from physground.errors import (
    DataIntegrityError,
    SimulationError,
    UnknownNameError,
    ValidationError,
)
from physground.faults import failpoint
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
        limits.check("count", self.count, what="count (rollouts)")
        limits.check("shard_size", self.shard_size, what="shard_size")
        for key, limit in (("num_frames", "frames"), ("image_size", "image_size"),
                           ("image_height", "image_size")):
            if key in self.config and (key != "image_height" or self.config[key] != 0):
                limits.check(limit, self.config[key], what=f"config {key}")

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
    seeds = spec.rollout_seeds()
    shards = [seeds[i : i + spec.shard_size] for i in range(0, len(seeds), spec.shard_size)]
    done = {s["file"]: s for s in manifest["shards"]
            if isinstance(s, dict) and _shard_intact(path, s, config_hash)}
    expected = {f"shard-{i:05d}.h5" for i in range(len(shards))}
    rebuilt = sorted(expected - set(done))
    repairing = bool(manifest.get("complete"))
    if repairing and not rebuilt:
        return Dataset(path)
    if repairing:
        manifest["complete"] = False
        write_json_atomic(path / MANIFEST, manifest)
    bar = tqdm(total=spec.count, desc=f"generate {spec.scenario} {spec.split}", unit="rollout",
               disable=not progress)
    for index, shard_seeds in enumerate(shards):
        name = f"shard-{index:05d}.h5"
        if name in done:
            bar.update(len(shard_seeds))
            continue
        params = [{**scenario.sample_params(spec.split, s), **spec.fixed_params}
                  for s in shard_seeds]
        rollouts, rejected = _simulate_checked(scenario, params, shard_seeds, spec.split)
        # HDF5 writes into memory, then one plain write to disk: HDF5 itself writing to a
        # full disk floods errors from its cache and segfaults when the file is closed;
        # a Python write raises one clean OSError (ENOSPC).
        buffer = io.BytesIO()
        write_shard(buffer, rollouts, config_hash=config_hash)  # type: ignore[arg-type]
        with atomic_path(path / name) as tmp:
            tmp.write_bytes(buffer.getbuffer())
            failpoint("generate.shard")
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
    dataset = Dataset(path)
    dataset.rebuilt = rebuilt if repairing else []
    return dataset


def _shard_intact(path: Path, entry: Mapping[str, Any], config_hash: str) -> bool:
    """Whether the shard of manifest ``entry`` exists, matches its sha256 and was written
    for this dataset's config."""
    name = entry.get("file")
    if not isinstance(name, str) or not isinstance(entry.get("sha256"), str):
        return False
    file = path / name
    if not file.is_file() or file_sha256(file) != entry["sha256"]:
        return False
    try:
        with h5py.File(file, "r") as fh:
            return str(fh.attrs.get("config_hash", "")) == config_hash
    except OSError:
        return False


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
    """The parsed manifest, checked against `MANIFEST_SCHEMA` (types and required keys)."""
    manifest_file = Path(path) / MANIFEST
    try:
        size = manifest_file.stat().st_size
        if size > limits.maximum("json_bytes"):
            raise DataIntegrityError(f"{manifest_file} has {size} bytes, more than the "
                                     f"maximum {limits.maximum('json_bytes')}")
        manifest = json.loads(manifest_file.read_text())
    except FileNotFoundError:
        raise DataIntegrityError(f"{manifest_file} not found: not a physground dataset") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataIntegrityError(f"{manifest_file} is not valid JSON ({err})") from None
    problem = _schema_problem(manifest, MANIFEST_SCHEMA, "manifest")
    if problem:
        raise DataIntegrityError(f"{manifest_file}: {problem}; {REPAIR}")
    return manifest


REPAIR = "rerun `physground generate` (or the run) to rebuild the dataset"
_SHARD_SCHEMA = {"file": str, "sha256": str, "count": int, "seeds": [int], "rejected": list}
MANIFEST_SCHEMA: dict[str, Any] = {
    "format": int, "scenario": str, "split": str, "count": int, "seed": int,
    "config_hash": str, "identity": dict, "shards": [_SHARD_SCHEMA], "complete": bool,
}


def _schema_problem(value: Any, schema: Any, where: str) -> str | None:
    """What in ``value`` does not fit ``schema`` (a type, ``[item schema]`` or a dict of
    required keys), or None."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{where} must be an object, got {type(value).__name__}"
        for key, sub in schema.items():
            if key not in value:
                return f"{where} lacks '{key}'"
            problem = _schema_problem(value[key], sub, f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(schema, list):
        if not isinstance(value, list):
            return f"{where} must be a list, got {type(value).__name__}"
        for i, item in enumerate(value):
            problem = _schema_problem(item, schema[0], f"{where}[{i}]")
            if problem:
                return problem
        return None
    if schema is int and isinstance(value, bool) or not isinstance(value, schema):
        return f"{where} must be {schema.__name__}, got {type(value).__name__}"
    return None


def _check_consistency(path: Path, manifest: Mapping[str, Any]) -> None:
    """The manifest's shards must be ``shard-00000.h5 ...`` without gaps or duplicates,
    their counts and seeds must add up to the dataset's count and its seeds (stored plus
    rejected), each seed once."""
    file = path / MANIFEST
    spec = manifest["identity"].get("spec", {})
    try:
        expected = DatasetSpec(**spec)
    except (TypeError, ValidationError) as err:
        raise DataIntegrityError(f"{file}: identity.spec is not a dataset spec ({err}); "
                                 f"{REPAIR}") from None
    if (expected.count, expected.seed, expected.split, expected.scenario) != (
            manifest["count"], manifest["seed"], manifest["split"], manifest["scenario"]):
        raise DataIntegrityError(f"{file}: count/seed/split/scenario disagree with the "
                                 f"identity the dataset was generated from; {REPAIR}")
    shards = manifest["shards"]
    n = -(-expected.count // expected.shard_size)
    names = [s["file"] for s in shards]
    wanted = [f"shard-{i:05d}.h5" for i in range(n)]
    if names != wanted:
        missing = sorted(set(wanted) - set(names))
        extra = [x for x in names if x not in wanted or names.count(x) > 1]
        raise DataIntegrityError(f"{file}: shards {names[:4]}{'...' if len(names) > 4 else ''}"
                                 f" do not match the {n} expected (missing {missing[:4]}, "
                                 f"unexpected or duplicated {extra[:4]}); {REPAIR}")
    seen: dict[int, str] = {}
    for shard in shards:
        if len(shard["seeds"]) != shard["count"]:
            raise DataIntegrityError(f"{file}: {shard['file']} lists {len(shard['seeds'])} "
                                     f"seeds for count {shard['count']}; {REPAIR}")
        rejected = [r.get("seed") for r in shard["rejected"] if isinstance(r, dict)]
        for seed in [*shard["seeds"], *rejected]:
            if seed in seen:
                raise DataIntegrityError(f"{file}: seed {seed} appears in {seen[seed]} and "
                                         f"{shard['file']} (duplicated shard); {REPAIR}")
            seen[seed] = shard["file"]
    if sorted(seen) != sorted(expected.rollout_seeds()):
        raise DataIntegrityError(f"{file}: the shards hold {len(seen)} seeds, the dataset's "
                                 f"{expected.count} seeds were expected (rollouts missing or "
                                 f"foreign); {REPAIR}")


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


def write_shard(path: Path, rollouts: Sequence[Rollout], *, config_hash: str = "") -> None:
    """Write rollouts to one HDF5 file, deterministically (no timestamps, sorted keys).

    The file records the dataset's ``config_hash`` and its rollouts' seeds, so that a
    shard copied from another dataset or over another shard is recognized on open."""
    with h5py.File(path, "w", track_order=False) as fh:
        fh.attrs["format"] = FORMAT_VERSION
        fh.attrs["config_hash"] = config_hash
        fh.attrs["seeds"] = np.asarray([r.seed for r in rollouts], dtype=np.int64)
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


def _check_shard_contents(file: Path, rollouts: list[Rollout], entry: Mapping[str, Any],
                          config_hash: str) -> None:
    """A shard's own record (config hash, seeds) must be what the manifest says of it."""
    with h5py.File(file, "r") as fh:
        stored_hash = str(fh.attrs.get("config_hash", ""))
        stored_seeds = [int(x) for x in fh.attrs.get("seeds", [])]
    if stored_hash != config_hash:
        raise DataIntegrityError(f"shard {file} was written for another dataset (config hash "
                                 f"{stored_hash[:12] or 'none'}, manifest {config_hash[:12]}); "
                                 f"{REPAIR}")
    seeds = [r.seed for r in rollouts]
    if seeds != stored_seeds or seeds != list(entry["seeds"]):
        raise DataIntegrityError(f"shard {file} holds seeds {seeds[:4]}..., the manifest "
                                 f"lists {list(entry['seeds'])[:4]}... (a shard copied over "
                                 f"another); {REPAIR}")


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
        _check_consistency(self.path, self.manifest)
        self._verified: set[str] = set()
        self.rebuilt: list[str] = []  # shards `generate_dataset` re-simulated (a repair)

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
                f"shard {file} fails its sha256 check (corrupted or truncated); {REPAIR}"
            )
        self._verified.add(shard["file"])
        return file

    def __iter__(self) -> Iterator[Rollout]:
        for shard in self.manifest["shards"]:
            file = self._verify_shard(shard)
            rollouts = read_shard(file)
            _check_shard_contents(file, rollouts, shard, self.manifest["config_hash"])
            yield from rollouts

    def rollouts(self) -> list[Rollout]:
        return list(self)
