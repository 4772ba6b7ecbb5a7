"""Pixel metrics for video models, and states recovered from pixels.

- PSNR and SSIM (Gaussian window 11 px, sigma 1.5, K1 = 0.01, K2 = 0.03) per frame.
- physground's own motion-mask metrics, after those of the Physics-IQ benchmark: a pixel is
  *moving* at step t when an object's coverage of it changed by at least
  ``pixel_tracking.MOTION_COVERAGE`` since the previous frame (the last context frame
  before step 1), objects tracked by colour mixtures
  (`physground.metrics.pixel_tracking`), which a codec's noise and blur do not move; in
  scenes without object masks, when its grey level changed by more than
  ``MOTION_THRESHOLD`` (the definition before the codec-robust masks; on exact frames
  both give IoU 1). Physics-IQ's own masks
  (blur, running background, morphology) are in `physground.metrics.physics_iq`
  (``piq_*``), whose numbers compare with its leaderboard; these do not. Spatial IoU
  compares where motion happened (union over steps 1..t), spatiotemporal IoU where and
  when (mean of per-step IoUs), weighted spatial IoU also how much (``sum min / sum max``
  of per-pixel motion counts); these three are *running* metrics (registered as
  ``*_running``: the value at step t covers steps 1..t, and a horizon is scored by its
  last step), while PSNR, SSIM and MSE (the pixel error in [0, 1] units) are per frame
  (scored by the mean over frames). Two empty masks have IoU 1.
- Soft object masks from colours: each object's colour is its mean colour in the truth's
  context frames (where ``masks == id``), the background a small k-means palette of the
  other pixels; a pixel's soft membership is a softmax over negative squared colour
  distances. Soft area and centroid (`quantities.soft_mask_moments`) are differentiable in
  the frames, so they serve as losses too; the metrics evaluate the same softmax once per
  distinct colour of a rollout and sum colour histograms (identical values, no per-pixel
  exponentials).
- Speed: frames stay uint8 (PSNR/MSE from exact integer sums over the rows that differ),
  SSIM blurs with OpenCV's separable filter only crops around the differing pixels,
  the tracker evaluates only pixels that differ from its background, motion masks are
  kept as the indices of the moving pixels, and all of it is computed once per batch
  (`benchmarks/speed/bench_metrics.py` times this against the previous implementation).
- Positions from pixels: the centroid of object ``id`` tracked by colour mixtures
  (`physground.metrics.pixel_tracking`, robust to codecs and resizing; it replaced the
  soft-mask centroid, so frames-only values of non-exact predictions changed, exact
  frames still give the truth's values) is cast back into the world through the camera at
  the depth of body ``id - 1`` at the last context frame (exact for motion parallel to the
  image plane, as in the side-view rigid scenarios), so that state metrics apply to
  models that only output frames. Displacements from the truth's own tracked positions
  below `PIXEL_RESOLUTION` px are not resolved (`snap_to_truth`). Object areas for
  `object_permanence` come from the same tracker.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import torch

from physground.metrics.batch import Batch, MissingInputError
from physground.metrics.pixel_tracking import tracked_moments
from physground.metrics.registry import batched_metric

Tensor = torch.Tensor

PSNR_CAP = 100.0  # dB, the value of identical frames (PSNR is infinite there)
MOTION_THRESHOLD = 0.05  # grey-level change in [0, 1] that counts as motion
PALETTE_SIZE = 6
MIN_COLOR_SPREAD = 0.05  # floor of the colour noise scale of the softmax


def _frames(batch: Batch) -> tuple[Tensor, Tensor]:
    """(truth window, prediction) frames as float in [0, 1], [R, H, h, w, 3]."""
    truth, pred = _uint8_frames(batch)
    return (torch.from_numpy(truth).to(torch.float64) / 255.0,
            torch.from_numpy(pred).to(torch.float64) / 255.0)


def _uint8_frames(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """(truth window, prediction) frames as uint8 numpy views [R, H, h, w, 3]."""
    if batch.pred_frames is None:
        raise MissingInputError("prediction has no frames")
    if batch.truth_frames is None:
        raise MissingInputError(f"truth of {batch.scenario} has no frames (render = false?)")
    truth = batch.truth_frames[:, batch.context:].cpu().numpy()
    return truth, batch.pred_frames.cpu().numpy()


# -- image quality -------------------------------------------------------------------------


def _squared_error(batch: Batch) -> np.ndarray:
    """Mean squared error per step [R, H] in [0, 1]^2 units, exact: integer sums of
    squared uint8 differences (once per batch)."""
    def compute() -> np.ndarray:
        truth, pred = _uint8_frames(batch)
        r, h = pred.shape[:2]
        changed, rows, _ = _differing(batch)
        frame, row = np.nonzero(rows)  # the rows that differ, the only nonzero terms
        at = (*np.unravel_index(changed[frame], (r, h)), row)
        diff = pred[at].astype(np.int32) - truth[at]  # [M, w, 3]
        sse = np.bincount(changed[frame], (diff * diff).sum((1, 2)), minlength=r * h)
        return sse.reshape(r, h) / (np.prod(pred.shape[2:]) * 255.0**2)
    return batch.cached("pixel_sse", compute)


def _differing(batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_differing_rows_cols` of the predicted and true window frames, once per batch
    (shared by MSE, PSNR and SSIM)."""
    def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        truth, pred = _uint8_frames(batch)
        return _differing_rows_cols(pred, truth)
    return batch.cached("pixel_differing", compute)


def psnr_batch(batch: Batch) -> Tensor:
    """``10 log10(1 / MSE)`` dB per step [R, H], capped at 100 dB for identical frames."""
    mse = torch.from_numpy(_squared_error(batch))
    return (10.0 * torch.log10(1.0 / mse.clamp_min(1e-300))).clamp_max(PSNR_CAP)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


SSIM_BLOCK_BYTES = 16 * 2**20  # float64 working set of one SSIM block of frames


def ssim(a: Tensor | np.ndarray, b: Tensor | np.ndarray, size: int = 11,
         sigma: float = 1.5, differing: tuple[np.ndarray, ...] | None = None) -> Tensor:
    """Mean SSIM of images [..., h, w, C] (C <= 4) in [0, 1] -> [...] (Wang et al. 2004).

    Gaussian-weighted local statistics over the valid region (no padding), averaged over
    pixels and channels; the window shrinks to the image for images smaller than it.
    Frames are stacked into one tall image and blurred by OpenCV's separable filter in
    float64 (rows of one frame never mix with another's inside the valid region). The
    terms are written so that they cancel exactly where the images agree:
    ``l = 1 - (mu_x - mu_y)^2 / (mu_x^2 + mu_y^2 + c1)`` and
    ``cs = 1 - (sigma^2_{x-y}) / (sigma^2_x + sigma^2_y + c2)``, the same SSIM.
    ``differing``: `_differing_rows_cols` of the images, where already known.
    """
    x = a.detach().cpu().numpy() if isinstance(a, Tensor) else np.asarray(a)
    y = b.detach().cpu().numpy() if isinstance(b, Tensor) else np.asarray(b)
    lead, (h, w, c) = x.shape[:-3], x.shape[-3:]
    size = min(size, h, w)
    g = _gaussian_window(size, sigma).numpy()
    if x.ndim == 3:
        x, y = x[None], y[None]
    n = int(np.prod(lead, dtype=np.int64))
    out = np.ones(n)
    k = g.shape[0]
    valid = (h - k + 1) * (w - k + 1) * c
    # A window where both images agree has SSIM exactly 1 (see above), so each frame is
    # evaluated on a crop that holds all windows meeting its differing pixels (their
    # bounding box, grown to a multiple of CROP_STEP px so that frames share crop shapes
    # and are blurred together). Frames are indexed in place (no copy of the stack).
    changed, rows, cols = _differing_rows_cols(x, y) if differing is None else differing
    r0, r1 = _window_spans(rows, k)
    c0, c1 = _window_spans(cols, k)
    shapes = np.stack([_grown(r1 - r0, h), _grown(c1 - c0, w)], -1)
    r0 = np.minimum(r0, h - shapes[:, 0])
    c0 = np.minimum(c0, w - shapes[:, 1])
    kinds, which = np.unique(shapes, axis=0, return_inverse=True)
    for kind, (bh, bw) in enumerate(kinds):
        inside = (bh - k + 1) * (bw - k + 1) * c
        pick = np.flatnonzero(which.reshape(-1) == kind)
        block = max(1, SSIM_BLOCK_BYTES // (8 * bh * bw * c * 4))
        for start in range(0, pick.size, block):
            part = pick[start:start + block]
            idx = changed[part]
            at = (*np.unravel_index(idx, x.shape[:-3]), r0[part], c0[part])
            value = _ssim_block(_crops(x, at, bh, bw), _crops(y, at, bh, bw), g)
            out[idx] = (value * inside + (valid - inside)) / valid
    return torch.from_numpy(out.reshape(lead))


def _differing_rows_cols(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
    """The frames that differ (flat indices [m] over the leading axes) of images
    [..., h, w, c], and their rows [m, h] and columns [m, w] that hold a differing pixel.
    Rows are compared as 8-byte words where their bytes allow (a bit pattern compare:
    -0.0 and 0.0 count as different, which only grows a crop), columns on those rows."""
    lead, (h, w, c) = x.shape[:-3], x.shape[-3:]
    row_bytes = w * c * x.itemsize
    if (x.dtype == y.dtype and row_bytes % 8 == 0 and x.strides[-1] == x.itemsize
            and y.strides[-1] == y.itemsize and x.strides[-2] == c * x.itemsize
            and y.strides[-2] == c * y.itemsize):
        words = (*lead, h, row_bytes // 8)
        xw = x.reshape(*lead, h, w * c).view(np.uint64).reshape(words)
        yw = y.reshape(*lead, h, w * c).view(np.uint64).reshape(words)
        rows = (xw != yw).any(-1).reshape(-1, h)
    else:
        rows = (x != y).any(-1).any(-1).reshape(-1, h)
    frame, row = np.nonzero(rows)
    changed, first = np.unique(frame, return_index=True)
    at = (*np.unravel_index(frame, lead), row)
    if not frame.size:
        return changed, rows[changed], np.zeros((0, w), bool)
    cols = np.logical_or.reduceat((x[at] != y[at]).any(-1), first, axis=0)
    return changed, rows[changed], cols


def _crops(images: np.ndarray, at: tuple[np.ndarray, ...], bh: int, bw: int) -> np.ndarray:
    """Crops [m, bh, bw, c] of images [..., h, w, c] at (leading indices..., top, left)."""
    windows = np.lib.stride_tricks.sliding_window_view(images, (bh, bw), axis=(-3, -2))
    return windows[at].transpose(0, 2, 3, 1)  # [m, c, bh, bw] -> [m, bh, bw, c]


CROP_STEP = 8  # px, SSIM crop sides are rounded up to a multiple of this


def _grown(side: np.ndarray, limit: int) -> np.ndarray:
    return np.minimum(-(-side // CROP_STEP) * CROP_STEP, limit)


def _window_spans(lines: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Input ranges [lo, hi) [n] of all valid k-windows that contain a True of each of
    ``lines`` [n, L] (each with at least one True)."""
    n = lines.shape[1]
    first = lines.argmax(1)
    last = n - 1 - lines[:, ::-1].argmax(1)
    lo = np.maximum(0, np.minimum(first - k + 1, n - k))
    return lo, np.minimum(n - k, last) + k


def _ssim_block(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> np.ndarray:
    """SSIM of frame pairs [n, h, w, c] -> [n]. uint8 inputs are blurred as exact integer
    values (float32 holds ``x^2 + y^2 <= 130,050`` exactly; OpenCV accumulates in float64
    for a float64 destination) and the constants scaled by 255^2 instead."""
    n, h, w, c = x.shape
    k = g.shape[0]
    lo = k // 2
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    scale = 255.0**2 if x.dtype == np.uint8 else 1.0
    dtype = np.float32 if x.dtype == np.uint8 else np.float64
    depth = cv2.CV_32F if x.dtype == np.uint8 else cv2.CV_64F

    def blur(img: np.ndarray) -> np.ndarray:  # [n, h, w, c] -> valid [n, h', w', c]
        out = cv2.sepFilter2D(img.reshape(n * h, w, c), depth, g.astype(dtype), g.astype(dtype),
                              borderType=cv2.BORDER_REFLECT).reshape(n, h, w, c)
        return out[:, lo:lo + h - k + 1, lo:lo + w - k + 1]

    offset = 127.5 if x.dtype == np.uint8 else 0.0  # centred: smaller second moments
    xf = x.astype(dtype)
    yf = y.astype(dtype)
    d = xf - yf
    xf -= offset
    yf -= offset
    mu_x, mu_y = blur(xf), blur(yf)  # centred means
    np.multiply(d, d, out=d)
    var_d = blur(d)
    np.multiply(xf, xf, out=xf)
    np.multiply(yf, yf, out=yf)
    np.add(xf, yf, out=xf)
    var_sum = blur(xf)
    md = mu_x - mu_y
    np.multiply(md, md, out=md)  # (mu_x - mu_y)^2
    var_d -= md  # variance of x - y
    var_sum -= mu_x * mu_x
    var_sum -= mu_y * mu_y  # variance of x plus variance of y
    var_sum += 0.03**2 * scale
    np.divide(var_d, var_sum, out=var_d)
    mu_x += offset
    mu_y += offset
    np.multiply(mu_x, mu_x, out=mu_x)
    np.multiply(mu_y, mu_y, out=mu_y)
    mu_x += mu_y
    mu_x += 0.01**2 * scale  # mu_x^2 + mu_y^2 + c1
    np.divide(md, mu_x, out=md)
    np.subtract(1.0, md, out=md)  # luminance term
    np.subtract(1.0, var_d, out=var_d)  # contrast-structure term
    np.multiply(md, var_d, out=md)
    return md.mean((1, 2, 3), dtype=np.float64)


def ssim_batch(batch: Batch) -> Tensor:
    truth, pred = _uint8_frames(batch)
    return ssim(pred, truth, differing=_differing(batch))


def pixel_mse_batch(batch: Batch) -> Tensor:
    """Mean squared pixel error per step [R, H] in [0, 1]^2 units (Physics-IQ MSE)."""
    return torch.from_numpy(_squared_error(batch))


# -- physground motion masks ----------------------------------------------------------------

GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def _gray(frames: Tensor) -> Tensor:
    weights = torch.tensor(GRAY_WEIGHTS, dtype=frames.dtype, device=frames.device)
    return frames @ weights


def _gray_milli(frames: np.ndarray) -> np.ndarray:
    """Grey levels x 1000 of uint8 frames [..., 3] as exact integers (float32 holds the
    integer sums ``299 R + 587 G + 114 B`` <= 255,000 exactly)."""
    weights = np.array([[1000 * w for w in GRAY_WEIGHTS]], dtype=np.float32).round()
    flat = frames.reshape(-1, 1, 3)
    out = np.empty(flat.shape[0], np.float32)
    # in pieces that stay in cache: one float32 copy of all frames costs more in page
    # faults than the transform itself
    for start in range(0, flat.shape[0], GRAY_PIECE):
        piece = flat[start:start + GRAY_PIECE]
        out[start:start + piece.shape[0]] = cv2.transform(piece.astype(np.float32),
                                                          weights).reshape(-1)
    return out


GRAY_PIECE = 1 << 16  # pixels per piece of `_gray_milli`


def motion_masks(previous: Tensor, frames: Tensor,
                 threshold: float = MOTION_THRESHOLD) -> Tensor:
    """Binary motion masks [..., T, h, w]: grey-level change above ``threshold`` since the
    previous frame; ``previous`` [..., h, w, 3] precedes ``frames`` [..., T, h, w, 3]."""
    gray = _gray(torch.cat([previous.unsqueeze(-4), frames], dim=-4))
    return (gray[..., 1:, :, :] - gray[..., :-1, :, :]).abs() > threshold


def _motion_pair(batch: Batch) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """(truth, pred) motion masks of each rollout as sorted flat indices ``(t - 1) * h * w
    + pixel`` of its moving pixels [R][M], and ``h * w``; once per batch: where a tracked
    object's coverage changed (`pixel_tracking.tracked_motion_keys`, on both sides) since
    the previous frame (the truth's last context frame before step 1); for truths without
    object masks in the context, grey change above ``MOTION_THRESHOLD`` on exact integer
    grey levels."""
    def compute() -> tuple[list[np.ndarray], list[np.ndarray], int]:
        truth, pred = _uint8_frames(batch)
        r, hz, h, w, _ = pred.shape
        if batch.truth_masks is not None and bool(batch.truth_masks[:, : batch.context].any()):
            from physground.metrics.pixel_tracking import tracked_motion_keys

            return (tracked_motion_keys(batch, "truth"), tracked_motion_keys(batch, "pred"),
                    h * w)
        last = batch.truth_frames[:, batch.context - 1].cpu().numpy()  # type: ignore[union-attr]
        g_last = _gray_milli(last).reshape(r, 1, h * w)
        limit = MOTION_THRESHOLD * 255.0 * 1000.0

        def masks(frames: np.ndarray) -> list[np.ndarray]:
            out = []
            for i in range(r):  # one rollout at a time: its temporaries stay in cache
                gray = np.concatenate([g_last[i], _gray_milli(frames[i]).reshape(hz, -1)])
                diff = np.subtract(gray[1:], gray[:-1], out=gray[1:])
                out.append(np.flatnonzero(np.abs(diff, out=diff) > limit))
            return out
        return masks(truth), masks(pred), h * w
    return batch.cached("motion_pair", compute)


def _iou_counts(inter: np.ndarray, union: np.ndarray) -> Tensor:
    inter, union = inter.astype(np.float64), union.astype(np.float64)
    out = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return torch.from_numpy(out)


def _iou(a: Tensor, b: Tensor) -> Tensor:
    inter = (a & b).sum((-2, -1)).to(torch.float64)
    union = (a | b).sum((-2, -1)).to(torch.float64)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def _motion_counts(batch: Batch) -> dict[str, np.ndarray]:
    """Pixel counts [R, H] behind the three motion-mask IoUs: ``inter``/``union`` of the
    masks accumulated over steps 1..t (spatial), of the masks at step t (per step), and
    ``total = sum A_t + sum A_p`` and ``gap = sum |A_t - A_p|`` of the per-pixel motion
    counts A (weighted); from the moving pixels alone (`motion_counts`)."""
    def compute() -> dict[str, np.ndarray]:
        truth, pred, size = _motion_pair(batch)
        keys = ("inter", "union", "step_inter", "step_union", "total", "gap")
        out = {k: np.empty((len(truth), batch.horizon), np.int64) for k in keys}
        for r in range(len(truth)):
            counts = motion_counts(truth[r], pred[r], batch.horizon, size)
            for key, value in counts.items():
                out[key][r] = value
        return out
    return batch.cached("motion_counts", compute)


def motion_counts(truth: np.ndarray, pred: np.ndarray, horizon: int,
                  size: int) -> dict[str, np.ndarray]:
    """`_motion_counts` [H] of one rollout's moving pixels, sorted unique flat indices
    ``(t - 1) * size + pixel`` into masks [H, size] (truth, pred): unions over steps from
    each pixel's first moving step, the weighted gap from the steps where a pixel's
    ``A_t - A_p`` changes."""
    def per_step(keys: np.ndarray) -> np.ndarray:
        return np.bincount(keys // size, minlength=horizon)[:horizon]

    def first_step(keys: np.ndarray) -> np.ndarray:  # [size], horizon where never moving
        out = np.full(size, horizon)
        pixels, index = np.unique(keys % size, return_index=True)  # keys sorted by step
        out[pixels] = keys[index] // size
        return out

    def accumulated(first: np.ndarray) -> np.ndarray:
        return np.cumsum(np.bincount(first, minlength=horizon + 1)[:horizon])
    count_t, count_p = per_step(truth), per_step(pred)
    step_inter = per_step(np.intersect1d(truth, pred, assume_unique=True))
    first_t, first_p = first_step(truth), first_step(pred)
    # A_t - A_p per pixel changes at the steps where it moves on one side only
    events = np.setxor1d(truth, pred, assume_unique=True)
    sign = np.where(np.isin(events, truth, assume_unique=True), 1, -1)
    order = np.lexsort((events // size, events % size))  # by pixel, then step
    events, sign = events[order], sign[order]
    pixel = events % size
    run = np.cumsum(sign)
    start = np.diff(pixel, prepend=-1) != 0
    run -= np.repeat((run - sign)[start], np.diff(np.r_[np.flatnonzero(start), run.size]))
    change = np.abs(run) - np.abs(run - sign)
    gap = np.cumsum(np.bincount(events // size, change, minlength=horizon)[:horizon])
    return {"inter": accumulated(np.maximum(first_t, first_p)),
            "union": accumulated(np.minimum(first_t, first_p)),
            "step_inter": step_inter, "step_union": count_t + count_p - step_inter,
            "total": np.cumsum(count_t + count_p),
            "gap": np.rint(gap).astype(np.int64)}


def spatial_iou_batch(batch: Batch) -> Tensor:
    """IoU of where motion happened in steps 1..t [R, H]."""
    counts = _motion_counts(batch)
    return _iou_counts(counts["inter"], counts["union"])


def spatiotemporal_iou_batch(batch: Batch) -> Tensor:
    """Mean over steps 1..t of the per-step motion-mask IoU [R, H]."""
    counts = _motion_counts(batch)
    per_step = _iou_counts(counts["step_inter"], counts["step_union"])
    steps = torch.arange(1, per_step.shape[1] + 1, dtype=per_step.dtype)
    return per_step.cumsum(1) / steps


def weighted_spatial_iou_batch(batch: Batch) -> Tensor:
    """``sum min(A_p, A_t) / sum max(A_p, A_t)`` with A the per-pixel motion counts over
    steps 1..t [R, H]; ``min`` and ``max`` sums from ``sum A_p + sum A_t`` and
    ``sum |A_p - A_t|`` (integer counts)."""
    counts = _motion_counts(batch)
    total, gap = counts["total"], counts["gap"]
    num, den = (total - gap) / 2, (total + gap) / 2
    return torch.from_numpy(np.where(den > 0, num / np.maximum(den, 1), 1.0))


# -- soft object masks ----------------------------------------------------------------------


def object_colors(frames: Tensor, masks: Tensor, num_objects: int) -> tuple[Tensor, Tensor]:
    """Mean colour [K, 3] of objects 1..K in frames [T, h, w, 3] (float in [0, 1]) and the
    RMS colour spread around it [K] (NaN colour for objects never visible)."""
    flat = frames.reshape(-1, 3)
    ids = masks.reshape(-1).long().clamp(0, num_objects + 1)
    count = torch.bincount(ids, minlength=num_objects + 2)[1:num_objects + 1].to(flat.dtype)
    sums = torch.zeros(num_objects + 2, 3, dtype=flat.dtype).index_add_(0, ids, flat)
    colors = sums[1:num_objects + 1] / count.unsqueeze(-1)
    centred = flat - torch.cat([torch.zeros(1, 3, dtype=flat.dtype), colors,
                                torch.zeros(1, 3, dtype=flat.dtype)])[ids]
    sq = torch.zeros(num_objects + 2, dtype=flat.dtype).index_add_(0, ids, centred.pow(2).sum(-1))
    spread = (sq[1:num_objects + 1] / count).sqrt()
    return colors, spread


def background_palette(frames: Tensor, masks: Tensor, size: int = PALETTE_SIZE,
                       iterations: int = 10, max_pixels: int = 8192) -> Tensor:
    """k-means colour palette [P, 3] of background pixels (``masks == 0``); deterministic
    (evenly strided sample, centres initialised at luminance quantiles). Runs on the
    sample's distinct colours weighted by their counts (the same clustering)."""
    pixels = frames.reshape(-1, 3)[masks.reshape(-1) == 0]
    if pixels.shape[0] == 0:
        return torch.zeros((1, 3), dtype=frames.dtype)
    stride = max(1, pixels.shape[0] // max_pixels)
    pixels = pixels[::stride]
    order = _gray(pixels).argsort(stable=True)
    picks = torch.linspace(0, pixels.shape[0] - 1, min(size, pixels.shape[0])).round().long()
    centres = pixels[order[picks]].clone()
    levels = pixels.numpy() * 255.0
    packed = np.round(levels).astype(np.int64)
    if np.array_equal(packed, levels):  # 8-bit colours: distinct values of a packed code
        codes, inverse = np.unique(packed @ np.array([65536, 256, 1]), return_inverse=True)
        unique = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], -1) / 255.0
    else:
        unique, inverse = np.unique(pixels.numpy(), axis=0, return_inverse=True)
    colours = torch.from_numpy(unique).to(pixels.dtype)
    weight = torch.bincount(torch.from_numpy(inverse.ravel()),
                            minlength=colours.shape[0]).to(colours.dtype)
    for _ in range(iterations):
        label = torch.cdist(colours, centres).argmin(1)
        mass = torch.zeros(centres.shape[0], dtype=colours.dtype).index_add_(0, label, weight)
        sums = torch.zeros_like(centres).index_add_(0, label, colours * weight.unsqueeze(-1))
        centres = torch.where((mass > 0).unsqueeze(-1), sums / mass.clamp_min(1).unsqueeze(-1),
                              centres)
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
    """The soft masks depend on a pixel's colour only, so they are evaluated once per
    distinct colour of the rollout (`soft_object_masks`, unchanged) and the moments are
    sums over colour histograms per frame."""
    frames = batch.pred_frames if side == "pred" else batch.truth_frames
    if frames is None:
        raise MissingInputError("prediction has no frames")
    areas, centroids = [], []
    for r in range(batch.size):
        colors, palette, temperature = _color_model(batch, r, num_objects)
        area, centroid = _moments_by_colour(frames[r].cpu().numpy(),
                                            torch.nan_to_num(colors, nan=-10.0), palette,
                                            temperature)
        areas.append(area)
        centroids.append(centroid)
    return torch.stack(areas), torch.stack(centroids)


def _moments_by_colour(frames: np.ndarray, colors: Tensor, palette: Tensor,
                       temperature: Tensor) -> tuple[Tensor, Tensor]:
    """Soft areas [T, K] and centroids [T, K, 2] of uint8 frames [T, h, w, 3]."""
    t, h, w, _ = frames.shape
    # one uint32 code per pixel: RGB plus an opaque alpha byte, read as a 4-byte word
    # (distinct colours get distinct codes, labelled in order of first appearance)
    rgba = cv2.cvtColor(np.ascontiguousarray(frames).reshape(t * h, w, 3), cv2.COLOR_RGB2RGBA)
    labels, found = pd.factorize(rgba.reshape(-1, 4).view(np.uint32).reshape(-1))
    rgb = found.astype(np.uint32).view(np.uint8).reshape(-1, 4)[:, :3].astype(np.int64)
    prob = soft_object_masks(torch.from_numpy(rgb.astype(np.float64) / 255.0).view(1, -1, 3),
                             colors, palette, temperature)[:, 0, :].T.numpy()  # [U, K]
    u = np.tile(np.arange(w) + 0.5, h)
    v = np.repeat(np.arange(h) + 0.5, w)
    member = np.ascontiguousarray(prob.T)[:, labels].reshape(-1, t, h * w)  # [K, T, P]
    area = member.sum(-1).T
    su, sv = (member @ u).T, (member @ v).T
    safe = np.maximum(area, 1e-12)
    centroid = np.stack([su / safe, sv / safe], -1)
    return torch.from_numpy(area), torch.from_numpy(centroid)


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
    area, centroid = tracked_moments(batch, bodies, side)
    out = []
    for r, camera in enumerate(batch.cameras):
        ext = torch.as_tensor(camera.extrinsics, dtype=torch.float64)  # type: ignore[union-attr]
        depth = last[r] @ ext[:3, :3].T + ext[:3, 3]  # [B, 3] camera coordinates
        points = unproject(camera, centroid[r], depth[:, 2].expand(centroid.shape[1], -1))
        visible = (area[r] > 0.5).unsqueeze(-1)  # at least half a pixel of object
        out.append(torch.where(visible, points, torch.full_like(points, float("nan"))))
    return torch.stack(out)


# centroids from codec-degraded frames are resolved to about this (pixels): H.264 CRF 23
# and a half-size round trip move the tracked centroids of the truth by 0.2-0.5 px
# (median, `benchmarks/validity/codec_table.py`)
PIXEL_RESOLUTION = 0.5


def pixel_resolution(batch: Batch) -> Tensor:
    """``PIXEL_RESOLUTION`` px in metres at each body's camera depth at the last context
    frame [R, B] (the pinhole scale ``depth / f``)."""
    last = batch.truth_context(batch.position_name())[:, -1]  # [R, B, 3]
    out = []
    for r, camera in enumerate(batch.cameras):
        ext = torch.as_tensor(camera.extrinsics, dtype=torch.float64)  # type: ignore[union-attr]
        k = torch.as_tensor(camera.intrinsics, dtype=torch.float64)  # type: ignore[union-attr]
        depth = (last[r] @ ext[:3, :3].T + ext[:3, 3])[:, 2]
        out.append(PIXEL_RESOLUTION * depth.abs() / torch.sqrt(k[0, 0] * k[1, 1]))
    return torch.stack(out)


def snap_to_truth(pred: Tensor, truth: Tensor, resolution: Tensor) -> Tensor:
    """Positions [R, T, B, 3] measured from frames whose displacement from the truth's
    (measured the same way) is below ``resolution`` [R, B] (m) are not resolved and taken
    as the truth's; larger displacements are kept as measured (a hard threshold: a
    soft one would shrink the errors of every frames-only prediction, a frozen video's
    below copy-last's)."""
    norm = torch.linalg.vector_norm(pred - truth, dim=-1, keepdim=True)
    return torch.where(norm < resolution[:, None, :, None], truth, pred)


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
    truth, _ = tracked_moments(batch, num, "truth")
    pred, _ = tracked_moments(batch, num, "pred")
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
    description="IoU of where motion happened up to step t (frame-difference masks)",
    **{**_PIX, "detects": _WHERE})
spatiotemporal_iou = batched_metric(
    "spatiotemporal_iou_running", spatiotemporal_iou_batch, higher_is_better=True, unit="1",
    floor=0.02, reduce="last",
    description="mean per-step IoU of motion masks up to t (frame-difference masks)",
    **{**_PIX, "detects": _WHERE | {"time_reversed"}})
weighted_spatial_iou = batched_metric(
    "weighted_spatial_iou_running", weighted_spatial_iou_batch, higher_is_better=True, unit="1",
    floor=0.02, reduce="last",
    description="IoU of per-pixel motion amounts up to t (frame-difference masks)",
    **{**_PIX, "detects": _WHERE})
object_permanence = batched_metric(
    "object_permanence", object_permanence_batch, higher_is_better=True, unit="1",
    floor=0.01, tolerates={"pixel_noise", "quantise"},
    requires_laws={"object_permanence"},
    description="mean min/max ratio of predicted and true object mask areas",
    **{**_PIX, "detects": {"vanish_reappear"}, "tags": ("pixels", "plausibility")})
