"""Checkpoints of learned models: ``model.safetensors`` (weights and buffers) beside
``config.json`` (model name, its frozen config dataclass, and extra JSON state such as the
training step), as in lerobot/transformers. Writes are atomic so an interrupted save never
leaves a half-written checkpoint that a resume would pick up.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from physground.atomic import write_atomic
from physground.errors import DataIntegrityError, ValidationError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"

C = TypeVar("C")


def save_checkpoint(
    directory: Path, *, model: str, config: Any, tensors: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``tensors`` (name -> torch tensor) and the JSON description to ``directory``."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    contiguous = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    write_atomic(directory / WEIGHTS, lambda tmp: save_file(contiguous, str(tmp)))
    record = {"model": model, "config": dataclasses.asdict(config), "extra": extra or {}}
    text = json.dumps(record, indent=2, sort_keys=True)
    write_atomic(directory / CONFIG, lambda tmp: Path(tmp).write_text(text))
    return directory


def read_checkpoint_record(directory: Path, *, model: str | None = None) -> dict[str, Any]:
    """The parsed ``config.json``; checks the model name when ``model`` is given."""
    file = Path(directory) / CONFIG
    try:
        record = json.loads(file.read_text())
    except FileNotFoundError:
        raise DataIntegrityError(f"{file} not found: not a physground checkpoint") from None
    except json.JSONDecodeError as err:
        raise DataIntegrityError(f"{file} is not valid JSON ({err})") from None
    if model is not None and record.get("model") != model:
        raise ValidationError(
            f"checkpoint {directory} holds model '{record.get('model')}', expected '{model}'"
        )
    return record


def load_tensors(directory: Path, device: str = "cpu") -> dict[str, Any]:
    """The tensors of ``model.safetensors`` on ``device``."""
    from safetensors.torch import load_file

    file = Path(directory) / WEIGHTS
    if not file.exists():
        raise DataIntegrityError(f"{file} not found: checkpoint has no weights")
    try:
        return load_file(str(file), device=device)
    except Exception as err:  # safetensors raises its own error types
        raise DataIntegrityError(f"{file} is unreadable or truncated ({err})") from None


def config_from_dict(config_type: type[C], data: dict[str, Any]) -> C:
    """Rebuild a frozen config dataclass from its ``asdict`` form (tuples restored)."""
    fields = {f.name: f for f in dataclasses.fields(config_type)}  # type: ignore[arg-type]
    unknown = set(data) - set(fields)
    if unknown:
        raise ValidationError(
            f"checkpoint config has unknown fields {sorted(unknown)} for {config_type.__name__}"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return config_type(**values)
