"""Accuracy of gridded fields (smoke ``density [T,H,W]`` and ``velocity [T,H,W,2]``).

Per horizon step, over the spatial grid (and the vector components, as channels):

- ``nRMSE = ||u_pred - u_true||_2 / ||u_true||_2``
- ``VRMSE = sqrt(mean (u_pred - u_true)^2 / var(u_true))`` per channel, averaged: 1 means
  as bad as predicting the spatial mean (as in The Well)
- spectral errors in three bands of radial wavenumber (low / mid / high thirds of the
  Nyquist radius, corners beyond it counted as high): ``sqrt(sum_band |F_pred - F_true|^2
  / sum_all |F_true|^2)``. By Parseval the squares of the three add up to nRMSE^2.
- correlation time: seconds until the Pearson correlation with the truth first falls below
  0.8 (capped at the step's own time; higher is better)
"""

from __future__ import annotations

import functools

import torch

from physground.metrics.batch import Batch, MissingInputError
from physground.metrics.registry import Metric, batched_metric

Tensor = torch.Tensor

FIELDS = ("density", "velocity")
BANDS = ("low", "mid", "high")
CORRELATION_THRESHOLD = 0.8
EPS = 1e-12


def _channels(batch: Batch, field: str) -> tuple[Tensor, Tensor]:
    """(truth, pred) as [R, H, C, Ny, Nx] with components as channels."""
    if field not in batch.pred:
        raise MissingInputError(f"prediction has no states['{field}'] (has {sorted(batch.pred)})")
    out = []
    for u in (batch.truth_window(field), batch.pred[field]):
        # scalar field [R, H, Ny, Nx] or vector field [R, H, Ny, Nx, C]
        out.append(u.unsqueeze(2) if u.dim() == 4 else u.movedim(-1, 2))
    return out[0], out[1]


def nrmse_batch(batch: Batch, field: str) -> Tensor:
    truth, pred = _channels(batch, field)
    err = (pred - truth).pow(2).sum((2, 3, 4)).sqrt()
    return err / truth.pow(2).sum((2, 3, 4)).sqrt().clamp_min(EPS)


def vrmse_batch(batch: Batch, field: str) -> Tensor:
    truth, pred = _channels(batch, field)
    mse = (pred - truth).pow(2).mean((3, 4))
    var = truth.var((3, 4), unbiased=False)
    return (mse / (var + EPS)).sqrt().mean(2)


def band_masks(ny: int, nx: int, device: torch.device | str = "cpu") -> Tensor:
    """Boolean masks [3, Ny, Nx] of the low/mid/high radial-wavenumber bands of an FFT grid."""
    ky = torch.fft.fftfreq(ny, device=device).abs() / 0.5  # 1 at Nyquist
    kx = torch.fft.fftfreq(nx, device=device).abs() / 0.5
    k = torch.sqrt(ky.view(-1, 1) ** 2 + kx.view(1, -1) ** 2)
    return torch.stack([k < 1 / 3, (k >= 1 / 3) & (k < 2 / 3), k >= 2 / 3])


def spectral_errors(batch: Batch, field: str) -> Tensor:
    """Band errors [R, H, 3] (low, mid, high), normalized by the truth's total energy."""
    truth, pred = _channels(batch, field)
    diff = torch.fft.fft2(pred - truth).abs().pow(2)
    total = torch.fft.fft2(truth).abs().pow(2).sum((2, 3, 4)).clamp_min(EPS)
    masks = band_masks(truth.shape[-2], truth.shape[-1], truth.device).to(diff.dtype)
    band = torch.einsum("rhcyx,byx->rhb", diff, masks)
    return (band / total.unsqueeze(-1)).sqrt()


def spectral_batch(batch: Batch, field: str, band: int) -> Tensor:
    return spectral_errors(batch, field)[..., band]


def correlation(batch: Batch, field: str) -> Tensor:
    """Pearson correlation [R, H] of prediction and truth over grid and components
    (1 when both are constant and equal)."""
    truth, pred = _channels(batch, field)
    t = truth.flatten(2) - truth.flatten(2).mean(-1, keepdim=True)
    p = pred.flatten(2) - pred.flatten(2).mean(-1, keepdim=True)
    var_t, var_p = t.pow(2).sum(-1), p.pow(2).sum(-1)
    corr = (t * p).sum(-1) / (var_t * var_p).sqrt().clamp_min(EPS)
    flat = (var_t < EPS) & (var_p < EPS)
    same = (truth.flatten(2) - pred.flatten(2)).abs().amax(-1) < 1e-9
    return torch.where(flat, same.to(corr.dtype), corr)


def correlation_time_batch(batch: Batch, field: str) -> Tensor:
    """Seconds [R, H] of the steps before the correlation first drops below 0.8, counted up
    to each horizon step (so the curve rises with slope dt, then stays flat)."""
    good = correlation(batch, field) >= CORRELATION_THRESHOLD
    run = good.to(torch.int64).cumprod(1).cumsum(1)  # steps kept before the first failure
    return run.to(torch.float64) * batch.dt.view(-1, 1)


FIELD_FLOOR = 1e-3  # relative field error below which two fields are indistinguishable
CORRELATION_TIME_FLOOR = 0.01  # s


def _field_metrics(field: str) -> dict[str, Metric]:
    detects = {"frozen", "time_reversed", "delayed"}
    mass = {"mass_not_conserved"} if field == "density" else set()
    common = dict(requires_states=(field,), family="accuracy", tolerates={"state_noise"},
                  tags=("state", "accuracy", "fluid", "smoke"))
    relative = dict(floor=FIELD_FLOOR, detects=detects | mass, **common)
    out = {
        f"{field}_nrmse": batched_metric(
            f"{field}_nrmse", functools.partial(nrmse_batch, field=field),
            higher_is_better=False, unit="1",
            description=f"||{field} error||_2 / ||{field}||_2 per step", **relative),
        f"{field}_vrmse": batched_metric(
            f"{field}_vrmse", functools.partial(vrmse_batch, field=field),
            higher_is_better=False, unit="1",
            description=f"RMSE of {field} over its spatial standard deviation per step",
            **relative),
        f"{field}_correlation_time": batched_metric(
            f"{field}_correlation_time", functools.partial(correlation_time_batch, field=field),
            higher_is_better=True, unit="s", reduce="last", floor=CORRELATION_TIME_FLOOR,
            detects={"frozen", "time_reversed"},  # Pearson: blind to scale, slow to lags
            description=f"time until the {field} correlation with the truth drops below "
                        f"{CORRELATION_THRESHOLD}", **common),
    }
    for index, band in enumerate(BANDS):
        name = f"{field}_spectral_{band}"
        out[name] = batched_metric(
            name, functools.partial(spectral_batch, field=field, band=index),
            higher_is_better=False, unit="1",
            description=f"{field} error in the {band} third of radial wavenumbers, relative "
                        "to the truth's total spectral energy",
            **{**relative, "detects": detects | (mass if band != "high" else set())})
    return out


FIELD_METRICS: dict[str, Metric] = {}
for _field in FIELDS:
    FIELD_METRICS.update(_field_metrics(_field))
# Module attributes (e.g. ``density_nrmse``) so that lazy registry entries can point at them.
globals().update(FIELD_METRICS)
