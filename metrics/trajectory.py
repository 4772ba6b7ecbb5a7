"""Trajectory accuracy of positions: RMSE, ADE and FDE per horizon step.

Positions are rigid ``pos [T,B,3]`` or cloth/SPH ``x [T,N,d]`` (m). A prediction that only
outputs frames gets positions from soft object masks (`physground.metrics.pixels`).
With ``e_b(t) = |x_pred,b(t) - x_true,b(t)|``:

- ``position_rmse(t) = sqrt(mean_b e_b(t)^2)``: the RMSE at step t; over a horizon it is
  the mean of the per-step values (``reduce = "mean"``)
- ``position_fde(t) = mean_b e_b(t)``: the final displacement error of a horizon-t
  forecast; over a horizon H it is the value at step H (``reduce = "last"``), never a mean
- ``position_ade(t) = mean_{s<=t} mean_b e_b(s)``: the running average displacement error;
  over a horizon H it is the value at step H, the ADE of the whole forecast

The position floor (0.1 mm) is the resolution of a measured position; the second take of
each scene sets the physical floor above it (`physground.metrics.scores`).
"""

from __future__ import annotations

import torch

from physground.metrics.batch import Batch
from physground.metrics.registry import batched_metric

Tensor = torch.Tensor


def displacement(batch: Batch) -> Tensor:
    """Per-body Euclidean position error [R, H, B] in m."""
    truth = batch.truth_positions()[:, batch.context:]
    pred = batch.pred_positions()
    return torch.linalg.vector_norm(pred - truth, dim=-1)


def position_rmse_batch(batch: Batch) -> Tensor:
    err = displacement(batch)
    return torch.sqrt((err * err).mean(-1))


def position_fde_batch(batch: Batch) -> Tensor:
    return displacement(batch).mean(-1)


def position_ade_batch(batch: Batch) -> Tensor:
    per_step = displacement(batch).mean(-1)
    steps = torch.arange(1, per_step.shape[1] + 1, dtype=per_step.dtype, device=per_step.device)
    return per_step.cumsum(1) / steps


POSITION_FLOOR = 1e-4  # m
_COMMON = dict(higher_is_better=False, requires_states=("pos|x",), unit="m",
               derivable_from_pixels=True, family="accuracy", floor=POSITION_FLOOR,
               tolerates={"state_noise"},
               detects={"frozen", "time_reversed", "delayed", "gravity_scaled",
                        "energy_injected", "teleport"},
               tags=("state", "accuracy", "rigid", "cloth", "sph"))

position_rmse = batched_metric(
    "position_rmse", position_rmse_batch,
    description="root-mean-square position error over bodies/particles per step "
                "(mean over the horizon)",
    reduce="mean", **_COMMON,
)
position_fde = batched_metric(
    "position_fde", position_fde_batch,
    description="final displacement error: mean Euclidean position error at the last step",
    reduce="last", **_COMMON,
)
position_ade = batched_metric(
    "position_ade", position_ade_batch,
    description="average displacement error: mean Euclidean position error over all steps",
    reduce="last", **_COMMON,
)
