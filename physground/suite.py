"""Benchmark suites: TOML files validated into typed, frozen configs.

A suite names scenarios (with config overrides and rollout counts), splits, models and
metrics. Every key is checked: a typo names the key and the closest valid one.

    name = "quick"
    version = "1"                                  # bump when the suite's results change
    seed = 0
    tracks = ["default", "conditioned"]            # optional; default: ["default"]
    models = ["copy-last", "constant-velocity", "reference"]
    metrics = ["position_rmse", "energy_drift"]   # or "auto": all that apply
    compare = [["state-gnn", "constant-velocity"]]  # paired tests in the report
    samples = 1               # predictions per rollout (stochastic models: mean +- std)

    [defaults]
    rollouts = 8
    context = 6
    horizon = 20
    splits = ["test_id", "test_ood"]

    [[scenario]]
    name = "rigid/projectile"
    config = { num_frames = 40 }

    [[scenario]]
    name = "tag:cloth"          # every scenario tagged cloth (explicit entries win)
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from physground import limits
from physground.errors import PhysgroundError, UnknownNameError, ValidationError, did_you_mean
from physground.provenance import content_hash
from physground.rollout import SPLITS


@dataclass(frozen=True, kw_only=True)
class ScenarioEntry:
    """One scenario of a suite; unset fields take the suite's ``[defaults]``."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    rollouts: int = 8
    train_rollouts: int = 32
    context: int = 6
    horizon: int = 20
    splits: tuple[str, ...] = ("test_id", "test_ood")
    models: tuple[str, ...] = ()  # extra models for this scenario only

    def __post_init__(self) -> None:
        for key in ("rollouts", "train_rollouts", "context", "horizon"):
            if getattr(self, key) < 1:
                raise ValidationError(f"scenario '{self.name}': {key} must be >= 1")
        for key in ("rollouts", "train_rollouts"):
            limits.check("count", getattr(self, key), what=f"scenario '{self.name}': {key}")
        for split in self.splits:
            if split not in SPLITS:
                raise ValidationError(
                    f"scenario '{self.name}': split '{split}' is not one of {SPLITS}"
                )


@dataclass(frozen=True, kw_only=True)
class TrainingEntry:
    """How the runner trains a learned model before evaluating it (short, for suites).

    ``scenario`` (a name or ``tag:NAME``) restricts the entry to those scenarios; an entry
    with a scenario wins over one without. ``options`` are training settings
    (`physground.learned.training.TrainConfig` fields: ``lr``, ``batch_size``, ``unroll``,
    ``model_config`` ...).
    """

    model: str
    steps: int = 200
    options: dict[str, Any] = field(default_factory=dict)
    scenario: str | None = None

    def __post_init__(self) -> None:
        limits.check("steps", self.steps, what=f"training of '{self.model}': steps")

    def applies(self, model: str, scenario: str) -> bool:
        """Whether this entry configures ``model`` on ``scenario``."""
        if self.model != model:
            return False
        if self.scenario is None:
            return True
        from physground.scenario import SCENARIOS

        return scenario in SCENARIOS.select([self.scenario])


@dataclass(frozen=True, kw_only=True)
class Suite:
    """A benchmark suite. ``version`` is the suite file's own version string (recorded in
    every run); ``tracks`` the evaluation tracks: ``default`` (models see only the
    observation) and, when a suite opts in, ``conditioned`` (latent parameters given),
    reported apart."""

    name: str
    version: str = "1"
    description: str = ""
    tracks: tuple[str, ...] = ("default",)
    seed: int = 0
    models: tuple[str, ...] = ()
    metrics: tuple[str, ...] | str = "auto"
    scenarios: tuple[ScenarioEntry, ...] = ()
    training: tuple[TrainingEntry, ...] = ()
    compare: tuple[tuple[str, str], ...] = ()  # model pairs for paired tests in the report
    samples: int = 1  # predictions per rollout of each model (stochastic models)
    source: str = ""  # the file it came from, for messages only

    def config_hash(self) -> str:
        """Hash of what determines the results (not the description, report pairs or the
        file it came from), so that editing those reuses a finished run."""
        data = dataclasses.asdict(self)
        for key in ("source", "description", "compare"):
            data.pop(key)
        if data["samples"] == 1:  # the default leaves hashes of earlier suites unchanged
            data.pop("samples")
        return content_hash(data)


_TOP_KEYS = {"name", "version", "description", "tracks", "seed", "models", "metrics",
             "defaults", "scenario", "training", "compare", "samples"}
_ENTRY_KEYS = {f.name for f in dataclasses.fields(ScenarioEntry)}
_TRAIN_KEYS = {"model", "steps", "options", "scenario"}


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ValidationError(
                f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}; "
                f"expected one of {sorted(allowed)}"
            )


def _typed(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if isinstance(value, bool) and kind is int or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValidationError(f"{where} is {value!r}, expected {names}")
    return value


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    _typed(value, list, where)
    return tuple(_typed(v, str, f"{where}[{i}]") for i, v in enumerate(value))


def parse_suite(data: Mapping[str, Any], source: str = "<suite>") -> Suite:
    """Validate a parsed TOML table into a `Suite` (names checked against registries)."""
    from physground.metrics import METRICS  # noqa: F401  (registry providers)
    from physground.scenario import SCENARIOS
    from physground.world_model import MODELS

    _check_keys(data, _TOP_KEYS, source)
    if "name" not in data:
        raise ValidationError(f"{source}: missing key 'name'")
    defaults = data.get("defaults", {})
    _typed(defaults, dict, f"{source}: defaults")
    _check_keys(defaults, _ENTRY_KEYS - {"name", "config"}, f"{source}: [defaults]")
    scenario_tables = _typed(data.get("scenario", []), list, f"{source}: scenario")
    if not scenario_tables:
        raise ValidationError(f"{source}: no [[scenario]] tables")
    entries = []
    explicit = {t.get("name") for t in scenario_tables if isinstance(t, dict)}
    for i, table in enumerate(scenario_tables):
        where = f"{source}: scenario[{i}]"
        _typed(table, dict, where)
        _check_keys(table, _ENTRY_KEYS, where)
        merged = {**defaults, **table}
        if "name" not in merged:
            raise ValidationError(f"{where}: missing key 'name'")
        pattern = _typed(merged["name"], str, f"{where}.name")
        try:
            names = SCENARIOS.select([pattern])
        except UnknownNameError as err:
            raise ValidationError(f"{where}.name: {err}") from None
        if pattern.startswith("tag:"):  # an explicit entry elsewhere wins over the tag
            names = [n for n in names if n not in explicit]
        for name in names:
            entries.append(_scenario_entry(name, merged, where))
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise ValidationError(f"{source}: scenario '{entry.name}' is listed twice")
        seen.add(entry.name)
    models = _str_list(data.get("models", []), f"{source}: models")
    for model in models:
        _known(MODELS, model, f"{source}: models")
    metrics_value = data.get("metrics", "auto")
    if isinstance(metrics_value, str):
        if metrics_value != "auto":
            raise ValidationError(f"{source}: metrics is '{metrics_value}', expected 'auto' "
                                  "or a list of metric names")
        metrics: tuple[str, ...] | str = "auto"
    else:
        metrics = _str_list(metrics_value, f"{source}: metrics")
        from physground.metrics import METRICS as metric_registry

        for metric in metrics:
            _known(metric_registry, metric, f"{source}: metrics")
    tracks = _str_list(data.get("tracks", ["default"]), f"{source}: tracks")
    from physground.observation import TRACKS

    for track in tracks:
        if track not in TRACKS:
            raise ValidationError(f"{source}: tracks has '{track}'{did_you_mean(track, TRACKS)}"
                                  f"; expected a list of {list(TRACKS)}")
    if not tracks or len(set(tracks)) != len(tracks):
        raise ValidationError(f"{source}: tracks is {list(tracks)}, expected distinct names "
                              f"from {list(TRACKS)}")
    version = data.get("version", "1")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    training = []
    for i, table in enumerate(_typed(data.get("training", []), list, f"{source}: training")):
        where = f"{source}: training[{i}]"
        _typed(table, dict, where)
        _check_keys(table, _TRAIN_KEYS, where)
        if "model" not in table:
            raise ValidationError(f"{where}: missing key 'model'")
        _known(MODELS, table["model"], f"{where}.model")
        scenario = table.get("scenario")
        if scenario is not None:
            _typed(scenario, str, f"{where}.scenario")
            try:
                SCENARIOS.select([scenario])
            except UnknownNameError as err:
                raise ValidationError(f"{where}.scenario: {err}") from None
        training.append(TrainingEntry(
            model=table["model"], steps=_typed(table.get("steps", 200), int, f"{where}.steps"),
            options=dict(_typed(table.get("options", {}), dict, f"{where}.options")),
            scenario=scenario,
        ))
    compare = []
    all_models = set(models) | {m for e in entries for m in e.models}
    for i, pair in enumerate(_typed(data.get("compare", []), list, f"{source}: compare")):
        where = f"{source}: compare[{i}]"
        pair_names = _str_list(pair, where)
        if len(pair_names) != 2 or pair_names[0] == pair_names[1]:
            raise ValidationError(f"{where} is {list(pair_names)}, expected two different models "
                                  '["A", "B"]')
        for name in pair_names:
            if name not in all_models:
                raise ValidationError(
                    f"{where}: '{name}' is not a model of this suite"
                    f"{did_you_mean(name, all_models)}; suite models: {sorted(all_models)}"
                )
        compare.append((pair_names[0], pair_names[1]))
    samples = _typed(data.get("samples", 1), int, f"{source}: samples")
    if samples < 1:
        raise ValidationError(f"{source}: samples = {samples}, expected >= 1 prediction per "
                              "rollout")
    return Suite(
        name=_typed(data["name"], str, f"{source}: name"),
        version=_typed(version, str, f"{source}: version"), tracks=tracks,
        description=_typed(data.get("description", ""), str, f"{source}: description"),
        seed=_typed(data.get("seed", 0), int, f"{source}: seed"),
        models=models, metrics=metrics, scenarios=tuple(entries), training=tuple(training),
        compare=tuple(compare), samples=samples, source=source,
    )


def _scenario_entry(name: str, merged: Mapping[str, Any], where: str) -> ScenarioEntry:
    """One validated scenario entry (defaults already merged into ``merged``)."""
    from physground.scenario import SCENARIOS
    from physground.world_model import MODELS

    factory = SCENARIOS.get(name)
    where = f"{where} ({name})" if merged["name"] != name else where
    config = _typed(merged.get("config", {}), dict, f"{where}.config")
    config_fields = {f.name for f in dataclasses.fields(factory.config_type)}
    _check_keys(config, config_fields, f"{where}.config")
    kwargs: dict[str, Any] = {"name": name, "config": dict(config)}
    for key in ("rollouts", "train_rollouts", "context", "horizon"):
        if key in merged:
            kwargs[key] = _typed(merged[key], int, f"{where}.{key}")
    for key in ("splits", "models"):
        if key in merged:
            kwargs[key] = _str_list(merged[key], f"{where}.{key}")
    try:
        entry = ScenarioEntry(**kwargs)
    except ValidationError as err:
        raise ValidationError(f"{where}: {err}") from None
    num_frames = config.get("num_frames", factory.config_type().num_frames)
    if entry.context + entry.horizon > num_frames:
        raise ValidationError(
            f"{where}: context {entry.context} + horizon {entry.horizon} exceeds "
            f"num_frames {num_frames}"
        )
    for model in entry.models:
        _known(MODELS, model, f"{where}.models")
    return entry


def _known(registry: Any, name: str, where: str) -> None:
    try:
        registry.get(name)
    except UnknownNameError as err:
        raise ValidationError(f"{where}: {err}") from None


def builtin_suites() -> list[str]:
    """Names of the suites shipped with the package."""
    folder = resources.files("physground.benchmarks") / "suites"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_suite(name_or_path: str | Path) -> Suite:
    """Load a shipped suite by name (``quick``) or any suite file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise PhysgroundError(f"suite file {path} not found")
        text, source = path.read_text(), str(path)
    else:
        names = builtin_suites()
        if str(name_or_path) not in names:
            raise UnknownNameError(
                f"unknown suite '{name_or_path}'{did_you_mean(str(name_or_path), names)}; "
                f"shipped suites: {', '.join(names)} (or pass a .toml path)"
            )
        resource = resources.files("physground.benchmarks") / "suites" / f"{name_or_path}.toml"
        text, source = resource.read_text(), f"{name_or_path}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValidationError(f"{source} is not valid TOML: {err}") from None
    return parse_suite(data, source)
