"""The metric registry: `Metric` descriptors and `METRICS`.

A metric is a pure function of (full ground-truth Rollout, Prediction) returning float64
values per horizon step 1..H. Built-in metrics are written once, vectorized over a stack
of rollouts (`physground.metrics.batch.Batch`); the per-rollout ``fn`` is that batched
function applied to a batch of one, so the single and the batched path cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from physground.errors import PhysgroundError, ValidationError
from physground.registry import Registry

if TYPE_CHECKING:
    import torch

    from physground.metrics.batch import Batch
    from physground.rollout import Prediction, Rollout

MODALITIES = ("state", "pixels")
# Score families: each counts once in a scenario's aggregate, whatever its metric count.
FAMILIES = ("accuracy", "conservation", "contact", "pixels")
# How a per-step metric becomes one number per rollout: the mean over steps 1..H, or the
# value at step H (for running metrics whose value at t already covers steps 1..t).
REDUCTIONS = ("mean", "last")
# Controlled corruptions of the truth (`physground.benchmarks.validity`): nuisances are
# not physics errors (a metric declares those it tolerates: score >= 90), violations are
# (a metric declares those it detects: score falls monotonically with the magnitude).
NUISANCES = ("state_noise", "pixel_noise", "pixel_shift", "downscale", "quantise",
             "h264_crf23", "downscale_half", "h264_crf23_large", "gif")
# The deliveries of a video file the benchmark tolerates by definition: every pixel metric
# and every state metric derivable from pixels declares them (a delivered prediction's floor
# is capped by the truth's error through them, `physground.metrics.scores`).
TOLERATED_DELIVERIES = ("h264_crf23", "downscale_half")
VIOLATIONS = ("frozen", "time_reversed", "delayed", "gravity_scaled", "restitution_changed",
              "energy_injected", "mass_not_conserved", "vanish_reappear",
              "interpenetration", "teleport")
LAWS_MODES = ("any", "all")


def laws_hold(required: Iterable[str], mode: str, declared: Iterable[str]) -> bool:
    """Whether a scenario declaring ``declared`` laws satisfies ``required`` under ``mode``
    (``"any"``: at least one of them; ``"all"``: every one). Nothing required: True."""
    need, have = frozenset(required), frozenset(declared)
    if not need:
        return True
    return need <= have if mode == "all" else bool(need & have)


class MetricUndefinedError(PhysgroundError):
    """The metric has no value for this *ground truth* (e.g. no bounce to estimate a
    restitution from). Rows are kept with the reason but, unlike model failures, are
    excluded from normalized scores because every model gets the same verdict."""


UNDEFINED_PREFIX = "undefined: "


@dataclass(frozen=True, kw_only=True)
class Metric:
    """A registered metric.

    ``requires_states``: state names both truth and prediction must have; an entry may list
    alternatives separated by ``|`` (``"pos|x"``: rigid positions or cloth/SPH positions).
    ``requires_laws`` with ``laws_mode``: the metric applies only if the scenario declares
    ``"any"`` (at least one) or ``"all"`` of them (empty: whatever its laws).
    ``batch_fn`` computes [R, H] values for a stack of R rollouts; ``fn`` is the
    single-rollout form returning [H] float64.

    Scoring declarations (`physground.metrics.scores`): ``family`` (one of `FAMILIES`);
    ``floor``, the absolute resolution of the metric's error in ``unit`` (an error at or
    below it is not measurable, so no score denominator is ever round-off); ``reduce``
    over the horizon (`REDUCTIONS`); ``decibel``: the value is ``10 log10(1 / x)`` of an
    error ``x`` (PSNR), which is scored in ``x``; ``min_horizon``: fewer predicted steps
    leave the metric undefined (with the reason) instead of failing. ``detects`` and
    ``tolerates``: the violations and nuisances the metric validity suite holds it to
    (a metric read from frames tolerates `TOLERATED_DELIVERIES` whatever it declares).
    """

    name: str
    fn: Callable[[Rollout, Prediction], np.ndarray]
    higher_is_better: bool
    requires_states: tuple[str, ...] = ()
    requires_laws: frozenset[str] = frozenset()
    laws_mode: str = "any"
    modality: str = "state"
    description: str = ""
    unit: str = ""
    batch_fn: Callable[[Batch], torch.Tensor] | None = field(default=None, repr=False)
    # rigid-body positions may come from soft object masks of predicted frames
    derivable_from_pixels: bool = False
    family: str = "accuracy"
    floor: float = 0.0
    reduce: str = "mean"
    decibel: bool = False
    min_horizon: int = 1
    detects: frozenset[str] = frozenset()
    tolerates: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.laws_mode not in LAWS_MODES:
            raise ValidationError(f"metric {self.name}: laws_mode '{self.laws_mode}', expected "
                                  f"one of {LAWS_MODES}")
        if self.modality not in MODALITIES:
            raise ValidationError(
                f"metric {self.name}: modality '{self.modality}', expected one of {MODALITIES}"
            )
        for what, value, allowed in (("family", {self.family}, FAMILIES),
                                     ("reduce", {self.reduce}, REDUCTIONS),
                                     ("detects", self.detects, VIOLATIONS),
                                     ("tolerates", self.tolerates, NUISANCES)):
            unknown = set(value) - set(allowed)
            if unknown:
                raise ValidationError(
                    f"metric {self.name}: {what} {sorted(unknown)}, expected among {allowed}")
        if self.modality == "pixels" or self.derivable_from_pixels:
            object.__setattr__(self, "tolerates", frozenset(self.tolerates)
                               | frozenset(TOLERATED_DELIVERIES))
        if not (self.floor >= 0.0 and self.min_horizon >= 1):
            raise ValidationError(f"metric {self.name}: floor {self.floor} must be >= 0 and "
                                  f"min_horizon {self.min_horizon} >= 1")

    @property
    def label(self) -> str:
        """``name [unit]`` for tables and figure axes."""
        return f"{self.name} [{self.unit or '1'}]"

    def applies_to(self, scenario: Any, modalities: Iterable[str] | None = None) -> bool:
        """Whether the scenario emits the required states (or frames) and laws, and a
        model with ``modalities`` (default: both) can be scored on it: a pixels-only model
        gets pixel metrics and the state metrics derivable from rigid-body masks."""
        if not laws_hold(self.requires_laws, self.laws_mode, getattr(scenario, "laws", ())):
            return False
        config = getattr(scenario, "config", None)
        renders = bool(getattr(config, "render", True))
        model = frozenset(MODALITIES if modalities is None else modalities)
        if self.modality == "pixels":
            return renders and "pixels" in model
        names = set(getattr(scenario, "state_names", ()))
        if not all(any(alt in names for alt in req.split("|")) for req in self.requires_states):
            return False
        if "state" in model:
            return True
        return renders and self.scorable_with(model, names)

    def scorable_with(self, modalities: Iterable[str], state_names: Iterable[str]) -> bool:
        """Whether a model with ``modalities`` can be scored on this metric in a scenario
        with ``state_names`` (that emits what the metric needs): pixel metrics need
        frames; state metrics need states, or frames when their positions can come from
        object masks, i.e. one mask per rigid body (states ``pos``; cloth nodes and
        particles have no masks of their own)."""
        have = set(modalities)
        if self.modality == "pixels":
            return "pixels" in have
        return "state" in have or ("pixels" in have and self.derivable_from_pixels
                                   and "pos" in set(state_names))


class _SingleFromBatch:
    """``fn(truth, prediction) -> [H]`` built from a batched metric function."""

    def __init__(self, name: str, batch_fn: Callable[[Batch], torch.Tensor]) -> None:
        self.name = name
        self.batch_fn = batch_fn

    def __call__(self, truth: Rollout, prediction: Prediction) -> np.ndarray:
        from physground.metrics.batch import Batch

        batch = Batch.stack([truth], [prediction])
        return batch_values(self.batch_fn, batch)[0]


def batch_values(batch_fn: Callable[[Batch], torch.Tensor], batch: Batch) -> np.ndarray:
    """Run a batched metric and check its [R, H] output."""
    import torch

    out = batch_fn(batch).detach().to("cpu", dtype=torch.float64).numpy()
    want = (batch.size, batch.horizon)
    if out.shape != want:
        out = np.broadcast_to(out.reshape(out.shape + (1,) * (2 - out.ndim)), want).copy()
    return out


def batched_metric(
    name: str,
    batch_fn: Callable[[Batch], torch.Tensor],
    *,
    higher_is_better: bool,
    requires_states: tuple[str, ...] = (),
    requires_laws: frozenset[str] | set[str] = frozenset(),
    laws_mode: str = "any",
    modality: str = "state",
    description: str = "",
    unit: str = "",
    derivable_from_pixels: bool = False,
    tags: Iterable[str] = (),
    register: bool = True,
    **scoring: Any,
) -> Metric:
    """A `Metric` whose single-rollout ``fn`` is ``batch_fn`` on a batch of one, registered
    in `METRICS` under ``name`` with ``tags`` (the one place a metric is registered);
    ``scoring`` holds the scoring declarations (family, floor, reduce, detects ...)."""
    for key in ("detects", "tolerates"):
        if key in scoring:
            scoring[key] = frozenset(scoring[key])
    metric = Metric(
        name=name, fn=_SingleFromBatch(name, batch_fn), higher_is_better=higher_is_better,
        requires_states=requires_states, requires_laws=frozenset(requires_laws),
        laws_mode=laws_mode, modality=modality, description=description, unit=unit,
        batch_fn=batch_fn, derivable_from_pixels=derivable_from_pixels, **scoring,
    )
    if register:
        METRICS.register(name, metric, tags=tags)
    return metric


# The built-in metric modules register their metrics where they define them (with
# `batched_metric`); they are imported on the first lookup, third-party metrics come from
# the entry-point group ``physground.metrics``.
METRICS: Registry[Metric] = Registry("metric", providers=tuple(
    f"physground.metrics.{m}" for m in ("trajectory", "plausibility", "fields", "pixels",
                                             "physics_iq")))


def get_metric(name: str) -> Metric:
    """The metric registered under ``name`` (with a 'did you mean' error otherwise)."""
    return METRICS.get(name)
