"""Codec nuisances of the validity suite: what a real video model's file does to the truth.

- ``h264_crf23``: an H.264 round trip as ffmpeg writes it by default for the web
  (libx264, yuv420p with 2x2 chroma subsampling, CRF 23), encoded and decoded in memory
  with PyAV (odd sizes are edge-padded to even and cropped back);
- ``downscale_half``: frames resized to half the height and width and back up by the
  scoring grid's own resize (`physground.benchmarks.video_io.resample`: ``INTER_AREA``),
  as a prediction rendered at half resolution is read;
- ``gif``: a GIF round trip (256-colour adaptive palette per frame, Pillow), shown in the
  heat map, declared by no metric.

Registered in `physground.benchmarks.validity.corruptions.CORRUPTIONS` on import.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from physground.benchmarks.video_io import encode_h264

H264_CRF = 23


def h264_round_trip(frames: np.ndarray, crf: int = H264_CRF, fps: int = 30) -> np.ndarray:
    """uint8 RGB frames [T, h, w, 3] after libx264 yuv420p at ``crf`` and back."""
    import av

    av.logging.set_level(None)
    t, h, w, _ = frames.shape
    even = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    buffer = io.BytesIO()
    encode_h264(buffer, even, fps, crf, pix_fmt="yuv420p")
    buffer.seek(0)
    with av.open(buffer, "r") as container:
        out = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    if out.shape[0] != t:
        raise RuntimeError(f"H.264 round trip returned {out.shape[0]} frames of {t}")
    return np.ascontiguousarray(out[:, :h, :w])


def downscale_half(frames: np.ndarray) -> np.ndarray:
    """uint8 frames [T, h, w, 3] at half size (area averaging) and back to [T, h, w, 3] by
    the scoring grid's resize."""
    import cv2

    t, h, w, _ = frames.shape
    small = np.stack([cv2.resize(f, (max(1, w // 2), max(1, h // 2)),
                                 interpolation=cv2.INTER_AREA) for f in frames])
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in small])


def gif_round_trip(frames: np.ndarray) -> np.ndarray:
    """uint8 frames [T, h, w, 3] after an animated GIF round trip (Pillow)."""
    from PIL import Image, ImageSequence

    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=33, loop=0, optimize=False, disposal=1)
    buffer.seek(0)
    decoded = []
    with Image.open(buffer) as gif:  # identical frames are merged into longer ones
        for frame in ImageSequence.Iterator(gif):
            repeat = max(1, round(frame.info.get("duration", 33) / 33))
            decoded += [np.asarray(frame.convert("RGB"))] * repeat
    out = np.stack(decoded)
    if out.shape[0] != frames.shape[0]:
        raise RuntimeError(f"GIF round trip returned {out.shape[0]} frames of {len(frames)}")
    return out


CODECS: dict[str, tuple[Any, str]] = {
    "h264_crf23": (h264_round_trip, f"H.264 round trip (libx264 yuv420p, CRF {H264_CRF})"),
    "downscale_half": (downscale_half, "half size (area) and back (area resize)"),
    "gif": (gif_round_trip, "GIF round trip (adaptive 256-colour palette)"),
}
