"""Predictions written by other tools (PyAV's H.264 encoder, PNG folders) at another
resolution and fps are resampled and scored; hostile files get one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from fractions import Fraction

import av
import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from physground.benchmarks.executors import run_sequential
from physground.benchmarks.external import ExternalSource, export_context
from physground.benchmarks.runner import run_suite
from physground.benchmarks.video_io import (
    PredictionLayoutError,
    check_array_file,
    check_path,
    decode_video,
    resample,
)
from physground.metrics.scores import normalized_scores
from physground.storage import Dataset
from physground.suite import parse_suite

CONTEXT, HORIZON, SIZE = 4, 12, 96
PIXEL = ["psnr", "ssim", "pixel_mse", "spatial_iou_running", "spatiotemporal_iou_running",
         "weighted_spatial_iou_running"]
SUITE = {
    "name": "video-in",
    "models": ["copy-last", "reference"],
    "metrics": PIXEL,
    "defaults": {"rollouts": 2, "context": CONTEXT, "horizon": HORIZON, "splits": ["test_id"]},
    "scenario": [{"name": "rigid/projectile",
                  "config": {"num_frames": CONTEXT + HORIZON, "image_size": SIZE}}],
}


def write_h264(path, frames, fps, size=None, crf=23):
    """An H.264 yuv420p MP4 written with PyAV (not physground's writers)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        height, width = size or frames.shape[1:3]
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf)}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in stream.encode(frame.reformat(width=width, height=height)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def suite_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("video-in")
    suite = parse_suite(SUITE, "video-in.toml")
    index = json.loads(export_context(suite, root, root / "context", progress=False
                                      ).read_text())
    (path,) = (root / "data" / "rigid/projectile").glob("test_id-n2-*")
    return suite, root, index, {t.seed: t for t in Dataset(path)}


def test_h264_png_and_frozen_videos_are_scored(suite_root, tmp_path):
    suite, root, index, truths = suite_root
    fps = 1.0 / next(iter(truths.values())).dt
    sources = {}
    for kind in ("h264", "png", "frozen"):
        out = tmp_path / kind
        for item in index["rollouts"]:
            truth = truths[item["rollout"]]
            window = truth.frames[CONTEXT:CONTEXT + HORIZON]
            stem = (out / item["prediction_file"]).with_suffix("")
            stem.parent.mkdir(parents=True, exist_ok=True)
            if kind == "h264":  # twice the fps (each frame twice), 4/3 the size
                write_h264(stem.with_suffix(".mp4"), np.repeat(window, 2, 0), 2 * fps,
                           size=(SIZE * 4 // 3, SIZE * 4 // 3))
            elif kind == "png":
                stem.mkdir()
                for i, frame in enumerate(window):
                    iio.imwrite(stem / f"{i:04d}.png", frame)
            else:
                write_h264(stem.with_suffix(".mp4"),
                           np.repeat(truth.frames[CONTEXT - 1:CONTEXT], HORIZON, 0), fps)
        sources[kind] = ExternalSource.from_directory(out, name=kind)
    run_dir = run_suite(suite, root=root, executor=run_sequential, progress=False,
                        report=False, external=list(sources.values()))
    results = pd.read_parquet(run_dir / "results.parquet")
    scores = normalized_scores(results).set_index(["model", "metric"])["score"]
    for metric in PIXEL:  # a PNG folder of the exact frames is the truth
        assert scores[("png", metric)] >= 99.999, (metric, scores[("png", metric)])
    h264 = results[results["model"] == "h264"]
    assert len(h264) == 2 * HORIZON * len(PIXEL) and (h264["failure"] == "").all()
    # decoded at 2x fps and 4/3 the size, resampled onto the 12 frames of the truth: the
    # codec's error only (PyAV CRF 23), not a shifted or stretched video
    assert h264[h264["metric"] == "psnr"]["value"].min() > 30.0
    assert h264[h264["metric"] == "ssim"]["value"].min() > 0.95
    run = json.loads((run_dir / "run.json").read_text())
    assert "temporal" in run["external"]["h264"]["resample_policy"]


def test_resample_by_timestamps_resize_and_context_detection():
    frames = np.zeros((10, 20, 30, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(10)[:, None, None] * 20
    times = np.arange(10) / 20.0  # 20 fps source for a 10 fps truth
    out, applied = resample(frames, times, dt=0.1, horizon=4, height=10, width=15)
    assert out.shape == (4, 10, 15, 3)
    np.testing.assert_array_equal(out[:, 0, 0, 0], [0, 40, 80, 120])  # every second frame
    context = frames[:2]
    out, applied = resample(frames[:6], None, dt=0.1, horizon=4, height=20, width=30,
                            context=context)
    assert applied["context_frames"] == "2 detected"
    np.testing.assert_array_equal(out[:, 0, 0, 0], [40, 60, 80, 100])
    out, applied = resample(frames[:5], None, dt=0.1, horizon=4, height=20, width=30,
                            context=context)  # no room for context + horizon: not context
    assert "context_frames" not in applied
    np.testing.assert_array_equal(out[:, 0, 0, 0], [0, 20, 40, 60])
    with pytest.raises(PredictionLayoutError, match="expected 1.000 s"):
        resample(frames, times, dt=0.1, horizon=10, height=20, width=30)


@pytest.mark.parametrize("make", ["empty", "truncated", "garbage", "huge_npy", "npz_bomb",
                                  "fifo", "symlink_out"])
def test_hostile_files_get_one_line_errors_fast(tmp_path, make):
    root = tmp_path / "preds"
    root.mkdir()
    path = root / "0.mp4"
    if make == "empty":
        path.write_bytes(b"")
    elif make in ("truncated", "garbage"):
        write_h264(tmp_path / "ok.mp4", np.zeros((8, 32, 32, 3), np.uint8), 30)
        data = (tmp_path / "ok.mp4").read_bytes()
        path.write_bytes(data[: len(data) // 3] if make == "truncated" else b"\x00junk" * 99)
    elif make == "huge_npy":
        path = root / "0.npy"
        header = {"descr": "|u1", "fortran_order": False, "shape": (10**15,)}
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
    elif make == "npz_bomb":  # a small file whose member claims 1.5 GB (zip headers)
        path = root / "0.npz"
        np.savez_compressed(path, frames=np.zeros((16, 8, 8, 3), np.uint8))
        data = bytearray(path.read_bytes())
        entry = data.rindex(b"PK\x01\x02")  # central directory: uncompressed size at +24
        data[entry + 24:entry + 28] = (1_500_000_000).to_bytes(4, "little")
        path.write_bytes(bytes(data))
    elif make == "fifo":
        os.mkfifo(path)
    else:
        outside = tmp_path / "elsewhere.mp4"
        outside.write_bytes(b"x")
        path.symlink_to(outside)
    start = time.perf_counter()
    with pytest.raises(PredictionLayoutError) as info:
        check_path(path, root)
        if path.suffix in (".npy", ".npz"):
            check_array_file(path)
        else:
            decode_video(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert time.perf_counter() - start < 2.0


def test_cli_lists_every_bad_file_at_once(suite_root, tmp_path):
    suite, root, index, truths = suite_root
    preds = tmp_path / "bad"
    bad = []
    for n, item in enumerate(index["rollouts"]):
        target = (preds / item["prediction_file"]).with_suffix(".mp4")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"" if n == 0 else b"not a video at all" * 10)
        bad.append(target)
    (root / "video-in.toml").write_text(_toml())
    proc = subprocess.run(
        [sys.executable, "-m", "physground.cli", "evaluate", "--suite",
         str(root / "video-in.toml"), "--predictions", str(preds), "--root", str(root),
         "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == len(bad), proc.stderr
    for line, path in zip(lines, sorted(bad), strict=True):
        assert line.startswith(f"error: {path}: ")
    assert "Traceback" not in proc.stderr and "ffmpeg" not in proc.stderr.lower()


def _toml() -> str:
    return f"""name = "video-in"
models = ["copy-last", "reference"]
metrics = {json.dumps(PIXEL)}
[defaults]
rollouts = 2
context = {CONTEXT}
horizon = {HORIZON}
splits = ["test_id"]
[[scenario]]
name = "rigid/projectile"
config = {{ num_frames = {CONTEXT + HORIZON}, image_size = {SIZE} }}
"""


def test_export_context_reads_back(suite_root):
    suite, root, index, truths = suite_root
    context_dir = root / "context"
    manifest = pd.read_csv(context_dir / "manifest.csv")
    assert len(manifest) == len(index["rollouts"]) == 2
    for item in index["rollouts"]:
        truth = truths[item["rollout"]]
        folder = context_dir / "rigid__projectile" / item["split"] / str(item["rollout"])
        assert item["fps"] == pytest.approx(1.0 / truth.dt)
        assert item["frames_to_generate"] == HORIZON and item["context_frames"] == CONTEXT
        assert item["duration_s"] == pytest.approx(HORIZON * truth.dt)
        assert (item["image_width"], item["image_height"], item["aspect"]) == (SIZE, SIZE,
                                                                                "1:1")
        assert item["resolution"] == f"{SIZE}x{SIZE}"
        np.testing.assert_allclose(item["camera"]["intrinsics"], truth.camera.intrinsics)
        assert "gravity" not in item["prompt"] and "restitution" not in item["prompt"]
        with av.open(str(folder / "context.mp4")) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert float(stream.average_rate) == pytest.approx(1.0 / truth.dt)
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        frames, times = decode_video(folder / "context.mp4")
        assert len(decoded) == CONTEXT and frames.shape == (CONTEXT, SIZE, SIZE, 3)
        np.testing.assert_allclose(np.diff(times), truth.dt, rtol=1e-6)
        assert np.abs(frames.astype(int) - truth.frames[:CONTEXT]).mean() < 3  # lossy, close
        np.testing.assert_array_equal(iio.imread(folder / "first_frame.png"),
                                      truth.frames[CONTEXT - 1])
        row = manifest[manifest["rollout"] == item["rollout"]].iloc[0]
        assert (context_dir / row["context_video"]).is_file()
        assert row["frames_to_generate"] == HORIZON


def test_evaluate_filters_scenarios_and_splits():
    from physground.errors import ValidationError
    from physground.suite import filter_suite, load_suite

    quick = load_suite("quick")
    only = filter_suite(quick, ["rigid/collision"], ["test_ood"])
    assert [(e.name, e.splits) for e in only.scenarios] == [("rigid/collision", ("test_ood",))]
    assert only.config_hash() != quick.config_hash()
    with pytest.raises(ValidationError, match="did you mean 'rigid/collision'"):
        filter_suite(quick, ["rigid/colision"])
    with pytest.raises(ValidationError, match="--split 'test'"):
        filter_suite(quick, None, ["test"])
