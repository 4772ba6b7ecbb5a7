"""Shared fixtures: small, fast datasets and scenarios."""

from __future__ import annotations

import pytest

from physground.scenario import get_scenario


@pytest.fixture(scope="session")
def projectile():
    """rigid/projectile without rendering, 30 frames."""
    return get_scenario("rigid/projectile", render=False, num_frames=30)
