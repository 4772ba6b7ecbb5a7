"""Resolution presets: suite settings validated in `physground.schema`, applied by every
renderer (square and 16:9 frames, cameras that agree with them), recorded in the context
export; the quick suite renders every object at least 8 px across."""

from __future__ import annotations

import numpy as np
import pytest

from physground.errors import ValidationError
from physground.scenario import get_scenario
from physground.schema import RESOLUTION_PRESETS, parse_resolution
from physground.suite import load_suite, parse_suite


def _suite(**extra):
    scenario = {"name": "rigid/projectile", "config": {"num_frames": 8},
                "context": 2, "horizon": 4}
    scenario.update(extra.pop("scenario", {}))
    return {"name": "res", "models": ["copy-last"], "scenario": [scenario], **extra}


def test_presets_and_sizes_parse():
    assert RESOLUTION_PRESETS["square-256"] == (256, 256)
    assert RESOLUTION_PRESETS["wide-480"] == (480, 272)
    assert parse_resolution("wide-480", "x") == (480, 272)
    assert parse_resolution("480x272", "x") == (480, 272)
    (entry,) = parse_suite(_suite(resolution="480x272"), "s.toml").scenarios
    assert entry.config == {"num_frames": 8, "image_size": 480, "image_height": 272}
    (entry,) = parse_suite(_suite(scenario={"resolution": "square-256"}), "s.toml").scenarios
    assert entry.config == {"num_frames": 8, "image_size": 256}  # square: no image_height
    # a scenario's own image_size wins over the suite-wide resolution
    (entry,) = parse_suite(_suite(resolution="square-256", scenario={
        "config": {"num_frames": 8, "image_size": 32}}), "s.toml").scenarios
    assert entry.config["image_size"] == 32 and "image_height" not in entry.config


@pytest.mark.parametrize(("value", "fragment"), [
    ("wide480", "did you mean 'wide-480'"),
    ("480by272", "expected a preset"),
    ("4x4", "sides of >= 8 pixels"),
    ("100000x8", "exceeds the maximum"),
    (256, "expected a string"),
])
def test_bad_resolutions_are_named(value, fragment):
    with pytest.raises(ValidationError, match="resolution") as err:
        parse_suite(_suite(scenario={"resolution": value}), "s.toml")
    assert fragment in str(err.value) and "s.toml:scenario[0]" in str(err.value)


def test_resolution_and_image_size_of_one_scenario_clash():
    with pytest.raises(ValidationError, match="config sets image_size and the suite sets "
                                              "resolution"):
        parse_suite(_suite(scenario={"resolution": "square-256", "config": {
            "num_frames": 8, "image_size": 32}}), "s.toml")


def _on_mask(rollout, points):
    """Fraction of world ``points`` [T,N,3] that project onto the rollout's object mask."""
    pix = np.floor(rollout.camera.project(points)).astype(int)  # (u, v)
    h, w = rollout.frames.shape[1:3]
    inside = (pix[..., 0] >= 0) & (pix[..., 0] < w) & (pix[..., 1] >= 0) & (pix[..., 1] < h)
    t = np.broadcast_to(np.arange(len(points))[:, None], inside.shape)
    hits = np.asarray(rollout.masks)[t[inside], pix[..., 1][inside], pix[..., 0][inside]] > 0
    return hits.mean() if hits.size else 0.0


@pytest.mark.parametrize(("name", "config", "points"), [
    ("rigid/projectile", {"num_frames": 6}, lambda r: r.states["pos"]),
    ("cloth/hanging", {"num_frames": 4, "resolution": 6}, lambda r: r.states["x"]),
    ("fluid/dam_break", {"num_frames": 3},
     lambda r: np.concatenate([r.states["x"], np.zeros((*r.states["x"].shape[:2], 1))], -1)),
])
def test_wide_frames_agree_with_their_camera(name, config, points):
    """16:9 frames: the renderer's image and its recorded camera agree (each object's
    position projects onto its mask), as well as in square frames (cloth nodes on the
    sheet's rim fall on either side of its outline)."""
    scenario = get_scenario(name, **config, image_size=480, image_height=272)
    params = [scenario.sample_params("test_id", 0)]
    rollout = scenario.simulate(params, [0], "test_id")[0]
    square = get_scenario(name, **config, image_size=272).simulate(params, [0], "test_id")[0]
    assert rollout.frames.shape[1:] == (272, 480, 3)
    assert np.asarray(rollout.masks).shape[1:] == (272, 480)
    assert (rollout.camera.width, rollout.camera.height) == (480, 272)
    np.testing.assert_allclose(rollout.camera.intrinsics[:2, 2], [240.0, 136.0])
    on_square = _on_mask(square, points(square))
    assert on_square > 0.6
    assert _on_mask(rollout, points(rollout)) >= on_square - 0.02


def test_wide_smoke_is_the_square_box_centred():
    square = get_scenario("fluid/smoke", num_frames=3, image_size=32)
    wide = get_scenario("fluid/smoke", num_frames=3, image_size=64, image_height=32)
    params = [square.sample_params("test_id", 0)]
    a = square.simulate(params, [0], "test_id")[0]
    b = wide.simulate(params, [0], "test_id")[0]
    np.testing.assert_array_equal(b.frames[:, :, 16:48], a.frames)  # box in the middle
    assert not np.asarray(b.masks)[:, :, :16].any() and not np.asarray(b.masks)[:, :, 48:].any()
    corner = np.array([[[0.0, 0.0, 0.0]]])  # the box's lower left corner
    np.testing.assert_allclose(b.camera.project(corner)[0, 0], [16.0, 32.0], atol=1e-9)


def test_quick_suite_objects_are_at_least_8_px_across():
    """Every object of every quick scenario is >= 8 px in (equivalent) diameter in each
    frame where it lies wholly inside the image."""
    for entry in load_suite("quick").scenarios:
        scenario = get_scenario(entry.name, **entry.config)
        for split in entry.splits:
            seeds = [0]
            rollouts = scenario.simulate([scenario.sample_params(split, s) for s in seeds],
                                         seeds, split)
            for rollout in rollouts:
                masks = np.asarray(rollout.masks)
                for obj in [i for i in np.unique(masks) if i > 0]:
                    m = masks == obj
                    edge = m[:, 0].any(1) | m[:, -1].any(1) | m[:, :, 0].any(1) | \
                        m[:, :, -1].any(1)
                    area = m.sum((1, 2))[~edge & m.any((1, 2))]
                    assert len(area), (entry.name, split, obj)
                    diameter = 2 * np.sqrt(area.min() / np.pi)
                    assert diameter >= 8, (entry.name, split, rollout.seed, obj, diameter)
