"""The delivery of a frames-only prediction, and the same delivery applied to other frames.

A video model's file is a measurement channel: its resolution and its codec blur and
quantise the frames before any metric sees them. Scores compare a prediction with the
second take (the floor) and with predictions that use no physics (the 0); measured
through the raw simulator frames, those anchors would credit the prediction with the
codec's noise as if it were a physics error, and a frozen H.264 video would be compared
with copy-last's exact frames. `Delivery.apply` passes an anchor's frames through the
prediction's own delivery, so that both are measured the same way
(`physground.metrics.scores`, "Delivered anchors"):

1. resize from the scoring grid to the file's height x width (``INTER_AREA`` when
   shrinking, bilinear when enlarging, as a generator rendering at that size would see);
2. the file's codec, re-encoded with its settings: libx264 / libx265 at the CRF that x264 /
   x265 write into their settings SEI (``crf=23.0``), else at the stream's bit rate;
   VP8 / VP9 / MPEG-4 / AV1 at the bit rate; GIF through the GIF palette; lossless
   formats (PNG, npy, npz, FFV1, raw) are not re-encoded;
3. back to the scoring grid by the ingest's own resize (`video_io.resample`).

Time is not replayed: anchors are encoded one frame per scoring step, at the file's frame
rate (which the encoder's rate control sees), whatever temporal resampling the file needed.
A codec this machine cannot encode is reported (`DeliveryUnavailable`) and the
prediction is scored with the undelivered anchors.

`REFERENCE_DELIVERIES` are the deliveries the benchmark tolerates by definition (an
H.264 CRF 23 round trip as ffmpeg writes it by default, and half the resolution): the
floor of a delivered prediction rises at most to the truth's own error through them.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from physground.benchmarks.video_io import ARRAY_SUFFIXES, PredictionFileError, mux_frames
from physground.errors import PhysgroundError
from physground.metrics.registry import TOLERATED_DELIVERIES

LOSSLESS = frozenset({"png", "apng", "ffv1", "rawvideo", "huffyuv", "ffvhuff", "utvideo",
                      "qtrle", "webp_lossless"})
ENCODERS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "vp8": "libvpx",
            "mpeg4": "mpeg4", "av1": "libsvtav1"}
QUIET = {"libx265": {"x265-params": "log-level=none"}}  # encoders that log to stderr
CRF_CODECS = ("h264", "hevc")
SETTINGS_PROBE_BYTES = 1 << 16  # the first packets hold the encoder's settings SEI
REFERENCE_CRF = 23


class DeliveryUnavailable(PhysgroundError):
    """The prediction's codec cannot be re-encoded here (no encoder, no rate)."""


@dataclass(frozen=True)
class Delivery:
    """How one prediction file carries its frames: size, codec and its settings."""

    height: int
    width: int
    codec: str | None = None  # codec descriptor name ("h264", "av1"); None: lossless
    pix_fmt: str | None = None
    crf: float | None = None
    bit_rate: int | None = None
    fps: float | None = None

    @classmethod
    def of(cls, path: Path) -> Delivery:
        """The delivery of a prediction file or PNG folder (headers only, bounded reads)."""
        path = Path(path)
        if path.is_dir():
            from PIL import Image

            first = min(p for p in path.iterdir() if p.suffix.lower() == ".png")
            with Image.open(first) as image:
                return cls(height=image.height, width=image.width)
        if path.suffix.lower() in ARRAY_SUFFIXES:
            if path.suffix.lower() == ".npy":
                shape = np.load(path, allow_pickle=False, mmap_mode="r").shape
            else:
                with np.load(path, allow_pickle=False) as data:
                    shape = data["frames"].shape
            return cls(height=int(shape[1]), width=int(shape[2]))
        return _video_delivery(path)

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """uint8 RGB frames [T, h, w, 3] on the scoring grid, delivered as this file's
        frames were and resized back to [T, h, w, 3]."""
        import cv2

        t, h, w, _ = frames.shape
        out = frames
        if (self.height, self.width) != (h, w):
            grow = self.height * self.width > h * w
            out = np.stack([cv2.resize(f, (self.width, self.height), interpolation=(
                cv2.INTER_LINEAR if grow else cv2.INTER_AREA)) for f in out])
        if self.codec == "gif":
            out = gif_round_trip(out)
        elif self.codec is not None and self.codec not in LOSSLESS:
            out = self._round_trip(out)
        if out.shape[1:3] != (h, w):
            out = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in out])
        return np.ascontiguousarray(out)

    def _round_trip(self, frames: np.ndarray) -> np.ndarray:
        encoder = ENCODERS.get(str(self.codec))
        options: dict[str, str] = {}
        if self.crf is not None and self.codec in CRF_CODECS:
            options["crf"] = f"{self.crf:g}"
        elif self.bit_rate is None:
            raise DeliveryUnavailable(f"{self.codec}: neither a CRF nor a bit rate to "
                                      "re-encode with")
        if encoder is None:
            raise DeliveryUnavailable(f"no encoder for the {self.codec} codec")
        return round_trip(frames, encoder, pix_fmt=self.pix_fmt or "yuv420p",
                          options=options, bit_rate=None if options else self.bit_rate,
                          fps=self.fps or 30.0)


def round_trip(frames: np.ndarray, encoder: str, *, pix_fmt: str, options: dict[str, str],
               bit_rate: int | None, fps: float) -> np.ndarray:
    """uint8 RGB frames [T, h, w, 3] encoded in memory with ``encoder`` and decoded back;
    sizes a 4:2:x format cannot hold are edge-padded to even and cropped back."""
    import av

    av.logging.set_level(None)
    t, h, w, _ = frames.shape
    subsampled = pix_fmt.startswith(("yuv420", "yuv422", "nv12", "yuvj420"))
    ph, pw = (h % 2, w % 2) if subsampled else (0, 0)
    even = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    buffer = io.BytesIO()
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its settings unless told not to
    options = {**QUIET.get(encoder, {}), **options}
    try:
        container = av.open(buffer, "w", format="matroska")
        stream = container.add_stream(encoder, rate=Fraction(fps).limit_denominator(1001))
    except (av.FFmpegError, ValueError) as err:
        raise DeliveryUnavailable(f"encoder {encoder} is not available ({err})") from None
    with container:
        stream.width, stream.height, stream.pix_fmt = w + pw, h + ph, pix_fmt
        if bit_rate:
            stream.bit_rate = int(bit_rate)
        stream.options = options
        mux_frames(container, stream, even)
    buffer.seek(0)
    with av.open(buffer, "r") as decoded:
        out = np.stack([f.to_ndarray(format="rgb24") for f in decoded.decode(video=0)])
    if out.shape[0] != t:
        raise DeliveryUnavailable(f"{encoder} round trip returned {out.shape[0]} frames of {t}")
    return np.ascontiguousarray(out[:, :h, :w])


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
        raise DeliveryUnavailable(f"GIF round trip returned {out.shape[0]} frames of "
                                  f"{len(frames)}")
    return out


def _video_delivery(path: Path) -> Delivery:
    import av

    av.logging.set_level(None)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            context = stream.codec_context
            probe, rate = bytes(context.extradata or b""), stream.average_rate
            for packet in container.demux(stream):
                probe += bytes(packet)
                if len(probe) >= SETTINGS_PROBE_BYTES:
                    break
            bit_rate = stream.bit_rate or container.bit_rate or None
            codec = str(context.codec.canonical_name)  # "av1", not its decoder "libdav1d"
            return Delivery(height=int(context.height), width=int(context.width),
                            codec=None if codec in LOSSLESS else codec,
                            pix_fmt=str(context.pix_fmt) if context.pix_fmt else None,
                            crf=encoder_crf(probe), bit_rate=int(bit_rate) if bit_rate
                            else None, fps=float(rate) if rate else None)
    except (av.FFmpegError, OSError, ValueError, IndexError) as err:
        raise PredictionFileError(f"{path}: cannot read its video stream ({err})") from None


_CRF = re.compile(rb"\bcrf=([0-9]+(?:\.[0-9]+)?)")


def encoder_crf(data: bytes) -> float | None:
    """The CRF that x264 or x265 recorded in its settings SEI (``... rc=crf ... crf=23.0``),
    or None (another encoder, or a rate mode other than CRF)."""
    head = data[:SETTINGS_PROBE_BYTES]
    if b"x264" not in head and b"x265" not in head:
        return None
    match = _CRF.search(head)
    return None if match is None else float(match.group(1))


REFERENCE_DELIVERIES = TOLERATED_DELIVERIES  # declared by every metric read from frames


def reference_delivery(name: str, height: int, width: int) -> Delivery:
    """A delivery the benchmark tolerates by definition, for frames of ``height`` x
    ``width``: ``h264_crf23`` (libx264 yuv420p CRF 23 at the scoring size) or
    ``downscale_half`` (half the height and width, lossless)."""
    if name == "h264_crf23":
        return Delivery(height=height, width=width, codec="h264", pix_fmt="yuv420p",
                        crf=float(REFERENCE_CRF))
    if name == "downscale_half":
        return Delivery(height=max(1, height // 2), width=max(1, width // 2))
    raise KeyError(name)
