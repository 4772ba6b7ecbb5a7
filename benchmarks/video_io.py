"""Reading prediction files of any format safely, and resampling them to the scoring grid.

Formats: MP4 / WebM / MKV / MOV / GIF / WebP through PyAV (FFmpeg's libraries, a core
dependency), PNG-sequence folders (``<rollout>/*.png`` in name order), ``.npy`` and
``.npz``. Every file is checked before it is read:

- only regular files (or folders of PNGs) inside the predictions directory: FIFOs, devices
  and sockets are refused, and so are symlinks that leave the directory unless
  ``follow_symlinks``;
- sizes are bounded from headers before any array is allocated: an ``.npy`` header's shape
  times its item size, every ``.npz`` member's uncompressed size and ``.npy`` header, a
  video's decoded frame count times its frame size (`MAX_PREDICTION_BYTES`).

Every problem is one `PredictionLayoutError` line naming the file; FFmpeg's own log is
silenced so that no banner reaches the terminal.

Resampling policy (`RESAMPLE_POLICY`, recorded with every external source in the run):

- spatial: ``cv2.resize`` with ``INTER_AREA`` (area averaging; bilinear-like when
  enlarging) to the truth's height x width, whatever the aspect (no crop, no padding);
- temporal: step k = 1..H of the truth lies at ``(k - 1) dt`` after the first predicted
  frame; it takes the decoded frame whose container timestamp is nearest (ties to the
  earlier); files without timestamps (PNG, npy, npz) are taken at the truth's rate;
- extra frames after the horizon are dropped; a prediction shorter than the horizon (in
  time) is an error;
- context frames at the start: ``context_frames`` declared in ``model.json`` are dropped;
  otherwise, when the file is long enough for context + horizon and its first C (context
  length) frames reproduce the context (mean absolute difference below `CONTEXT_MATCH`
  grey levels after resizing), they are detected and dropped.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from physground.errors import ErrorList, ValidationError

MAX_PREDICTION_BYTES = 2**30  # decoded size of one prediction file (121 frames of 1080p: 0.75 GB)
CONTEXT_MATCH = 2.0  # grey levels: mean |prediction - context| below which it is the context
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif", ".webp")
ARRAY_SUFFIXES = (".npz", ".npy")
RESAMPLE_POLICY = {
    "spatial": "cv2.resize INTER_AREA to the truth's height x width (no crop or padding)",
    "temporal": "nearest container timestamp to (k - 1) * dt after the first predicted "
                "frame; no timestamps: one frame per truth step",
    "extra_frames": "dropped after the horizon",
    "context_frames": f"model.json 'context_frames' dropped, else detected (mean |diff| < "
                      f"{CONTEXT_MATCH} grey levels to the context) and dropped",
}


class PredictionLayoutError(ValidationError):
    """A prediction file or folder that does not follow the documented layout, or cannot
    be read safely; one line naming the file."""


class PredictionLayoutErrors(ErrorList, PredictionLayoutError):
    """Every prediction file that cannot be read, one message each."""


PredictionFileError = PredictionLayoutError


def check_path(path: Path, root: Path, follow_symlinks: bool = False) -> None:
    """Refuse anything but a regular file or a directory inside ``root``."""
    try:
        info = os.lstat(path)
    except OSError as err:
        raise PredictionFileError(f"{path}: cannot be read ({err.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.path.realpath(path))
        if not follow_symlinks and not target.is_relative_to(Path(os.path.realpath(root))):
            raise PredictionFileError(
                f"{path}: a symlink leaving the predictions directory (to {target}); pass "
                "--follow-symlinks to allow it")
        info = os.stat(path)
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise PredictionFileError(f"{path}: not a regular file (a FIFO, device or socket)")
    if stat.S_ISREG(info.st_mode) and info.st_size == 0:
        raise PredictionFileError(f"{path}: empty file (0 bytes)")


def _npy_header_bytes(stream: Any, where: str) -> tuple[int, tuple[int, ...], np.dtype]:
    """Decoded size, shape and dtype from an .npy header, without reading the data."""
    try:
        version = np.lib.format.read_magic(stream)
        shape, _, dtype = (np.lib.format.read_array_header_1_0(stream) if version == (1, 0)
                           else np.lib.format.read_array_header_2_0(stream))
    except (ValueError, OSError, EOFError, SyntaxError) as err:
        raise PredictionFileError(f"{where}: not an .npy array ({err})") from None
    if dtype.hasobject:
        raise PredictionFileError(f"{where}: holds Python objects; expected numeric arrays")
    count = 1
    for n in shape:
        count *= int(n)
    return count * dtype.itemsize, tuple(int(n) for n in shape), dtype


def check_array_file(path: Path, limit: int = MAX_PREDICTION_BYTES) -> None:
    """Bound an .npy/.npz file's decoded size from its headers (zip members included)."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with open(path, "rb") as stream:
            size, shape, _ = _npy_header_bytes(stream, str(path))
        expected = os.path.getsize(path)
        if size > limit:
            raise PredictionFileError(
                f"{path}: header claims shape {list(shape)} ({size:,} bytes), over the "
                f"{limit:,}-byte limit of a prediction")
        if size > expected:
            raise PredictionFileError(f"{path}: truncated ({expected:,} bytes on disk for "
                                      f"an array of {size:,} bytes)")
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise PredictionFileError(f"{path}: not a readable .npz file ({err})") from None
    with archive:
        members = archive.infolist()
        if not members:
            raise PredictionFileError(f"{path}: empty .npz; expected 'frames' and/or states")
        total = 0
        for member in members:
            where = f"{path}: member '{member.filename}'"
            if member.file_size > limit or total + member.file_size > limit:
                raise PredictionFileError(
                    f"{where} unpacks to {member.file_size:,} bytes, over the {limit:,}-byte "
                    "limit of a prediction")
            total += member.file_size
            try:
                with archive.open(member) as stream:
                    size, shape, _ = _npy_header_bytes(stream, where)
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise PredictionFileError(f"{where}: unreadable ({err})") from None
            if size > member.file_size:
                raise PredictionFileError(
                    f"{where}: header claims shape {list(shape)} ({size:,} bytes) but the "
                    f"member holds {member.file_size:,} bytes")


def decode_video(path: Path, limit: int = MAX_PREDICTION_BYTES
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB frames uint8 [T, h, w, 3] and their presentation times [T] (s) of a video file,
    decoded with PyAV; any decoder error is one line naming the file."""
    import av

    av.logging.set_level(None)  # no FFmpeg banner or warnings on the terminal
    frames, times = [], []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise PredictionFileError(f"{path}: no video stream")
            stream = container.streams.video[0]
            size = 0
            for frame in container.decode(stream):
                image = frame.to_ndarray(format="rgb24")
                size += image.nbytes
                if size > limit:
                    raise PredictionFileError(
                        f"{path}: decodes to more than {limit:,} bytes of frames")
                frames.append(image)
                times.append(None if frame.time is None else float(frame.time))
    except PredictionFileError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as err:
        detail = str(err).split(":")[0] if str(err) else type(err).__name__
        raise PredictionFileError(f"{path}: cannot decode video ({detail}); expected an "
                                  "MP4/WebM/GIF/WebP file") from None
    if not frames:
        raise PredictionFileError(f"{path}: no decodable video frame (empty or truncated)")
    stamps = None if any(t is None for t in times) else np.asarray(times)
    return np.stack(frames), stamps


def read_png_folder(path: Path, limit: int = MAX_PREDICTION_BYTES) -> np.ndarray:
    """Frames [T, h, w, 3] of a folder of PNG files, in name order."""
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise PredictionFileError(f"{path}: a folder without .png frames")
    frames, size = [], 0
    for file in files:
        check_path(file, path)
        try:
            with Image.open(file) as image:
                size += image.width * image.height * 3
                if size > limit:
                    raise PredictionFileError(f"{path}: frames over {limit:,} bytes")
                frames.append(np.asarray(image.convert("RGB")))
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise PredictionFileError(f"{file}: not a readable PNG ({err})") from None
    if len({f.shape for f in frames}) > 1:
        raise PredictionFileError(f"{path}: PNG frames of different sizes")
    return np.stack(frames)


def _has_room(frames: np.ndarray, times: np.ndarray | None, dt: float, needed: int) -> bool:
    """Whether the file is long enough to hold ``needed`` frames of the truth's rate."""
    if times is None or len(times) < 2:
        return frames.shape[0] >= needed
    step = float(np.median(np.diff(times)))
    return times[-1] - times[0] + step >= needed * dt - 0.5 * step


def resample(frames: np.ndarray, times: np.ndarray | None, *, dt: float, horizon: int,
             height: int, width: int, context: np.ndarray | None = None,
             context_frames: int | None = None, where: str = "") -> tuple[np.ndarray, dict]:
    """Frames [horizon, height, width, 3] on the scoring grid, and what was done
    (`RESAMPLE_POLICY`)."""
    import cv2

    applied: dict[str, Any] = {"source_frames": int(frames.shape[0]),
                               "source_size": [int(frames.shape[1]), int(frames.shape[2])]}
    if frames.shape[1:3] != (height, width):
        frames = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
                           for f in frames])
        applied["resized"] = True
    drop = 0
    if context_frames is not None:
        drop = context_frames
        applied["context_frames"] = f"{drop} declared"
    elif (context is not None and frames.shape[0] > len(context)
          and _has_room(frames, times, dt, len(context) + horizon)):
        c = len(context)
        gap = np.abs(frames[:c].astype(np.int16) - context.astype(np.int16)).mean()
        if gap < CONTEXT_MATCH:
            drop = c
            applied["context_frames"] = f"{c} detected"
    if drop:
        frames = frames[drop:]
        times = None if times is None else times[drop:]
    if times is not None and len(times) > 1:
        rel = times - times[0]
        step = np.median(np.diff(rel)) if len(rel) > 1 else dt
        wanted = np.arange(horizon) * dt
        if wanted[-1] > rel[-1] + 0.5 * step + 1e-9:
            raise PredictionFileError(
                f"{where}: {rel[-1] + step:.3f} s of video after the context, expected "
                f"{horizon * dt:.3f} s ({horizon} frames at {1 / dt:.4g} fps)")
        index = np.clip(np.searchsorted(rel, wanted - 0.5 * step + 1e-9), 0, len(rel) - 1)
        frames = frames[index]
        applied["fps_source"] = float(1.0 / step) if step > 0 else None
    elif frames.shape[0] < horizon:
        raise PredictionFileError(f"{where}: array 'frames' has {frames.shape[0]} frames "
                                  "after the context, "
                                  f"expected {horizon} (frames_to_generate)")
    applied["dropped_after_horizon"] = int(max(0, frames.shape[0] - horizon))
    return np.ascontiguousarray(frames[:horizon]), applied


def encode_h264(target: Any, frames: np.ndarray, fps: float, crf: int,
                pix_fmt: str | None = None) -> None:
    """Encode uint8 RGB frames [T, h, w, 3] as libx264 MP4 into ``target`` (a path or a
    binary file object) at exactly ``fps`` (a rational time base, one timestamp per
    frame); ``pix_fmt`` defaults to yuv420p for even sizes, yuv444p otherwise."""
    from fractions import Fraction

    import av

    av.logging.set_level(None)
    rate = Fraction(fps).limit_denominator(1001)
    height, width = frames.shape[1:3]
    if pix_fmt is None:
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    with av.open(target, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt
        stream.options = {"crf": str(crf)}
        mux_frames(container, stream, frames)


def mux_frames(container: Any, stream: Any, frames: np.ndarray) -> None:
    """Encode uint8 RGB frames [T, h, w, 3] into PyAV ``stream`` of ``container``, then
    flush the encoder."""
    import av

    for image in frames:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_h264(path: Path, frames: np.ndarray, fps: float, crf: int = 18) -> None:
    """An H.264 MP4 of uint8 RGB frames [T, h, w, 3] at exactly ``fps``, written
    atomically (`encode_h264`)."""
    tmp = Path(path).with_name(Path(path).name + ".tmp.mp4")
    encode_h264(str(tmp), frames, fps, crf)
    os.replace(tmp, path)
