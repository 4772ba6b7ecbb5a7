"""Entity systems of different sizes in one batch: ghosts pad the smaller ones."""

import numpy as np
import pytest
import torch

from physground.errors import ValidationError
from physground.learned.entities import (
    GHOST_SPACING,
    entity_count,
    entity_states,
    entity_static,
    pad_entities,
)
from physground.rollout import Rollout


def grains(n: int, frames: int = 3) -> Rollout:
    rng = np.random.default_rng(n)
    x = rng.uniform(0.0, 0.1, (frames, n, 3))
    return Rollout(scenario="granular/column_collapse", split="train", seed=n, params={},
                   dt=1 / 30, states={"x": x, "v": np.zeros_like(x)},
                   static={"particle_mass": np.float64(0.2), "particle_radius": np.float64(0.005),
                           "gravity": np.array([0.0, 0.0, -9.81])})


def test_padded_static_marks_ghosts_pinned_massless_and_sizeless():
    small, large = grains(3), grains(5)
    static = entity_static([small, large], pad=True)
    assert static.mass.shape == (2, 5)
    np.testing.assert_array_equal(static.pinned[0].numpy(), [False] * 3 + [True] * 2)
    np.testing.assert_allclose(static.mass[0].numpy(), [0.2] * 3 + [0.0] * 2)
    np.testing.assert_allclose(static.radius[0].numpy(), [0.005] * 3 + [0.0] * 2)
    assert not static.pinned[1].any() and entity_count([small, large]) == 5


def test_without_pad_different_sizes_are_an_error_naming_the_shape():
    with pytest.raises(ValidationError, match=r"entity shape \[5, 3\], expected \[3, 3\]"):
        entity_static([grains(3), grains(5)])


def test_ghosts_rest_far_apart_and_the_real_entities_are_untouched():
    x, v = entity_states(grains(3))
    xp, vp = pad_entities(x, v, 6)
    assert xp.shape == (3, 6, 3) and torch.equal(xp[:, :3], x) and torch.equal(vp[:, :3], v)
    assert float(vp[:, 3:].abs().max()) == 0.0 and torch.equal(xp[0, 3:], xp[-1, 3:])
    gaps = torch.cdist(xp[0], xp[0]) + 1e9 * torch.eye(6)
    assert float(gaps[3:].min()) >= GHOST_SPACING  # no ghost within reach of anything
    with pytest.raises(ValidationError, match="cannot pad 3 entities down to 2"):
        pad_entities(x, v, 2)


def test_meshes_are_not_padded():
    mesh = grains(4)
    mesh.static["edges"] = np.array([[0, 1]])
    with pytest.raises(ValidationError, match="meshes are not padded"):
        entity_static([grains(5), mesh], pad=True)
