"""Object areas and centroids from frames that survive video codecs and resizing.

A video model's frames come back through H.264 (yuv420p: chroma averaged over 2x2
pixels, quantisation noise, ringing), a resize to the scoring grid, or a GIF palette.
All of these *mix* neighbouring colours; few of them invent new ones. The tracker
therefore explains every pixel ``p`` as a mixture of the static background ``b`` at that
pixel and one object colour ``c_k``::

    p ~ b + a_k (c_k - b),    a_k = clip(<p - b, c_k - b> / |c_k - b|^2, 0, 1)

and takes ``a_k`` as the pixel's coverage by object ``k`` when the mixture explains the
pixel (residual below `RESIDUAL` of the object's contrast ``|c_k - b|``) better than the
background alone does (the distance of ``p`` to the range of the background colours of
its 3x3 neighbourhood: a smeared background edge is no object) and the coverage is above
the codec noise (`MIN_COVERAGE`); the object a pixel belongs to is the one with the
smallest residual. Coverage sums are conserved by any averaging filter (area resize,
chroma subsampling, blur), so the area ``sum a_k`` and the centroid ``sum a_k (u, v) /
sum a_k`` of an object change little when its pixels are smeared, where a nearest-colour
or softmax mask loses a 1-2 px object entirely.

Everything is learnt from the truth's context, which the scorer has: the object colours
are their mean colours where ``masks == k`` in the context frames; the background image is
the per-pixel median of the context frames where no object covers the pixel (pixels
covered in every context frame are filled by inpainting). The coordinates are pixels of
the frames given, so the estimator does not depend on the resolution (objects of at least
~2 px survive a half-size round trip; 1 px objects lose half their contrast to it).
Truth and prediction are measured by the same estimator, so on exact frames both give
identical values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import cv2
import numpy as np

from physground.metrics.batch import MissingInputError

if TYPE_CHECKING:
    from torch import Tensor

    from physground.metrics.batch import Batch

RESIDUAL = 0.5  # max residual of the mixture, relative to the object's contrast |c_k - b|
MIN_COVERAGE = 0.12  # coverage below this is codec noise (a few grey levels of contrast)
MIN_CONTRAST = 8.0  # grey levels: an object colour this close to the background is unseen


CHROMA_WEIGHT = 0.5  # scale of the chroma axes against luma in `weighted_ycc`
_YCC = np.array([[0.299, 0.587, 0.114],
                 [-0.168736 * CHROMA_WEIGHT, -0.331264 * CHROMA_WEIGHT, 0.5 * CHROMA_WEIGHT],
                 [0.5 * CHROMA_WEIGHT, -0.418688 * CHROMA_WEIGHT, -0.081312 * CHROMA_WEIGHT]])


_YCC_GAIN = float(np.linalg.svd(_YCC, compute_uv=False)[0])  # largest stretch of _YCC


def weighted_ycc(rgb: np.ndarray) -> np.ndarray:
    """RGB [..., 3] (0..255) as BT.601 Y, Cb, Cr with the chroma scaled by
    `CHROMA_WEIGHT`: a linear map, so mixtures of colours stay mixtures."""
    return rgb @ _YCC.T


@dataclass(frozen=True)
class ColourTracker:
    """Object colours [K, 3] and the static background image [h, w, 3] (float, 0..255)."""

    colours: np.ndarray
    background: np.ndarray

    @classmethod
    def fit(cls, frames: np.ndarray, masks: np.ndarray, num_objects: int) -> ColourTracker:
        """From context frames uint8 [T, h, w, 3] and masks [T, h, w] (0 background,
        k for object k); an object never visible gets NaN colour (never found)."""
        f = np.asarray(frames)
        m = np.asarray(masks)
        colours = np.full((num_objects, 3), np.nan)
        for k in range(1, num_objects + 1):
            hit = m == k
            if hit.any():
                colours[k - 1] = f[hit].astype(np.float64).mean(0)
        free = m == 0
        background = free_median(f, free)
        hidden = ~free.any(0)
        if hidden.all():
            background = np.zeros(f.shape[1:])
        elif hidden.any():
            filled = np.where(hidden[..., None], 0.0, background)
            image = np.clip(np.rint(filled), 0, 255).astype(np.uint8)
            painted = cv2.inpaint(image, hidden.astype(np.uint8), 3, cv2.INPAINT_TELEA)
            background = np.where(hidden[..., None], painted.astype(np.float64), background)
        return cls(colours, background)

    def coverage(self, frames: np.ndarray) -> np.ndarray:
        """Coverage [K, T, h, w] in [0, 1] of each object in uint8 frames [T, h, w, 3]
        of the background's size; colours compared in `weighted_ycc` (chroma, which
        yuv420p keeps at a quarter of the resolution, weighs less than luma)."""
        return self.sparse_coverage(frames).dense()

    def sparse_coverage(self, frames: np.ndarray) -> SparseCoverage:
        """`coverage` of uint8 frames [T, h, w, 3] as the pixels some object covers.

        Only pixels whose colour differs from the background rounded to 8 bits are
        evaluated: at most half a level from the background in each channel, a pixel is
        less than ``MIN_COVERAGE * MIN_CONTRAST`` from it in `weighted_ycc` (checked in
        `_PixelModel`), so no object covers it (the same values, from far fewer pixels
        on rendered frames; codec-degraded frames evaluate nearly every pixel)."""
        frames = np.asarray(frames)
        if frames.shape[1:3] != self.background.shape[:2]:
            raise ValueError(f"frames of {frames.shape[1:3]} px, tracker fitted on "
                             f"{self.background.shape[:2]} px")
        t, h, w = frames.shape[:3]
        model = self._model
        flat = frames.reshape(t, h * w, 3)
        differs = None
        if frames.dtype == np.uint8 and model.rounded is not None:
            differs = rgb_codes(frames).reshape(t, h * w) != model.rounded
        if differs is not None and np.count_nonzero(differs) < differs.size // 4:
            steps, pixels = np.divmod(sparse_nonzero(differs), h * w)
            p = weighted_ycc(flat[steps, pixels].astype(np.float64))
            alpha = model.mixture(p, self.colours, pixels)
        else:  # (nearly) every pixel: [T, P] broadcast against the per-pixel terms
            alpha = model.mixture(weighted_ycc(flat.astype(np.float64)), self.colours)
            steps, pixels = np.nonzero(alpha.any(0))
            alpha = alpha[:, steps, pixels]
        keep = alpha.any(0)
        return SparseCoverage(steps[keep], pixels[keep], alpha[:, keep], (t, h, w))

    @cached_property
    def _model(self) -> _PixelModel:
        return _PixelModel.of(self)

    def moments(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Areas [T, K] (px) and centroids [T, K, 2] (u, v px, pixel centres at +0.5) of
        the objects in uint8 frames [T, h, w, 3]; an object not found has area 0 and a
        NaN centroid."""
        return self.sparse_coverage(frames).moments()


def free_median(frames: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Per-pixel median [h, w, C] (float64) over frames [T, h, w, C] of the values where
    ``free`` [T, h, w] (NaN where never free): ``np.nanmedian`` of the free values, sorted
    only at the pixels whose free values are not all equal (a static background's are)."""
    t = frames.shape[0]
    if np.issubdtype(frames.dtype, np.integer):
        top, bottom = np.iinfo(frames.dtype).max, np.iinfo(frames.dtype).min
    else:
        top, bottom = np.inf, -np.inf
    low = np.where(free[..., None], frames, top).min(0)
    high = np.where(free[..., None], frames, bottom).max(0)
    out = low.astype(np.float64).reshape(-1)
    ever = np.broadcast_to(free.any(0)[..., None], low.shape).reshape(-1)
    out[~ever] = np.nan
    vary = np.flatnonzero(ever & (low < high).reshape(-1))
    if vary.size:
        values = frames.reshape(t, -1)[:, vary].astype(np.float64)
        covered = ~np.broadcast_to(free[..., None], frames.shape).reshape(t, -1)[:, vary]
        values[covered] = np.inf
        ordered = np.sort(values, axis=0)  # covered (inf) last
        count = t - covered.sum(0)
        lo = np.take_along_axis(ordered, ((count - 1) // 2)[None], 0)[0]
        hi = np.take_along_axis(ordered, (count // 2)[None], 0)[0]
        out[vary] = (lo + hi) / 2
    return out.reshape(frames.shape[1:])


def sparse_nonzero(mask: np.ndarray) -> np.ndarray:
    """``np.flatnonzero`` of a mostly False bool array, 8 bytes at a time."""
    flat = np.ascontiguousarray(mask).reshape(-1)
    if flat.size % 8:
        return np.flatnonzero(flat)
    words = np.flatnonzero(flat.view(np.uint64))
    word, byte = np.nonzero(flat.reshape(-1, 8)[words])
    return words[word] * 8 + byte


def rgb_codes(frames: np.ndarray) -> np.ndarray:
    """One uint32 per pixel of uint8 RGB images [..., h, w, 3] (RGB plus an opaque alpha
    byte read as a 4-byte word): equal codes, equal colours."""
    h, w = frames.shape[-3:-1]
    rgba = cv2.cvtColor(np.ascontiguousarray(frames).reshape(-1, w, 3), cv2.COLOR_RGB2RGBA)
    return rgba.view(np.uint32).reshape(*frames.shape[:-3], h, w)


@dataclass(frozen=True)
class _PixelModel:
    """The per-pixel terms of `ColourTracker.coverage`, flattened to [h*w]: background
    in `weighted_ycc` [P, 3], the range of its 3x3 neighbourhood (``low``, ``high``),
    object contrasts ``e`` [K, P, 3] and their squared norms [K, P]; ``rounded``: the
    background's 8-bit codes (`rgb_codes`) [P], None where a pixel that equal could
    still be covered (then every pixel is evaluated)."""

    background: np.ndarray
    low: np.ndarray
    high: np.ndarray
    e: np.ndarray
    norm2: np.ndarray
    rounded: np.ndarray | None

    @classmethod
    def of(cls, tracker: ColourTracker) -> _PixelModel:
        h, w = tracker.background.shape[:2]
        background = weighted_ycc(tracker.background)  # [h, w, 3]
        # what the background alone explains: any colour within the per-channel range of
        # the background in the pixel's 3x3 neighbourhood (a resized or blurred edge)
        kernel = np.ones((3, 3), np.uint8)
        low = cv2.erode(background.astype(np.float32), kernel).astype(np.float64)
        high = cv2.dilate(background.astype(np.float32), kernel).astype(np.float64)
        e = weighted_ycc(tracker.colours)[:, None, None, :] - background  # [K, h, w, 3]
        norm2 = (e * e).sum(-1)
        # |p - b| <= sqrt(3) / 2 levels when p is b rounded, so |d| in weighted_ycc is at
        # most sigma_max * sqrt(3) / 2, and a = <d, e> / |e|^2 < |d| / MIN_CONTRAST
        bound = _YCC_GAIN * np.sqrt(3.0) / 2.0
        rounded = None
        if bound < 0.9 * MIN_COVERAGE * MIN_CONTRAST:
            rgb = np.clip(np.rint(tracker.background), 0, 255).astype(np.uint8)
            rounded = rgb_codes(rgb).reshape(-1)
        return cls(background.reshape(-1, 3), low.reshape(-1, 3), high.reshape(-1, 3),
                   e.reshape(e.shape[0], -1, 3), norm2.reshape(norm2.shape[0], -1), rounded)

    def mixture(self, p: np.ndarray, colours: np.ndarray,
                pixels: np.ndarray | None = None) -> np.ndarray:
        """Coverage [K, N] of colours ``p`` [N, 3] (`weighted_ycc`) at pixels [N], or
        [K, T, P] of colours [T, P, 3] at every pixel (``pixels=None``)."""
        def at(a: np.ndarray) -> np.ndarray:  # per-pixel terms [P, ...] at the pixels
            return a if pixels is None else a[pixels]
        d = p - at(self.background)
        outside = np.sqrt(((p - np.clip(p, at(self.low), at(self.high))) ** 2).sum(-1))
        k = colours.shape[0]
        best = np.full(p.shape[:-1], np.inf)
        owner = np.full(p.shape[:-1], -1)
        alphas = np.zeros((k, *p.shape[:-1]))
        for i in range(k):
            if not np.isfinite(colours[i]).all():
                continue
            e = at(self.e[i])  # [N, 3]
            norm2 = at(self.norm2[i])
            seen = norm2 > MIN_CONTRAST**2
            a = np.clip((d * e).sum(-1) / np.maximum(norm2, 1e-9), 0.0, 1.0)
            residual = np.sqrt(((d - a[..., None] * e) ** 2).sum(-1) / np.maximum(norm2, 1e-9))
            ok = (seen & (a >= MIN_COVERAGE) & (residual <= RESIDUAL)
                  & (residual * np.sqrt(norm2) < outside))
            alphas[i] = np.where(ok, a, 0.0)
            better = ok & (residual < best)
            best = np.where(better, residual, best)
            owner = np.where(better, i, owner)
        ids = np.arange(k).reshape(-1, *([1] * owner.ndim))
        return np.where(owner[None] == ids, alphas, 0.0)


@dataclass(frozen=True)
class SparseCoverage:
    """`ColourTracker.coverage` [K, T, h, w] on the pixels some object covers: frame
    ``steps`` [N] and pixel ``pixels`` [N] (row-major in h*w, sorted by frame, then
    pixel) with coverages ``alpha`` [K, N]; zero elsewhere. ``shape``: (T, h, w)."""

    steps: np.ndarray
    pixels: np.ndarray
    alpha: np.ndarray
    shape: tuple[int, int, int]

    def dense(self) -> np.ndarray:
        t, h, w = self.shape
        out = np.zeros((self.alpha.shape[0], t * h * w))
        out[:, self.steps * (h * w) + self.pixels] = self.alpha
        return out.reshape(-1, t, h, w)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """`moments_of` the coverage: areas [T, K] and centroids [T, K, 2] (u, v px)."""
        t, _, w = self.shape
        u = self.pixels % w + 0.5
        v = self.pixels // w + 0.5

        def per_frame(weights: np.ndarray) -> np.ndarray:  # [K, N] -> [T, K]
            out = np.zeros((t, weights.shape[0]))
            for i, a in enumerate(weights):
                out[:, i] = np.bincount(self.steps, a, minlength=t)
            return out
        area = per_frame(self.alpha)
        with np.errstate(all="ignore"):
            centroid = np.stack([per_frame(self.alpha * u) / area,
                                 per_frame(self.alpha * v) / area], -1)
        centroid[area <= 0] = np.nan
        return area.reshape(t, -1), centroid.reshape(t, -1, 2)


def moments_of(cover: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Areas [T, K] and centroids [T, K, 2] (u, v px) of coverages [K, T, h, w]."""
    h, w = cover.shape[-2:]
    area = cover.sum((-2, -1))
    su = (cover.sum(-2) * (np.arange(w) + 0.5)).sum(-1)
    sv = (cover.sum(-1) * (np.arange(h) + 0.5)).sum(-1)
    with np.errstate(all="ignore"):
        centroid = np.stack([su / area, sv / area], -1)
    centroid[area <= 0] = np.nan
    return area.T, centroid.transpose(1, 0, 2)


def tracked_moments(batch: Batch, num_objects: int, side: str = "pred"
                    ) -> tuple[Tensor, Tensor]:
    """Areas [R, T, K] (px) and centroids [R, T, K, 2] (u, v px) of the objects in the
    predicted frames (``side='pred'``, T = H) or the true ones (``'truth'``, T = C + H),
    with a `ColourTracker` fitted on each rollout's true context; once per batch."""
    return batch.cached(f"tracked_moments_{side}_{num_objects}",
                        lambda: _tracked_moments(batch, num_objects, side))


def _tracked_moments(batch: Batch, num_objects: int, side: str) -> tuple[Tensor, Tensor]:
    import torch

    frames = batch.pred_frames if side == "pred" else batch.truth_frames
    if frames is None:
        raise MissingInputError("prediction has no frames")
    areas, centroids = [], []
    for r in range(batch.size):
        area, centroid = _coverage(batch, r, num_objects, side).moments()
        areas.append(area)
        centroids.append(centroid)
    return torch.from_numpy(np.stack(areas)), torch.from_numpy(np.stack(centroids))


MOTION_COVERAGE = 0.3  # change of an object's coverage of a pixel that counts as motion


def tracked_motion_keys(batch: Batch, side: str = "pred") -> list[np.ndarray]:
    """Motion masks of the predicted or true frames as the sorted flat indices
    ``(t - 1) * h * w + pixel`` of the moving pixels of each rollout [R][M]: pixels where
    some object's coverage (`ColourTracker.coverage`) changed by at least `MOTION_COVERAGE`
    since the previous frame (the truth's last context frame before step 1), from the
    sparse coverages (a pixel no object covers in either frame does not move); once per
    batch. A codec's noise, blur and ringing of the background change no coverage."""
    def compute() -> list[np.ndarray]:
        num = int(batch.truth_masks[:, : batch.context].amax().item())  # type: ignore[index]
        if side == "pred" and batch.pred_frames is None:
            raise MissingInputError("prediction has no frames")
        out = []
        first = batch.context - 1
        for r in range(batch.size):
            truth = _coverage(batch, r, num, "truth")
            keep = truth.steps >= first  # the last context frame, then the window
            steps, pixels = truth.steps[keep] - first, truth.pixels[keep]
            alpha = truth.alpha[:, keep]
            if side == "pred":
                pred = _coverage(batch, r, num, "pred")
                start = steps == 0
                steps = np.concatenate([steps[start], pred.steps + 1])
                pixels = np.concatenate([pixels[start], pred.pixels])
                alpha = np.concatenate([alpha[:, start], pred.alpha], 1)
            size = truth.shape[1] * truth.shape[2]
            out.append(_moving(steps, pixels, alpha, batch.horizon, size))
        return out
    return batch.cached(f"tracked_motion_keys_{side}", compute)


def _moving(steps: np.ndarray, pixels: np.ndarray, alpha: np.ndarray, horizon: int,
            size: int) -> np.ndarray:
    """Sorted keys ``(t - 1) * size + pixel`` where ``|alpha_t - alpha_{t-1}| >=
    MOTION_COVERAGE`` for some object, t = 1..horizon, from coverages ``alpha`` [K, N]
    at frames ``steps`` [N] (0..horizon) and ``pixels`` [N]: each entry is counted at
    its own frame (+) and at the next (-), and the two summed per (frame, pixel)."""
    now = steps >= 1
    after = steps < horizon
    keys = np.concatenate([steps[now] * size + pixels[now],
                           (steps[after] + 1) * size + pixels[after]])
    if keys.size == 0:
        return keys.astype(np.int64)
    values = np.concatenate([alpha[:, now], -alpha[:, after]], 1)
    unique, inverse = np.unique(keys, return_inverse=True)
    moving = np.zeros(unique.shape[0], bool)
    for row in values:
        change = np.bincount(inverse, row, minlength=unique.shape[0])
        moving |= np.abs(change) >= MOTION_COVERAGE
    return unique[moving] - size


def _coverage(batch: Batch, r: int, num_objects: int, side: str) -> SparseCoverage:
    """Coverage [K, T, h, w] of rollout ``r``'s predicted (T = H) or true (T = C + H)
    frames, once per batch (shared by the moments and the motion masks)."""
    def compute() -> SparseCoverage:
        frames = batch.pred_frames if side == "pred" else batch.truth_frames
        if frames is None:
            raise MissingInputError("prediction has no frames")
        return _tracker(batch, r, num_objects).sparse_coverage(frames[r].cpu().numpy())
    return batch.cached(f"tracked_coverage_{side}_{r}_{num_objects}", compute)


def _tracker(batch: Batch, r: int, num_objects: int) -> ColourTracker:
    if batch.truth_frames is None or batch.truth_masks is None:
        raise MissingInputError(
            f"truth of {batch.scenario} has no frames and masks to learn object colours from")
    return batch.cached(f"colour_tracker_{r}_{num_objects}", lambda: ColourTracker.fit(
        batch.truth_frames[r, : batch.context].cpu().numpy(),  # type: ignore[index]
        batch.truth_masks[r, : batch.context].cpu().numpy(),  # type: ignore[index]
        num_objects))
