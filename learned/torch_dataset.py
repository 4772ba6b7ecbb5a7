"""A torch `Dataset` of (context, target) windows over physground datasets.

Each item is one window cut from one rollout: ``context`` frames of the chosen states (and
optionally frames), the next ``horizon`` frames as the target, the statics a model may see
on ``track`` (the observation contract: given statics; latent ones too when conditioned),
and ``dt``. Windows start every ``stride`` frames. Float arrays become
float32 tensors in SI units (see `physground.units`). Rollouts whose entity count varies
(``rigid/collision``: 2-6 spheres) batch with `collate_windows`, which pads the entity
axis and returns a boolean ``mask [B, N]``.

    loader = DataLoader(WindowDataset(path, context=6, horizon=10), batch_size=32,
                        shuffle=True, collate_fn=collate_windows)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from physground.errors import ValidationError
from physground.observation import observation_spec
from physground.rollout import Rollout
from physground.storage import Dataset


def _visible_statics(rollout: Rollout, track: str) -> dict[str, Any]:
    """The statics a model may see on ``track`` (the scenario's observation declaration)."""
    visible = observation_spec(rollout.scenario).visible_static(track)
    return {k: v for k, v in rollout.static.items() if k in visible}


class WindowDataset(TorchDataset):
    """Windows over one or more datasets of one scenario (a map-style torch Dataset)."""

    def __init__(self, *datasets: Dataset | str | Path, context: int, horizon: int,
                 stride: int = 1, states: Sequence[str] | None = None,
                 frames: bool = False, track: str = "default") -> None:
        if context < 1 or horizon < 1 or stride < 1:
            raise ValidationError(f"context = {context}, horizon = {horizon}, stride = "
                                  f"{stride}: each expected >= 1")
        opened = [d if isinstance(d, Dataset) else Dataset(Path(d)) for d in datasets]
        if not opened:
            raise ValidationError("WindowDataset needs at least one dataset")
        scenarios = {d.scenario for d in opened}
        if len(scenarios) > 1:
            raise ValidationError(f"WindowDataset got datasets of several scenarios "
                                  f"{sorted(scenarios)}; use one per scenario")
        self.context, self.horizon = context, horizon
        self.rollouts = [r for d in opened for r in d]
        names = list(states) if states is not None else list(self.rollouts[0].states)
        missing = [n for n in names if n not in self.rollouts[0].states]
        if missing:
            raise ValidationError(f"states {missing} are not in {opened[0].scenario} "
                                  f"(it has {sorted(self.rollouts[0].states)})")
        self.state_names = names
        if frames and self.rollouts[0].frames is None:
            raise ValidationError(f"frames = True, but {opened[0].path} stores no frames")
        self.frames = frames
        self.track = track
        span = context + horizon
        self.index = [(i, start) for i, r in enumerate(self.rollouts)
                      for start in range(0, r.num_frames - span + 1, stride)]
        if not self.index:
            raise ValidationError(f"no window of context {context} + horizon {horizon} fits "
                                  f"rollouts of {self.rollouts[0].num_frames} frames")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, Any]:
        rollout_index, start = self.index[item]
        rollout = self.rollouts[rollout_index]
        mid, end = start + self.context, start + self.context + self.horizon
        out: dict[str, Any] = {
            "context": {n: _tensor(rollout.states[n][start:mid]) for n in self.state_names},
            "target": {n: _tensor(rollout.states[n][mid:end]) for n in self.state_names},
            "static": {k: _tensor(v) for k, v in _visible_statics(rollout, self.track).items()},
            "dt": torch.tensor(rollout.dt, dtype=torch.float32),
            "rollout": rollout_index, "start": start,
        }
        if self.frames:
            assert rollout.frames is not None
            out["context_frames"] = torch.as_tensor(rollout.frames[start:mid])
            out["target_frames"] = torch.as_tensor(rollout.frames[mid:end])
        return out


def _tensor(value: Any) -> torch.Tensor:
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.floating):
        return torch.as_tensor(array.astype(np.float32))
    return torch.as_tensor(array)


def _pad_stack(tensors: list[torch.Tensor], axis: int) -> torch.Tensor:
    """Stack, zero-padding ``axis`` (the entity axis) to the longest tensor."""
    if all(t.shape == tensors[0].shape for t in tensors):
        return torch.stack(tensors)
    size = max(t.shape[axis] for t in tensors)
    padded = []
    for t in tensors:
        shape = list(t.shape)
        shape[axis] = size - t.shape[axis]
        padded.append(torch.cat([t, t.new_zeros(shape)], dim=axis))
    return torch.stack(padded)


def collate_windows(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch windows; pads a varying entity axis (states ``[T, N, ...]``, statics ``[N, ...]``)
    with zeros and returns ``mask [B, N]`` (True for real entities; all True otherwise)."""
    first = items[0]
    batch: dict[str, Any] = {}
    for part in ("context", "target"):
        batch[part] = {n: _pad_stack([it[part][n] for it in items], axis=1)
                       for n in first[part]}
    batch["static"] = {}
    for name in first["static"]:
        values = [it["static"][name] for it in items]
        batch["static"][name] = _pad_stack(values, axis=0) if values[0].ndim else \
            torch.stack(values)
    counts = [next(iter(it["context"].values())).shape[1]
              if next(iter(it["context"].values())).ndim > 1 else 1 for it in items]
    width = max(counts)
    batch["mask"] = torch.arange(width)[None, :] < torch.as_tensor(counts)[:, None]
    batch["dt"] = torch.stack([it["dt"] for it in items])
    batch["rollout"] = torch.as_tensor([it["rollout"] for it in items])
    batch["start"] = torch.as_tensor([it["start"] for it in items])
    for key in ("context_frames", "target_frames"):
        if key in first:
            batch[key] = torch.stack([it[key] for it in items])
    return batch
