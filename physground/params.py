"""Physical parameter spaces with one sampling distribution per split.

Each parameter has a physically valid range (checked for every value ever used) and, per
split, either a continuous ``Uniform`` interval or a discrete ``Choice``. The OOD split
moves one or more parameters outside the training range (possibly several at once: a
combinatorial split); `ParamSpace` proves at construction that every OOD interval that
differs from training is disjoint from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from physground.errors import UnknownNameError, ValidationError, did_you_mean
from physground.rollout import SPLITS


@dataclass(frozen=True)
class Uniform:
    """Continuous uniform distribution on [low, high]."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValidationError(f"Uniform({self.low}, {self.high}) needs low <= high")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high)) if self.high > self.low else self.low

    @property
    def bounds(self) -> tuple[float, float]:
        return (self.low, self.high)

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" if self.high > self.low else f"{self.low:g}"


@dataclass(frozen=True)
class Choice:
    """Discrete uniform choice among values (e.g. number of bodies)."""

    values: tuple[float, ...]

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.values[int(rng.integers(len(self.values)))])

    @property
    def bounds(self) -> tuple[float, float]:
        return (min(self.values), max(self.values))

    def __str__(self) -> str:
        return "{" + ", ".join(f"{v:g}" for v in self.values) + "}"


Distribution = Uniform | Choice


@dataclass(frozen=True)
class Param:
    """One physical parameter: SI unit, physically valid closed range, description."""

    name: str
    unit: str
    low: float = -math.inf
    high: float = math.inf
    doc: str = ""

    def check(self, value: float, where: str = "") -> None:
        if not (math.isfinite(value) and self.low <= value <= self.high):
            raise ValidationError(
                f"{where}parameter '{self.name}' = {value:g} {self.unit} is outside its "
                f"physical range [{self.low:g}, {self.high:g}]"
            )


@dataclass(frozen=True)
class ParamSpace:
    """Parameters of a scenario and their per-split distributions."""

    params: tuple[Param, ...]
    splits: Mapping[str, Mapping[str, Distribution]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        for split in SPLITS:
            if split not in self.splits:
                raise ValidationError(f"ParamSpace has no distribution for split '{split}'")
            dists = self.splits[split]
            if set(dists) != set(names):
                raise ValidationError(
                    f"split '{split}' defines {sorted(dists)}, expected exactly {sorted(names)}"
                )
            for param in self.params:
                lo, hi = dists[param.name].bounds
                param.check(lo, f"split '{split}': ")
                param.check(hi, f"split '{split}': ")
        moved = self.ood_params()
        if not moved:
            raise ValidationError("test_ood moves no parameter outside the training range")
        for name in moved:
            lo, hi = self.splits["test_ood"][name].bounds
            tlo, thi = self.splits["train"][name].bounds
            if not (hi < tlo or lo > thi):
                raise ValidationError(
                    f"test_ood range of '{name}' [{lo:g}, {hi:g}] overlaps the training "
                    f"range [{tlo:g}, {thi:g}]"
                )

    @classmethod
    def from_train(
        cls,
        params: tuple[Param, ...],
        train: Mapping[str, Distribution],
        ood: Mapping[str, Distribution],
        test_id: Mapping[str, Distribution] | None = None,
    ) -> ParamSpace:
        """The common case: test_id draws like train; test_ood replaces the ``ood`` entries."""
        return cls(
            params,
            {
                "train": dict(train),
                "test_id": dict(test_id if test_id is not None else train),
                "test_ood": {**train, **ood},
            },
        )

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise UnknownNameError(
            f"unknown parameter '{name}'{did_you_mean(name, self.names)}; known: "
            + ", ".join(self.names)
        )

    def ood_params(self) -> list[str]:
        """Parameters whose test_ood distribution differs from training."""
        return [n for n in self.names if self.splits["test_ood"][n] != self.splits["train"][n]]

    def sample(self, split: str, rng: np.random.Generator) -> dict[str, float]:
        if split not in SPLITS:
            raise ValidationError(f"unknown split '{split}', expected one of {SPLITS}")
        return {p.name: self.splits[split][p.name].sample(rng) for p in self.params}

    def validate(self, params: Mapping[str, Any], where: str = "") -> dict[str, float]:
        """Check names and physical ranges; return the params as a dict of floats."""
        out: dict[str, float] = {}
        for name, value in params.items():
            param = self.param(name)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValidationError(
                    f"{where}parameter '{name}' = {value!r} is not a number"
                ) from None
            param.check(number, where)
            out[name] = number
        missing = set(self.names) - set(out)
        if missing:
            raise ValidationError(f"{where}missing parameters: {sorted(missing)}")
        return out

    def in_training_range(self, params: Mapping[str, float]) -> bool:
        """True when every parameter lies inside its training distribution's bounds."""
        return all(
            self.splits["train"][n].bounds[0] <= params[n] <= self.splits["train"][n].bounds[1]
            for n in self.names
        )

    def describe(self) -> list[dict[str, str]]:
        """Rows for display: name, unit, physical range, and the range per split."""
        rows = []
        for p in self.params:
            row = {"param": p.name, "unit": p.unit, "valid": f"[{p.low:g}, {p.high:g}]"}
            row.update({s: str(self.splits[s][p.name]) for s in SPLITS})
            rows.append(row)
        return rows

