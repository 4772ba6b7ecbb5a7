"""Scenario base class and the scenario registry.

A scenario is registered under ``family/name`` and declares its simulator, parameter space
(one distribution per split), the states it emits, the physical laws that hold in it (so
metrics and losses know what applies) and how it renders. Generation is deterministic:
the same params, seed and library versions give the same bytes on the same device.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from physground.errors import ValidationError, did_you_mean
from physground.laws import LAWS  # re-exported: the laws a scenario can declare
from physground.params import ParamSpace
from physground.registry import Registry
from physground.rollout import Rollout

SCENARIOS: Registry[Any] = Registry("scenario", providers=("physground.simulators",))


@dataclass(frozen=True, kw_only=True)
class ScenarioConfig:
    """Settings shared by every scenario: storage length, timestep and rendering."""

    num_frames: int = 60
    dt: float = 1.0 / 30.0
    render: bool = True
    image_size: int = 64  # frame width in pixels (and height, for square frames)
    image_height: int = 0  # frame height in pixels; 0: square (image_size)

    @property
    def frame_width(self) -> int:
        return self.image_size

    @property
    def frame_height(self) -> int:
        return self.image_height or self.image_size

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValidationError(f"num_frames = {self.num_frames}, expected >= 2")
        if not self.dt > 0:
            raise ValidationError(f"dt = {self.dt}, expected > 0 s")
        if self.image_size < 8:
            raise ValidationError(f"image_size = {self.image_size}, expected >= 8 pixels")
        if self.image_height and self.image_height < 8:
            raise ValidationError(f"image_height = {self.image_height}, expected >= 8 pixels "
                                  "(or 0: square frames)")


class Scenario(abc.ABC):
    """Base class; subclasses set the class attributes and implement `simulate`."""

    name: ClassVar[str]
    simulator: ClassVar[str]
    param_space: ClassVar[ParamSpace]
    state_names: ClassVar[tuple[str, ...]]
    laws: ClassVar[frozenset[str]]
    config_type: ClassVar[type[ScenarioConfig]] = ScenarioConfig
    # Bumped whenever the generated data or its scoring changes, so that cached datasets
    # (keyed by content hash, which includes this) are regenerated and runs record it.
    version: ClassVar[str] = "2"  # 2: bounded scores against a second take
    # Config overrides giving the same physics by another discretization (e.g. another
    # integrator or timestep). Re-simulating with them measures the physical noise floor:
    # the `reference` model, which anchors normalized scores at 100.
    reference_overrides: ClassVar[dict[str, Any]] = {}
    # The observation contract (`physground.observation`): which statics a model sees.
    # Given: geometry, pin sets, container size ...; latent: statics that encode a latent
    # parameter (shown only on the conditioned track); withheld: diagnostics, outcome
    # labels and solver settings (never shown). Every emitted static is in one of them.
    given_static: ClassVar[frozenset[str]] = frozenset()
    latent_static: ClassVar[frozenset[str]] = frozenset()
    withheld_static: ClassVar[frozenset[str]] = frozenset()
    # Parameters a model is told (through given statics, or visible as body counts); every
    # other parameter, hence every OOD-shifted one unless listed here, is latent.
    given_params: ClassVar[frozenset[str]] = frozenset()
    # Second take (`second_take`): standard deviation of each parameter's measurement, in
    # the parameter's own unit (see `param_space`). The second physical realisation of a
    # scene draws its parameters within these and re-simulates with `reference_overrides`.
    take_perturbation: ClassVar[dict[str, float]] = {}

    def __init__(self, config: ScenarioConfig | None = None, **overrides: Any) -> None:
        config = config or self.config_type()
        self.config = dataclasses.replace(config, **overrides) if overrides else config
        for law in sorted(self.laws):
            if law not in LAWS:
                raise ValidationError(
                    f"scenario {self.name} declares unknown law '{law}'"
                    f"{did_you_mean(law, LAWS.names())}; register it in "
                    "physground.laws.LAWS (or the physground.laws entry points)")

    @abc.abstractmethod
    def simulate(
        self, params: Sequence[dict[str, float]], seeds: Sequence[int], split: str
    ) -> list[Rollout]:
        """Simulate one rollout per (params, seed); batched where the simulator allows.

        Must raise `SimulationError` for a rollout that blows up instead of returning it.
        """

    def generate(
        self, params: Sequence[dict[str, float]], seeds: Sequence[int], split: str
    ) -> list[Rollout]:
        """`simulate`, then stamp each rollout's meta with the scenario config, library
        versions and a content hash of everything that determines its data."""
        from physground.provenance import content_hash, library_versions

        checked = [self.param_space.validate(p, where=f"{self.name}: ") for p in params]
        rollouts = self.simulate(checked, seeds, split)
        description = self.describe()
        for rollout in rollouts:
            rollout.meta["scenario_config"] = description["config"]
            rollout.meta["versions"] = library_versions()
            rollout.meta["content_hash"] = content_hash(
                {"scenario": description, "params": rollout.params, "seed": rollout.seed,
                 "split": rollout.split, "versions": library_versions()}
            )
        return rollouts

    @classmethod
    def latent_parameters(cls) -> frozenset[str]:
        """Parameters a model must infer from the context: all but ``given_params``."""
        unknown = set(cls.given_params) - set(cls.param_space.names)
        if unknown:
            raise ValueError(f"{cls.name} declares unknown given_params {sorted(unknown)}")
        return frozenset(cls.param_space.names) - cls.given_params
    def take_params(self, params: dict[str, float], seed: int, split: str
                    ) -> dict[str, float]:
        """The parameters of the second take of rollout ``seed``: each declared parameter
        moved by a Gaussian of its measurement precision (deterministic in the seed),
        clipped to its physical range."""
        rng = np.random.default_rng([seed, _stable_int(self.name), _stable_int(split),
                                     _stable_int("second-take")])
        out = dict(params)
        for name, std in sorted(self.take_perturbation.items()):
            if name not in out:
                continue
            param = self.param_space.param(name)
            out[name] = float(np.clip(out[name] + std * rng.standard_normal(),
                                      param.low, param.high))
        return out

    def second_take(self, rollouts: Sequence[Rollout]) -> list[Rollout]:
        """Each rollout re-simulated as a second physical take of the same scene:
        parameters within measurement precision (`take_perturbation`), another
        discretization (`reference_overrides`); same length, seed and split."""
        if not rollouts:
            return []
        config = dataclasses.replace(self.config, **self.reference_overrides,
                                     num_frames=rollouts[0].num_frames)
        other = type(self)(config)
        by_split: dict[str, list[int]] = {}
        for i, rollout in enumerate(rollouts):
            by_split.setdefault(rollout.split, []).append(i)
        out: list[Rollout | None] = [None] * len(rollouts)
        for split, indices in by_split.items():
            params = [self.param_space.validate(
                self.take_params(dict(rollouts[i].params), rollouts[i].seed, split))
                for i in indices]
            takes = other.simulate(params, [rollouts[i].seed for i in indices], split)
            for i, take in zip(indices, takes, strict=True):
                out[i] = take
        return [t for t in out if t is not None]

    def check(self, rollout: Rollout) -> str | None:
        """Scenario-specific blow-up check (e.g. energy explosion); None when valid."""
        return None

    def sample_params(self, split: str, seed: int) -> dict[str, float]:
        """Parameters of rollout ``seed`` in ``split``, drawn deterministically."""
        rng = np.random.default_rng([seed, _stable_int(self.name), _stable_int(split)])
        return self.param_space.sample(split, rng)

    def describe(self) -> dict[str, Any]:
        """Everything that determines generated data, for content hashes and manifests."""
        return {
            "scenario": self.name,
            "version": self.version,
            "simulator": self.simulator,
            "config": dataclasses.asdict(self.config),
            "laws": sorted(self.laws),
            "states": list(self.state_names),
        }


def _stable_int(text: str) -> int:
    """A process-independent integer from a string (Python's hash() is salted)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def scenario_class(name: str) -> type[Scenario]:
    """The class of the registered scenario ``name`` (through functools.partial variants)."""
    factory = SCENARIOS.get(name)
    while not isinstance(factory, type):
        factory = factory.func
    return factory


def get_scenario(name: str, **overrides: Any) -> Scenario:
    """Instantiate the scenario registered under ``name`` with config overrides."""
    factory = SCENARIOS.get(name)
    return factory(**overrides)
