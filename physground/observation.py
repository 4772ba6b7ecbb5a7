"""The observation contract: what a world model is shown of a rollout, and nothing more.

A model receives an `Observation`, never a `Rollout`: the first ``context`` frames, states
and object masks, the camera, ``dt``, and only the statics its scenario declares *given*
(geometry, pin sets, container size ...). Everything else stays with the benchmark:

- ``params`` (the values that generated the rollout, e.g. the OOD gravity),
- ``meta`` (simulator diagnostics such as the energy over all T frames),
- the rollout's ``seed`` and ``split`` (from which its parameters could be re-drawn),
- every frame after the context,
- statics that encode a *latent* parameter (gravity, restitution, friction, wind,
  buoyancy, masses ...) and diagnostics (outcome labels, solver settings).

Each scenario declares its statics as given, latent or withheld and its parameters as
given or latent (`Scenario.given_static`, ``latent_static``, ``withheld_static``,
``given_params``); every parameter that is not declared given is latent, so every
OOD-shifted one is latent unless a scenario opts it out (visible geometry, body counts).

A suite may opt into the *conditioned* track: the latent parameters are then given as
``conditioning`` values and the latent statics are shown too. Its results carry
``track = "conditioned"`` and are never mixed with the default track's.

Reading anything withheld raises `LatentAccessError` (a `PhysgroundError`), so a model that
tries is scored as a failure of that rollout, with the reason, instead of silently using it.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physground.errors import PhysgroundError, UnknownNameError, ValidationError
from physground.rollout import Camera, Rollout

TRACKS: tuple[str, ...] = ("default", "conditioned")

# The contract in two sentences, for `physground evaluate --help` and the README.
CONTRACT_HELP = (
    "What a model sees: an Observation of each test rollout, that is its first `context` "
    "frames, states and object masks, the camera, dt and the statics its scenario declares "
    "given (geometry, pins, container); never the parameters, the simulator's meta, a "
    "frame after the context, or a latent static (gravity, restitution, friction, wind, "
    "buoyancy, viscosity, masses: every OOD-shifted parameter unless declared given). "
    "export-context writes exactly this observation (context.npz). A model that reads a "
    "latent value is scored as failed. Suites with tracks = [\"default\", \"conditioned\"] "
    "also score models told the latent parameters, as a separate track with its own "
    "report (report/conditioned/); the reference re-simulation is a privileged anchor.")

# Rollout fields that never reach a model (read through an Observation they raise).
_WITHHELD_FIELDS = {
    "params": "the parameters that generated the rollout are not observed",
    "meta": "simulator diagnostics (meta) are not observed",
    "seed": "the rollout's seed is not observed (its parameters could be re-drawn from it)",
    "split": "the rollout's split is not observed",
}


class LatentAccessError(PhysgroundError, KeyError):
    """A model read something the observation withholds (a latent parameter or static,
    ``params``, ``meta``). A `KeyError`, so ``static.get(name)`` still returns None."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class GivenStatics(Mapping[str, np.ndarray]):
    """The statics a model may read; a latent or withheld name raises `LatentAccessError`
    saying why it is not there."""

    def __init__(self, values: Mapping[str, Any], *, scenario: str,
                 latent: frozenset[str] = frozenset(),
                 withheld: frozenset[str] = frozenset()) -> None:
        self._values = {k: _read_only(v) for k, v in values.items()}
        self._latent = frozenset(latent) - set(self._values)
        self._withheld = frozenset(withheld) - set(self._values) - self._latent
        self._scenario = scenario

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._values:
            return self._values[name]
        if name in self._latent:
            raise LatentAccessError(
                f"static '{name}' of {self._scenario} is latent: it is not part of the "
                "observation (infer it from the context frames and states, or evaluate on "
                "the conditioned track)")
        if name in self._withheld:
            raise LatentAccessError(
                f"static '{name}' of {self._scenario} is withheld from every model (a "
                "diagnostic, outcome label or solver setting, not part of the observation)")
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __repr__(self) -> str:
        return f"GivenStatics({sorted(self._values)})"


def _read_only(value: Any) -> np.ndarray:
    array = np.array(value)  # a copy: a model cannot write into the ground truth
    array.flags.writeable = False
    return array


@dataclass(frozen=True, kw_only=True, eq=False)
class Observation:
    """What a model sees of one rollout: frames [0, context) and the declared givens.

    ``states``: the context states (leading axis ``context``, SI units, world coordinates);
    ``frames`` uint8 [context,H,W,3] and ``masks`` [context,H,W] (object ids) when
    rendered, with the ``camera``; ``static``: the given statics (`GivenStatics`);
    ``track``: ``default`` or ``conditioned``; ``conditioning``: the latent parameter values
    (conditioned track only, else empty). All arrays are read-only copies.
    """

    scenario: str
    dt: float
    context: int
    states: Mapping[str, np.ndarray] = field(default_factory=dict)
    frames: np.ndarray | None = None
    masks: np.ndarray | None = None
    camera: Camera | None = None
    static: GivenStatics = field(default_factory=lambda: GivenStatics({}, scenario=""))
    track: str = "default"
    conditioning: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.track not in TRACKS:
            raise ValidationError(f"observation track is '{self.track}', expected one of "
                                  f"{TRACKS}")
        if self.track == "default" and self.conditioning:
            raise ValidationError("observation of the default track has conditioning values "
                                  f"{sorted(self.conditioning)}; only the conditioned track "
                                  "may give latent parameters")
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise ValidationError(f"observation dt is {self.dt}, expected a positive number of s")
        for name, array in self.time_arrays().items():
            if np.ndim(array) == 0 or np.shape(array)[0] != self.context:
                raise ValidationError(
                    f"observation {name} has shape {list(np.shape(array))}, expected "
                    f"{self.context} context frames on the leading axis")

    def __getattr__(self, name: str) -> Any:
        reason = _WITHHELD_FIELDS.get(name)
        if reason is not None:
            raise LatentAccessError(f"Observation.{name}: {reason}; a model sees only the "
                                    "context frames, states, camera, dt and given statics")
        raise AttributeError(f"'Observation' object has no attribute '{name}'")

    @property
    def num_frames(self) -> int:
        """Number of context frames (what a Rollout calls ``num_frames``)."""
        return self.context

    def time_arrays(self) -> dict[str, np.ndarray]:
        """Every time-indexed array: states, frames and masks, by name."""
        out = {f"states['{k}']": v for k, v in self.states.items()}
        if self.frames is not None:
            out["frames"] = self.frames
        if self.masks is not None:
            out["masks"] = self.masks
        return out


@dataclass(frozen=True)
class ObservationSpec:
    """A scenario's declaration of what a model may see (names only, no values)."""

    scenario: str
    given_static: frozenset[str]
    latent_static: frozenset[str]
    withheld_static: frozenset[str]
    given_params: frozenset[str]
    latent_params: frozenset[str]

    def visible_static(self, track: str) -> frozenset[str]:
        """Statics shown on ``track``: the given ones, plus the latent ones when
        conditioned. Withheld statics (diagnostics, solver settings) are never shown."""
        return self.given_static | (self.latent_static if track == "conditioned" else
                                    frozenset())


def observation_spec(scenario: str) -> ObservationSpec:
    """The declared observation of the registered scenario ``scenario``."""
    from physground.scenario import SCENARIOS, scenario_class

    if scenario not in SCENARIOS:
        raise UnknownNameError(
            f"cannot observe a rollout of '{scenario}': it is no registered scenario, so "
            "nothing declares which of its statics a model may see")
    cls = scenario_class(scenario)
    return ObservationSpec(
        scenario=scenario, given_static=frozenset(cls.given_static),
        latent_static=frozenset(cls.latent_static),
        withheld_static=frozenset(cls.withheld_static),
        given_params=frozenset(cls.given_params),
        latent_params=frozenset(cls.latent_parameters()),
    )


def observe(rollout: Rollout, context: int, *, track: str = "default") -> Observation:
    """The observation of the first ``context`` frames of ``rollout`` on ``track``.

    ``context`` may equal the rollout length only to view whole *training* rollouts as a
    model sees them; evaluation shows fewer frames than it scores (`Rollout.context`).
    """
    if not 1 <= context <= rollout.num_frames:
        raise ValidationError(f"context of {context} frames needs 1 <= context <= "
                              f"{rollout.num_frames} (rollout length of {rollout.scenario})")
    if track not in TRACKS:
        raise ValidationError(f"track is '{track}', expected one of {TRACKS}")
    spec = observation_spec(rollout.scenario)
    visible = spec.visible_static(track)
    static = {k: v for k, v in rollout.static.items() if k in visible}
    conditioning = ({k: float(v) for k, v in rollout.params.items() if k in spec.latent_params}
                    if track == "conditioned" else {})
    window = slice(0, context)
    return Observation(
        scenario=rollout.scenario, dt=float(rollout.dt), context=context,
        states={k: _read_only(np.asarray(v)[window]) for k, v in rollout.states.items()},
        frames=None if rollout.frames is None else _read_only(rollout.frames[window]),
        masks=None if rollout.masks is None else _read_only(rollout.masks[window]),
        camera=rollout.camera,
        static=GivenStatics(static, scenario=rollout.scenario,
                            latent=spec.latent_static & set(rollout.static),
                            withheld=frozenset(rollout.static) - set(static)),
        track=track, conditioning=conditioning,
    )


# ----------------------------------------------------------------------- serialization

_FORMAT = "physground-observation/1"


def observation_arrays(observation: Observation) -> dict[str, np.ndarray]:
    """The observation as flat named arrays (the ``context.npz`` of ``export-context``):
    ``dt``, ``context``, ``track``, states under their own names, ``frames``, ``masks``,
    ``static__<name>`` for each given static, ``camera__intrinsics``/``extrinsics``/``size``
    and, on the conditioned track, ``conditioning__<param>``. Nothing else."""
    out: dict[str, np.ndarray] = {
        "format": np.array(_FORMAT), "scenario": np.array(observation.scenario),
        "dt": np.array(observation.dt, dtype=np.float64),
        "context": np.array(observation.context, dtype=np.int64),
        "track": np.array(observation.track),
    }
    for name, value in observation.states.items():
        out[name] = np.asarray(value)
    if observation.frames is not None:
        out["frames"] = np.asarray(observation.frames)
    if observation.masks is not None:
        out["masks"] = np.asarray(observation.masks)
    for name, array in observation.static.items():
        if np.asarray(array).dtype != object:
            out[f"static__{name}"] = np.asarray(array)
    if observation.camera is not None:
        out["camera__intrinsics"] = np.asarray(observation.camera.intrinsics)
        out["camera__extrinsics"] = np.asarray(observation.camera.extrinsics)
        out["camera__size"] = np.array([observation.camera.width, observation.camera.height])
    for name, number in observation.conditioning.items():
        out[f"conditioning__{name}"] = np.array(number, dtype=np.float64)
    return out


def save_observation(path: Path, observation: Observation) -> None:
    """Write ``observation`` to ``path`` (compressed npz, written atomically)."""
    from physground.atomic import atomic_path

    arrays: dict[str, Any] = observation_arrays(observation)
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


_RESERVED = {"format", "scenario", "dt", "context", "track", "frames", "masks"}


def load_observation(path: Path) -> Observation:
    """Read an observation written by `save_observation` (no pickles; sizes checked)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValidationError(f"{path}: not a readable observation npz ({err})") from None
    if "format" not in arrays or str(arrays["format"]) != _FORMAT:
        raise ValidationError(f"{path}: array 'format' is missing or not '{_FORMAT}'")
    for key in ("scenario", "dt", "context", "track"):
        if key not in arrays or np.ndim(arrays[key]) != 0:
            raise ValidationError(f"{path}: array '{key}' is missing or not a scalar")
    states: dict[str, np.ndarray] = {}
    static: dict[str, np.ndarray] = {}
    conditioning: dict[str, float] = {}
    for key, value in arrays.items():
        if key.startswith("static__"):
            static[key[8:]] = value
        elif key.startswith("conditioning__"):
            conditioning[key[14:]] = float(value)
        elif not key.startswith("camera__") and key not in _RESERVED:
            states[key] = value
    scenario = str(arrays["scenario"])
    try:
        camera = None
        if "camera__intrinsics" in arrays:
            if np.shape(arrays.get("camera__size", np.zeros(0))) != (2,):
                raise ValidationError("array 'camera__size' must be [width, height]")
            width, height = (int(v) for v in arrays["camera__size"])
            camera = Camera(intrinsics=arrays["camera__intrinsics"],
                            extrinsics=arrays.get("camera__extrinsics", np.zeros(0)),
                            width=width, height=height)
        return Observation(
            scenario=scenario, dt=float(arrays["dt"]), context=int(arrays["context"]),
            states={k: _read_only(v) for k, v in states.items()},
            frames=_read_only(arrays["frames"]) if "frames" in arrays else None,
            masks=_read_only(arrays["masks"]) if "masks" in arrays else None,
            camera=camera, static=GivenStatics(static, scenario=scenario),
            track=str(arrays["track"]), conditioning=conditioning,
        )
    except ValidationError as err:
        raise ValidationError(f"{path}: {err}") from None

