"""Reports: self-contained HTML and Markdown from a run, a leaderboard of bounded scores
(100 at the second take's floor, 0 uninformative) with anchors apart and bootstrap CIs,
paired tests, conserved quantities, side-by-side strips, comparison of two runs, and a real
browser rendering."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from physground.benchmarks.executors import run_sequential
from physground.benchmarks.runner import run_suite
from physground.errors import ValidationError
from physground.reports import compare_runs, markdown_path, report_path, tables
from physground.suite import parse_suite

SUITE = {
    "name": "rep",
    "models": ["copy-last", "constant-velocity", "reference"],
    "metrics": ["position_rmse", "position_ade", "energy_drift"],
    "defaults": {"rollouts": 3, "context": 4, "horizon": 6},
    "scenario": [{"name": "rigid/projectile", "config": {"num_frames": 10, "image_size": 24}}],
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    return run_suite(parse_suite(SUITE, "rep.toml"), root=root, executor=run_sequential,
                     progress=False)


def test_html_report_is_self_contained(run_dir):
    html = report_path(run_dir).read_text()
    for section in ("Leaderboard", "rigid/projectile", "test_id", "test_ood",
                    "Error against horizon", "Conserved quantities", "Side by side",
                    "Paired comparisons", "score [95% CI]", "position_rmse [m]"):
        assert section in html, section
    sources = re.findall(r"src='([^']*)'", html) + re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert "data:image/gif;base64," in html and "data:image/png;base64," in html
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_markdown_summary_links_existing_figures(run_dir):
    text = markdown_path(run_dir).read_text()
    links = re.findall(r"\]\(((?:figures|media)/[^)]+)\)", text)
    assert any(link.endswith(".gif") for link in links)
    assert all((markdown_path(run_dir).parent / link).exists() for link in links)
    assert "| anchor | truth | 100.0" in text and "| anchor | second-take | 100.0" in text


def test_leaderboard_is_anchored_with_cis(run_dir):
    results = pd.read_parquet(run_dir / "results.parquet")
    board = tables.leaderboard(results, n_resamples=300).set_index("model")
    assert board.loc["truth", "physics_score"] == pytest.approx(100.0)
    assert board.loc["second-take", "physics_score"] >= 95.0
    for baseline in ("copy-last", "constant-velocity"):
        assert board.loc[baseline, "physics_score"] < 20.0
        assert board.loc[baseline, "ci_low"] <= board.loc[baseline, "physics_score"]
    assert board["physics_score"].between(0.0, 100.0).all()
    # only anchors here: nothing is ranked
    assert set(board["role"]) == {"anchor"} and (board["rank"] == 0).all()
    assert {"score_test_id", "score_test_ood"} <= set(board.columns)


def synthetic(values_a, values_b, failed_b=(), extra=()):
    """Results of models a and b (plus the anchors) on one metric, horizon 1: truth 0,
    second take 0.01 (the floor), shuffled 1 (uninformative)."""
    rows = []
    n = len(values_a)
    models = [("a", values_a), ("b", values_b), ("truth", [0.0] * n),
              ("second-take", [0.01] * n), ("shuffled", [1.0] * n), *extra]
    for model, values in models:
        for rollout, value in enumerate(values):
            failure = "NaN" if model == "b" and rollout in failed_b else ""
            rows.append({"model": model, "scenario": "rigid/projectile", "split": "test_id",
                         "rollout": rollout, "metric": "position_rmse", "horizon": 1,
                         "value": np.nan if failure else value, "failure": failure})
    return pd.DataFrame(rows)


def test_bootstrap_of_the_aggregate_score():
    errors = [0.02, 0.05, 0.1, 0.2, 0.5]
    results = synthetic(errors, [0.1] * 5)
    ci = tables.bootstrap_aggregate(results, n_resamples=2000).set_index("model")
    board = tables.leaderboard(results, n_resamples=2000).set_index("model")
    per_rollout = [100 * np.log(1 / e) / np.log(100) for e in errors]
    assert board.loc["a", "physics_score"] == pytest.approx(np.mean(per_rollout))
    assert board.loc["b", "physics_score"] == pytest.approx(50.0)
    assert ci.loc["b", "ci_low"] == pytest.approx(50.0) == ci.loc["b", "ci_high"]
    low, high = ci.loc["a", "ci_low"], ci.loc["a", "ci_high"]
    assert min(per_rollout) <= low < np.mean(per_rollout) < high <= max(per_rollout)
    # a and b cover the same cells: ranked against each other; anchors are not ranked
    assert board.loc["a", "rank"] == 1 and board.loc["b", "rank"] == 2
    assert board.loc["truth", "rank"] == 0 and board.loc["truth", "role"] == "anchor"


def test_only_models_on_the_same_cells_are_ranked():
    results = synthetic([0.1] * 4, [0.2] * 4)
    other = results[results["model"] == "a"].assign(model="c", metric="position_ade")
    anchors = results[results["model"].isin(["truth", "second-take", "shuffled"])]
    results = pd.concat([results, other, anchors.assign(metric="position_ade")])
    board = tables.leaderboard(results, n_resamples=100).set_index("model")
    assert board.loc["a", "rank"] == 1 and board.loc["b", "rank"] == 2
    assert board.loc["c", "rank"] == 0 and "not ranked" in board.loc["c", "note"]


def test_paired_comparison_fills_failures_with_the_worst_value():
    from physground.metrics.stats import paired_test

    a = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    b = [0.2, 0.3, 0.5, 0.5, 0.7, 9.9]
    results = synthetic(a, b, failed_b=(5,))
    table = tables.paired_comparisons(results, [("a", "b")]).iloc[0]
    # b's failed rollout takes the worst value any model reached there (shuffled's 1.0)
    expected = paired_test(a, b[:5] + [1.0])
    assert table["difference"] == pytest.approx(expected.mean_difference)
    assert table["pvalue"] == pytest.approx(expected.pvalue)
    assert table["mean_b"] == pytest.approx(np.mean(b[:5] + [1.0]))


def test_conserved_energy_of_a_ballistic_flight(run_dir):
    from physground.reports.content import load_samples
    from physground.reports.plots import conserved_quantities

    truth, predictions = load_samples(run_dir, "rigid/projectile", "test_id",
                                      ["copy-last", "reference"])
    series = conserved_quantities(truth, predictions)
    energy = series["energy"]
    # rising ball, no contact in 10 frames: E = K + U is constant along the truth
    assert np.ptp(energy["truth"]) < 1e-3 * np.abs(energy["truth"]).mean()
    # copy-last repeats the last context state: the energy at frame C-1, every step
    np.testing.assert_allclose(energy["copy-last"], energy["truth"][truth["context"] - 1],
                               rtol=1e-9)
    np.testing.assert_allclose(energy["reference"], energy["truth"][truth["context"]:],
                               rtol=1e-2)
    assert len(energy["reference"]) == 6


def test_strip_layout_and_zero_error_of_a_perfect_prediction():
    from physground.reports.media import GAP, strip_frames

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(7, 12, 10, 3), dtype=np.uint8)
    truth = {"frames": frames, "states": {}, "context": 3, "dt": 0.1, "info": {}}
    perfect = {"frames": frames[3:], "states": {}, "info": {}}
    still = {"frames": np.repeat(frames[2:3], 4, axis=0), "states": {}, "info": {}}
    strip, _ = strip_frames(truth, {"perfect": perfect, "still": still})
    assert strip.shape == (4, 2 * 12 + GAP, 3 * (10 + GAP) - GAP, 3)
    np.testing.assert_array_equal(strip[:, :12, :10], frames[3:])  # truth tile
    error_perfect = strip[:, 12 + GAP:, 10 + GAP:2 * 10 + GAP]
    assert (error_perfect == error_perfect[0, 0, 0]).all()  # one colour: zero error
    error_still = strip[:, 12 + GAP:, 2 * (10 + GAP):]
    assert error_still.astype(int).sum() > error_perfect.astype(int).sum()


def test_comparing_two_runs(run_dir, tmp_path):
    other = run_suite(parse_suite(SUITE, "rep.toml"), root=tmp_path, executor=run_sequential,
                      progress=False, report=False)
    path = compare_runs(run_dir, other, tmp_path / "cmp")
    html = path.read_text()
    assert "Leaderboards" in html and "constant-velocity" in html
    assert "changed (p &lt; 0.05)" not in html  # same code, same data: nothing changed
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| reference | 100.0" in md and "| 0.0 |" in md
    different = dict(SUITE, name="other")
    third = run_suite(parse_suite(different, "other.toml"), root=tmp_path,
                      executor=run_sequential, progress=False, report=False)
    with pytest.raises(ValidationError, match="needs two runs of the same suite"):
        compare_runs(run_dir, third)


def test_report_cli_writes_and_compares(run_dir, tmp_path):
    import sys

    result = subprocess.run([sys.executable, "-m", "physground.cli", "report", str(run_dir),
                             "--compare", "reference:constant-velocity"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"report: {report_path(run_dir)}"
    assert "reference vs constant-velocity" in report_path(run_dir).read_text()


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed "
                    "(Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1200,1600", f"--screenshot={shot}",
         f"file://{report_path(run_dir).resolve()}"],
        capture_output=True, text=True, timeout=120)
    assert shot.exists(), result.stderr[-2000:]
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (1600, 1200, 3)
    assert image.std() > 20  # not blank
    colors = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colors) > 50  # text, tables and figures, not a flat error page
    header = image[:40, :400].reshape(-1, 3).mean(0)
    assert header[2] > header[0]  # the dark blue title bar was drawn


def test_state_strip_colours_dots_by_error():
    from physground.reports.media import TILE, _colormap, strip_frames

    t = np.linspace(0.0, 1.0, 8)
    pos = np.stack([t, np.zeros_like(t), 1.0 - t * t], axis=-1)[:, None, :]  # [T, 1, 3]
    truth = {"frames": None, "states": {"pos": pos}, "context": 3, "dt": 0.1,
             "info": {"camera": None}}
    perfect = {"frames": None, "states": {"pos": pos[3:]}, "info": {}}
    wrong = {"frames": None, "states": {"pos": pos[3:] + [0.5, 0.0, 0.0]}, "info": {}}
    strip, _ = strip_frames(truth, {"a-perfect": perfect, "b-wrong": wrong})
    assert strip.shape[0] == 5 and strip.shape[1] == 2 * TILE + 2
    error_row = strip[:, TILE + 2:]
    perfect_err = error_row[:, :, TILE + 2:2 * TILE + 2].reshape(-1, 3)
    wrong_err = error_row[:, :, 2 * (TILE + 2):].reshape(-1, 3)
    zero = _colormap(np.zeros(1))[0]
    background = np.array([18, 18, 18])
    assert ((perfect_err == zero).all(1) | (perfect_err == background).all(1)).all()
    assert (perfect_err == zero).all(1).any()  # the dot is drawn, in the zero-error colour
    assert wrong_err.astype(int).sum() > perfect_err.astype(int).sum()


def test_report_without_anchors_or_frames(tmp_path):
    suite = parse_suite({
        "name": "bare", "models": ["copy-last", "constant-velocity"],
        "metrics": ["position_rmse"], "defaults": {"rollouts": 2, "context": 3, "horizon": 3},
        "scenario": [{"name": "rigid/projectile",
                      "config": {"num_frames": 6, "render": False}}],
    }, "bare.toml")
    run = run_suite(suite, root=tmp_path, executor=run_sequential, progress=False)
    html = report_path(run).read_text()
    assert "anchor" in html  # the score anchors run without the reference model
    assert "position_rmse" in html and "data:image/gif;base64," in html  # state strips


def test_html_report_links_the_validation_page_of_its_root(run_dir):
    from physground.reports import write_report

    html = report_path(run_dir).read_text()
    assert "Ground-truth validation" in html and "physground validate-physics" in html
    page = run_dir.parent.parent / "validation" / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("<html>validation</html>")
    try:
        write_report(run_dir)
        html = report_path(run_dir).read_text()
        link = re.search(r"<a href='([^']*)'>validation page</a>", html).group(1)
        assert (report_path(run_dir).parent / link).resolve() == page.resolve()
    finally:
        page.unlink()
        write_report(run_dir)
