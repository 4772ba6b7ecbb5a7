"""Machinery of the Newton validation studies: the published run-out law, its reference
file, and the cross-engine cloth rollout (a tiny sheet, a few frames)."""

from importlib import resources

import numpy as np
import pytest

from physground.benchmarks.validation.study_granular import (
    REFERENCE,
    band_error,
    law_value,
    lube_band,
    runout_laws,
)


def test_lube_law_regimes_and_transition_band():
    """1.2 a up to a = 1.8, 1.9 a^(2/3) from a = 2.8, the band between the fits inside."""
    low, high = lube_band(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(low, [1.2, 2.4, 1.9 * 3 ** (2 / 3)], rtol=1e-3)
    np.testing.assert_allclose(high, [1.2, 1.9 * 2 ** (2 / 3), 1.9 * 3 ** (2 / 3)], rtol=1e-3)
    assert float(law_value("lajeunesse2005", "linear", 2.0)) == pytest.approx(3.6)
    with pytest.raises(KeyError, match="no single fit"):
        law_value("lube2005", "quadratic", 1.0)


def test_band_error_is_zero_inside_and_relative_outside():
    assert band_error(2.5, 2.4, 3.0) == 0.0
    assert band_error(1.2, 2.4, 3.0) == pytest.approx(-0.5)
    assert band_error(3.3, 2.4, 3.0) == pytest.approx(0.1)


def test_reference_file_cites_its_sources():
    text = (resources.files("physground.benchmarks.validation") / "reference"
            / REFERENCE).read_text()
    for doi in ("10.1103/PhysRevE.72.041301", "10.1063/1.2087687", "10.1017/jfm.2011.335",
                "10.1017/S0022112005005537"):
        assert doi in text
    laws = runout_laws()
    assert set(laws.columns) == {"source", "material", "regime", "a_min", "a_max",
                                 "coefficient", "exponent"}


def test_newton_and_warp_step_the_same_lattice_alike():
    """A 4 x 4 sheet pinned by one edge, 3 frames: Newton's semi-implicit solver and the
    Warp cloth agree to float32 round-off, and the pinned nodes never move."""
    pytest.importorskip("newton")
    from physground.benchmarks.validation.study_cloth import hanging_sheet, simulate_sheet
    from physground.benchmarks.validation.study_cloth_newton import newton_cloth_rollout

    topo, x0, pinned = hanging_sheet(4)
    x0 = x0 + 0.05 * np.random.default_rng(0).normal(size=x0.shape) * ~pinned[:, None]
    v0 = np.zeros_like(x0)
    kw = {"stiffness": 400.0, "mass": 0.3, "damping": 0.05}
    warp_x, _ = simulate_sheet(topo, x0, pinned, seconds=2 / 30, substeps=20, bending=0.0,
                               v0=v0, **kw)
    newton_x = newton_cloth_rollout(topo, x0, v0, pinned, frames=3, substeps=20, **kw)
    moved = np.abs(warp_x[-1] - x0).max()
    assert moved > 1e-3  # the sheet moves by millimetres ...
    assert np.abs(newton_x - warp_x).max() < 1e-5  # ... and the engines agree to 1e-5 m
    assert np.abs(newton_x[:, pinned] - x0[pinned].astype(np.float32)).max() == 0.0


@pytest.mark.slow
def test_cloth_cross_engine_study_quick_passes(tmp_path):
    pytest.importorskip("newton")
    from physground.benchmarks.validation.base import STUDIES

    result = STUDIES.get("cloth_cross_engine")(quick=True, out_dir=tmp_path)
    assert result.passed, result.table.to_string()
    assert all(p.exists() for p in result.figures)
