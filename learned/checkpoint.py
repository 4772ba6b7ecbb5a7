"""Checkpoints of learned models: one directory, written whole and published atomically.

Layout (as lerobot/transformers, plus a manifest and the trainer state)::

    config.json            model name, its frozen config dataclass, extra JSON state
    model.safetensors      weights and buffers
    trainer.json           (training checkpoints) step, optimizer param groups and scalars
    trainer.safetensors    (training checkpoints) optimizer tensors, random generator states
    manifest.json          format, and sha256 and size of every file above
    log.jsonl              training log (appended live; not part of the manifest)
    tensorboard/           (``log = "tensorboard"``) event files, appended live, carried
                           into each new version (not part of the manifest)

Nothing is ever unpickled: tensors are safetensors, everything else is JSON. The files are
written into a temporary directory beside the target, fsynced, and published with one
atomic rename (`physground.atomic.atomic_directory`), so a kill never pairs new weights
with an old trainer state. `open_checkpoint` reads every file once into memory, checks its
size and sha256 against the manifest, and only then parses it; each malformed file is a
one-line `DataIntegrityError` naming it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from physground import limits
from physground.atomic import atomic_directory
from physground.errors import DataIntegrityError, ValidationError
from physground.faults import failpoint

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAINER_STATE = "trainer.json"
TRAINER_TENSORS = "trainer.safetensors"
MANIFEST = "manifest.json"
LOG = "log.jsonl"
LIVE = {LOG, "tensorboard"}  # appended while training; kept across checkpoint swaps
FORMAT = 2  # 1: trainer state pickled in trainer.pt (never loaded)
OPTIMIZER_PREFIX = "optimizer.state."
RNG_PREFIX = "rng."

C = TypeVar("C")


@dataclass(frozen=True)
class TrainerState:
    """What a resumed training needs besides the model: step, optimizer, generators."""

    step: int
    optimizer: dict[str, Any]  # a torch optimizer ``state_dict()``
    rng: dict[str, Any]  # name -> uint8 tensor of a generator state


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def check_replaceable(directory: Path) -> None:
    """Refuse to replace anything but a missing or empty directory or a checkpoint (the
    whole directory is swapped on save, so other files in it would be lost)."""
    directory = Path(directory)
    if not directory.exists() and not directory.is_symlink():
        return
    if not directory.is_dir():
        raise ValidationError(f"checkpoint directory {directory} exists and is not a directory")
    if (directory / MANIFEST).is_file() or set(os.listdir(directory)) <= LIVE:
        return
    raise ValidationError(
        f"{directory} exists and is not a physground checkpoint (no {MANIFEST}; a checkpoint "
        "of physground < 0.2 with a pickled trainer.pt is never loaded): choose an empty or "
        "new directory, or delete it"
    )


def save_checkpoint(
    directory: Path, *, model: str, config: Any, tensors: dict[str, Any],
    extra: dict[str, Any] | None = None, trainer: TrainerState | None = None,
    log: str = "",
) -> Path:
    """Write the model (and the trainer state, with ``log`` as ``log.jsonl``) to
    ``directory``, replacing a previous checkpoint there in one atomic rename."""
    from safetensors.torch import save as save_tensors

    directory = Path(directory)
    check_replaceable(directory)
    contiguous = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    record = {"model": model, "config": dataclasses.asdict(config), "extra": extra or {},
              "format": FORMAT}
    files = {WEIGHTS: save_tensors(contiguous), CONFIG: _json_bytes(record)}
    if trainer is not None:
        files.update(_trainer_files(trainer))
    manifest = {"format": FORMAT, "files": {
        name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in files.items()}}
    with atomic_directory(directory, keep_others=True) as tmp:
        for name, data in {**files, MANIFEST: _json_bytes(manifest)}.items():
            (tmp / name).write_bytes(data)
        if log:
            (tmp / LOG).write_text(log)
        failpoint("checkpoint.publish")
    return directory


def _trainer_files(state: TrainerState) -> dict[str, bytes]:
    """``trainer.json`` (step, param groups, non-tensor optimizer state) and
    ``trainer.safetensors`` (optimizer tensors, generator states)."""
    import torch
    from safetensors.torch import save as save_tensors

    tensors: dict[str, Any] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state.optimizer["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{OPTIMIZER_PREFIX}{int(index)}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(int(index)), {})[key] = value
    for name, value in state.rng.items():
        tensors[f"{RNG_PREFIX}{name}"] = value.detach().cpu().contiguous()
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
              for g in state.optimizer["param_groups"]]
    data = {"format": FORMAT, "step": int(state.step), "param_groups": groups,
            "state_scalars": scalars}
    return {TRAINER_STATE: _json_bytes(data), TRAINER_TENSORS: save_tensors(tensors)}


# ---------------------------------------------------------------------------- reading


class CheckpointFiles:
    """The verified bytes of one checkpoint directory (see `open_checkpoint`)."""

    def __init__(self, directory: Path, files: dict[str, bytes]) -> None:
        self.directory = directory
        self.files = files
        self.record = _parse_record(directory / CONFIG, files[CONFIG])

    @property
    def has_trainer_state(self) -> bool:
        return TRAINER_STATE in self.files

    def tensors(self, device: str = "cpu", name: str = WEIGHTS) -> dict[str, Any]:
        """The tensors of ``name`` (``model.safetensors``) on ``device``."""
        from safetensors.torch import load

        try:
            tensors = load(self.files[name])
        except Exception as err:  # safetensors raises its own error types
            raise DataIntegrityError(f"{self.directory / name} is not a valid safetensors "
                                     f"file ({_first_line(err)})") from None
        return {k: v.to(device) for k, v in tensors.items()}

    def trainer_state(self) -> TrainerState:
        """The trainer state, checked: step an integer in [0, ``limits.steps``], optimizer
        tensors named ``optimizer.state.<param index>.<key>``, generator states uint8."""
        import torch

        file = self.directory / TRAINER_STATE
        if not self.has_trainer_state:
            raise DataIntegrityError(f"{file} not found: the checkpoint {self.directory} "
                                     "holds no trainer state to resume from")
        data = _parse_json(file, self.files[TRAINER_STATE])
        step = data.get("step") if isinstance(data, dict) else None
        groups = data.get("param_groups") if isinstance(data, dict) else None
        scalars = data.get("state_scalars", {}) if isinstance(data, dict) else None
        if isinstance(step, bool) or not isinstance(step, int) or \
                not 0 <= step <= limits.maximum("steps"):
            raise DataIntegrityError(f"{file}: step = {step!r}, expected an integer in "
                                     f"[0, {limits.maximum('steps')}]")
        if not isinstance(groups, list) or not all(
                isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups) \
                or not isinstance(scalars, dict):
            raise DataIntegrityError(f"{file}: param_groups must be a list of objects with "
                                     "'params', state_scalars an object")
        tensors = self.tensors("cpu", TRAINER_TENSORS)
        state: dict[int, dict[str, Any]] = {}
        rng: dict[str, Any] = {}
        where = self.directory / TRAINER_TENSORS
        for name, value in tensors.items():
            if name.startswith(RNG_PREFIX):
                if value.dtype != torch.uint8 or value.dim() != 1:
                    raise DataIntegrityError(f"{where}: '{name}' must be a 1-d uint8 generator "
                                             f"state, got {value.dtype} {tuple(value.shape)}")
                rng[name[len(RNG_PREFIX):]] = value
                continue
            index, _, key = name.removeprefix(OPTIMIZER_PREFIX).partition(".")
            if not name.startswith(OPTIMIZER_PREFIX) or not index.isdigit() or not key:
                raise DataIntegrityError(f"{where}: unexpected tensor '{name}'")
            state.setdefault(int(index), {})[key] = value
        for index, values in scalars.items():
            if not str(index).isdigit() or not isinstance(values, dict):
                raise DataIntegrityError(f"{file}: state_scalars key {index!r} is not a "
                                         "parameter index")
            state.setdefault(int(index), {}).update(values)
        groups = [{k: tuple(v) if k == "betas" and isinstance(v, list) else v
                   for k, v in g.items()} for g in groups]
        return TrainerState(step=step, optimizer={"state": state, "param_groups": groups},
                            rng=rng)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def _parse_json(file: Path, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataIntegrityError(f"{file} is not valid JSON ({_first_line(err)})") from None


def _parse_record(file: Path, data: bytes) -> dict[str, Any]:
    record = _parse_json(file, data)
    if not (isinstance(record, dict) and isinstance(record.get("model"), str)
            and isinstance(record.get("config"), dict)
            and isinstance(record.get("extra", {}), dict)):
        raise DataIntegrityError(f"{file} must be an object with 'model' (a name), 'config' "
                                 "and 'extra' (objects)")
    record.setdefault("extra", {})
    return record


def _read_bounded(file: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (no FIFOs, no devices)."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DataIntegrityError(f"{file} not found: the checkpoint is incomplete") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise DataIntegrityError(f"{file} is not a regular file")
        if info.st_size > limit:
            raise DataIntegrityError(f"{file} has {info.st_size} bytes, more than the maximum "
                                     f"{limit}")
        return fh.read(info.st_size + 1)  # +1: a file still growing shows as a size mismatch


def open_checkpoint(directory: str | Path, *, model: str | None = None) -> CheckpointFiles:
    """Read and verify the checkpoint in ``directory`` (manifest, sizes, sha256, config);
    checks the model name when ``model`` is given."""
    directory = Path(directory)
    manifest_file = directory / MANIFEST
    if not directory.is_dir():
        raise DataIntegrityError(f"checkpoint {directory} not found (or not a directory)")
    if not manifest_file.exists():
        legacy = " (written by physground < 0.2: its pickled trainer.pt is never loaded; " \
                 "retrain)" if (directory / "trainer.pt").exists() else ""
        raise DataIntegrityError(f"{manifest_file} not found: not a complete physground "
                                 f"checkpoint{legacy}")
    manifest = _parse_json(manifest_file, _read_bounded(manifest_file,
                                                        limits.maximum("json_bytes")))
    entries = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(entries, dict) or manifest.get("format") != FORMAT or not all(
            isinstance(e, dict) and isinstance(e.get("sha256"), str)
            and isinstance(e.get("bytes"), int) for e in entries.values()):
        raise DataIntegrityError(f"{manifest_file} must hold format {FORMAT} and 'files': "
                                 "{name: {sha256, bytes}}")
    allowed = {WEIGHTS, CONFIG, TRAINER_STATE, TRAINER_TENSORS}
    unknown = set(entries) - allowed
    missing = {WEIGHTS, CONFIG} - set(entries)
    if unknown or missing or (TRAINER_STATE in entries) != (TRAINER_TENSORS in entries):
        raise DataIntegrityError(f"{manifest_file} lists {sorted(entries)}; expected "
                                 f"{WEIGHTS}, {CONFIG} and optionally both trainer files")
    files: dict[str, bytes] = {}
    for name, entry in sorted(entries.items()):
        file = directory / name
        limit = limits.maximum("json_bytes" if name.endswith(".json") else "checkpoint_bytes")
        data = _read_bounded(file, limit)
        if len(data) != entry["bytes"] or _sha256(data) != entry["sha256"]:
            raise DataIntegrityError(f"{file} fails its sha256 check against {manifest_file} "
                                     "(corrupted, truncated or replaced); retrain or restore "
                                     "the checkpoint")
        files[name] = data
    checkpoint = CheckpointFiles(directory, files)
    found = checkpoint.record["model"]
    if model is not None and found != model:
        raise ValidationError(f"checkpoint {directory} holds model '{found}', expected "
                              f"'{model}'")
    return checkpoint


def read_checkpoint_record(directory: Path, *, model: str | None = None) -> dict[str, Any]:
    """The verified, parsed ``config.json``; checks the model name when ``model`` is given."""
    return open_checkpoint(directory, model=model).record


def read_log(directory: Path, *, up_to: int) -> list[dict[str, Any]]:
    """The records of ``log.jsonl`` with ``step <= up_to`` (one per step, in order).

    Lines a kill tore or that are not log records are dropped: the log is informative and
    rewritten from these records at the next checkpoint.
    """
    file = Path(directory) / LOG
    if not file.is_file():
        return []
    records: dict[int, dict[str, Any]] = {}
    data = _read_bounded(file, limits.maximum("json_bytes"))
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        step = record.get("step") if isinstance(record, dict) else None
        if isinstance(step, int) and not isinstance(step, bool) and 0 <= step <= up_to:
            records[step] = record
    return [records[s] for s in sorted(records)]


def log_text(records: list[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(dict(r)) + "\n" for r in records)


def config_from_dict(config_type: type[C], data: dict[str, Any],
                     where: Path | str = "checkpoint config") -> C:
    """Rebuild a frozen config dataclass from its ``asdict`` form (tuples restored)."""
    fields = {f.name: f for f in dataclasses.fields(config_type)}  # type: ignore[arg-type]
    unknown = set(data) - set(fields)
    if unknown:
        raise DataIntegrityError(
            f"{where} has unknown fields {sorted(unknown)} for {config_type.__name__}"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return config_type(**values)
    except (TypeError, ValueError) as err:
        raise DataIntegrityError(f"{where}: invalid {config_type.__name__} "
                                 f"({_first_line(err)})") from None
