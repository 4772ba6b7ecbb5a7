"""Newton column collapse: registration, determinism, mass, containment, rendering.

Needs the optional ``newton`` extra (installed in CI); tiny columns keep it cheap.
"""

import subprocess
import sys

import numpy as np
import pytest

from physground.scenario import SCENARIOS

pytest.importorskip("newton")

from physground.scenario import get_scenario  # noqa: E402
from physground.simulators.newton.granular import (  # noqa: E402
    ColumnConfig,
    column_lattice,
    column_voxel,
)

TINY = {"num_frames": 6, "image_size": 16, "voxel_size": 0.04, "width": 0.04,
        "min_cells": 1}
PARAMS = {"friction_angle": 30.0, "density": 1500.0, "aspect_ratio": 1.0}


@pytest.fixture(scope="module")
def rollout():
    scenario = get_scenario("granular/column_collapse", **TINY)
    (r,) = scenario.generate([PARAMS], [3], "train")
    return scenario, r


def test_registered_under_granular_and_newton():
    names = SCENARIOS.names(tag="granular")
    assert "granular/column_collapse" in names
    assert "granular/column_collapse" in SCENARIOS.names(tag="newton")


def test_same_bytes_twice(rollout):
    scenario, first = rollout
    (second,) = get_scenario("granular/column_collapse", **TINY).generate([PARAMS], [3],
                                                                         "train")
    for name in ("x", "v"):
        assert first.states[name].tobytes() == second.states[name].tobytes()
    assert first.frames.tobytes() == second.frames.tobytes()
    assert first.meta["content_hash"] == second.meta["content_hash"]


def test_mass_is_the_column_and_conserved(rollout):
    """Particle masses sum to density x column volume (1e-6) and no particle is lost."""
    _, r = rollout
    x = r.states["x"]
    length, width, height = r.static["column"]
    total = float(r.static["particle_mass"]) * x.shape[1]
    assert total == pytest.approx(PARAMS["density"] * length * width * height, rel=1e-6)
    assert np.isfinite(x).all() and x.shape[1] == r.states["v"].shape[1]
    assert x[..., 2].min() > -float(r.static["voxel_size"])  # still above the ground


def test_column_falls_and_spreads_forward(rollout):
    """Released sand moves down and along the channel, never through the back wall."""
    scenario, r = rollout
    x = r.states["x"]
    assert x[-1, :, 2].mean() < x[0, :, 2].mean() - 1e-3
    assert x[-1, :, 0].max() > x[0, :, 0].max() + 1e-3
    assert scenario.check(r) is None


def test_frames_and_masks_follow_the_particles(rollout):
    _, r = rollout
    assert r.frames.shape == (6, 16, 16, 3) and r.frames.dtype == np.uint8
    assert r.masks.shape == (6, 16, 16)
    pix = r.camera.project(r.states["x"][0])
    u, v = np.floor(pix).astype(int).T
    inside = (u >= 0) & (u < 16) & (v >= 0) & (v < 16)
    assert r.masks[0][v[inside], u[inside]].all()  # every particle's pixel is masked
    assert r.masks[0].sum() < r.masks.size / 6  # and the background is not


def test_lattice_tiles_the_box_exactly():
    x, cell = column_lattice(0.1, 0.04, 0.23, 0.01)
    assert len(x) * np.prod(cell) == pytest.approx(0.1 * 0.04 * 0.23, rel=1e-12)
    assert x.min(axis=0) == pytest.approx(0.5 * cell)


def test_bad_config_is_named():
    from physground.errors import ValidationError

    with pytest.raises(ValidationError, match="voxel_size"):
        get_scenario("granular/column_collapse", voxel_size=0.0)


def test_without_newton_nothing_registers_and_the_extra_is_named():
    """With newton unimportable, no granular scenario is listed and using the module says
    which extra to install."""
    code = ("import sys; sys.modules['newton'] = None\n"
            "from physground.scenario import SCENARIOS\n"
            "assert not SCENARIOS.names(tag='granular'), SCENARIOS.names(tag='granular')\n"
            "from physground.simulators.newton.granular import require_newton\n"
            "require_newton()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert 'pip install "physground[newton]"' in done.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_runout_study_quick_passes(tmp_path):
    from physground.benchmarks.validation.base import STUDIES

    result = STUDIES.get("column_runout")(quick=True, out_dir=tmp_path)
    assert result.passed, result.table.to_string()
    assert all(p.exists() for p in result.figures)


def test_short_columns_get_a_finer_grid(rollout):
    """The grid spans a column's length and height by at least ``min_cells`` voxels: a
    0.05 m column (a = 0.5) runs at 1 cm, a 0.1 m one keeps the 2 cm default; the
    rollout records the grid it ran on."""
    config = ColumnConfig()
    assert column_voxel(config, 0.05) == pytest.approx(0.01)
    assert column_voxel(config, 0.1) == pytest.approx(0.02)
    assert column_voxel(config, 0.3) == pytest.approx(0.02)
    assert column_voxel(ColumnConfig(min_cells=1), 0.05) == pytest.approx(0.02)
    from physground.errors import ValidationError

    with pytest.raises(ValidationError, match="min_cells"):
        ColumnConfig(min_cells=0)
    _, r = rollout
    assert float(r.static["voxel_size"]) == pytest.approx(0.04)  # TINY: min_cells 1
