"""`physground train`: train or fine-tune a learned world model from the command line.

The CLI mounts `train_command` (``app.command("train")(train_command)``). Its options are
generated from the fields of `TrainConfig` (``--lr``, ``--grad-clip``, ``--model-config
KEY=VALUE``, ``--loss-options KEY=VALUE``, ``--physics NAME=WEIGHT`` for ``loss_weights``
...), so every training setting is reachable and none is copied by hand. Data come from an
existing dataset (``--dataset``) or are generated into the shared cache ``ROOT/data``;
the checkpoint goes to ``--out`` (default: ``ROOT/train/<model>-<scenario>-<hash of config
and data>``). ``--resume`` continues a checkpoint only if it was trained with the same
settings on the same data. Distributed: ``torchrun --nproc-per-node N -m physground train``.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from physground.errors import ValidationError

# TrainConfig fields the command sets from its own options
_OWN = {"checkpoint_dir": "--out", "progress": "-q/--quiet"}
# dict fields: repeatable KEY=VALUE options (loss_weights keeps its short name --physics)
_DICT_NAMES = {"loss_weights": ("--physics", "--loss-weights")}


def parse_weights(items: list[str]) -> dict[str, float]:
    """``["strain=300", "energy=1"]`` -> ``{"strain": 300.0, "energy": 1.0}``."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name.strip() or not (0 <= weight < float("inf")):
            raise ValidationError(f"--physics '{item}' is not NAME=WEIGHT with a finite weight "
                                  ">= 0 (e.g. --physics strain=300)")
        out[name.strip()] = weight
    return out


def _config_fields() -> list[dataclasses.Field]:
    from physground.learned.training import TrainConfig

    return [f for f in dataclasses.fields(TrainConfig) if f.init and f.name not in _OWN]


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def _config_parameters() -> list[inspect.Parameter]:
    """One typer option per `TrainConfig` field (scalars typed, dicts as KEY=VALUE)."""
    from physground.learned.training import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    params = []
    for f in _config_fields():
        default = _default(f)
        tp = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        if typing.get_origin(tp) is dict:
            names = _DICT_NAMES.get(f.name, (flag,))
            help_text = (f"TrainConfig.{f.name}: KEY=VALUE, repeatable (default {default})")
            annotation: Any = Annotated[list[str], typer.Option(*names, help=help_text)]
            default = []
        elif tp is bool:
            annotation = Annotated[bool, typer.Option(f"{flag}/--no-{flag[2:]}",
                                                      help=f"TrainConfig.{f.name}")]
        else:
            annotation = Annotated[tp, typer.Option(flag, help=f"TrainConfig.{f.name}")]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                        default=default, annotation=annotation))
    return params


def _train_config(values: dict[str, Any], out: Path, quiet: bool) -> Any:
    """The `TrainConfig` from the generated options, every value validated by type."""
    from physground.learned.training import TrainConfig
    from physground.schema import parse_assignments, validate_fields
    from physground.world_model import MODELS

    MODELS.get(values["model"])  # unknown model: did-you-mean before any work
    fields = {f.name: f for f in _config_fields()}
    config: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, list):  # a dict field given as KEY=VALUE items
            flag = _DICT_NAMES.get(name, ("--" + name.replace("_", "-"),))[0]
            if name == "loss_weights":
                config[name] = {**_default(fields[name]), **parse_weights(value)}
            elif name == "model_config":
                text = parse_assignments(value, flag)
                model_type = getattr(MODELS.get(values["model"]), "config_type", None)
                config[name] = (validate_fields(model_type, text, flag, from_text=True)
                                if dataclasses.is_dataclass(model_type) else text)
            else:
                config[name] = {k: _number(v, f"{flag} {k}")
                                for k, v in parse_assignments(value, flag).items()}
        else:
            config[name] = value
    checked = validate_fields(TrainConfig, config, "train")
    return TrainConfig(**checked, checkpoint_dir=str(out), progress=not quiet)


def _number(text: str, where: str) -> float:
    from physground.schema import finite_number

    return finite_number(text, where)


def _train(
    *,
    scenario: str,
    dataset: Path | None,
    root: Path,
    out: Path | None,
    count: int,
    num_frames: int | None,
    render: bool,
    image_size: int | None,
    finetune_from: Path | None,
    quiet: bool,
    **config_values: Any,
) -> None:
    """Train (or fine-tune) a learned world model and write its checkpoint."""
    from physground.learned.training import data_identity, finetune, train
    from physground.provenance import content_hash
    from physground.scenario import SCENARIOS
    from physground.schema import instantiate, validate_fields
    from physground.storage import Dataset, DatasetSpec, generate_dataset

    probe = _train_config(config_values, Path("."), quiet)  # every option checked first
    if dataset is not None:
        data = Dataset(dataset)
    else:
        overrides: dict[str, Any] = {"render": render}
        if num_frames is not None:
            overrides["num_frames"] = num_frames
        if image_size is not None:
            overrides["image_size"] = image_size
        config_type = SCENARIOS.get(scenario).config_type
        instantiate(config_type, validate_fields(config_type, overrides, "train"), "train")
        data = generate_dataset(DatasetSpec(scenario=scenario, split="train", count=count,
                                            seed=config_values["seed"], config=overrides),
                                root / "data", progress=not quiet)
    rollouts = list(data)
    if out is None:  # named by what determines the result, never by the clock
        settings = {k: v for k, v in dataclasses.asdict(probe).items()
                    if k not in ("checkpoint_dir", "progress", "resume", "threads")}
        digest = content_hash({"config": settings, "data": data_identity(rollouts),
                               "finetune_from": str(finetune_from)})[:12]
        out = root / "train" / f"{probe.model}-{rollouts[0].scenario.replace('/', '__')}-{digest}"
    config = dataclasses.replace(probe, checkpoint_dir=str(out))
    if finetune_from is not None:
        trained = finetune(config, finetune_from, rollouts)
    else:
        trained = train(config, rollouts)
    last = trained.history[-1] if getattr(trained, "history", None) else {}  # type: ignore[attr-defined]
    terms = ", ".join(f"{k} {v:.4g}" for k, v in last.items()
                      if k not in ("step", "lr", "seconds"))
    typer.echo(f"{trained.name}: {trained.trained_steps} steps ({terms}); checkpoint {out}")


def _own_parameters() -> list[inspect.Parameter]:
    def option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                 annotation=annotation)

    return [
        option("scenario", Annotated[str, typer.Option(
            help="scenario of the training data, e.g. rigid/projectile")], "rigid/projectile"),
        option("dataset", Annotated[Path | None, typer.Option(
            help="existing dataset directory (else one is generated into ROOT/data)")], None),
        option("root", Annotated[Path, typer.Option(
            help="directory for data and runs (datasets are cached in ROOT/data)")],
            Path("physground-runs")),
        option("out", Annotated[Path | None, typer.Option(
            help="checkpoint directory (default: ROOT/train/<model>-<scenario>-<hash>)")],
            None),
        option("count", Annotated[int, typer.Option(min=1, help="training rollouts to "
                                                             "generate")], 16),
        option("num_frames", Annotated[int | None, typer.Option(
            min=2, help="frames per generated rollout")], None),
        option("render", Annotated[bool, typer.Option(
            help="render frames (video models need them)")], False),
        option("image_size", Annotated[int | None, typer.Option(
            min=8, help="rendered frame size in px")], None),
        option("finetune_from", Annotated[Path | None, typer.Option(
            help="checkpoint to fine-tune (a fresh optimizer)")], None),
        option("quiet", Annotated[bool, typer.Option("--quiet", "-q",
                                                     help="no progress bars")], False),
    ]


def _make_train_command() -> Any:
    def train_command(**kwargs: Any) -> None:
        _train(**kwargs)

    train_command.__doc__ = ("Train (or fine-tune) a learned world model; every TrainConfig "
                             "field is an option.")
    train_command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        _own_parameters() + _config_parameters())
    return train_command


train_command = _make_train_command()
