"""Typed validation of configuration values with pydantic, reported as one line.

Suite files, ``--config`` / ``--param`` values and training options are checked by type and
range before anything runs: `model_of` mirrors a config dataclass (its fields, types and
defaults) as a strict pydantic model with ``extra="forbid"`` and no NaN/Inf, and
`validate_fields` checks a dict of values against it. Errors become a `ValidationError`
``<file>:<key>: <what was expected>, got <value>``; an unknown key names the closest one.

Values from the command line arrive as text: ``from_text=True`` parses them by the field's
type (``30`` -> int, ``1e-3`` -> float, ``true`` -> bool, JSON for tables and lists).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from physground.errors import ValidationError, did_you_mean

STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class StrictModel(BaseModel):
    """Base of file schemas: no unknown keys, no type coercion, no NaN/Inf."""

    model_config = STRICT


_EXPECTED = {
    "int_type": "expected an integer", "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number", "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "string_type": "expected a string", "dict_type": "expected a table",
    "list_type": "expected a list", "tuple_type": "expected a list",
    "missing": "missing key",
}


def _loc_text(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Field names of the (nested) model at ``loc`` of ``model``'s data."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = _fields_by_key(current).get(part)
        if info is None:
            return []
        current = _inner_model(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(_fields_by_key(current))
    return []


def _fields_by_key(model: type[BaseModel]) -> dict[str, Any]:
    """The model's fields by the key they have in the data (their alias if any)."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside ``list[M]``, ``M | None`` ... (or the annotation itself)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        inner = _inner_model(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def describe_error(err: pydantic.ValidationError, where: str,
                   model: type[BaseModel] | None = None) -> str:
    """The first error of ``err`` as ``<where>:<key>: <what was expected>, got <value>``."""
    first = err.errors(include_url=False)[0]
    loc = first["loc"]
    key = _loc_text(loc)
    prefix = f"{where}:{key}" if key else where
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1]) if model is not None else []
        name = str(loc[-1])
        hint = did_you_mean(name, allowed)
        parent = _loc_text(loc[:-1])
        head = f"{where}:{parent}" if parent else where
        return (f"{head}: unknown key '{name}'{hint}; expected one of {sorted(allowed)}"
                if allowed else f"{head}: unknown key '{name}'{hint}")
    if kind == "missing":
        return f"{prefix}: missing key"
    ctx = first.get("ctx") or {}
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}[kind]
        bound = next(iter(ctx.values()))
        expected = f"expected {op} {bound}"
    elif kind == "literal_error":
        expected = f"expected one of {ctx.get('expected', '')}"
    elif kind in ("too_short", "too_long"):
        expected = first["msg"][0].lower() + first["msg"][1:]
    else:
        expected = _EXPECTED.get(kind, first["msg"][0].lower() + first["msg"][1:])
    return f"{prefix}: {expected}, got {_show(first.get('input'))}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(model: type[BaseModel], data: Any, where: str) -> Any:
    """``model.model_validate(data)`` with a one-line `ValidationError` naming the key."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        raise ValidationError(describe_error(err, where, model)) from None


def _field_annotation(tp: Any) -> tuple[Any, dict[str, Any]]:
    """A pydantic annotation for a dataclass field type: tuples accept TOML/JSON lists."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        return tp, {"strict": False}
    return tp, {}


@functools.cache
def model_of(cls: type) -> type[BaseModel]:
    """A strict pydantic model with the init fields, types and defaults of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        annotation, extra = _field_annotation(hints[f.name])
        if f.default is not dataclasses.MISSING:
            spec = Field(default=f.default, alias=f.name, **extra)
        elif f.default_factory is not dataclasses.MISSING:
            spec = Field(default_factory=f.default_factory, alias=f.name, **extra)
        else:
            spec = Field(alias=f.name, **extra)
        # aliased: dataclass fields such as ``model_config`` clash with pydantic's names
        fields[_internal(f.name)] = (annotation, spec)
    return pydantic.create_model(f"{cls.__name__}Schema", __config__=STRICT, **fields)


def _internal(name: str) -> str:
    return f"field_{name}"


def field_names(cls: type) -> list[str]:
    """The init fields of dataclass ``cls``."""
    return [f.name for f in dataclasses.fields(cls) if f.init]


def validate_fields(cls: type, values: Mapping[str, Any], where: str, *,
                    from_text: bool = False, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """``values`` checked against the fields of dataclass ``cls`` by type; returns the
    validated values (only the given keys, tuples as tuples).

    ``exclude``: fields that may not be set here (reported like unknown keys).
    ``from_text``: values are command-line text, parsed by each field's type.
    """
    if not isinstance(values, Mapping):
        raise ValidationError(f"{where}: expected a table, got {_show(values)}")
    allowed = [n for n in field_names(cls) if n not in exclude]
    for key in values:
        if key not in allowed:
            raise ValidationError(
                f"{where}: unknown key '{key}'{did_you_mean(str(key), allowed)}; "
                f"expected one of {sorted(allowed)}"
            )
    model = model_of(cls)
    data = dict(values)
    if from_text:
        data = {k: _from_text(model, k, v, where) for k, v in data.items()}
    try:
        checked = model.model_validate(data, strict=not from_text)
    except pydantic.ValidationError as err:
        raise ValidationError(describe_error(err, where, model)) from None
    out = {k: getattr(checked, _internal(k)) for k in values}
    for k, v in out.items():
        if isinstance(v, float) and not math.isfinite(v):  # inside dicts and lists
            raise ValidationError(f"{where}:{k}: expected a finite number, got {v!r}")
    return out


def _from_text(model: type[BaseModel], key: str, text: Any, where: str) -> Any:
    """Command-line text for field ``key``: JSON for tables and lists, else the text."""
    if not isinstance(text, str):
        return text
    annotation = model.model_fields[_internal(key)].annotation
    origin = typing.get_origin(annotation)
    structured = origin in (dict, list, tuple) or annotation in (dict, list, tuple)
    if not structured:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValidationError(f"{where}:{key}: expected JSON (e.g. '{{\"a\": 1}}' or "
                              f"'[1, 2]'), got {_show(text)}") from None


# Frame sizes a suite can ask for (``resolution = "square-256"`` or ``"480x272"``), as
# (width, height) in pixels: the square and 16:9 sizes video generators produce.
RESOLUTION_PRESETS: dict[str, tuple[int, int]] = {
    "square-64": (64, 64),
    "square-128": (128, 128),
    "square-256": (256, 256),
    "square-512": (512, 512),
    "wide-480": (480, 272),  # 16:9 (width and height multiples of 16)
    "wide-848": (848, 480),
    "wide-1280": (1280, 720),
}


def parse_resolution(value: Any, where: str) -> tuple[int, int]:
    """A preset name (`RESOLUTION_PRESETS`) or ``"WIDTHxHEIGHT"`` -> (width, height), each
    8..4096 pixels; a one-line error naming ``where`` otherwise."""
    from physground import limits

    expected = (f"expected a preset ({', '.join(RESOLUTION_PRESETS)}) or 'WIDTHxHEIGHT' "
                "such as '256x256' or '480x272'")
    if not isinstance(value, str):
        raise ValidationError(f"{where}: {expected}, got {_show(value)}")
    if value in RESOLUTION_PRESETS:
        return RESOLUTION_PRESETS[value]
    width, sep, height = value.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValidationError(f"{where}: {expected}"
                              f"{did_you_mean(value, RESOLUTION_PRESETS)}, got {_show(value)}")
    size = (int(width), int(height))
    for side in size:
        if side < 8:
            raise ValidationError(f"{where}: sides of >= 8 pixels expected, got "
                                  f"{_show(value)}")
        limits.check("image_size", side, what=f"{where}: side")
    return size


def resolution_name(width: int, height: int) -> str:
    """``"480x272"`` (with ``" (wide-480)"`` when it is a preset's size)."""
    preset = next((k for k, v in RESOLUTION_PRESETS.items() if v == (width, height)), None)
    return f"{width}x{height}" + (f" ({preset})" if preset else "")


def parse_assignments(items: Sequence[str], what: str) -> dict[str, str]:
    """``["a=1", "b = x"]`` -> ``{"a": "1", "b": "x"}``; one-line error for other forms."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"{what} '{item}' is not of the form NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


def finite_number(text: str, where: str) -> float:
    """``text`` as a finite float, or a one-line error naming ``where``."""
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(f"{where}: expected a number, got {_show(text)}") from None
    if not math.isfinite(value):
        raise ValidationError(f"{where}: expected a finite number, got {_show(text)}")
    return value


def instantiate(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """``cls(**values)`` with its own range checks (``__post_init__``) reported at ``where``."""
    try:
        return cls(**values)
    except ValidationError as err:
        raise ValidationError(f"{where}: {err}") from None
