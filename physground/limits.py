"""Resource maxima, checked before any work starts so that a typo such as ``--count
1000000000`` fails in milliseconds with one line instead of filling memory for hours.

The defaults are far above what the shipped suites use (``full`` generates 256 rollouts per
split, 96 px frames) and far below what would exhaust a workstation. Each is overridable
through an environment variable ``PHYSGROUND_MAX_<NAME>`` (e.g. ``PHYSGROUND_MAX_COUNT=
50000000`` for a very large dataset), read at the time of the check.

| name | default | bounds |
| --- | --- | --- |
| ``count`` | 1,000,000 | rollouts in one dataset (``generate --count``, suite ``rollouts``) |
| ``frames`` | 100,000 | stored frames per rollout (``num_frames``, suite ``context + horizon``) |
| ``image_size`` | 4,096 | rendered frame side in pixels |
| ``steps`` | 100,000,000 | optimizer steps of one training (also bounds a trainer state) |
| ``shard_size`` | 100,000 | rollouts per HDF5 shard |
| ``json_bytes`` | 64 MiB | size of a JSON file read from a dataset or checkpoint |
| ``checkpoint_bytes`` | 64 GiB | size of one file of a checkpoint |
"""

from __future__ import annotations

import math
import os
from typing import Any

from physground.errors import ValidationError

DEFAULTS: dict[str, int] = {
    "count": 1_000_000,
    "frames": 100_000,
    "image_size": 4_096,
    "steps": 100_000_000,
    "shard_size": 100_000,
    "json_bytes": 64 * 2**20,
    "checkpoint_bytes": 64 * 2**30,
}


def maximum(name: str) -> int:
    """The maximum for ``name``: ``PHYSGROUND_MAX_<NAME>`` when set, else the default."""
    env = f"PHYSGROUND_MAX_{name.upper()}"
    text = os.environ.get(env)
    if text is None:
        return DEFAULTS[name]
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(f"{env}={text!r} is not an integer") from None
    if value < 1:
        raise ValidationError(f"{env}={value}, expected >= 1")
    return value


def check(name: str, value: Any, *, what: str, minimum: int = 1) -> int:
    """``value`` as an int within [minimum, maximum(name)]; else a one-line error naming
    ``what`` (e.g. ``"--count"`` or ``"suite scenario rigid/bounce: rollouts"``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value != int(value):
        raise ValidationError(f"{what} = {value!r}, expected an integer")
    value = int(value)
    top = maximum(name)
    if value < minimum:
        raise ValidationError(f"{what} = {value}, expected >= {minimum}")
    if value > top:
        raise ValidationError(
            f"{what} = {value} exceeds the maximum {top:,} (raise it with "
            f"PHYSGROUND_MAX_{name.upper()}=N if this is intended)"
        )
    return value
