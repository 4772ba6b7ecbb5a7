"""Codec nuisances of the validity suite: what a real video model's file does to the truth.

Each is a `physground.benchmarks.delivery.Delivery` of the scoring grid's frames; the
suite scores it as a frames-only model, with its anchors delivered the same way
(`physground.metrics.scores`, "Delivered anchors"):

- ``h264_crf23``: an H.264 round trip as ffmpeg writes it by default for the web
  (libx264, yuv420p with 2x2 chroma subsampling, CRF 23), encoded and decoded in memory
  with PyAV (odd sizes are edge-padded to even and cropped back);
- ``downscale_half``: frames resized to half the height and width and back up by the
  scoring grid's own resize (`physground.benchmarks.video_io.resample`: ``INTER_AREA``),
  as a prediction rendered at half resolution is read;
- ``h264_crf23_large``: the H.264 CRF 23 round trip of frames rendered at 3/2 the size
  (bilinear up, area down): not one of the `REFERENCE_DELIVERIES` the floor is capped by,
  so its score is not tied to them;
- ``gif``: a GIF round trip (256-colour adaptive palette per frame, Pillow), shown in the
  heat map, declared by no metric.

The two reference deliveries cap the floor of every delivered prediction, so their own
rows score 100 wherever the delivered second take errs at least as much as they do.
Registered in `physground.benchmarks.validity.corruptions.CORRUPTIONS` on import.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from physground.benchmarks.delivery import REFERENCE_CRF, Delivery, reference_delivery

H264_CRF = REFERENCE_CRF


def _h264(scale: float) -> Callable[[int, int], Delivery]:
    def delivery(height: int, width: int) -> Delivery:
        return Delivery(height=round(height * scale), width=round(width * scale),
                        codec="h264", pix_fmt="yuv420p", crf=float(H264_CRF))
    return delivery


CODECS: dict[str, tuple[Callable[[int, int], Delivery], str]] = {
    "h264_crf23": (_h264(1.0), f"H.264 round trip (libx264 yuv420p, CRF {H264_CRF})"),
    "downscale_half": (lambda h, w: reference_delivery("downscale_half", h, w),
                       "half size (area) and back (area resize)"),
    "h264_crf23_large": (_h264(1.5), f"H.264 CRF {H264_CRF} at 3/2 the size and back"),
    "gif": (lambda h, w: Delivery(height=h, width=w, codec="gif"),
            "GIF round trip (adaptive 256-colour palette)"),
}


def codec_round_trip(name: str, frames: np.ndarray) -> np.ndarray:
    """uint8 RGB frames [T, h, w, 3] through the ``name`` codec nuisance and back."""
    return CODECS[name][0](*frames.shape[1:3]).apply(frames)
