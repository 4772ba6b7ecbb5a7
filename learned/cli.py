"""`physground train`: train or fine-tune a learned world model from the command line.

The lead's CLI mounts `train_command` (``app.command("train")(train_command)``). Data come
from an existing dataset directory (``--dataset``) or are generated (and cached) under
``--data-root`` for the scenario's ``train`` split. Physics losses are added with
``--physics NAME=WEIGHT`` (repeatable); ``--finetune-from CKPT`` continues a checkpoint.
Distributed: ``torchrun --nproc-per-node N -m physground train ...`` averages gradients
over ranks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from physground.errors import ValidationError


def parse_weights(items: list[str]) -> dict[str, float]:
    """``["strain=300", "energy=1"]`` -> ``{"strain": 300.0, "energy": 1.0}``."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name or not weight >= 0:
            raise ValidationError(f"--physics '{item}' is not NAME=WEIGHT with a weight >= 0 "
                                  "(e.g. --physics strain=300)")
        out[name.strip()] = weight
    return out


def train_command(
    scenario: Annotated[str, typer.Option(help="scenario of the training data, e.g. "
                                                "rigid/projectile")] = "rigid/projectile",
    model: Annotated[str, typer.Option(help="registered learned model")] = "state-gnn",
    out: Annotated[Path, typer.Option(help="checkpoint directory")] = Path("runs/train"),
    dataset: Annotated[Path | None, typer.Option(help="existing dataset directory "
                                                       "(else one is generated)")] = None,
    data_root: Annotated[Path, typer.Option(help="where generated datasets are cached")] =
    Path("data"),
    count: Annotated[int, typer.Option(help="training rollouts to generate")] = 16,
    num_frames: Annotated[int | None, typer.Option(help="frames per generated rollout")] =
    None,
    render: Annotated[bool, typer.Option(help="render frames (video models need them)")] =
    False,
    image_size: Annotated[int | None, typer.Option(help="rendered frame size in px")] = None,
    steps: Annotated[int, typer.Option(help="optimizer steps in total")] = 200,
    lr: Annotated[float, typer.Option(help="initial learning rate")] = 1e-3,
    batch_size: Annotated[int, typer.Option(help="windows per batch")] = 16,
    unroll: Annotated[int, typer.Option(help="frames unrolled per window")] = 1,
    unroll_mode: Annotated[str, typer.Option(help="unrolled or pushforward")] = "unrolled",
    physics: Annotated[list[str] | None, typer.Option(
        help="physics loss NAME=WEIGHT (repeatable), e.g. strain=300")] = None,
    finetune_from: Annotated[Path | None, typer.Option(
        help="checkpoint to fine-tune (a fresh optimizer)")] = None,
    resume: Annotated[bool, typer.Option(help="resume from --out if it has a trainer "
                                               "state")] = False,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "cpu",
    threads: Annotated[int, typer.Option(help="torch CPU threads (0: torch default)")] = 1,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Train (or fine-tune) a learned world model and write its checkpoint to --out."""
    from physground.learned.training import TrainConfig, finetune, train
    from physground.storage import Dataset, DatasetSpec, generate_dataset

    weights = {"data": 1.0, **parse_weights(physics or [])}
    config = TrainConfig(
        model=model, steps=steps, lr=lr, lr_final=lr / 10, batch_size=batch_size,
        unroll=unroll, unroll_mode=unroll_mode, loss_weights=weights, seed=seed,
        device=device, checkpoint_dir=str(out), resume=resume, progress=progress,
        threads=threads,
    )
    if dataset is not None:
        data = Dataset(dataset)
    else:
        overrides: dict[str, object] = {"render": render}
        if num_frames is not None:
            overrides["num_frames"] = num_frames
        if image_size is not None:
            overrides["image_size"] = image_size
        data = generate_dataset(DatasetSpec(scenario=scenario, split="train", count=count,
                                            seed=seed, config=overrides),
                                data_root, progress=progress)
    if finetune_from is not None:
        trained = finetune(config, finetune_from, data)
    else:
        trained = train(config, data)
    last = trained.history[-1] if getattr(trained, "history", None) else {}  # type: ignore[attr-defined]
    terms = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k not in ("step", "lr",
                                                                            "seconds"))
    typer.echo(f"{trained.name}: {trained.trained_steps} steps ({terms}); checkpoint {out}")
