"""Training and fine-tuning of learned world models, one loop for every model.

`train(config, *datasets)` builds (or continues) a model, cuts the rollouts into windows of
``unroll`` target frames after the model's history, and minimizes

    L = sum_k w_k L_k        (k = "data" and the physics terms of `losses`)

with Adam. Multi-step training unrolls the model's own rollout function either fully
(``unrolled``: backpropagation through the whole unroll) or with the pushforward trick
(``pushforward``: inputs detached between steps). Every term is logged separately (progress
bar, ``log.jsonl``). Checkpoints hold the model (safetensors + JSON config) and the trainer
state (optimizer, step, random generators) so that a resumed run continues bit-exactly.
Under ``torchrun`` the loss runs inside `torch.nn.parallel.DistributedDataParallel` (gloo on
CPU, NCCL on CUDA): every rank draws the same global batch of ``world x batch_size`` windows
and takes its own slice, so N ranks follow the same trajectory as one process with an N
times larger batch. ``log = "tensorboard"`` also writes TensorBoard event files
(``<checkpoint_dir>/tensorboard``) through the same per-record hook as ``log.jsonl``.
Fine-tuning is `train` on a loaded model with physics weights added (`finetune`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from physground.device import resolve_device
from physground.errors import DataIntegrityError, ValidationError
from physground.faults import failpoint
from physground.learned.base import LearnedModel
from physground.learned.checkpoint import (
    CONFIG,
    LOG,
    MANIFEST,
    TRAINER_STATE,
    CheckpointFiles,
    TrainerState,
    check_replaceable,
    log_text,
    open_checkpoint,
    read_log,
)
from physground.rollout import Rollout

if TYPE_CHECKING:
    from physground.storage import Dataset

UNROLL_MODES = ("unrolled", "pushforward")
LOGGERS = ("jsonl", "tensorboard")  # jsonl is always written when there is a checkpoint_dir


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """What to train and how.

    ``model``/``model_config``: registry name and config overrides of a new model;
    ``steps``: optimizer steps in total (a resumed run continues up to this count);
    ``unroll``: target frames per window; ``loss_weights``: weight per loss term
    (``data`` plus physics terms of `physground.learned.losses`); ``loss_options``:
    tolerances and ``input_noise``; ``checkpoint_dir``: where checkpoints go (None: none);
    ``checkpoint_every``: steps between checkpoints (0: only at the end); ``threads``:
    torch CPU threads during training, restored afterwards (default 1: on a loaded 2-core
    machine 300 state-gnn steps on rigid/projectile took 4 s with 1 thread and 91 s with
    torch's default 2; 0 keeps torch's setting, e.g. for large models on many cores);
    ``physics_warmup``: steps over which every non-data weight ramps linearly from 0 to its
    value (0: full weights from the first step), so that a fine-tune first adapts to the
    longer unroll under the data loss before the physics terms pull on it;
    ``log``: ``jsonl`` or ``tensorboard`` (event files beside ``log.jsonl``). Under
    torchrun ``batch_size`` is per rank.
    """

    model: str = "state-gnn"
    model_config: dict[str, Any] = field(default_factory=dict)
    steps: int = 200
    lr: float = 1e-3
    lr_final: float = 1e-4
    batch_size: int = 16
    unroll: int = 1
    unroll_mode: str = "unrolled"
    loss_weights: dict[str, float] = field(default_factory=lambda: {"data": 1.0})
    loss_options: dict[str, float] = field(default_factory=dict)
    physics_warmup: int = 0
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    resume: bool = False
    log_every: int = 10
    progress: bool = True
    threads: int = 1  # torch CPU threads while training (0: leave torch's setting)
    log: str = "jsonl"

    def __post_init__(self) -> None:
        if self.physics_warmup < 0:
            raise ValidationError(f"train config: physics_warmup = {self.physics_warmup}, "
                                  "expected >= 0 steps")
        if self.steps < 0 or self.batch_size < 1 or self.unroll < 1:
            raise ValidationError(
                f"train config: steps = {self.steps} (>= 0), batch_size = {self.batch_size} "
                f"(>= 1) and unroll = {self.unroll} (>= 1) expected"
            )
        if not (self.lr > 0 and self.lr_final > 0):
            raise ValidationError(f"train config: lr = {self.lr}, lr_final = {self.lr_final}, "
                                  "expected > 0")
        if self.unroll_mode not in UNROLL_MODES:
            raise ValidationError(f"train config: unroll_mode '{self.unroll_mode}' is not one "
                                  f"of {UNROLL_MODES}")
        bad = {k: w for k, w in self.loss_weights.items() if not (w >= 0 and math.isfinite(w))}
        if bad or not self.loss_weights:
            raise ValidationError(f"train config: loss_weights {self.loss_weights} must be a "
                                  "non-empty dict of finite weights >= 0")
        if self.threads < 0:
            raise ValidationError(f"train config: threads = {self.threads}, expected >= 0")
        if self.log not in LOGGERS:
            raise ValidationError(f"train config: log = '{self.log}', expected one of "
                                  f"{', '.join(LOGGERS)}")
        if self.log == "tensorboard" and not self.checkpoint_dir:
            raise ValidationError("train config: log = 'tensorboard' needs a checkpoint_dir "
                                  "to write the event files into")
        if self.resume and not self.checkpoint_dir:
            raise ValidationError("train config: resume = True needs a checkpoint_dir")


def _rollouts(datasets: Iterable[Any]) -> list[Rollout]:
    out: list[Rollout] = []
    for data in datasets:
        if isinstance(data, Rollout):
            out.append(data)
        else:
            out.extend(data)
    if not out:
        raise ValidationError("train needs at least one training rollout")
    names = {r.scenario for r in out}
    if len(names) > 1:
        raise ValidationError(f"train got rollouts of several scenarios {sorted(names)}; "
                              "train one model per scenario")
    return out


def _dist() -> tuple[int, int]:
    """(rank, world size) under torchrun, initializing the process group once."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def make_model(config: TrainConfig) -> LearnedModel:
    """A new, untrained model named by ``config.model`` with its config overrides."""
    from physground.world_model import MODELS

    cls = MODELS.get(config.model)
    if not (isinstance(cls, type) and issubclass(cls, LearnedModel)):
        raise ValidationError(f"model '{config.model}' is not a trainable learned model")
    model_config = replace(cls.config_type(), **config.model_config)
    return cls(model_config, device=resolve_device(config.device))


def train(config: TrainConfig, *datasets: Dataset | Sequence[Rollout] | Rollout,
          model: LearnedModel | None = None, on_log: Any = None) -> LearnedModel:
    """Train ``model`` (a new ``config.model`` when None) on ``datasets``; returns it.

    ``datasets``: `physground.storage.Dataset` objects or sequences of rollouts of one
    scenario. ``on_log`` is called with each log record (a dict of step and loss terms).
    """
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _train(config, datasets, model, on_log)
    finally:
        torch.set_num_threads(threads_before)


def _train(config: TrainConfig, datasets: tuple[Any, ...], model: LearnedModel | None,
           on_log: Any) -> LearnedModel:
    rank, world = _dist()
    device = resolve_device(config.device)
    if device.startswith("cuda") and world > 1:
        device = f"cuda:{rank % torch.cuda.device_count()}"
        torch.cuda.set_device(device)
    rollouts = _rollouts(datasets)
    torch.manual_seed(config.seed)
    ckpt = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    data = data_identity(rollouts)
    files = None
    if ckpt is not None and rank == 0:
        check_replaceable(ckpt)  # before any work: a save would swap the whole directory
    if config.resume and ckpt is not None and (ckpt / MANIFEST).exists():
        files = open_checkpoint(ckpt)
        if not files.has_trainer_state:
            files = None  # a model-only checkpoint: train it from step 0
    if files is not None:
        assert ckpt is not None
        # load (and so validate every file) first, then compare config and data
        model = type(model).load(ckpt, device=device) if model is not None else \
            _load_any(ckpt, device)
        check_resumable(ckpt, config, data)
    elif model is None:
        model = make_model(config)
    model.to(device)
    model.prepare(rollouts)
    module = model.require_module()
    windows = model.windows(rollouts, config.unroll)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr)
    compute_losses = _loss_function(model, module, world, device)
    # one generator on every rank: all draw the same global batch and take their slice
    gen = torch.Generator().manual_seed(config.seed * 1000)
    step = 0
    log: list[dict[str, Any]] = []  # the log so far (rewritten into every checkpoint)
    if files is not None:
        assert ckpt is not None
        step = _restore_trainer(files, optimizer, gen)
        log = read_log(ckpt, up_to=step)
    terms = [k for k in config.loss_weights if k != "data"]
    options = dict(config.loss_options)
    if config.log == "tensorboard" and rank == 0:
        assert ckpt is not None
        on_log = _Chain(on_log, TensorBoardLog(ckpt / "tensorboard", purge_step=step))
    bar = None
    if config.progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=step, desc=f"train {model.name}", unit="step")
    module.train()
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    while step < config.steps:
        lr = _lr(config, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(len(windows), (config.batch_size * world,), generator=gen)
        batch = windows.batch(index[rank * config.batch_size:(rank + 1) * config.batch_size])
        values = compute_losses(batch, unroll_mode=config.unroll_mode, terms=terms,
                                options=options)
        ramp = physics_ramp(config.physics_warmup, step)
        total = sum(config.loss_weights.get(k, 0.0) * (1.0 if k == "data" else ramp) * v
                    for k, v in values.items())
        assert isinstance(total, torch.Tensor)
        optimizer.zero_grad(set_to_none=True)
        total.backward()  # under DDP the gradients arrive averaged over ranks
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        model.trained_steps += 1
        if not torch.isfinite(total):
            raise ValidationError(f"training {model.name} diverged at step {step} "
                                  f"(loss {float(total)}); lower lr or loss weights")
        if step % config.log_every == 0 or step == config.steps:
            record = {"step": step, "lr": lr, "loss": float(total.detach()),
                      **{k: float(v.detach()) for k, v in values.items()},
                      "seconds": time.perf_counter() - start}
            history.append(record)
            log.append(record)
            if ckpt is not None and rank == 0 and (ckpt / MANIFEST).exists():
                with open(ckpt / LOG, "a") as fh:  # live view; the checkpoint keeps its own
                    fh.write(json.dumps(record) + "\n")
            failpoint("train.step")
            if on_log is not None:
                on_log(record)
            if bar is not None:
                bar.set_postfix({k: f"{v:.3g}" for k, v in record.items()
                                 if k not in ("step", "lr", "seconds")})
        if bar is not None:
            bar.update(1)
        if ckpt is not None and rank == 0 and config.checkpoint_every and \
                step % config.checkpoint_every == 0:
            save_training_state(model, optimizer, gen, step, ckpt, config, data, log)
    if bar is not None:
        bar.close()
    if isinstance(on_log, _Chain):
        on_log.close()
    if ckpt is not None and rank == 0:
        save_training_state(model, optimizer, gen, step, ckpt, config, data, log)
    module.eval()
    model.history = history  # type: ignore[attr-defined]
    return model


def finetune(config: TrainConfig, checkpoint: str | Path, *datasets: Any,
             on_log: Any = None) -> LearnedModel:
    """Load the model in ``checkpoint`` and train it further with ``config`` (typically the
    data loss plus physics loss weights); the fresh optimizer starts at ``config.lr``."""
    model = _load_any(Path(checkpoint), resolve_device(config.device))
    return train(replace(config, resume=False), *datasets, model=model, on_log=on_log)


def _load_any(directory: Path, device: str) -> LearnedModel:
    from physground.world_model import MODELS

    record = open_checkpoint(directory).record
    cls = MODELS.get(record["model"])
    return cls.load(directory, device=device)


def load_model(directory: str | Path, device: str | None = "cpu") -> LearnedModel:
    """The learned model saved in ``directory`` (whichever registered model it is)."""
    return _load_any(Path(directory), resolve_device(device))


def physics_ramp(warmup: int, step: int) -> float:
    """Factor on the physics weights at (0-based) ``step``: (step + 1) / warmup, at most 1."""
    return 1.0 if warmup <= 0 else min(1.0, (step + 1) / warmup)


def _lr(config: TrainConfig, step: int) -> float:
    """Cosine decay from ``lr`` to ``lr_final`` over ``steps``."""
    if config.steps <= 1:
        return config.lr
    frac = step / (config.steps - 1)
    return config.lr_final + 0.5 * (config.lr - config.lr_final) * (1 + math.cos(math.pi * frac))


class _LossModule(torch.nn.Module):
    """The model's loss as a module's forward, so that DDP wraps the whole computation
    (the models call several methods of their network, not only its forward)."""

    def __init__(self, model: LearnedModel, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net  # registers the parameters that DDP synchronizes
        self.model = model

    def forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, torch.Tensor]:
        return self.model.losses(batch, **kwargs)


def _loss_function(model: LearnedModel, module: torch.nn.Module, world: int,
                   device: str) -> Any:
    """``model.losses``, or its DDP-wrapped twin under torchrun."""
    if world <= 1:
        return model.losses
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index] if device.startswith("cuda") else None
    # unused parameters are allowed: a physics term may not touch every head
    return DistributedDataParallel(_LossModule(model, module), device_ids=ids,
                                   find_unused_parameters=True)


class TensorBoardLog:
    """An ``on_log`` hook writing every numeric field of a record as a TensorBoard scalar
    (``loss``, ``data``, each physics term, ``lr``) at the record's step."""

    def __init__(self, directory: Path, purge_step: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ValidationError("log = 'tensorboard' needs the tensorboard package: "
                                  "pip install 'physground[tensorboard]'") from None
        self.writer = SummaryWriter(str(directory), purge_step=purge_step or None)

    def __call__(self, record: dict[str, Any]) -> None:
        step = int(record["step"])
        for key, value in record.items():
            if key not in ("step", "seconds") and isinstance(value, int | float):
                self.writer.add_scalar(f"train/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _Chain:
    """Several ``on_log`` hooks called in order; closes those that can be closed."""

    def __init__(self, *hooks: Any) -> None:
        self.hooks = [h for h in hooks if h is not None]

    def __call__(self, record: dict[str, Any]) -> None:
        for hook in self.hooks:
            hook(record)

    def close(self) -> None:
        for hook in self.hooks:
            if hasattr(hook, "close"):
                hook.close()



# TrainConfig fields a resume may change: how long and how verbosely it runs, not what
RESUMABLE_CHANGES = frozenset({"steps", "resume", "progress", "checkpoint_dir",
                               "checkpoint_every", "log_every", "threads", "device"})


def data_identity(rollouts: Sequence[Rollout]) -> dict[str, Any]:
    """What a model was trained on: scenario, rollout count and a digest of the rollouts'
    content hashes (their seeds, splits and params where data carry no hash)."""
    from physground.provenance import content_hash

    keys = [r.meta.get("content_hash") or content_hash(
        {"scenario": r.scenario, "split": r.split, "seed": r.seed, "params": r.params})
        for r in rollouts]
    return {"scenario": rollouts[0].scenario, "rollouts": len(rollouts),
            "digest": content_hash(sorted(str(k) for k in keys))}


def check_resumable(directory: Path, config: TrainConfig, data: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint trained with another config or on other data."""
    from physground.learned.checkpoint import read_checkpoint_record

    extra = read_checkpoint_record(directory).get("extra", {})
    saved = extra.get("train_config", {})
    now = json.loads(json.dumps(asdict(config)))
    differ = sorted(k for k in set(saved) | set(now)
                    if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
    if differ:
        shown = ", ".join(f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in differ)
        raise ValidationError(f"cannot resume {directory}: its training config differs "
                              f"({shown}); use another checkpoint directory")
    trained_on = extra.get("dataset")
    if trained_on is None:
        raise ValidationError(f"cannot resume {directory}: the checkpoint does not record the "
                              "data it was trained on")
    if trained_on != data:
        raise ValidationError(
            f"cannot resume {directory}: it was trained on {trained_on['rollouts']} rollouts "
            f"of {trained_on['scenario']} (digest {trained_on['digest'][:12]}), not on these "
            f"{data['rollouts']} rollouts of {data['scenario']} ({data['digest'][:12]})")


def save_training_state(model: LearnedModel, optimizer: torch.optim.Optimizer,
                        gen: torch.Generator, step: int, directory: Path,
                        config: TrainConfig, data: dict[str, Any] | None = None,
                        log: Sequence[dict[str, Any]] = ()) -> None:
    """Model plus trainer state (optimizer, step, generators) and the log up to ``step``,
    published as one checkpoint directory (safetensors and JSON, no pickle); it records
    the training config and the data it was trained on (``data``), checked on resume."""
    state = TrainerState(step=step, optimizer=optimizer.state_dict(),
                         rng={"generator": gen.get_state(), "torch": torch.get_rng_state()})
    model.save(directory, extra={"train_config": asdict(config), "dataset": data},
               trainer=state, log=log_text([r for r in log if r["step"] <= step]))


def _restore_trainer(files: CheckpointFiles, optimizer: torch.optim.Optimizer,
                     gen: torch.Generator) -> int:
    """Load the trainer state of ``files`` into ``optimizer`` and the generators; returns
    the step. The step must agree with the optimizer's own step count and lie within the
    training it was saved from; anything else is a tampered or foreign trainer state."""
    where = files.directory / TRAINER_STATE
    state = files.trainer_state()
    saved = files.record["extra"].get("train_config", {})
    saved_steps = saved.get("steps") if isinstance(saved, dict) else None
    if not isinstance(saved_steps, int) or not 0 <= state.step <= saved_steps:
        raise DataIntegrityError(f"{where}: step {state.step} is not within the "
                                 f"{saved_steps!r} steps of the training recorded in "
                                 f"{files.directory / CONFIG}")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for index, entry in state.optimizer["state"].items():
        if index >= len(params):
            raise DataIntegrityError(f"{where}: optimizer state for parameter {index}, the "
                                     f"model has {len(params)}")
        counted = entry.get("step")
        counted = float(counted) if isinstance(counted, torch.Tensor | int | float) else None
        if counted != state.step:
            raise DataIntegrityError(f"{where}: step {state.step} disagrees with the "
                                     f"optimizer's step count {counted}")
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() and \
                    value.shape != params[index].shape:
                raise DataIntegrityError(f"{where}: optimizer '{key}' of parameter {index} "
                                         f"has shape {tuple(value.shape)}, the parameter "
                                         f"{tuple(params[index].shape)}")
    if set(state.rng) != {"generator", "torch"}:
        raise DataIntegrityError(f"{where}: generator states {sorted(state.rng)}, expected "
                                 "generator and torch")
    try:
        optimizer.load_state_dict(state.optimizer)
        gen.set_state(state.rng["generator"])
        torch.set_rng_state(state.rng["torch"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        raise DataIntegrityError(f"{where} does not fit this model and optimizer "
                                 f"({str(err).strip()[:200]})") from None
    return state.step
