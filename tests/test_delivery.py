"""The delivery of a prediction file (`physground.benchmarks.delivery`): read from files
written by other tools (PyAV, OpenCV, NumPy) and replayed on other frames."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from physground.benchmarks.delivery import (
    Delivery,
    DeliveryUnavailable,
    encoder_crf,
    reference_delivery,
)


def moving_square(t: int = 8, h: int = 48, w: int = 80) -> np.ndarray:
    """uint8 RGB frames: a red 8x8 square moving 2 px per frame on a grey gradient."""
    frames = np.repeat(np.linspace(40, 200, w, dtype=np.uint8)[None, None, :, None],
                       t, 0).repeat(h, 1).repeat(3, 3)
    for i in range(t):
        frames[i, 20:28, 4 + 2 * i:12 + 2 * i] = (220, 30, 30)
    return frames


def write_h264(path, frames, fps, crf):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf)}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_encoder_crf_reads_x264_and_x265_settings_only() -> None:
    sei = b"\x00x264 - core 164 - H.264/MPEG-4 AVC codec - options: rc=crf mbtree=1 crf=28.5"
    assert encoder_crf(sei) == 28.5
    assert encoder_crf(b"x265 (build 199) - rc=crf crf=31.0 qcomp=0.60") == 31.0
    assert encoder_crf(b"x264 - options: rc=abr bitrate=800") is None  # not a CRF encode
    assert encoder_crf(b"Lavc60 mpeg4 crf=23") is None  # another encoder's bytes


def test_delivery_of_an_mp4_written_by_pyav(tmp_path) -> None:
    path = tmp_path / "clip.mp4"
    write_h264(path, moving_square(), 12, 28)
    got = Delivery.of(path)
    assert (got.height, got.width, got.codec, got.pix_fmt) == (48, 80, "h264", "yuv420p")
    assert got.crf == 28.0 and got.fps == pytest.approx(12.0)


def test_delivery_of_lossless_files_is_their_size_only(tmp_path) -> None:
    frames = moving_square()
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), frame[..., ::-1])
    np.save(tmp_path / "frames.npy", frames)
    np.savez(tmp_path / "frames.npz", frames=frames[:, ::2, ::2])
    assert Delivery.of(folder) == Delivery(height=48, width=80)
    assert Delivery.of(tmp_path / "frames.npy") == Delivery(height=48, width=80)
    assert Delivery.of(tmp_path / "frames.npz") == Delivery(height=24, width=40)


def test_apply_replays_the_files_delivery(tmp_path) -> None:
    frames = moving_square()
    np.testing.assert_array_equal(Delivery(height=48, width=80).apply(frames), frames)
    # half size of 2x2-constant frames and back by area averaging is exact
    blocky = frames[:, ::2, ::2].repeat(2, 1).repeat(2, 2)
    half = reference_delivery("downscale_half", 48, 80)
    assert (half.height, half.width) == (24, 40)
    np.testing.assert_array_equal(half.apply(blocky), blocky)
    # the H.264 delivery of a CRF 28 file equals that file's own decoded frames
    path = tmp_path / "clip.mp4"
    write_h264(path, frames, 12, 28)
    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    replayed = Delivery.of(path).apply(frames).astype(np.int64)
    assert replayed.shape == frames.shape
    # the same encoder and CRF, in another container: equal up to rate-control rounding
    # (measured: exactly equal, or 14 % of the values off by 1-2 levels), far from the
    # file's own codec error (mean 1.08 levels) and from CRF 40's (mean 2.67)
    codec_error = np.abs(frames - decoded.astype(np.int64)).mean()
    assert np.abs(replayed - decoded).max() <= 3
    assert np.abs(replayed - decoded).mean() < 0.3 * codec_error
    crf40 = Delivery(height=48, width=80, codec="h264", crf=40.0).apply(frames)
    assert np.abs(crf40 - decoded.astype(np.int64)).mean() > codec_error


def test_a_codec_without_an_encoder_or_rate_is_reported() -> None:
    with pytest.raises(DeliveryUnavailable, match="neither a CRF nor a bit rate"):
        Delivery(height=48, width=80, codec="vp9").apply(moving_square())
    with pytest.raises(DeliveryUnavailable, match="no encoder"):
        Delivery(height=48, width=80, codec="prores", bit_rate=10**6).apply(moving_square())


def encode(path, frames, encoder, options=None, bit_rate=None):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(encoder, rate=12)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt, stream.options = "yuv420p", options or {}
        if bit_rate:
            stream.bit_rate = bit_rate
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_hevc_and_vp9_files_are_replayed_by_codec_name_and_quietly(tmp_path, capfd) -> None:
    """Codecs are named by their descriptor (``hevc``, ``vp9``: the encoder to replay them
    with), HEVC by its x265 CRF, VP9 by its bit rate; the replay prints nothing."""
    frames = moving_square()
    encode(tmp_path / "a.mp4", frames, "libx265",
           {"crf": "30", "x265-params": "log-level=none"})
    encode(tmp_path / "b.webm", frames, "libvpx-vp9", bit_rate=200_000)
    hevc, vp9 = Delivery.of(tmp_path / "a.mp4"), Delivery.of(tmp_path / "b.webm")
    assert (hevc.codec, hevc.crf) == ("hevc", 30.0)
    assert vp9.codec == "vp9" and vp9.crf is None and vp9.bit_rate > 0
    capfd.readouterr()
    for delivery in (hevc, vp9):
        out = delivery.apply(frames)
        assert out.shape == frames.shape and not np.array_equal(out, frames)
    assert capfd.readouterr().err == ""
