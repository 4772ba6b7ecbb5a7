"""The `video-transformer` model: overfitting, pixel losses through training, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_learned_fixtures import DT, ballistic_rollout, blob_masks, one_torch_thread  # noqa: F401

from physground.errors import ValidationError
from physground.learned.modeling_video_transformer import (
    ModelVideoTransformer,
    VideoTransformer,
    projected_gravity,
)
from physground.learned.training import TrainConfig, load_model, train
from physground.rollout import Camera, Rollout
from physground.world_model import MODELS

TINY = {"context": 2, "tubelet": 1, "patch": 4, "dim": 32, "depth": 1, "heads": 2}


def blob_rollout(seed: int, frames: int = 10, size: int = 16) -> Rollout:
    """A red Gaussian blob falling along a parabola on a grey background, with its mask."""
    soft, _ = blob_masks(frames, size, gravity_px=40.0 + 10 * seed, sigma=2.0)
    soft = soft * (size / 32)  # keep the blob inside the smaller image
    rgb = np.empty((frames, size, size, 3))
    rgb[..., 0] = 0.4 + 0.6 * soft
    rgb[..., 1] = rgb[..., 2] = 0.4 * (1 - soft)
    return Rollout(scenario="rigid/projectile", split="train", seed=seed, params={}, dt=DT,
                   frames=(rgb * 255).round().astype(np.uint8),
                   masks=(soft > 0.3).astype(np.uint8))


def _config(**kw) -> TrainConfig:
    base = dict(model="video-transformer", model_config=TINY, steps=80, lr=3e-3, lr_final=3e-3,
                batch_size=4, unroll=1, progress=False, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def test_video_transformer_overfits_tiny_dataset():
    """The data loss on 2 clips falls by at least 4x in 100 steps."""
    model = train(_config(steps=100, lr_final=3e-4), [blob_rollout(0), blob_rollout(1)])
    first = np.mean([h["data"] for h in model.history[:3]])
    last = np.mean([h["data"] for h in model.history[-3:]])
    assert last < first / 4, (first, last)


def test_patchify_round_trip_and_prediction_shapes():
    net = VideoTransformer(ModelVideoTransformer.config_type(**TINY, image_size=16))
    frame = torch.rand(2, 1, 4, 16, 16)
    tokens = net.patchify(frame)
    assert tokens.shape == (2, 16, 4 * 16)
    torch.testing.assert_close(net.unpatchify(tokens), frame[:, 0])
    assert MODELS.get("video-transformer") is ModelVideoTransformer
    model = train(_config(steps=1), [blob_rollout(0)])
    truth = blob_rollout(3)
    pred = model.predict(truth.context(4), 5)
    assert pred.frames.shape == truth.frames[4:9].shape and pred.frames.dtype == np.uint8
    assert pred.masks.shape == truth.masks[4:9].shape


def test_pixel_physics_terms_train_and_flow_gradients():
    rollouts = [blob_rollout(0), blob_rollout(1)]
    model = train(_config(steps=1), rollouts)
    windows = model.windows(rollouts, unroll=3)
    batch = windows.batch(torch.arange(3))
    batch["gravity_px"] = torch.tensor([[0.0, 40.0]]).expand(3, 2)
    batch["free"] = torch.ones(3, 3, dtype=torch.bool)
    for term in ("centroid_gravity", "permanence"):
        values = model.losses(batch, unroll_mode="unrolled", terms=[term], options={})
        model.net.zero_grad()
        values[term].backward()
        assert float(values[term].detach()) > 0
        assert sum(float(p.grad.abs().sum()) for p in model.parameters()
                   if p.grad is not None) > 0


def test_checkpoint_round_trip_reproduces_frames_exactly(tmp_path):
    model = train(_config(steps=3), [blob_rollout(0)])
    model.save(tmp_path / "video")
    loaded = load_model(tmp_path / "video")
    context = blob_rollout(2).context(4)
    a, b = model.predict(context, 4), loaded.predict(context, 4)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.masks, b.masks)


def test_projected_gravity_matches_pinhole_camera():
    """A side camera at distance Z with focal f sees g as f g / Z px/s^2, v pointing down."""
    r = ballistic_rollout(0)
    f, Z = 40.0, 10.0
    K = np.array([[f, 0, 16], [0, f, 16], [0, 0, 1.0]])
    E = np.eye(4)
    E[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]  # x right, world z up -> image v down
    E[:3, 3] = [0, 0, Z]
    x = r.states["pos"][3, 0]
    E[:3, 3] = [-x[0], x[2], Z - x[1]]  # the ball sits on the optical axis at depth Z
    cam = Camera(intrinsics=K, extrinsics=E, width=32, height=32)
    r = Rollout(**{**r.__dict__, "camera": cam})
    np.testing.assert_allclose(projected_gravity(r, 3), [0.0, f * 9.81 / Z], rtol=1e-3)


def test_video_model_needs_frames():
    with pytest.raises(ValidationError, match="no frames"):
        train(_config(steps=1), [ballistic_rollout(0)])


def wide_rollout(seed: int, frames: int = 10) -> Rollout:
    """`blob_rollout` at 24 px, cropped to 16 rows: a 3:2 landscape video."""
    r = blob_rollout(seed, frames, size=24)
    return Rollout(**{**r.__dict__, "frames": r.frames[:, 4:20].copy(),
                      "masks": r.masks[:, 4:20].copy()})


def test_wide_frames_train_predict_and_round_trip(tmp_path):
    """Non-square frames (16 x 24): tokens keep rows and columns apart (patchify inverts),
    predictions have the context's shape, the checkpoint restores the shape, and frames of
    another shape are refused with both shapes named."""
    net = VideoTransformer(ModelVideoTransformer.config_type(**TINY, image_size=24,
                                                             image_height=16))
    clip = torch.rand(2, 1, 4, 16, 24)
    assert net.patchify(clip).shape == (2, 4 * 6, 4 * 16)
    torch.testing.assert_close(net.unpatchify(net.patchify(clip)), clip[:, 0])
    model = train(_config(steps=2), [wide_rollout(0), wide_rollout(1)])
    assert model.config.frame_shape == (16, 24)
    truth = wide_rollout(2)
    pred = model.predict(truth.context(4), 5)
    assert pred.frames.shape == truth.frames[4:9].shape
    model.save(tmp_path / "wide")
    loaded = load_model(tmp_path / "wide")
    np.testing.assert_array_equal(loaded.predict(truth.context(4), 3).frames, pred.frames[:3])
    with pytest.raises(ValidationError, match=r"\[16, 16\] px .*\[16, 24\] px"):
        model.predict(blob_rollout(3).context(4), 2)
