"""Validation studies: each compares the ground truth with an experiment or closed form and
passes within its stated tolerance; the runner writes the page and flags failures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from physground.benchmarks.validation import STUDIES, StudyResult
from physground.benchmarks.validation.runner import find_validation_page, run_studies
from physground.benchmarks.validation.study_fluid import martin_moyce
from physground.benchmarks.validation.study_rigid import first_rebound_apex

FAST = ["pendulum_period", "incline_law", "elastic_collision"]


def test_every_built_in_study_is_registered_with_a_family_tag():
    names = STUDIES.names()
    for name in [*FAST, "bounce_restitution", "dam_break_front", "hydrostatic_density"]:
        assert name in names
        assert STUDIES.tags(name) & {"rigid", "fluid", "cloth", "smoke"}
    assert set(STUDIES.names("slow")) >= {"bounce_restitution", "dam_break_front"}


@pytest.mark.parametrize("name", FAST)
def test_fast_study_passes_within_its_tolerance(name, tmp_path):
    result = STUDIES.get(name)(True, tmp_path)
    assert isinstance(result, StudyResult) and result.tolerance and result.reference
    assert len(result.table) >= 3 and result.table["passed"].all() and result.passed
    assert all(p.is_file() and p.stat().st_size > 1000 for p in result.figures)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bounce_restitution", "hydrostatic_density"])
def test_slow_study_passes_within_its_tolerance(name, tmp_path):
    result = STUDIES.get(name)(True, tmp_path)
    assert result.passed, result.table.to_string()


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="measured: the SPH water edge runs +12.4 % ahead of "
                   "Martin & Moyce at T = 1.21 (dx = 25 mm), +16.3 % at 12.5 mm and +19.0 % "
                   "at 6.25 mm (it grows with resolution); a fitted delay dT = 0.125-0.240 "
                   "brings it within 4.1-5.0 %, Lethe's fixed dT = 0.175 within 6.9/5.3/7.5 %, "
                   "and at the paper's first tabulated point (T = 0.41) the undelayed edge "
                   "agrees within 2.2 %: what holds the experiment's early front back is not "
                   "known; open")
def test_dam_break_front_within_5_percent_of_martin_moyce(tmp_path):
    result = STUDIES.get("dam_break_front")(True, tmp_path)
    assert result.passed, result.table.to_string()


def test_edge_front_of_a_lattice_block_is_its_edge_and_ignores_a_lone_particle():
    from physground.benchmarks.validation.study_fluid import edge_front
    from physground.simulators.warp.sph import lattice_normalization

    dx = 0.02
    static = {"kernel_support": 2.6 * dx, "spacing": dx, "particle_mass": 1000 * dx**2,
              "kernel_normalization": lattice_normalization(dx, 2.6 * dx),
              "rest_density": 1000.0}
    i, j = np.meshgrid(np.arange(10), np.arange(20))
    block = np.stack([(i.ravel() + 0.5) * dx, (j.ravel() + 0.5) * dx], 1)
    lone = np.array([[0.5, 0.5 * dx]])  # one particle ahead, as a spray droplet
    x = np.stack([np.vstack([block, lone]), np.vstack([block + [0.1, 0], lone])])
    edge = edge_front(x, static)
    # the block's edge is 10 dx (half a spacing beyond the last centre), droplet or not
    assert edge == pytest.approx([10 * dx, 10 * dx + 0.1], abs=0.02 * dx)
    assert edge[0] > block[:, 0].max() + 0.45 * dx


def test_release_delay_recovers_the_shift_of_a_delayed_copy():
    from physground.benchmarks.validation.study_fluid import release_delay

    points = martin_moyce()
    points = points[points["a_inch"] == 2.25].sort_values("T")
    big_t = np.linspace(0.0, 12.0, 2401)
    early = np.interp(big_t + 0.15, points["T"], points["Z"])  # starts 0.15 earlier
    delay, errors = release_delay(big_t, early, points[points["T"] <= 3.0])
    assert delay == pytest.approx(0.15, abs=1e-9) and np.abs(errors).max() < 1e-3
    delay, _ = release_delay(big_t, np.interp(big_t, points["T"], points["Z"]), points)
    assert delay == 0.0


def test_martin_moyce_data_file_is_the_published_2_to_1_series():
    data = martin_moyce()
    assert set(data["a_inch"]) == {1.125, 2.25}
    assert len(data) == 25 and data["T"].is_monotonic_increasing is False
    for _, series in data.groupby("a_inch"):
        assert np.all(np.diff(series["T"]) > 0) and np.all(np.diff(series["Z"]) > 0)
    # the surge front starts at the column (Z = 1) and is faster than ~1.3 Z per T later on
    assert data["Z"].min() > 1.0 and data["Z"].max() == pytest.approx(13.97)


def test_first_rebound_apex_of_an_exact_bounce():
    g, dt, e, h0 = 9.81, 1e-3, 0.5, 0.2
    t = np.arange(0, 0.8, dt)
    v0 = np.sqrt(2 * g * h0)
    t1 = v0 / g
    z = np.where(t < t1, h0 - 0.5 * g * t**2, e * v0 * (t - t1) - 0.5 * g * (t - t1) ** 2)
    vz = np.where(t < t1, -g * t, e * v0 - g * (t - t1))
    z = np.where(np.abs(t - t1) < 2 * dt, -1e-3, z)  # contact frames below the ground
    assert first_rebound_apex(z + 0.1, vz, 0.1) == pytest.approx(e**2 * h0, rel=1e-9)


def _failing(quick, out_dir):
    return StudyResult(name="always_fails", title="Always fails", reference="none",
                       tolerance="x = 0", passed=False,
                       table=pd.DataFrame([{"x": 1.0, "passed": False}]))


def _raising(quick, out_dir):
    raise RuntimeError("simulator exploded")


def test_runner_writes_the_page_and_flags_failed_and_raising_studies(tmp_path, monkeypatch):
    from physground.registry import _Entry

    STUDIES.names()  # loads the catalog
    monkeypatch.setitem(STUDIES._entries, "always_fails", _Entry("always_fails", _failing))
    monkeypatch.setitem(STUDIES._entries, "raises", _Entry("raises", _raising))
    results = run_studies(tmp_path / "validation", quick=True, progress=False,
                          names=["incline_law", "always_fails", "raises"])
    assert {r.name: r.passed for r in results} == {"incline_law": True, "always_fails": False,
                                                   "raises": False}
    page = (tmp_path / "validation" / "index.html").read_text()
    assert page.count("FAIL") >= 2 and "simulator exploded" in page
    assert "figures/incline_law.png" in page
    md = (tmp_path / "validation" / "validation.md").read_text()
    assert "| [Incline: sliding acceleration against Coulomb's law](#incline_law) | PASS |" in md
    assert (tmp_path / "validation" / "figures" / "incline_law.png").is_file()
    record = json.loads((tmp_path / "validation" / "validation.json").read_text())
    assert record["passed"] is False and {s["name"] for s in record["studies"]} == {
        "incline_law", "always_fails", "raises"}
    table = pd.read_csv(tmp_path / "validation" / "tables" / "incline_law.csv")
    assert table["passed"].all()
    assert find_validation_page(tmp_path / "runs" / "suite-abc") == \
        tmp_path / "validation" / "index.html"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "physground", *args], capture_output=True,
                          text=True, timeout=600)


def test_cli_runs_selected_studies_and_rejects_unknown_ones(tmp_path):
    ok = _cli("validate-physics", "--quick", "--study", "elastic_collision", "--root",
              str(tmp_path), "-q")
    assert ok.returncode == 0, ok.stderr
    assert "PASS  elastic_collision" in ok.stdout
    assert (tmp_path / "validation" / "index.html").is_file()
    bad = _cli("validate-physics", "--study", "pendulum_perod", "--root", str(tmp_path))
    assert bad.returncode == 2 and "error:" in bad.stderr and "did you mean" in bad.stderr
