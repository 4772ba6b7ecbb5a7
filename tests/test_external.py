"""External predictions: exported context in, predictions on disk scored exactly like a
built-in model; every layout, length, shape and dtype mistake named in the error."""

from __future__ import annotations

import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from physground.benchmarks.executors import run_sequential
from physground.benchmarks.external import (
    ExternalSource,
    PredictionLayoutError,
    export_context,
)
from physground.benchmarks.runner import run_suite
from physground.errors import ValidationError
from physground.storage import Dataset
from physground.suite import parse_suite

HORIZON = 4
CONTEXT = 3
SUITE = {
    "name": "ext",
    "models": ["copy-last", "constant-velocity"],
    "metrics": ["position_rmse"],
    "defaults": {"rollouts": 2, "context": CONTEXT, "horizon": HORIZON},
    "scenario": [{"name": "rigid/projectile", "config": {"num_frames": 8, "image_size": 16}}],
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("ext")
    suite = parse_suite(SUITE, "ext.toml")
    index = export_context(suite, root, root / "context", progress=False)
    return suite, root, json.loads(index.read_text())


def truths(root, scenario, split):
    (path,) = (root / "data" / scenario).glob(f"{split}-n2-*")
    return {t.seed: t for t in Dataset(path)}


def write_cv_predictions(root, context_dir, index, out):
    """Constant-velocity predictions computed by an 'outside model' from the exported
    context states only: x(C-1+k) = x(C-1) + k (x(C-1) - x(C-2))."""
    for item in index["rollouts"]:
        folder = context_dir / item["scenario"].replace("/", "__") / item["split"] / \
            str(item["rollout"])
        with np.load(folder / "context.npz") as data:
            pos = data["pos"]
        steps = np.arange(1, item["frames_to_generate"] + 1).reshape(-1, 1, 1)
        pred = pos[-1] + steps * (pos[-1] - pos[-2])
        target = out / item["prediction_file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez(target, pos=pred)


def test_export_writes_context_frames_states_and_prompts(exported):
    suite, root, index = exported
    items = index["rollouts"]
    assert len(items) == 2 * 2  # rollouts x splits
    item = items[0]
    assert item["frames_to_generate"] == HORIZON and item["context_frames"] == CONTEXT
    assert item["fps"] == pytest.approx(30.0)
    assert "launch_speed" not in json.dumps(item) and "restitution" not in item["description"]
    folder = root / "context" / "rigid__projectile" / item["split"] / str(item["rollout"])
    truth = truths(root, "rigid/projectile", item["split"])[item["rollout"]]
    for i in range(CONTEXT):
        np.testing.assert_array_equal(iio.imread(folder / f"frame_{i:03d}.png"),
                                      truth.frames[i])
    # for viewing only: GIF encoders merge identical consecutive frames
    assert 1 <= iio.imread(folder / "context.gif", index=None).shape[0] <= CONTEXT
    with np.load(folder / "context.npz") as data:
        np.testing.assert_array_equal(data["pos"], truth.states["pos"][:CONTEXT])
    assert (root / "context" / "README.md").exists()


def test_external_predictions_score_like_the_builtin_model(exported, tmp_path):
    suite, root, index = exported
    preds = tmp_path / "outside-cv"
    write_cv_predictions(root, root / "context", index, preds)
    run_dir = run_suite(suite, root=root, executor=run_sequential, progress=False,
                        report=False, external=[ExternalSource.from_directory(preds)])
    results = pd.read_parquet(run_dir / "results.parquet")
    ours = results[results["model"] == "constant-velocity"].reset_index(drop=True)
    theirs = results[results["model"] == "outside-cv"].reset_index(drop=True)
    assert len(theirs) == 2 * 2 * HORIZON and (theirs["failure"] == "").all()
    # stored truth is float32 and so are the outside model's predictions: float32 agreement
    np.testing.assert_allclose(theirs["value"], ours["value"], rtol=2e-6, atol=1e-12)
    # the run remembers its external sources: a plain rerun keeps their rows
    again = pd.read_parquet(run_suite(suite, root=root, executor=run_sequential,
                                      progress=False, report=False) / "results.parquet")
    assert len(again[again["model"] == "outside-cv"]) == len(theirs)


def test_perfect_frames_and_states_have_zero_error(exported, tmp_path):
    suite, root, index = exported
    preds = tmp_path / "oracle"
    for item in index["rollouts"]:
        truth = truths(root, item["scenario"], item["split"])[item["rollout"]]
        target = preds / item["prediction_file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        window = truth.target(CONTEXT, HORIZON)
        np.savez(target, frames=window.frames, pos=window.states["pos"])
    run_dir = run_suite(suite, root=root, executor=run_sequential, progress=False,
                        report=False, models=["copy-last"],
                        external=[ExternalSource.from_directory(preds, name="oracle")])
    results = pd.read_parquet(run_dir / "results.parquet")
    oracle = results[results["model"] == "oracle"]
    assert len(oracle) == 2 * 2 * HORIZON
    np.testing.assert_allclose(oracle["value"], 0.0, atol=1e-15)


def _one_bad(root, index, tmp_path, name, arrays, suffix=".npz"):
    """Good predictions everywhere except one file, which gets ``arrays``."""
    preds = tmp_path / name
    write_cv_predictions(root, root / "context", index, preds)
    first = preds / index["rollouts"][0]["prediction_file"]
    first.unlink()
    bad = first.with_suffix(suffix)
    if suffix == ".npz":
        np.savez(bad, **arrays)
    else:
        iio.imwrite(bad, arrays["frames"], extension=suffix, duration=1000 / 30, loop=0)
    return preds, bad


@pytest.mark.parametrize(("arrays", "fragment"), [
    ({"pos": np.zeros((HORIZON + 1, 1, 3))}, "array 'pos' has 5 frames, expected 4"),
    ({"pos": np.zeros((HORIZON, 2, 3))}, "array 'pos' has shape [4, 2, 3], expected [4, 1, 3]"),
    ({"pos": np.zeros((HORIZON, 1, 3), dtype=np.int64)}, "array 'pos' has dtype int64"),
    ({"frames": np.zeros((HORIZON, 16, 16, 3), np.float32)},
     "array 'frames' has dtype float32, expected uint8"),
    ({"frames": np.zeros((HORIZON, 8, 8), np.uint8)},
     "array 'frames' has shape [4, 8, 8], expected [frames, height, width, 3]"),
    ({"frames": np.zeros((2, 16, 16, 3), np.uint8)},
     "'frames' has 2 frames after the context, expected 4"),
    ({"position": np.zeros((HORIZON, 1, 3))}, "unknown array 'position' (did you mean 'pos'"),
])
def test_wrong_arrays_are_named(exported, tmp_path, arrays, fragment):
    suite, root, index = exported
    preds, bad = _one_bad(root, index, tmp_path, "bad", arrays)
    with pytest.raises(PredictionLayoutError) as err:
        run_suite(suite, root=root, executor=run_sequential, progress=False, report=False,
                  models=[], external=[ExternalSource.from_directory(preds)])
    assert str(bad) in str(err.value) and fragment in str(err.value)


def test_external_name_must_differ_from_suite_models(exported, tmp_path):
    suite, root, index = exported
    preds = tmp_path / "copy-last"
    write_cv_predictions(root, root / "context", index, preds)
    with pytest.raises(ValidationError, match="named 'copy-last', a model of this suite"):
        run_suite(suite, root=root, executor=run_sequential, progress=False, report=False,
                  external=[ExternalSource.from_directory(preds)])


def test_wrong_layout_is_named(exported, tmp_path):
    suite, root, index = exported
    preds = tmp_path / "layout"
    write_cv_predictions(root, root / "context", index, preds)
    (preds / "rigid__projectile").rename(preds / "rigid__projectil")
    with pytest.raises(PredictionLayoutError, match="did you mean 'rigid__projectile'"):
        run_suite(suite, root=root, executor=run_sequential, progress=False, report=False,
                  external=[ExternalSource.from_directory(preds)])
    (preds / "rigid__projectil").rename(preds / "rigid__projectile")
    (preds / "rigid__projectile" / "test_id").rename(preds / "rigid__projectile" / "test-id")
    with pytest.raises(PredictionLayoutError, match="expected a split folder"):
        run_suite(suite, root=root, executor=run_sequential, progress=False, report=False,
                  external=[ExternalSource.from_directory(preds)])


def test_unknown_and_missing_rollouts(exported, tmp_path):
    suite, root, index = exported
    preds = tmp_path / "missing"
    write_cv_predictions(root, root / "context", index, preds)
    first = preds / index["rollouts"][0]["prediction_file"]
    first.rename(first.with_name("12345.npz"))
    with pytest.raises(PredictionLayoutError, match="'12345' is not a rollout of this split"):
        run_suite(suite, root=root, executor=run_sequential, progress=False, report=False,
                  models=[], external=[ExternalSource.from_directory(preds)])
    first.with_name("12345.npz").unlink()
    with pytest.raises(PredictionLayoutError, match="no prediction for 1 of 2 rollouts"):
        run_suite(suite, root=root, executor=run_sequential, progress=False, report=False,
                  models=[], external=[ExternalSource.from_directory(preds)])
    run_dir = run_suite(suite, root=root, executor=run_sequential, progress=False,
                        report=False, models=[],
                        external=[ExternalSource.from_directory(preds, allow_missing=True)])
    results = pd.read_parquet(run_dir / "results.parquet")
    results = results[results["model"] == "missing"]
    failed = results[results["failure"] != ""]
    assert set(failed["rollout"]) == {index["rollouts"][0]["rollout"]}
    assert failed["failure"].str.contains("no prediction file").all()
    assert len(results) == 2 * 2 * HORIZON  # the missing rollout is counted, not dropped


def test_nan_is_scored_as_failure(exported, tmp_path):
    suite, root, index = exported
    pred = np.zeros((HORIZON, 1, 3))
    pred[2] = np.nan
    preds, _ = _one_bad(root, index, tmp_path, "nan", {"pos": pred})
    run_dir = run_suite(suite, root=root, executor=run_sequential, progress=False,
                        report=False, models=[],
                        external=[ExternalSource.from_directory(preds, name="nan-model")])
    results = pd.read_parquet(run_dir / "results.parquet")
    results = results[results["model"] == "nan-model"]
    bad = results[results["rollout"] == index["rollouts"][0]["rollout"]]
    bad = bad[bad["split"] == index["rollouts"][0]["split"]]
    assert len(bad) == HORIZON and bad["value"].isna().all()
    assert bad["failure"].str.contains("NaN or Inf").all()
    assert (results.drop(bad.index)["failure"] == "").all()


def test_video_files_are_read_as_frames(exported, tmp_path):
    suite, root, index = exported
    item = index["rollouts"][0]
    truth = truths(root, item["scenario"], item["split"])[item["rollout"]]
    frames = truth.target(CONTEXT, HORIZON).frames
    preds, bad = _one_bad(root, index, tmp_path, "gif", {"frames": frames}, suffix=".gif")
    from physground.benchmarks.external import read_prediction

    prediction = read_prediction(bad, truth, "gif", CONTEXT, HORIZON)
    assert prediction.frames.shape == frames.shape and prediction.frames.dtype == np.uint8
    # GIF palettes are lossy, but a flat-coloured render survives almost unchanged
    assert np.abs(prediction.frames.astype(int) - frames.astype(int)).mean() < 8


def test_cli_reports_a_bad_prediction_on_one_line(exported, tmp_path):
    suite, root, index = exported
    preds, bad = _one_bad(root, index, tmp_path, "cli",
                          {"pos": np.zeros((HORIZON, 1, 3), np.float32)[:2]})
    suite_file = tmp_path / "ext.toml"
    suite_file.write_text(
        'name = "ext"\nmodels = ["copy-last", "constant-velocity"]\n'
        'metrics = ["position_rmse"]\n[defaults]\nrollouts = 2\ncontext = 3\nhorizon = 4\n'
        '[[scenario]]\nname = "rigid/projectile"\n'
        'config = { num_frames = 8, image_size = 16 }\n')
    result = subprocess.run(
        [sys.executable, "-m", "physground.cli", "evaluate", "--suite", str(suite_file),
         "--root", str(root), "--predictions", str(preds), "--executor", "sequential",
         "--quiet", "--model", "copy-last"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(bad) in lines[0] and "array 'pos' has 2 frames, expected 4" in lines[0]


def test_cli_export_context(tmp_path):
    suite_file = tmp_path / "one.toml"
    suite_file.write_text(
        'name = "one"\nmodels = ["copy-last"]\n[defaults]\nrollouts = 1\ncontext = 2\n'
        'horizon = 2\nsplits = ["test_ood"]\n[[scenario]]\nname = "rigid/projectile"\n'
        'config = { num_frames = 4, image_size = 16 }\n')
    result = subprocess.run(
        [sys.executable, "-m", "physground.cli", "export-context", "--suite", str(suite_file),
         "--out", str(tmp_path / "ctx"), "--root", str(tmp_path / "root"), "--quiet"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"context: {tmp_path / 'ctx' / 'index.json'}"
    (item,) = json.loads((tmp_path / "ctx" / "index.json").read_text())["rollouts"]
    assert item["split"] == "test_ood" and item["frames_to_generate"] == 2


def test_evaluate_writes_a_run_directory_of_its_own(exported, tmp_path):
    """`evaluate` never rewrites the suite's run: its results go to a directory named from
    the predictions' content hash; the same predictions reuse it, other ones get another."""
    from physground.benchmarks.runner import run_directory
    from physground.cli import _run
    from physground.suite import load_suite

    suite, root, index = exported
    suite_file = tmp_path / "ext.toml"
    suite_file.write_text(
        'name = "ext"\nmodels = ["copy-last", "constant-velocity"]\n'
        'metrics = ["position_rmse"]\n[defaults]\nrollouts = 2\ncontext = 3\nhorizon = 4\n'
        '[[scenario]]\nname = "rigid/projectile"\n'
        'config = { num_frames = 8, image_size = 16 }\n')
    base = run_suite(load_suite(str(suite_file)), root=root, executor=run_sequential,
                     progress=False, report=False)
    assert base == run_directory(load_suite(str(suite_file)), root, "cpu")
    before = {p: p.read_bytes() for p in base.rglob("*") if p.is_file()}
    preds = tmp_path / "outside-cv"
    write_cv_predictions(root, root / "context", index, preds)

    def evaluate() -> object:
        return _run(str(suite_file), root, "cpu", True, "sequential", None, None,
                    report=False, external=[ExternalSource.from_directory(preds)],
                    evaluation=True)

    first = evaluate()
    assert first != base and first.name.startswith(base.name + "-eval-")
    assert {p: p.read_bytes() for p in base.rglob("*") if p.is_file()} == before
    results = pd.read_parquet(first / "results.parquet")
    assert {"outside-cv", "copy-last", "constant-velocity"} <= set(results["model"])
    ours = pd.read_parquet(base / "results.parquet")
    np.testing.assert_array_equal(  # the suite's finished tasks are taken over, not redone
        results[results["model"] == "copy-last"]["value"],
        ours[ours["model"] == "copy-last"]["value"])
    for task in (base / "tasks").glob("[!e]*.parquet"):  # models and anchors
        assert (first / "tasks" / task.name).read_bytes() == task.read_bytes()
    table = (first / "results.parquet").read_bytes()
    assert evaluate() == first and (first / "results.parquet").read_bytes() == table
    assert not [p for p in root.rglob(".*") if p.name.endswith((".tmp", ".old"))]
    changed = next(preds.rglob("*.npz"))
    with np.load(changed) as data:
        np.savez(changed, pos=data["pos"] + 0.5)
    second = evaluate()
    assert second not in (first, base)
    assert (first / "results.parquet").read_bytes() == table
    assert {p: p.read_bytes() for p in base.rglob("*") if p.is_file()} == before
