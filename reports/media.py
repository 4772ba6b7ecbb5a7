"""Side-by-side animated strips: ground truth | each model, with error heat maps below.

Built from the saved samples (rollout 0 of each scenario and split). Over the horizon
frames, the top row shows the truth and each model's prediction; the bottom row shows each
model's error heat map (inferno: black = no error). When the truth and every model carry
rendered frames the tiles are those frames and the error is the per-pixel RGB distance;
otherwise every tile is drawn from states: a density field as an image, or positions as
dots (projected with the rollout's camera when it has one, else onto the x-z plane; the
truth in grey behind each prediction), with each predicted dot of the error row coloured
by its position error.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

TILE = 96  # pixels per tile side in state mode (frames keep their own size)
GAP = 2
MIN_TILE = 96  # small renders are enlarged to at least this many pixels per tile


def _colormap(values: np.ndarray, name: str = "inferno") -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB with a matplotlib colormap."""
    from matplotlib import colormaps

    rgba = colormaps[name](np.clip(values, 0.0, 1.0))
    return (rgba[..., :3] * 255).astype(np.uint8)


def _frames_mode(truth: dict[str, Any], predictions: dict[str, dict[str, Any]]) -> bool:
    return truth["frames"] is not None and all(
        p["frames"] is not None for p in predictions.values() if not p["info"].get("failure"))


Tiles = tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], str]
OFF_CANVAS = np.array([255, 40, 40], np.uint8)  # marks a predicted point outside the view


def _pixel_tiles(truth: dict[str, Any], predictions: dict[str, dict[str, Any]],
                 horizon: int) -> Tiles:
    context = truth["context"]
    target = truth["frames"][context:context + horizon]
    shape = target.shape
    tiles, errors = {}, {}
    for model, sample in predictions.items():
        frames = sample["frames"]
        if sample["info"].get("failure") or frames is None or frames.shape != shape:
            tiles[model] = np.full(shape, 40, np.uint8)
            errors[model] = np.full(shape, 40, np.uint8)
            continue
        tiles[model] = frames
        diff = np.linalg.norm(frames.astype(np.float32) - target.astype(np.float32), axis=-1)
        errors[model] = _colormap(diff / (255.0 * np.sqrt(3.0)) * 2.0)
    return target, tiles, errors, f"RGB distance 0 to {255.0 * np.sqrt(3.0) / 2:.0f}"


def _canvas_points(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """2-D points -> integer pixel coordinates in a TILE x TILE canvas (y up)."""
    span = np.maximum(hi - lo, 1e-9)
    scale = (TILE - 9) / span.max()
    centre = (lo + hi) / 2.0
    uv = (points - centre) * scale + TILE / 2.0
    uv[..., 1] = TILE - 1 - uv[..., 1]
    return np.round(uv).astype(np.int64)


def _draw_dots(pixels: np.ndarray, colors: np.ndarray,
               base: np.ndarray | None = None) -> np.ndarray:
    """Dots at ``pixels``; a point outside the tile is drawn as a red mark on the border
    where it left, so a prediction that leaves the view never looks like "no error"."""
    image = np.full((TILE, TILE, 3), 18, np.uint8) if base is None else base.copy()
    radius = 1 if len(pixels) > 64 else 3
    outside = ((pixels < 0) | (pixels >= TILE)).any(axis=-1)
    for (u, v), color, out in zip(pixels, colors, outside, strict=True):
        if out:
            u, v = np.clip(u, 0, TILE - 1), np.clip(v, 0, TILE - 1)
            color = OFF_CANVAS
        u0, u1 = max(u - radius, 0), min(u + radius + 1, TILE)
        v0, v1 = max(v - radius, 0), min(v + radius + 1, TILE)
        if u0 < u1 and v0 < v1:
            image[v0:v1, u0:u1] = color
    return image


def _plane(points: np.ndarray, camera: dict[str, Any] | None) -> np.ndarray:
    """World points [..., d] -> 2-D drawing coordinates (camera pixels with v up, else x-z
    for 3-D or x-y for 2-D)."""
    if camera is not None and points.shape[-1] == 3:
        from physground.rollout import Camera

        uv = Camera.from_dict(camera).project(points)
        return np.stack([uv[..., 0], -uv[..., 1]], axis=-1)
    if points.shape[-1] == 3:
        return points[..., [0, 2]]
    return points[..., :2]


def _state_tiles(truth: dict[str, Any], predictions: dict[str, dict[str, Any]],
                 horizon: int) -> Tiles:
    context = truth["context"]
    states = truth["states"]
    blank = np.full((horizon, TILE, TILE, 3), 40, np.uint8)
    if "density" in states:
        target = np.asarray(states["density"], dtype=np.float64)[context:context + horizon]
        lo, hi = float(target.min()), float(target.max())
        span = max(hi - lo, 1e-12)

        def image(field: np.ndarray) -> np.ndarray:
            return _resize(_colormap((field - lo) / span, "viridis"))

        tiles, errors = {}, {}
        for model, sample in predictions.items():
            pred = sample["states"].get("density")
            if sample["info"].get("failure") or pred is None or pred.shape != target.shape:
                tiles[model], errors[model] = blank, blank
                continue
            tiles[model] = image(np.asarray(pred, dtype=np.float64))
            errors[model] = _resize(_colormap(np.abs(pred - target) / span * 2.0))
        return image(target), tiles, errors, f"|density error| 0 to {span / 2:.3g}"
    name = "pos" if "pos" in states else "x" if "x" in states else None
    if name is None:
        return blank, {m: blank for m in predictions}, {m: blank for m in predictions}, ""
    truth_pos = np.asarray(states[name], dtype=np.float64)
    camera = truth["info"].get("camera")
    plane = _plane(truth_pos, camera)
    lo, hi = plane.reshape(-1, 2).min(0), plane.reshape(-1, 2).max(0)
    target = truth_pos[context:context + horizon]
    scale = float(np.linalg.norm(np.ptp(truth_pos.reshape(-1, truth_pos.shape[-1]), axis=0))) or 1.0
    white = np.array([235, 235, 235], np.uint8)
    truth_tiles = np.stack([
        _draw_dots(_canvas_points(_plane(frame, camera), lo, hi),
                   np.repeat(white[None], len(frame), 0)) for frame in target])
    tiles, errors = {}, {}
    for model, sample in predictions.items():
        pred = sample["states"].get(name)
        if sample["info"].get("failure") or pred is None or np.shape(pred) != target.shape:
            tiles[model], errors[model] = blank, blank
            continue
        pred = np.asarray(pred, dtype=np.float64)
        err = np.linalg.norm(pred - target, axis=-1) / (0.1 * scale)
        ghosts = [_draw_dots(_canvas_points(_plane(frame, camera), lo, hi),
                             np.repeat(np.array([70, 70, 70], np.uint8)[None], len(frame), 0))
                  for frame in target]  # the truth in grey behind the prediction
        tiles[model] = np.stack([
            _draw_dots(_canvas_points(_plane(frame, camera), lo, hi),
                       np.repeat(np.array([120, 190, 255], np.uint8)[None], len(frame), 0),
                       ghost)
            for frame, ghost in zip(pred, ghosts, strict=True)])
        errors[model] = np.stack([
            _draw_dots(_canvas_points(_plane(frame, camera), lo, hi), _colormap(e))
            for frame, e in zip(pred, err, strict=True)])
    return truth_tiles, tiles, errors, f"position error 0 to {0.1 * scale:.3g} m"


def _resize(images: np.ndarray) -> np.ndarray:
    """Nearest-neighbour resize of [T, h, w, 3] to [T, TILE, TILE, 3] (fields are small)."""
    h, w = images.shape[1:3]
    rows = np.minimum((np.arange(TILE) * h) // TILE, h - 1)[::-1]  # y up: row 0 at bottom
    cols = np.minimum((np.arange(TILE) * w) // TILE, w - 1)
    return images[:, rows][:, :, cols]


def _length(sample: dict[str, Any]) -> int:
    for value in sample["states"].values():
        return int(np.shape(value)[0])
    return 0 if sample["frames"] is None else len(sample["frames"])


def strip_frames(truth: dict[str, Any], predictions: dict[str, dict[str, Any]]
                 ) -> tuple[np.ndarray, str] | None:
    """The animation as uint8 [H, rows, cols, 3] (top truth | models, bottom error maps)
    and what the error colour scale spans."""
    if not predictions:
        return None
    lengths = [_length(s) for s in predictions.values() if not s["info"].get("failure")]
    horizon = min(lengths) if lengths else 0
    if horizon == 0:
        return None
    if _frames_mode(truth, predictions):
        target, tiles, errors, scale = _pixel_tiles(truth, predictions, horizon)
    else:
        target, tiles, errors, scale = _state_tiles(truth, predictions, horizon)
    target = target[:horizon]
    h, w = target.shape[1:3]
    models = sorted(predictions)
    width = (len(models) + 1) * (w + GAP) - GAP
    out = np.full((horizon, 2 * h + GAP, width, 3), 255, np.uint8)
    out[:, :h, :w] = target
    out[:, h + GAP:, :w] = 255
    for i, model in enumerate(models, start=1):
        x0 = i * (w + GAP)
        out[:, :h, x0:x0 + w] = tiles[model][:horizon]
        out[:, h + GAP:, x0:x0 + w] = errors[model][:horizon]
    return out, scale


def frame_durations_ms(count: int, fps: float) -> list[int]:
    """Per-frame GIF delays (GIF counts in 10 ms) whose running sum follows the true clock:
    30 fps becomes 30, 40, 30, 30, 40 ... ms, 33.3 ms on average, not a flat 30 ms."""
    ticks = np.round(np.arange(count + 1) * (100.0 / max(fps, 1e-3))).astype(np.int64)
    return [int(10 * d) for d in np.maximum(np.diff(ticks), 1)]


def gif_bytes(frames: np.ndarray, fps: float) -> bytes:
    """An endlessly looping GIF of ``frames`` at ``fps`` (true timing on average)."""
    import imageio.v3 as iio

    buffer = io.BytesIO()
    iio.imwrite(buffer, frames, extension=".gif",
                duration=frame_durations_ms(len(frames), fps), loop=0)
    return buffer.getvalue()


def _text_band(width: int, height: int, items: list[tuple[int, str, tuple[int, ...]]]
               ) -> np.ndarray:
    """A white band with ``(x, text, rgb)`` labels, drawn with Pillow's built-in font."""
    from PIL import Image, ImageDraw, ImageFont

    band = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    font = ImageFont.load_default()
    for x, text, color in items:
        draw.text((x + 2, 1), text, fill=color, font=font)
    return np.array(band)


def _legend_rows(width: int, column: int, labels: list[str], colors: dict[str, Any],
                 scale: str) -> tuple[np.ndarray, np.ndarray]:
    """Header (column names in each model's report colour) and footer (error colour bar
    from black = no error to the scale's maximum, with its span in words and units)."""
    def rgb(name: str) -> tuple[int, ...]:
        color = colors.get(name, (0.0, 0.0, 0.0))
        return tuple(int(255 * c) for c in color[:3])

    header = _text_band(width, 14, [(i * column, label, rgb(label) if i else (0, 0, 0))
                                    for i, label in enumerate(labels)])
    bar_width = max(min(width - 4, 160), 8)
    ramp = _colormap(np.linspace(0.0, 1.0, bar_width))
    footer = _text_band(width, 24, [(0, "error: " + scale, (0, 0, 0))])
    footer[16:22, 2:2 + bar_width] = ramp[None]
    return header, footer


def strip_gif(truth: dict[str, Any], predictions: dict[str, dict[str, Any]],
              colors: dict[str, Any] | None = None) -> tuple[bytes, list[str]] | None:
    """GIF bytes of the strip with its legend, and the column labels (truth, then models).

    The GIF plays at the rollout's true frame rate; its header names each column in the
    model's report colour, its footer is the error colour bar.
    """
    drawn = strip_frames(truth, predictions)
    if drawn is None:
        return None
    frames, scale = drawn
    tile = (frames.shape[1] - GAP) // 2
    factor = max(1, -(-MIN_TILE // tile))  # enlarge small renders, nearest neighbour
    frames = np.repeat(np.repeat(frames, factor, axis=1), factor, axis=2)
    labels = ["truth", *sorted(predictions)]
    column = frames.shape[2] // len(labels)
    header, footer = _legend_rows(frames.shape[2], column, labels, colors or {}, scale)
    count = len(frames)
    frames = np.concatenate([np.repeat(header[None], count, 0), frames,
                             np.repeat(footer[None], count, 0)], axis=1)
    return gif_bytes(frames, 1.0 / truth["dt"]), labels
