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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from physground import limits
from physground.errors import PhysgroundError, UnknownNameError, ValidationError, did_you_mean
from physground.provenance import content_hash
from physground.rollout import SPLITS
from physground.schema import StrictModel, instantiate, validate, validate_fields


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
    # motion-mask metrics of "auto": physground's own, or Physics-IQ's (`metrics.physics_iq`)
    pixel_metrics: str = "physground"
    source: str = ""  # the file it came from, for messages only

    def __post_init__(self) -> None:
        if self.pixel_metrics not in PIXEL_METRIC_MODES:
            raise ValidationError(
                f"{self.source or self.name}: pixel_metrics is '{self.pixel_metrics}', "
                f"expected one of {list(PIXEL_METRIC_MODES)}"
            )

    def restrict(self, scenarios: Sequence[str]) -> Suite:
        """This suite with only the scenarios named in ``scenarios`` (names or
        ``tag:NAME``); an error names a selector that matches none of the suite's."""
        from physground.scenario import SCENARIOS

        mine = [e.name for e in self.scenarios]
        keep: set[str] = set()
        for pattern in scenarios:
            try:
                picked = set(SCENARIOS.select([pattern])) & set(mine)
            except UnknownNameError as err:
                raise UnknownNameError(f"--scenario {pattern}: {err}") from None
            if not picked:
                raise UnknownNameError(
                    f"--scenario {pattern}: not a scenario of suite '{self.name}'"
                    f"{did_you_mean(pattern, mine)}; its scenarios: {', '.join(mine)}")
            keep |= picked
        return dataclasses.replace(
            self, scenarios=tuple(e for e in self.scenarios if e.name in keep))

    def config_hash(self) -> str:
        """Hash of what determines the results (not the description, report pairs or the
        file it came from), so that editing those reuses a finished run."""
        data = dataclasses.asdict(self)
        for key in ("source", "description", "compare"):
            data.pop(key)
        if data["samples"] == 1:  # the default leaves hashes of earlier suites unchanged
            data.pop("samples")
        if data["pixel_metrics"] == PIXEL_METRIC_MODES[0]:  # default: hashes stay as before
            data.pop("pixel_metrics")
        return content_hash(data)


PIXEL_METRIC_MODES = ("physground", "physics-iq")
Count = Annotated[int, Field(ge=1)]
Split = Literal["train", "test_id", "test_ood"]


class DefaultsTable(StrictModel):
    """``[defaults]``: values every ``[[scenario]]`` table inherits unless it sets them."""

    rollouts: Count | None = None
    train_rollouts: Count | None = None
    context: Count | None = None
    horizon: Count | None = None
    splits: list[Split] | None = Field(default=None, min_length=1)
    models: list[str] | None = None
    # frame size: a preset of `physground.schema.RESOLUTION_PRESETS` or "WIDTHxHEIGHT"
    resolution: str | None = None


class ScenarioTable(DefaultsTable):
    """One ``[[scenario]]`` table: a scenario name or ``tag:NAME`` and its overrides."""

    name: str
    config: dict[str, Any] = Field(default_factory=dict)
    # a tag of an optional extra's family (tag:granular): skipped when nothing carries it
    optional: bool = False


class TrainingTable(StrictModel):
    """One ``[[training]]`` table (see `TrainingEntry`)."""

    model: str
    steps: Count = 200
    options: dict[str, Any] = Field(default_factory=dict)
    scenario: str | None = None


class SuiteFile(StrictModel):
    """The schema of a suite file; names are checked against the registries afterwards."""

    name: str
    version: str | int = "1"
    description: str = ""
    tracks: list[str] = Field(default_factory=lambda: ["default"], min_length=1)
    seed: Annotated[int, Field(ge=0)] = 0
    models: list[str] = Field(default_factory=list)
    metrics: str | list[str] = "auto"
    defaults: DefaultsTable = Field(default_factory=DefaultsTable)
    scenario: list[ScenarioTable] = Field(min_length=1)
    training: list[TrainingTable] = Field(default_factory=list)
    compare: list[list[str]] = Field(default_factory=list)
    samples: Count = 1  # predictions per rollout
    pixel_metrics: Literal["physground", "physics-iq"] = "physground"
    resolution: str | None = None  # every scenario's frame size (see DefaultsTable)


# options of a [[training]] table that the runner sets itself
RESERVED_TRAINING_OPTIONS = ("model", "steps", "seed", "device", "checkpoint_dir", "resume",
                             "progress")


def parse_suite(data: Mapping[str, Any], source: str = "<suite>") -> Suite:
    """Validate a parsed TOML table into a `Suite`: types and ranges by `SuiteFile`, names
    against the registries, scenario configs and training options against their
    dataclasses. Errors read ``<source>:<key>: <what was expected>``."""
    from physground.metrics import METRICS
    from physground.scenario import SCENARIOS
    from physground.world_model import MODELS

    raw = dict(data)
    if raw.get("scenario") == []:
        raise ValidationError(f"{source}: no [[scenario]] tables")
    table: SuiteFile = validate(SuiteFile, raw, source)
    defaults = table.defaults.model_dump(exclude_none=True)
    if table.resolution is not None:
        defaults.setdefault("resolution", table.resolution)
    entries = []
    explicit = {t.name for t in table.scenario}
    for i, scenario_table in enumerate(table.scenario):
        where = f"{source}:scenario[{i}]"
        merged = {**defaults, **scenario_table.model_dump(exclude_none=True,
                                                          exclude={"optional"})}
        if scenario_table.resolution is None and {"image_size", "image_height"} & set(
                scenario_table.config):
            merged.pop("resolution", None)  # the scenario's own frame size wins
        pattern = scenario_table.name
        optional = scenario_table.optional
        try:
            names = SCENARIOS.select([pattern])
        except UnknownNameError as err:
            if optional and pattern.startswith("tag:"):
                continue
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
    for j, model in enumerate(table.models):
        _known(MODELS, model, f"{source}:models[{j}]")
    if isinstance(table.metrics, str):
        if table.metrics != "auto":
            raise ValidationError(f"{source}:metrics: expected 'auto' or a list of metric "
                                  f"names, got '{table.metrics}'")
        metrics: tuple[str, ...] | str = "auto"
    else:
        metrics = tuple(table.metrics)
        for j, metric in enumerate(metrics):
            _known(METRICS, metric, f"{source}:metrics[{j}]")
    from physground.observation import TRACKS

    for j, track in enumerate(table.tracks):
        if track not in TRACKS:
            raise ValidationError(f"{source}:tracks[{j}]: expected one of {list(TRACKS)}, got "
                                  f"'{track}'{did_you_mean(track, TRACKS)}")
    if len(set(table.tracks)) != len(table.tracks):
        raise ValidationError(f"{source}:tracks: expected distinct names from {list(TRACKS)}, "
                              f"got {table.tracks}")
    training = [_training_entry(t, f"{source}:training[{i}]")
                for i, t in enumerate(table.training)]
    compare = []
    all_models = set(table.models) | {m for e in entries for m in e.models}
    for i, pair in enumerate(table.compare):
        where = f"{source}:compare[{i}]"
        if len(pair) != 2 or pair[0] == pair[1]:
            raise ValidationError(f"{where}: expected two different models [\"A\", \"B\"], "
                                  f"got {list(pair)}")
        for name in pair:
            if name not in all_models:
                raise ValidationError(
                    f"{where}: '{name}' is not a model of this suite"
                    f"{did_you_mean(name, all_models)}; suite models: {sorted(all_models)}"
                )
        compare.append((pair[0], pair[1]))
    return Suite(
        name=table.name, version=str(table.version), tracks=tuple(table.tracks),
        description=table.description, seed=table.seed,
        models=tuple(table.models), metrics=metrics, scenarios=tuple(entries),
        training=tuple(training), compare=tuple(compare), samples=table.samples,
        source=source, pixel_metrics=table.pixel_metrics,
    )


def _training_entry(table: TrainingTable, where: str) -> TrainingEntry:
    """A validated ``[[training]]`` table: model and scenario names, and ``options`` typed
    against `TrainConfig` (and ``model_config`` against the model's config dataclass)."""
    from physground.learned.training import TrainConfig
    from physground.scenario import SCENARIOS
    from physground.world_model import MODELS

    _known(MODELS, table.model, f"{where}.model")
    if table.scenario is not None:
        try:
            SCENARIOS.select([table.scenario])
        except UnknownNameError as err:
            raise ValidationError(f"{where}.scenario: {err}") from None
    options = validate_fields(TrainConfig, table.options, f"{where}.options",
                              exclude=RESERVED_TRAINING_OPTIONS)
    config_type = getattr(MODELS.get(table.model), "config_type", None)
    if "model_config" in options and dataclasses.is_dataclass(config_type):
        validate_fields(config_type, options["model_config"], f"{where}.options.model_config")
    return TrainingEntry(model=table.model, steps=table.steps, options=dict(table.options),
                         scenario=table.scenario)


def _scenario_entry(name: str, merged: Mapping[str, Any], where: str) -> ScenarioEntry:
    """One validated scenario entry (defaults already merged into ``merged``)."""
    from physground.scenario import SCENARIOS
    from physground.world_model import MODELS

    factory = SCENARIOS.get(name)
    where = f"{where}({name})" if merged["name"] != name else where
    if "resolution" in merged:
        merged = {**merged, "config": _with_resolution(merged, where)}
    config = validate_fields(factory.config_type, merged.get("config", {}), f"{where}.config")
    instantiate(factory.config_type, config, f"{where}.config")  # range checks
    kwargs: dict[str, Any] = {"name": name, "config": dict(merged.get("config", {}))}
    for key in ("rollouts", "train_rollouts", "context", "horizon"):
        if key in merged:
            kwargs[key] = merged[key]
    for key in ("splits", "models"):
        if key in merged:
            kwargs[key] = tuple(merged[key])
    entry = instantiate(ScenarioEntry, kwargs, where)
    num_frames = config.get("num_frames", factory.config_type().num_frames)
    if entry.context + entry.horizon > num_frames:
        raise ValidationError(
            f"{where}: context {entry.context} + horizon {entry.horizon} exceeds "
            f"num_frames {num_frames}"
        )
    for j, model in enumerate(entry.models):
        _known(MODELS, model, f"{where}.models[{j}]")
    return entry


def _with_resolution(merged: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The entry's config with its ``resolution`` applied as ``image_size`` (width) and
    ``image_height`` (set only for non-square frames, so square sizes keep the hashes of
    configs that set ``image_size`` alone)."""
    from physground.schema import parse_resolution

    config = dict(merged.get("config", {}))
    clash = sorted({"image_size", "image_height"} & set(config))
    if clash:
        raise ValidationError(f"{where}: config sets {clash[0]} and the suite sets "
                              f"resolution = '{merged['resolution']}'; give one of them")
    width, height = parse_resolution(merged["resolution"], f"{where}.resolution")
    config["image_size"] = width
    if height != width:
        config["image_height"] = height
    return config


def _known(registry: Any, name: str, where: str) -> None:
    try:
        registry.get(name)
    except UnknownNameError as err:
        raise ValidationError(f"{where}: {err}") from None


def builtin_suites() -> list[str]:
    """Names of the suites shipped with the package."""
    folder = resources.files("physground.benchmarks") / "suites"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


MAX_SUITE_BYTES = 1 << 20  # a suite is a few kB of TOML; refuse anything absurdly large


def _read_suite_file(path: Path) -> str:
    """The text of a suite file, with one-line errors for missing, huge or binary files."""
    if not path.exists():
        raise PhysgroundError(f"suite file {path} not found")
    if not path.is_file():
        raise ValidationError(f"suite file {path} is not a file")
    size = path.stat().st_size
    if size > MAX_SUITE_BYTES:
        raise ValidationError(f"suite file {path} is {size} bytes, expected a TOML file of at "
                              f"most {MAX_SUITE_BYTES} bytes")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValidationError(f"{path} is not valid TOML: not UTF-8 text (byte {err.start})"
                              ) from None


def load_suite(name_or_path: str | Path) -> Suite:
    """Load a shipped suite by name (``quick``) or any suite file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        text, source = _read_suite_file(path), str(path)
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


def filter_suite(suite: Suite, scenarios: Sequence[str] | None = None,
                 splits: Sequence[str] | None = None) -> Suite:
    """``suite`` restricted to some of its scenarios and splits (a model covering one
    scenario is then not failed on the others)."""
    names = [e.name for e in suite.scenarios]
    for name in scenarios or ():
        if name not in names:
            raise ValidationError(f"--scenario '{name}' is not in suite {suite.name}"
                                  f"{did_you_mean(name, names)}; it has {names}")
    all_splits = sorted({s for e in suite.scenarios for s in e.splits})
    for split in splits or ():
        if split not in all_splits:
            raise ValidationError(f"--split '{split}' is not in suite {suite.name}"
                                  f"{did_you_mean(split, all_splits)}; it has {all_splits}")
    entries = []
    for entry in suite.scenarios:
        if scenarios and entry.name not in scenarios:
            continue
        kept = tuple(s for s in entry.splits if not splits or s in splits)
        if kept:
            entries.append(dataclasses.replace(entry, splits=kept))
    if not entries:
        raise ValidationError(f"no scenario of suite {suite.name} has the splits "
                              f"{list(splits or [])}")
    return dataclasses.replace(suite, scenarios=tuple(entries))
