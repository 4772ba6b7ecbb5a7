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

from physground.benchmarks.delivery import REFERENCE_CRF, Delivery, reference_delivery


def _h264(scale: float) -> Callable[[int, int], Delivery]:
    def delivery(height: int, width: int) -> Delivery:
        return Delivery(height=round(height * scale), width=round(width * scale),
                        codec="h264", pix_fmt="yuv420p", crf=float(REFERENCE_CRF))
    return delivery


CODECS: dict[str, tuple[Callable[[int, int], Delivery], str]] = {
    "h264_crf23": (lambda h, w: reference_delivery("h264_crf23", h, w),
                   f"H.264 round trip (libx264 yuv420p, CRF {REFERENCE_CRF})"),
    "downscale_half": (lambda h, w: reference_delivery("downscale_half", h, w),
                       "half size (area) and back (area resize)"),
    "h264_crf23_large": (_h264(1.5), f"H.264 CRF {REFERENCE_CRF} at 3/2 the size and back"),
    "gif": (lambda h, w: Delivery(height=h, width=w, codec="gif"),
            "GIF round trip (adaptive 256-colour palette)"),
}

