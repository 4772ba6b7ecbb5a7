"""Shared machinery of learned world models: device, checkpoints, normalizers, windows.

A learned model wraps a torch ``nn.Module`` built from a frozen config. Before training it
is *prepared* on training rollouts (input sizes inferred, feature normalizers fitted); the
generic trainer (`physground.learned.training`) then asks it for training windows and for
its loss terms on a batch, so every model trains through one loop and one rollout function
that its ``predict`` also uses.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from physground.device import resolve_device
from physground.errors import DataIntegrityError, ValidationError
from physground.learned.checkpoint import (
    CONFIG,
    WEIGHTS,
    CheckpointFiles,
    TrainerState,
    config_from_dict,
    open_checkpoint,
    save_checkpoint,
)
from physground.observation import Observation
from physground.rollout import Rollout
from physground.world_model import Modality


def _trained_steps(files: CheckpointFiles) -> int:
    steps = files.record["extra"].get("trained_steps", 0)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise DataIntegrityError(f"{files.directory / CONFIG}: extra.trained_steps = "
                                 f"{steps!r}, expected an integer >= 0")
    return steps


class Normalizer(nn.Module):
    """Per-feature affine normalization (x - mean) / std with statistics fitted once on data
    and stored as buffers, so that checkpoints carry them."""

    def __init__(self, size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("std", torch.ones(size))

    def fit(self, samples: torch.Tensor, *, isotropic: bool = False) -> None:
        """Fit on samples [..., size]. The std is floored at 10 % of |mean| (plus 1e-3) so
        that a feature constant in training (e.g. gravity) is not blown up when it changes
        out of distribution; ``isotropic`` uses one RMS scale for every component (vectors)."""
        flat = samples.reshape(-1, samples.shape[-1]).to(self.mean)
        mean = flat.mean(0)
        if isotropic:
            std = ((flat - mean) ** 2).mean().sqrt().expand_as(mean)
        else:
            std = flat.std(0, unbiased=False) if len(flat) > 1 else torch.zeros_like(mean)
        floor = 0.1 * mean.abs().max() if isotropic else 0.1 * mean.abs()
        self.mean.copy_(mean)
        self.std.copy_(torch.maximum(std, floor + 1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


def mlp(inputs: int, hidden: int, outputs: int, *, norm: bool = True) -> nn.Sequential:
    """Two-layer perceptron with SiLU (and LayerNorm on the output, as in MeshGraphNets)."""
    layers: list[nn.Module] = [nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, outputs)]
    if norm:
        layers.append(nn.LayerNorm(outputs))
    return nn.Sequential(*layers)


@dataclass
class Windows:
    """Training windows: tensors with a leading window axis plus per-window extras.

    ``tensors`` are indexed by window; ``rows`` maps each window to its rollout in the
    batched static description ``static`` (any object with ``index(rows)``): what the model
    sees, the given statics only. ``loss_static`` (same rows) is the training rollouts'
    full description for the loss terms, which may use true masses and gravity (labels);
    None: the losses use ``static``."""

    tensors: dict[str, torch.Tensor]
    rows: torch.Tensor
    static: Any
    dt: float
    info: dict[str, Any] = field(default_factory=dict)
    loss_static: Any = None

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def batch(self, index: torch.Tensor) -> dict[str, Any]:
        index = index.to(self.rows.device)
        out: dict[str, Any] = {k: v[index] for k, v in self.tensors.items()}
        out["static"] = self.static.index(self.rows[index]) if self.static is not None else None
        out["loss_static"] = (self.loss_static.index(self.rows[index])
                              if self.loss_static is not None else out["static"])
        out["dt"] = self.dt
        out["rows"] = self.rows[index]
        out.update(self.info)
        return out


class LearnedModel(abc.ABC):
    """Base of trainable world models (the `WorldModel` protocol plus training hooks)."""

    name: ClassVar[str]
    modalities: ClassVar[frozenset[Modality]]
    config_type: ClassVar[type]

    def __init__(self, config: Any = None, *, device: str | None = "cpu",
                 checkpoint: str | Path | None = None) -> None:
        self.device = resolve_device(device)
        if checkpoint is not None:
            files = open_checkpoint(Path(checkpoint), model=self.name)
            config = config_from_dict(self.config_type, files.record["config"],
                                      Path(checkpoint) / CONFIG)
            self.trained_steps = _trained_steps(files)
        else:
            self.trained_steps = 0
        self.config = config if config is not None else self.config_type()
        if not isinstance(self.config, self.config_type):
            raise ValidationError(f"{self.name} config is {type(self.config).__name__}, "
                                  f"expected {self.config_type.__name__}")
        self.module: nn.Module | None = None
        if self.is_built():
            self.module = self.build().to(self.device)
        if checkpoint is not None:
            try:
                self.require_module().load_state_dict(files.tensors(self.device))
            except RuntimeError as err:  # missing/unexpected keys, shape mismatch
                reason = str(err).strip().splitlines()
                raise DataIntegrityError(
                    f"{Path(checkpoint) / WEIGHTS} does not fit the {self.name} config "
                    f"({' '.join(reason[:2])[:300]})") from None

    # ------------------------------------------------------------------ model-specific

    @abc.abstractmethod
    def is_built(self) -> bool:
        """Whether the config holds every size needed to build the module."""

    @abc.abstractmethod
    def build(self) -> nn.Module:
        """The torch module for ``self.config`` (sizes known)."""

    @abc.abstractmethod
    def prepare(self, rollouts: Sequence[Rollout]) -> None:
        """Infer sizes and fit normalizers from training rollouts (no-op once built)."""

    @abc.abstractmethod
    def windows(self, rollouts: Sequence[Rollout], unroll: int) -> Windows:
        """Training windows of ``unroll`` target frames after the model's history."""

    @abc.abstractmethod
    def losses(self, batch: dict[str, Any], *, unroll_mode: str,
               terms: Sequence[str], options: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Loss terms on a batch: ``data`` plus each physics term named in ``terms``."""

    @abc.abstractmethod
    def predict(self, context: Observation, horizon: int) -> Any:
        """`Prediction` for the ``horizon`` frames after the observation ``context``."""

    # ------------------------------------------------------------------ shared

    def require_module(self) -> nn.Module:
        if self.module is None:
            raise ValidationError(
                f"model '{self.name}' is untrained and unprepared: train it first "
                "(physground.learned.training.train) or load a checkpoint"
            )
        return self.module

    def parameters(self) -> list[nn.Parameter]:
        return list(self.require_module().parameters())

    def to(self, device: str) -> LearnedModel:
        self.device = resolve_device(device)
        if self.module is not None:
            self.module.to(self.device)
        return self

    def save(self, directory: str | Path, *, extra: dict[str, Any] | None = None,
             trainer: TrainerState | None = None, log: str = "") -> Path:
        """Write the checkpoint (``model.safetensors``, ``config.json``, the trainer state
        when given, a manifest) to ``directory`` in one atomic rename."""
        module = self.require_module()
        return save_checkpoint(
            Path(directory), model=self.name, config=self.config,
            tensors=dict(module.state_dict()),
            extra={"trained_steps": self.trained_steps, **(extra or {})},
            trainer=trainer, log=log,
        )

    @classmethod
    def load(cls, directory: str | Path, *, device: str | None = "cpu") -> LearnedModel:
        """The model saved in ``directory`` (weights, normalizers and config)."""
        return cls(device=device, checkpoint=directory)
