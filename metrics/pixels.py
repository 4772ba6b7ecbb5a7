"""Pixel metrics for video models, and states recovered from pixels.

- PSNR and SSIM (Gaussian window 11 px, sigma 1.5, K1 = 0.01, K2 = 0.03) per frame.
- The motion-mask metrics of the Physics-IQ benchmark: a pixel is *moving* at step t when
  its grey level changed by more than ``MOTION_THRESHOLD`` since the previous frame (the
  last context frame before step 1; Physics-IQ uses OpenCV background subtraction, frame
  differencing is its deterministic analogue). Spatial IoU compares where motion happened
  (union over steps 1..t), spatiotemporal IoU where and when (mean of per-step IoUs),
  weighted spatial IoU also how much (``sum min / sum max`` of per-pixel motion counts);
  these three are *running* metrics (registered as ``*_running``: the value at step t
  covers steps 1..t, and a horizon is scored by its last step, Physics-IQ's value), while
  PSNR, SSIM and MSE (the pixel error in [0, 1] units) are per frame (scored by the mean
  over frames). Two empty masks have IoU 1.
- Soft object masks from colours: each object's colour is its mean colour in the truth's
  context frames (where ``masks == id``), the background a small k-means palette of the
  other pixels; a pixel's soft membership is a softmax over negative squared colour
  distances. Soft area and centroid (`quantities.soft_mask_moments`) are differentiable in
  the frames, so they serve as losses too.
- Positions from pixels: the soft centroid of object ``id`` is cast back into the world
  through the camera at the depth of body ``id - 1`` at the last context frame (exact for
  motion parallel to the image plane, as in the side-view rigid scenarios), so that state
  metrics apply to models that only output frames.
"""

from __future__ import annotations

import torch

from physground.metrics import quantities as q
from physground.metrics.batch import Batch, MissingInputError
from physground.metrics.registry import batched_metric

Tensor = torch.Tensor

PSNR_CAP = 100.0  # dB, the value of identical frames (PSNR is infinite there)
MOTION_THRESHOLD = 0.05  # grey-level change in [0, 1] that counts as motion
PALETTE_SIZE = 6
MIN_COLOR_SPREAD = 0.05  # floor of the colour noise scale of the softmax


def _frames(batch: Batch) -> tuple[Tensor, Tensor]:
    """(truth window, prediction) frames as float in [0, 1], [R, H, h, w, 3]."""
    if batch.pred_frames is None:
        raise MissingInputError("prediction has no frames")
    if batch.truth_frames is None:
        raise MissingInputError(f"truth of {batch.scenario} has no frames (render = false?)")
    truth = batch.truth_frames[:, batch.context:].to(torch.float64) / 255.0
    pred = batch.pred_frames.to(torch.float64) / 255.0
    return truth, pred


# -- image quality -------------------------------------------------------------------------


def psnr_batch(batch: Batch) -> Tensor:
    """``10 log10(1 / MSE)`` dB per step [R, H], capped at 100 dB for identical frames."""
    truth, pred = _frames(batch)
    mse = (pred - truth).pow(2).mean((-3, -2, -1))
    return (10.0 * torch.log10(1.0 / mse.clamp_min(1e-300))).clamp_max(PSNR_CAP)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _band_matrix(n: int, window: Tensor) -> Tensor:
    """[n - k + 1, n] matrix applying the 1-D window over the valid positions."""
    k = window.shape[0]
    out = torch.zeros(n - k + 1, n, dtype=window.dtype)
    for i in range(n - k + 1):
        out[i, i:i + k] = window
    return out


def ssim(a: Tensor, b: Tensor, size: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of images [..., h, w, C] in [0, 1] -> [...] (Wang et al. 2004).

    Gaussian-weighted local statistics over the valid region (no padding), averaged over
    pixels and channels; the window shrinks to the image for images smaller than it. The
    separable blur is two matrix products (fast on CPU in float64).
    """
    h, w = a.shape[-3:-1]
    size = min(size, h, w)
    g = _gaussian_window(size, sigma).to(a)
    rows, cols = _band_matrix(h, g).to(a), _band_matrix(w, g).to(a)

    def blur(x: Tensor) -> Tensor:  # [..., C, h, w] -> [..., C, h', w']
        return rows @ x @ cols.T

    x, y = a.movedim(-1, -3), b.movedim(-1, -3)
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean((-3, -2, -1))


def ssim_batch(batch: Batch) -> Tensor:
    truth, pred = _frames(batch)
    return ssim(pred, truth)


def pixel_mse_batch(batch: Batch) -> Tensor:
    """Mean squared pixel error per step [R, H] in [0, 1]^2 units (Physics-IQ MSE)."""
    truth, pred = _frames(batch)
    return (pred - truth).pow(2).mean((-3, -2, -1))


# -- Physics-IQ motion masks ----------------------------------------------------------------


def _gray(frames: Tensor) -> Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=frames.dtype, device=frames.device)
    return frames @ weights


def motion_masks(previous: Tensor, frames: Tensor,
                 threshold: float = MOTION_THRESHOLD) -> Tensor:
    """Binary motion masks [..., T, h, w]: grey-level change above ``threshold`` since the
    previous frame; ``previous`` [..., h, w, 3] precedes ``frames`` [..., T, h, w, 3]."""
    gray = _gray(torch.cat([previous.unsqueeze(-4), frames], dim=-4))
    return (gray[..., 1:, :, :] - gray[..., :-1, :, :]).abs() > threshold


def _motion_pair(batch: Batch) -> tuple[Tensor, Tensor]:
    truth, pred = _frames(batch)
    last = batch.truth_frames[:, batch.context - 1].to(torch.float64) / 255.0
    return motion_masks(last, truth), motion_masks(last, pred)


def _iou(a: Tensor, b: Tensor) -> Tensor:
    inter = (a & b).sum((-2, -1)).to(torch.float64)
    union = (a | b).sum((-2, -1)).to(torch.float64)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def spatial_iou_batch(batch: Batch) -> Tensor:
    """IoU of where motion happened in steps 1..t [R, H]."""
    truth, pred = _motion_pair(batch)
    return _iou(truth.cummax(1).values, pred.cummax(1).values)


def spatiotemporal_iou_batch(batch: Batch) -> Tensor:
    """Mean over steps 1..t of the per-step motion-mask IoU [R, H]."""
    truth, pred = _motion_pair(batch)
    per_step = _iou(truth, pred)
    steps = torch.arange(1, per_step.shape[1] + 1, dtype=per_step.dtype)
    return per_step.cumsum(1) / steps


def weighted_spatial_iou_batch(batch: Batch) -> Tensor:
    """``sum min(A_p, A_t) / sum max(A_p, A_t)`` with A the per-pixel motion counts over
    steps 1..t [R, H]."""
    truth, pred = _motion_pair(batch)
    a_t = truth.to(torch.float64).cumsum(1)
    a_p = pred.to(torch.float64).cumsum(1)
    num = torch.minimum(a_t, a_p).sum((-2, -1))
    den = torch.maximum(a_t, a_p).sum((-2, -1))
    return torch.where(den > 0, num / den.clamp_min(1), torch.ones_like(den))


# -- soft object masks ----------------------------------------------------------------------


def object_colors(frames: Tensor, masks: Tensor, num_objects: int) -> tuple[Tensor, Tensor]:
    """Mean colour [K, 3] of objects 1..K in frames [T, h, w, 3] (float in [0, 1]) and the
    RMS colour spread around it [K] (NaN colour for objects never visible)."""
    colors, spread = [], []
    flat, ids = frames.reshape(-1, 3), masks.reshape(-1)
    for k in range(1, num_objects + 1):
        pixels = flat[ids == k]
        if pixels.shape[0] == 0:
            colors.append(torch.full((3,), float("nan"), dtype=frames.dtype))
            spread.append(torch.tensor(float("nan"), dtype=frames.dtype))
            continue
        mean = pixels.mean(0)
        colors.append(mean)
        spread.append((pixels - mean).pow(2).sum(-1).mean().sqrt())
    return torch.stack(colors), torch.stack(spread)


def background_palette(frames: Tensor, masks: Tensor, size: int = PALETTE_SIZE,
                       iterations: int = 10, max_pixels: int = 8192) -> Tensor:
    """k-means colour palette [P, 3] of background pixels (``masks == 0``); deterministic
    (evenly strided sample, centres initialised at luminance quantiles)."""
    pixels = frames.reshape(-1, 3)[masks.reshape(-1) == 0]
    if pixels.shape[0] == 0:
        return torch.zeros((1, 3), dtype=frames.dtype)
    stride = max(1, pixels.shape[0] // max_pixels)
    pixels = pixels[::stride]
    order = _gray(pixels).argsort()
    picks = torch.linspace(0, pixels.shape[0] - 1, min(size, pixels.shape[0])).round().long()
    centres = pixels[order[picks]].clone()
    for _ in range(iterations):
        label = torch.cdist(pixels, centres).argmin(1)
        for c in range(centres.shape[0]):
            members = pixels[label == c]
            if members.shape[0]:
                centres[c] = members.mean(0)
    return centres


def soft_object_masks(frames: Tensor, colors: Tensor, palette: Tensor,
                      temperature: float | Tensor) -> Tensor:
    """Soft membership [..., K, h, w] in [0, 1] of each object colour in frames
    [..., h, w, 3] (float in [0, 1]); differentiable in the frames.

    ``p_k = softmax_j(-|rgb - c_j|^2 / temperature)`` over the K object colours and the
    background palette, keeping the object channels.
    """
    refs = torch.cat([colors, palette]).to(frames)
    flat = frames.reshape(-1, 3)
    ones = torch.ones(3, dtype=frames.dtype, device=frames.device)
    # |p - c|^2 = |p|^2 - 2 p.c + |c|^2 as matrix products, references leading: [K+P, N]
    dist = (flat * flat) @ ones - 2 * refs @ flat.T + ((refs * refs) @ ones).unsqueeze(-1)
    logits = -dist / temperature
    weights = torch.exp(logits - logits.amax(0))
    prob = weights[: colors.shape[0]] / weights.sum(0)
    return prob.reshape(colors.shape[0], *frames.shape[:-1]).movedim(0, -3)


def _color_model(batch: Batch, r: int, num_objects: int) -> tuple[Tensor, Tensor, Tensor]:
    """Colours, background palette and softmax temperature of rollout ``r``'s objects,
    learned from its context frames and masks (once per batch)."""
    return batch.cached(f"color_model_{r}_{num_objects}",
                        lambda: _fit_color_model(batch, r, num_objects))


def _fit_color_model(batch: Batch, r: int, num_objects: int) -> tuple[Tensor, Tensor, Tensor]:
    if batch.truth_frames is None or batch.truth_masks is None:
        raise MissingInputError(
            f"truth of {batch.scenario} has no frames and masks to learn object colours from"
        )
    frames = batch.truth_frames[r, : batch.context].to(torch.float64) / 255.0
    masks = batch.truth_masks[r, : batch.context]
    colors, spread = object_colors(frames, masks, num_objects)
    palette = background_palette(frames, masks)
    noise = torch.nan_to_num(spread, nan=0.0).amax().clamp_min(MIN_COLOR_SPREAD)
    return colors, palette, 2.0 * noise**2


def soft_area_centroid(batch: Batch, num_objects: int,
                       side: str = "pred") -> tuple[Tensor, Tensor]:
    """Soft areas [R, T, K] (px) and centroids [R, T, K, 2] (u, v px) of the objects in
    the predicted frames (``side='pred'``, [R, H]) or the true ones (``'truth'``,
    [R, C+H]), with colours learned from the truth's context; computed once per batch."""
    return batch.cached(f"soft_moments_{side}_{num_objects}",
                        lambda: _soft_area_centroid(batch, num_objects, side))


def _soft_area_centroid(batch: Batch, num_objects: int, side: str) -> tuple[Tensor, Tensor]:
    frames = batch.pred_frames if side == "pred" else batch.truth_frames
    if frames is None:
        raise MissingInputError("prediction has no frames")
    areas, centroids = [], []
    for r in range(batch.size):
        colors, palette, temperature = _color_model(batch, r, num_objects)
        rgb = frames[r].to(torch.float64) / 255.0
        weights = soft_object_masks(rgb, torch.nan_to_num(colors, nan=-10.0), palette,
                                    temperature)
        area, centroid = q.soft_mask_moments(weights)
        areas.append(area)
        centroids.append(centroid)
    return torch.stack(areas), torch.stack(centroids)


def unproject(camera: object, pixels: Tensor, depth: Tensor) -> Tensor:
    """World points [..., 3] of pixel coordinates [..., 2] at camera depths [...] (m)."""
    k = torch.as_tensor(camera.intrinsics, dtype=torch.float64)  # type: ignore[attr-defined]
    ext = torch.as_tensor(camera.extrinsics, dtype=torch.float64)  # type: ignore[attr-defined]
    rot, trans = ext[:3, :3], ext[:3, 3]
    ones = torch.ones_like(pixels[..., :1])
    rays = torch.cat([pixels, ones], -1) @ torch.linalg.inv(k).T
    cam = rays * depth.unsqueeze(-1)
    return (cam - trans) @ rot


def positions_from_frames(batch: Batch, side: str) -> Tensor:
    """Body positions [R, T, B, 3] recovered from the soft masks of the predicted
    (``side='pred'``) or true (``'truth'``) frames.

    Object ``id`` (mask value) is body ``id - 1``. Each centroid is unprojected at the
    camera depth of its body at the last context frame. An object that vanished from
    the prediction has no centroid: its position is NaN and the metric a failure.
    """
    name = batch.position_name()
    if name != "pos":
        raise MissingInputError(
            f"positions from frames need one object mask per rigid body; {batch.scenario} "
            f"has states['{name}'] (mesh nodes or particles), so predict states['{name}']"
        )
    last = batch.truth_context(name)[:, -1]  # [R, B, 3]
    bodies = last.shape[1]
    if any(c is None for c in batch.cameras):
        raise MissingInputError(f"truth of {batch.scenario} has no camera to map pixels back")
    area, centroid = soft_area_centroid(batch, bodies, side)
    out = []
    for r, camera in enumerate(batch.cameras):
        ext = torch.as_tensor(camera.extrinsics, dtype=torch.float64)  # type: ignore[union-attr]
        depth = last[r] @ ext[:3, :3].T + ext[:3, 3]  # [B, 3] camera coordinates
        points = unproject(camera, centroid[r], depth[:, 2].expand(centroid.shape[1], -1))
        visible = (area[r] > 0.5).unsqueeze(-1)  # at least half a pixel of object
        out.append(torch.where(visible, points, torch.full_like(points, float("nan"))))
    return torch.stack(out)


# -- object permanence ----------------------------------------------------------------------


def object_areas(batch: Batch) -> tuple[Tensor, Tensor]:
    """(truth, pred) object areas [R, H, K] in px, measured the same way on both sides:
    hard mask areas when the model predicted masks, else soft areas from the colours of
    both sides' frames."""
    if batch.truth_masks is None:
        raise MissingInputError(f"truth of {batch.scenario} has no object masks")
    masks = batch.truth_masks
    num = int(masks[:, : batch.context].amax().item())
    if batch.pred_masks is not None:
        ids = torch.arange(1, num + 1, device=masks.device).view(1, 1, -1, 1, 1)
        truth = (masks[:, batch.context:].unsqueeze(2) == ids).sum((-2, -1)).to(torch.float64)
        pred = (batch.pred_masks.unsqueeze(2) == ids).sum((-2, -1)).to(torch.float64)
        return truth, pred
    if batch.truth_frames is None:
        raise MissingInputError(f"truth of {batch.scenario} has no frames")
    truth, _ = soft_area_centroid(batch, num, "truth")
    pred, _ = soft_area_centroid(batch, num, "pred")
    truth = truth[:, batch.context:]
    return truth, pred


def object_permanence_batch(batch: Batch) -> Tensor:
    """Mean over the objects visible at the last context frame of ``min(A_p, A_t) /
    max(A_p, A_t)`` per step [R, H]: 1 when every object keeps its true visible area, 0 when
    one vanishes (or appears) against the truth."""
    truth, pred = object_areas(batch)
    masks = batch.truth_masks
    num = truth.shape[-1]
    ids = torch.arange(1, num + 1, device=masks.device).view(1, -1, 1, 1)
    present = (masks[:, batch.context - 1].unsqueeze(1) == ids).any(-1).any(-1)  # [R, K]
    big, small = torch.maximum(truth, pred), torch.minimum(truth, pred)
    ratio = torch.where(big > 0.5, small / big.clamp_min(1e-12), torch.ones_like(big))
    weight = present.unsqueeze(1).to(torch.float64)
    count = weight.sum(-1)
    value = (ratio * weight).sum(-1) / count.clamp_min(1)
    batch.mark_undefined(count[:, 0] == 0, "no object is visible at the last context frame")
    return torch.where(count > 0, value, torch.full_like(value, float("nan")))


# -- registrations --------------------------------------------------------------------------

# Pixel errors below (4/255)^2 (about 2 grey levels of 8-bit video, sensor noise and
# codec quantisation) are not visible: the resolution floor of pixel_mse and PSNR.
PIXEL_MSE_FLOOR = (4.0 / 255.0) ** 2
_PIX = dict(modality="pixels", family="pixels", tags=("pixels", "accuracy"),
            detects={"frozen", "time_reversed", "delayed"})
# where motion happened (a union over steps) is the same played backwards
_WHERE = {"frozen", "delayed", "vanish_reappear"}
psnr = batched_metric("psnr", psnr_batch, higher_is_better=True, unit="dB", decibel=True,
                      floor=PIXEL_MSE_FLOOR, tolerates={"pixel_noise"},
                      description="peak signal-to-noise ratio per frame (100 dB if identical)",
                      **_PIX)
ssim_metric = batched_metric("ssim", ssim_batch, higher_is_better=True, unit="1",
                             floor=1e-3,
                             description="structural similarity per frame (11 px Gaussian)",
                             **_PIX)
pixel_mse = batched_metric("pixel_mse", pixel_mse_batch, higher_is_better=False, unit="1",
                           floor=PIXEL_MSE_FLOOR, tolerates={"pixel_noise"},
                           description="mean squared pixel error in [0, 1] units "
                                       "(Physics-IQ MSE)", **_PIX)
spatial_iou = batched_metric(
    "spatial_iou_running", spatial_iou_batch, higher_is_better=True, unit="1",
    floor=0.02, reduce="last",
    description="IoU of where motion happened up to step t (Physics-IQ)",
    **{**_PIX, "detects": _WHERE})
spatiotemporal_iou = batched_metric(
    "spatiotemporal_iou_running", spatiotemporal_iou_batch, higher_is_better=True, unit="1",
    floor=0.02, reduce="last",
    description="mean per-step IoU of motion masks up to t (Physics-IQ)",
    **{**_PIX, "detects": _WHERE | {"time_reversed"}})
weighted_spatial_iou = batched_metric(
    "weighted_spatial_iou_running", weighted_spatial_iou_batch, higher_is_better=True, unit="1",
    floor=0.02, reduce="last",
    description="IoU of per-pixel motion amounts up to t (Physics-IQ)",
    **{**_PIX, "detects": _WHERE})
object_permanence = batched_metric(
    "object_permanence", object_permanence_batch, higher_is_better=True, unit="1",
    floor=0.01, tolerates={"pixel_noise", "quantise"},
    requires_laws={"object_permanence"},
    description="mean min/max ratio of predicted and true object mask areas",
    **{**_PIX, "detects": {"vanish_reappear"}, "tags": ("pixels", "plausibility")})
