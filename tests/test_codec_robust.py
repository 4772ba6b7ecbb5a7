"""Codec-robust pixel metrics: the truth written by other tools (PyAV's H.264 encoder at
another resolution and fps, an OpenCV PNG folder) is scored by ``physground evaluate``
(a subprocess, as a user runs it), with its anchors delivered as the file was
(`physground.metrics.scores`, "Delivered anchors").

Met: the exact PNG folder scores 100 everywhere; the H.264 CRF 23 truth at 3/2 size and
2x fps scores >= 90 on every pixel metric and every state metric derived from tracked
objects; the frozen H.264 video scores no better than copy-last. Deliveries beyond the
tolerated ones (CRF 40, a quarter of the size) lose points, and wrong physics delivered
as H.264 still scores low.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import av
import cv2
import numpy as np
import pandas as pd
import pytest

from physground.benchmarks.external import export_context
from physground.metrics import METRICS
from physground.metrics.pixel_tracking import ColourTracker
from physground.metrics.scores import aggregate_scores, normalized_scores
from physground.storage import Dataset
from physground.suite import parse_suite

CONTEXT, HORIZON, SIZE = 4, 10, 64
SUITE = {
    "name": "codec-in",
    "models": ["copy-last"],
    "metrics": "auto",
    "defaults": {"rollouts": 2, "context": CONTEXT, "horizon": HORIZON, "splits": ["test_id"]},
    "scenario": [{"name": "rigid/collision",
                  "config": {"num_frames": CONTEXT + HORIZON, "image_size": SIZE}}],
}


def h264(path, frames, fps, size, crf=23):
    """libx264 yuv420p (CRF 23 by default) with PyAV directly (not physground's writer)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        stream.options = {"crf": str(crf)}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in stream.encode(frame.reformat(width=size, height=size)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_tracker_keeps_area_and_centroid_through_blur_and_chroma_loss():
    """A 4x4 red square on a grey gradient: a 2x2 box blur (mixing it with the background)
    keeps its coverage sum and moves its centroid by the blur's own half-pixel shift."""
    h = w = 24
    background = np.repeat(np.linspace(60, 200, w)[None, :, None], h, 0).repeat(3, 2)
    frame = background.copy()
    frame[8:12, 10:14] = (220, 40, 30)
    masks = np.zeros((1, h, w), np.int64)
    masks[0, 8:12, 10:14] = 1
    tracker = ColourTracker.fit(frame[None].astype(np.uint8), masks, 1)
    blurred = cv2.blur(frame.astype(np.uint8), (2, 2))
    area, centroid = tracker.moments(np.stack([frame, blurred]).astype(np.uint8))
    assert area[0, 0] == pytest.approx(16.0, abs=1e-6)
    np.testing.assert_allclose(centroid[0, 0], (12.0, 10.0), atol=1e-6)
    assert area[1, 0] == pytest.approx(16.0, rel=0.15)
    # the 2x2 box filter shifts by +0.5 px
    np.testing.assert_allclose(centroid[1, 0], (12.5, 10.5), atol=0.1)


def test_motion_masks_ignore_background_flicker_and_chroma_loss():
    """A 4x4 red square moving 2 px per frame over a grey background: a prediction with
    +-14 grey levels of background flicker (above the grey-difference threshold, 12.75)
    and a quarter of the square's chroma lost keeps every motion-mask IoU at 1. (Step 1
    compares the prediction with the exact last context frame, so a larger chroma loss,
    H.264's on 1-2 px objects, shows as motion there.)"""
    from physground.metrics.evaluate import evaluate
    from physground.rollout import Prediction, Rollout

    t, h, w = 8, 16, 24
    frames = np.full((t, h, w, 3), 120, np.uint8)
    masks = np.zeros((t, h, w), np.uint8)
    for i in range(t):
        frames[i, 6:10, 2 + 2 * i:6 + 2 * i] = (220, 40, 30)
        masks[i, 6:10, 2 + 2 * i:6 + 2 * i] = 1
    truth = Rollout(scenario="rigid/projectile", split="test_id", seed=0, params={}, dt=0.05,
                    frames=frames, masks=masks)
    pred = frames[3:].astype(np.int16)
    flicker = np.where(np.arange(t - 3)[:, None, None] % 2 == 0, 14, -14)
    pred[masks[3:] == 0] += np.broadcast_to(flicker, masks[3:].shape)[masks[3:] == 0][:, None]
    obj = masks[3:] == 1
    grey = pred[obj].mean(-1, keepdims=True)
    pred[obj] = grey + (pred[obj] - grey) * 3 // 4  # a quarter of the chroma lost
    prediction = Prediction.for_rollout(truth, model="video", context=3, horizon=t - 3,
                                        frames=np.clip(pred, 0, 255).astype(np.uint8))
    names = ["spatial_iou_running", "spatiotemporal_iou_running",
             "weighted_spatial_iou_running"]
    rows = evaluate(truth, prediction, names)
    assert (rows["failure"] == "").all()
    np.testing.assert_allclose(rows["value"], 1.0)


def score_written(tmp_path, writers):
    """Normalized scores of external sources, one per ``writers`` entry: ``name ->
    write(stem, window, last, fps)`` writes one rollout's prediction file next to
    ``stem`` from the truth's target window (and its last context frame); all scored by
    one ``physground evaluate`` command, as a user runs it."""
    suite = parse_suite(SUITE, "codec-in.toml")
    index = json.loads(export_context(suite, tmp_path, tmp_path / "context", progress=False
                                      ).read_text())
    (path,) = (tmp_path / "data" / "rigid/collision").glob("test_id-n2-*")
    truths = {t.seed: t for t in Dataset(path)}
    fps = 1.0 / next(iter(truths.values())).dt
    command = [sys.executable, "-m", "physground.cli", "evaluate", "--suite",
               str(suite_file(tmp_path)), "--root", str(tmp_path), "--quiet"]
    for kind, write in writers.items():
        out = tmp_path / kind
        for item in index["rollouts"]:
            truth = truths[item["rollout"]]
            stem = (out / item["prediction_file"]).with_suffix("")
            stem.parent.mkdir(parents=True, exist_ok=True)
            write(stem, np.asarray(truth.frames[CONTEXT:CONTEXT + HORIZON]),
                  np.asarray(truth.frames[CONTEXT - 1]), fps)
        command += ["--predictions", str(out), "--name", kind]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    results = proc.stdout.strip().splitlines()[-1].removeprefix("results: ")
    return normalized_scores(pd.read_parquet(results))


def suite_file(tmp_path):
    """`SUITE` as the TOML file a user passes to ``physground evaluate --suite``."""
    d, (entry,) = SUITE["defaults"], SUITE["scenario"]
    path = tmp_path / "codec-in.toml"
    path.write_text(f"""name = "{SUITE['name']}"
models = {json.dumps(SUITE['models'])}
metrics = "auto"
[defaults]
rollouts = {d['rollouts']}
context = {d['context']}
horizon = {d['horizon']}
splits = {json.dumps(d['splits'])}
[[scenario]]
name = "{entry['name']}"
config = {{ num_frames = {entry['config']['num_frames']}, image_size = {SIZE} }}
""")
    return path


def png_folder(stem, frames, size=SIZE):
    """OpenCV PNGs, BGR on disk, resized to ``size`` with area averaging."""
    stem.mkdir()
    for i, frame in enumerate(frames):
        small = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(stem / f"{i:04d}.png"), small[..., ::-1])


def test_h264_and_png_truth_score_at_least_90_and_frozen_no_better_than_copy_last(tmp_path):
    writers = {  # H.264 at twice the fps (each frame twice) and 3/2 the size
        "h264": lambda stem, w, last, fps: h264(stem.with_suffix(".mp4"), np.repeat(w, 2, 0),
                                                2 * fps, SIZE * 3 // 2),
        "png": lambda stem, w, last, fps: png_folder(stem, w),
        "frozen": lambda stem, w, last, fps: h264(stem.with_suffix(".mp4"),
                                                  np.repeat(last[None], HORIZON, 0), fps, SIZE),
    }
    scores = score_written(tmp_path, writers)
    frames_only = scores[scores["model"].isin(["h264", "png"])]
    assert {"psnr", "ssim", "object_permanence", "spatial_iou_running", "position_rmse",
            "momentum_drift"} <= set(frames_only["metric"])
    assert all(METRICS.get(m).modality == "pixels" or METRICS.get(m).derivable_from_pixels
               for m in frames_only["metric"])
    scored = frames_only[frames_only["score"].notna()]
    assert len(scored) >= 2 * 12
    # a metric without a score is one the truth itself has none on (no contact in the window)
    truth = scores[scores["model"] == "truth"].set_index("metric")["score"]
    unscored = frames_only[frames_only["score"].isna()]["metric"]
    assert truth[unscored].isna().all(), unscored.tolist()
    # both files' anchors were delivered as they were and measured from frames alone
    assert scored["delivered"].all()
    low = scored[scored["score"] < 90.0]
    assert low.empty, low[["model", "metric", "value", "floor", "uninformative", "score"]
                          ].to_string()
    png = scored[scored["model"] == "png"]
    assert (png["score"] == 100.0).all(), png[["metric", "score"]].to_string()
    overall = aggregate_scores(scores).set_index("model")["physics_score"]
    assert overall["frozen"] <= overall["copy-last"], overall
    assert overall["h264"] >= 90.0, overall


def test_deliveries_beyond_the_tolerated_ones_lose_points(tmp_path):
    """The delivered floor is capped by the truth's error through H.264 CRF 23 and half
    size: the truth at CRF 40 or at a quarter of the size scores below 90 on pixel metrics,
    and the truth played backwards, delivered as H.264, still scores low overall."""
    writers = {
        "crf40": lambda stem, w, last, fps: h264(stem.with_suffix(".mp4"), w, fps, SIZE,
                                                 crf=40),
        "quarter": lambda stem, w, last, fps: png_folder(stem, w, SIZE // 4),
        "reversed": lambda stem, w, last, fps: h264(stem.with_suffix(".mp4"), w[::-1], fps,
                                                    SIZE),
    }
    table = score_written(tmp_path, writers)
    scores = table.set_index(["model", "metric"])["score"]
    for model in ("crf40", "quarter"):
        assert scores[model, "psnr"] < 90.0, scores[model]
        assert scores[model, "ssim"] < 90.0, scores[model]
    overall = aggregate_scores(table).set_index("model")["physics_score"]
    assert overall["reversed"] < 25.0 and overall["crf40"] < 50.0, overall
