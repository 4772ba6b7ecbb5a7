"""Predictions of external models (any video or state model), scored like ours.

Export what an outside model needs with ``physground export-context --suite quick --out
CONTEXT_DIR``; run the model; put its predictions in a directory PRED_DIR laid out as
below; score them with ``physground evaluate --suite quick --predictions PRED_DIR``.

Context layout (written by `export_context`)::

    CONTEXT_DIR/index.json                              every rollout, with its prompt
    CONTEXT_DIR/<scenario>/<split>/<rollout>/prompt.json
        scenario, split, rollout, description (no parameter values), prompt, fps,
        context_frames, frames_to_generate, context_duration_s, duration_s, image_height,
        image_width, aspect, resolution ("WIDTHxHEIGHT") and resolution_preset (the
        suite's `physground.schema.RESOLUTION_PRESETS` name, or null), camera
        (intrinsics, extrinsics), prediction_file
    CONTEXT_DIR/manifest.csv                            one row per rollout (as Physics-IQ's
                                                        descriptions.csv)
    CONTEXT_DIR/<scenario>/<split>/<rollout>/frame_000.png ...   the context frames (exact)
    CONTEXT_DIR/<scenario>/<split>/<rollout>/context.mp4         H.264 at the exact fps
    CONTEXT_DIR/<scenario>/<split>/<rollout>/first_frame.png     last context frame (I2V)
    CONTEXT_DIR/<scenario>/<split>/<rollout>/context.gif         an animation, for viewing
    CONTEXT_DIR/<scenario>/<split>/<rollout>/context.npz         the observation, exactly
        what our own models are given (`physground.observation.save_observation`): dt,
        context, track, the context states under their names (SI units, world
        coordinates), frames, masks, camera__intrinsics/extrinsics/size and
        static__<name> for the statics the scenario declares given. Never the
        parameters, the simulator's meta, a latent static or a frame after the context.

Prediction layout (read by `ExternalTask`)::

    PRED_DIR/model.json                                 optional: {"name": "my-model"}
    PRED_DIR/<scenario>/<split>/<rollout>.npz           frames and/or states
    PRED_DIR/<scenario>/<split>/<rollout>.npy           frames only
    PRED_DIR/<scenario>/<split>/<rollout>.mp4|.webm|.gif|.webp|.mkv|.mov   frames only
    PRED_DIR/<scenario>/<split>/<rollout>/*.png         frames only, in name order

Frames may have any resolution, aspect, fps and length covering the horizon: they are
resampled to the scoring grid by the policy of `physground.benchmarks.video_io`
(area resize; nearest container timestamp; extra frames dropped; context frames at the
start declared in model.json as ``"context_frames": C`` or detected), recorded in the run.

``<scenario>`` is the registry name with ``/`` replaced by ``__`` (``rigid__projectile``),
``<split>`` is ``test_id`` or ``test_ood`` and ``<rollout>`` the rollout's seed (as in the
context export and the results table). A prediction holds exactly the ``frames_to_generate``
frames that follow the context:

- ``frames``: uint8 [H, h, w, 3] (RGB; an alpha channel is dropped) with the context's
  image size;
- states, under the ground truth's state names (rigid ``pos [H,B,3]``, ``quat``, ``vel``,
  ``angvel``; cloth ``x [H,N,3]``, ``v``; smoke ``density [H,h,w]``, ``velocity``; SPH
  ``x``, ``v``), floating point, SI units, world coordinates.

A model is scored on the metrics of what it predicts (read from its first file per
scenario and split): frames give the pixel metrics and the state metrics whose positions
can come from object masks; states give the state metrics.

A wrong layout (unknown scenario or split folder, a file name that is no rollout of the
suite, two files for one rollout, a missing rollout), a wrong length, shape or dtype raise
`PredictionLayoutError` naming the file and array. NaN or Inf values are not an error: that
rollout is scored as a failure and reported.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from physground.atomic import write_json_atomic, write_text_atomic
from physground.benchmarks.delivery import Delivery, DeliveryUnavailable
from physground.benchmarks.video_io import (
    ARRAY_SUFFIXES,
    RESAMPLE_POLICY,
    VIDEO_SUFFIXES,
    PredictionFileError,
    PredictionLayoutError,
    PredictionLayoutErrors,
    check_array_file,
    check_path,
    decode_video,
    read_png_folder,
    resample,
    write_h264,
)
from physground.errors import PhysgroundError, ValidationError, did_you_mean
from physground.provenance import content_hash, file_sha256
from physground.rollout import Prediction, Rollout
from physground.schema import RESOLUTION_PRESETS

PREDICTION_SUFFIXES = ARRAY_SUFFIXES + VIDEO_SUFFIXES  # or a folder <rollout>/ of PNGs
SOURCES_FILE = "external.json"
DELIVERED_ANCHORS_VERSION = 1  # part of the task key: rescored when the anchors change


def folder_name(scenario: str) -> str:
    """``rigid/projectile`` -> ``rigid__projectile`` (one folder level per scenario)."""
    return scenario.replace("/", "__")


@dataclass(frozen=True, kw_only=True)
class ExternalSource:
    """A directory of predictions of one outside model, scored under ``name``."""

    name: str
    directory: str
    allow_missing: bool = False  # a missing rollout is scored as a failure, not an error
    follow_symlinks: bool = False  # symlinks may point outside the directory
    context_frames: int | None = None  # frames of context each prediction file starts with

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValidationError(f"external model name '{self.name}' must be non-empty "
                                  "and contain no '/'")

    @classmethod
    def from_directory(cls, directory: Path, name: str | None = None,
                       allow_missing: bool = False, follow_symlinks: bool = False
                       ) -> ExternalSource:
        """A source for ``directory``; the name comes from ``name``, else ``model.json``,
        else the directory's name."""
        directory = Path(directory).resolve()
        if not directory.is_dir():
            raise PredictionLayoutError(f"predictions directory {directory} does not exist")
        context_frames = None
        if (directory / "model.json").exists():
            try:
                info = json.loads((directory / "model.json").read_text())
                name = name if name is not None else str(info["name"])
                context_frames = info.get("context_frames")
                if context_frames is not None and (
                        not isinstance(context_frames, int) or context_frames < 0):
                    raise TypeError
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise PredictionLayoutError(
                    f"{directory / 'model.json'}: expected a JSON object with a 'name' and "
                    "optionally 'context_frames' (an integer >= 0)"
                ) from None
        return cls(name=name or directory.name, directory=str(directory),
                   allow_missing=allow_missing, follow_symlinks=follow_symlinks,
                   context_frames=context_frames)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "directory": self.directory,
                "allow_missing": self.allow_missing, "follow_symlinks": self.follow_symlinks,
                "context_frames": self.context_frames, "resample_policy": RESAMPLE_POLICY}

    def modalities(self, scenario: str, split: str) -> frozenset[str]:
        """What this model predicts for (scenario, split), read from its first prediction
        file: ``pixels`` for frames, ``state`` for state arrays (both when unknown)."""
        folder = Path(self.directory) / folder_name(scenario) / split
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in PREDICTION_SUFFIXES
                       or p.is_dir()) if folder.is_dir() else []
        if not files:
            return frozenset({"state", "pixels"})
        if files[0].suffix.lower() != ".npz":
            return frozenset({"pixels"})
        try:
            check_array_file(files[0])
            with np.load(files[0], allow_pickle=False) as data:
                keys = set(data.files)
        except (OSError, ValueError):
            return frozenset({"state", "pixels"})  # the task reports the unreadable file
        out = set()
        if "frames" in keys:
            out.add("pixels")
        if keys - {"frames"}:
            out.add("state")
        return frozenset(out or {"state", "pixels"})


def load_sources(run_dir: Path) -> dict[str, ExternalSource]:
    """External sources remembered by a run (those whose directory still exists)."""
    path = Path(run_dir) / SOURCES_FILE
    if not path.exists():
        return {}
    out = {}
    for name, data in json.loads(path.read_text()).items():
        if not Path(data["directory"]).is_dir():
            warnings.warn(f"external predictions '{name}' ({data['directory']}) no longer "
                          "exist; they are left out of this run's results", stacklevel=2)
            continue
        fields = {f.name for f in dataclasses.fields(ExternalSource)}
        out[name] = ExternalSource(**{k: v for k, v in data.items() if k in fields})
    return out


def save_sources(run_dir: Path, sources: dict[str, ExternalSource]) -> None:
    if sources or (Path(run_dir) / SOURCES_FILE).exists():
        write_json_atomic(Path(run_dir) / SOURCES_FILE,
                          {k: s.describe() for k, s in sorted(sources.items())})


def check_layout(directory: Path, scenarios: Iterable[tuple[str, str]]) -> None:
    """Every folder under ``directory`` must be a (scenario, split) of the suite."""
    directory = Path(directory)
    wanted: dict[str, set[str]] = {}
    for scenario, split in scenarios:
        wanted.setdefault(folder_name(scenario), set()).add(split)
    for child in sorted(directory.iterdir()):
        if child.name == "model.json" or child.name.startswith("."):
            continue
        if not child.is_dir() or child.name not in wanted:
            raise PredictionLayoutError(
                f"{child}: expected a scenario folder, one of {sorted(wanted)}"
                f"{did_you_mean(child.name, wanted)} ('/' in names is written '__')"
            )
        for split_dir in sorted(child.iterdir()):
            if split_dir.name.startswith("."):
                continue
            if not split_dir.is_dir() or split_dir.name not in wanted[child.name]:
                raise PredictionLayoutError(
                    f"{split_dir}: expected a split folder, one of "
                    f"{sorted(wanted[child.name])}"
                    f"{did_you_mean(split_dir.name, wanted[child.name])}"
                )


def prediction_files(folder: Path, seeds: list[int], allow_missing: bool
                     ) -> dict[int, Path | None]:
    """The prediction file of each rollout seed in ``folder`` (None: missing)."""
    folder = Path(folder)
    found: dict[int, Path] = {}
    known = {str(s) for s in seeds}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.name.startswith("."):
                continue
            if path.suffix.lower() not in PREDICTION_SUFFIXES and not path.is_dir():
                raise PredictionLayoutError(
                    f"{path}: expected <rollout>{{{','.join(PREDICTION_SUFFIXES)}}} or a "
                    "folder <rollout>/ of PNG frames"
                )
            if path.stem not in known:
                raise PredictionLayoutError(
                    f"{path}: '{path.stem}' is not a rollout of this split; expected one of "
                    f"{sorted(known, key=int)[:8]}{' ...' if len(known) > 8 else ''}"
                )
            seed = int(path.stem)
            if seed in found:
                raise PredictionLayoutError(
                    f"{path}: rollout {seed} also has {found[seed].name}; keep one file"
                )
            found[seed] = path
    missing = [s for s in seeds if s not in found]
    if missing and not allow_missing:
        raise PredictionLayoutError(
            f"{folder}: no prediction for {len(missing)} of {len(seeds)} rollouts (first "
            f"missing: {missing[0]}.npz); pass --allow-missing to score them as failures"
        )
    return {s: found.get(s) for s in seeds}


def read_frames(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Frames [T, h, w, 3] of a video file or PNG folder and their times (s) or None."""
    if path.is_dir():
        return read_png_folder(path), None
    return decode_video(path)


def read_prediction(path: Path, truth: Rollout, model: str, context: int,
                    horizon: int, *, root: Path | None = None, follow_symlinks: bool = False,
                    context_frames: int | None = None) -> Prediction:
    """Read and check one prediction file against its ground truth rollout; frames are
    resampled to the truth's grid (`physground.benchmarks.video_io.resample`)."""
    check_path(path, path.parent if root is None else root, follow_symlinks)
    suffix = path.suffix.lower()
    arrays: dict[str, np.ndarray]
    times = None
    if suffix in ARRAY_SUFFIXES and not path.is_dir():
        check_array_file(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = ({k: data[k] for k in data.files} if suffix == ".npz"
                          else {"frames": np.asarray(data)})
        except (OSError, ValueError, EOFError) as err:
            raise PredictionLayoutError(f"{path}: not a readable {suffix} file ({err})"
                                        ) from None
    else:
        frames, times = read_frames(path)
        arrays = {"frames": frames}
    if not arrays:
        raise PredictionLayoutError(f"{path}: empty; expected 'frames' and/or states "
                                    f"{sorted(truth.states)}")
    allowed = {"frames", *truth.states}
    for key in arrays:
        if key not in allowed:
            raise PredictionLayoutError(
                f"{path}: unknown array '{key}'{did_you_mean(key, allowed)}; expected "
                f"'frames' and/or states {sorted(truth.states)}"
            )
    frames = arrays.pop("frames", None)
    if frames is not None:
        frames = _check_frames(path, frames, truth, horizon, context, times, context_frames)
    states = {k: _check_state(path, k, v, truth, context, horizon) for k, v in arrays.items()}
    return Prediction.for_rollout(truth, model=model, context=context, horizon=horizon,
                                  states=states, frames=frames)


def _check_frames(path: Path, frames: np.ndarray, truth: Rollout, horizon: int, context: int,
                  times: np.ndarray | None, context_frames: int | None) -> np.ndarray:
    if truth.frames is None:
        raise PredictionLayoutError(
            f"{path}: has 'frames' but {truth.scenario} is not rendered in this suite "
            "(config render = false); predict states instead"
        )
    if frames.dtype != np.uint8:
        raise PredictionLayoutError(
            f"{path}: array 'frames' has dtype {frames.dtype}, expected uint8 (0..255)")
    if frames.ndim == 4 and frames.shape[-1] == 4:
        frames = frames[..., :3]  # drop alpha
    if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise PredictionLayoutError(
            f"{path}: array 'frames' has shape {list(frames.shape)}, expected "
            f"[frames, height, width, 3] (RGB; {horizon} frames of "
            f"{truth.frames.shape[1]}x{truth.frames.shape[2]} are scored, other sizes and "
            "lengths are resampled)"
        )
    h, w = truth.frames.shape[1:3]
    if frames.shape == (horizon, h, w, 3) and times is None and not context_frames:
        return np.ascontiguousarray(frames)
    out, _ = resample(frames, times, dt=truth.dt, horizon=horizon, height=h, width=w,
                      context=truth.frames[:context], context_frames=context_frames,
                      where=str(path))
    return out


def _check_state(path: Path, name: str, value: np.ndarray, truth: Rollout, context: int,
                 horizon: int) -> np.ndarray:
    if not np.issubdtype(value.dtype, np.floating):
        raise PredictionLayoutError(
            f"{path}: array '{name}' has dtype {value.dtype}, expected floating point")
    want = (horizon, *np.shape(truth.states[name])[1:])
    if value.shape != want:
        what = "frames" if value.ndim == len(want) and value.shape[1:] == want[1:] else "shape"
        detail = (f"{value.shape[0]} frames, expected {horizon} (frames_to_generate)"
                  if what == "frames" else f"shape {list(value.shape)}, expected {list(want)}")
        raise PredictionLayoutError(f"{path}: array '{name}' has {detail}")
    return value.astype(np.float64, copy=False)


def folder_digest(folder: Path) -> str:
    """Content hash of a predictions folder (file names and sha256), or 'missing'."""
    folder = Path(folder)
    if not folder.is_dir():
        return "missing"
    return content_hash({p.name: file_sha256(p) for p in sorted(folder.iterdir())
                         if p.is_file() and not p.name.startswith(".")})


def predictions_digest(source: ExternalSource, suite: Any) -> str:
    """Content hash of what ``source`` predicts for ``suite``: every file (PNG folders
    included) under the suite's (scenario, split) folders, by relative path and sha256,
    plus ``model.json``. Names `physground evaluate`'s own run directory."""
    root = Path(source.directory)
    files: dict[str, str] = {}
    if (root / "model.json").is_file():
        files["model.json"] = file_sha256(root / "model.json")
    for entry in suite.scenarios:
        for split in entry.splits:
            folder = root / folder_name(entry.name) / split
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.name.startswith("."):
                    files[path.relative_to(root).as_posix()] = file_sha256(path)
    return content_hash(files)


@dataclass(frozen=True, kw_only=True)
class ExternalTask:
    """Score one external source's predictions on one (scenario, split) dataset."""

    source: dict[str, Any]  # ExternalSource.describe()
    scenario: str
    split: str
    dataset: str
    dataset_hash: str
    context: int
    horizon: int
    metrics: tuple[str, ...]
    samples_dir: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the scenario's (second take)

    @property
    def model(self) -> str:
        return str(self.source["name"])

    def folder(self) -> Path:
        return Path(self.source["directory"]) / folder_name(self.scenario) / self.split

    def key(self) -> str:
        return "external-" + content_hash({
            "name": self.model, "allow_missing": self.source.get("allow_missing", False),
            "scenario": self.scenario, "split": self.split, "dataset_hash": self.dataset_hash,
            "context": self.context, "horizon": self.horizon, "metrics": self.metrics,
            "digest": folder_digest(self.folder()), "config": self.config,
            "anchors": DELIVERED_ANCHORS_VERSION,
        })[:16]

    def label(self) -> str:
        return f"{self.model} (external) on {self.scenario} {self.split}"

    def run(self) -> pd.DataFrame:
        from physground.benchmarks.anchors import delivered_anchor_results, no_physics_anchors
        from physground.benchmarks.tasks import score
        from physground.storage import Dataset

        truths = Dataset(Path(self.dataset)).rollouts()
        files = prediction_files(self.folder(), [t.seed for t in truths],
                                 bool(self.source.get("allow_missing", False)))
        predictions = []
        for truth in truths:
            path = files[truth.seed]
            if path is None:
                predictions.append(Prediction.for_rollout(
                    truth, model=self.model, context=self.context, horizon=self.horizon,
                    failure=f"no prediction file for rollout {truth.seed} in {self.folder()}"))
            else:
                predictions.append(read_prediction(
                    path, truth, self.model, self.context, self.horizon,
                    root=Path(self.source["directory"]),
                    follow_symlinks=bool(self.source.get("follow_symlinks", False)),
                    context_frames=self.source.get("context_frames")))
        results = score(self.model, truths, predictions, self.metrics, self.samples_dir)
        deliveries = [prediction_delivery(files[t.seed], p)
                      for t, p in zip(truths, predictions, strict=True)]
        if all(d is None for d in deliveries):
            return results
        anchors = no_physics_anchors(truths, self.context, self.horizon, dict(self.config))
        delivered = delivered_anchor_results(self.model, truths, deliveries, anchors,
                                             self.metrics)
        return pd.concat([results, delivered], ignore_index=True)


def prediction_delivery(path: Path | None, prediction: Prediction) -> Delivery | None:
    """The delivery of a scored frames-only prediction file (lossless at the scoring size
    included: its anchors are then measured from frames alone, as it is), or None when it
    needs none (failed, or it carries states)."""
    if path is None or prediction.failure or prediction.states or prediction.frames is None:
        return None
    try:
        return Delivery.of(path)
    except (PredictionFileError, DeliveryUnavailable, OSError, ValueError, KeyError):
        return None


def check_source(source: ExternalSource, suite: Any) -> None:
    """Check the folder layout of ``source`` against ``suite`` before any work starts."""
    pairs = [(e.name, s) for e in suite.scenarios for s in e.splits]
    check_layout(Path(source.directory), pairs)
    if not source.allow_missing:
        for scenario, split in pairs:
            folder = Path(source.directory) / folder_name(scenario) / split
            if not folder.is_dir():
                raise PredictionLayoutError(
                    f"{folder}: missing (the suite scores {scenario} {split}); pass "
                    "--allow-missing to score absent predictions as failures"
                )
    errors = [problem for scenario, split in pairs
              for problem in file_problems(source, folder_name(scenario), split)]
    if errors:  # every file's problem at once, one line each in the CLI
        raise PredictionLayoutErrors(errors)


def file_problems(source: ExternalSource, scenario_folder: str, split: str) -> list[str]:
    """One line per prediction file in the folder that cannot be read safely: not a
    regular file, a symlink leaving the directory, empty, over the size bound from its
    headers, or undecodable (checked before any scoring)."""
    folder = Path(source.directory) / scenario_folder / split
    if not folder.is_dir():
        return []
    problems = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        try:
            check_path(path, Path(source.directory), source.follow_symlinks)
            suffix = path.suffix.lower()
            if path.is_dir():
                read_png_folder(path)
            elif suffix in ARRAY_SUFFIXES:
                check_array_file(path)
                with np.load(path, allow_pickle=False) as data:
                    if suffix == ".npz":
                        for key in data.files:
                            data[key]  # noqa: B018 - decompress and check every member
            elif suffix in VIDEO_SUFFIXES:
                decode_video(path)
        except ValidationError as err:
            problems.append(str(err))
        except (OSError, ValueError, EOFError) as err:
            problems.append(f"{path}: unreadable ({err})")
    return problems


# ------------------------------------------------------------------------ context export


def scenario_description(scenario: str) -> str:
    """A description of the scene without parameter values: the scenario's ``description``
    attribute or the first paragraph of its class docstring."""
    from physground.scenario import SCENARIOS

    factory = SCENARIOS.get(scenario)
    text = getattr(factory, "description", None) or (factory.__doc__ or "").strip()
    return " ".join(text.split("\n\n")[0].split()) or scenario


def export_context(suite: Any, root: Path, out: Path, *, progress: bool = True) -> Path:
    """Write the context frames, states and prompts of every test rollout of ``suite``.

    Ground truth is generated or reused under ``root/data`` exactly as ``physground run``
    does, so the rollouts are the ones ``evaluate --predictions`` scores against.
    Returns the path of ``index.json``.
    """
    import imageio.v3 as iio

    from physground.benchmarks.runner import dataset_spec
    from physground.observation import save_observation
    from physground.storage import generate_dataset

    out = Path(out)
    entries = []
    for entry in suite.scenarios:
        description = scenario_description(entry.name)
        for split in entry.splits:
            dataset = generate_dataset(dataset_spec(entry, suite, split), Path(root) / "data",
                                       progress=progress)
            for truth in dataset:
                folder = out / folder_name(entry.name) / split / str(truth.seed)
                folder.mkdir(parents=True, exist_ok=True)
                context = truth.context(entry.context)
                fps = 1.0 / truth.dt
                prompt = {
                    "scenario": entry.name, "split": split, "rollout": truth.seed,
                    "description": description,
                    "prompt": (f"{description} Continue this video for "
                               f"{entry.horizon} more frames at {fps:.4g} frames per "
                               "second; the camera does not move."),
                    "fps": fps, "dt": truth.dt, "context_frames": entry.context,
                    "frames_to_generate": entry.horizon,
                    "context_duration_s": entry.context * truth.dt,
                    "duration_s": entry.horizon * truth.dt,
                    "image_height": None, "image_width": None, "aspect": None,
                    "resolution": None, "resolution_preset": None,
                    "camera": _camera_json(context.camera),
                    "states": {k: list(np.shape(v)[1:]) for k, v in context.states.items()},
                    "prediction_file": f"{folder_name(entry.name)}/{split}/{truth.seed}.npz",
                }
                if context.frames is not None:
                    prompt["image_height"], prompt["image_width"] = context.frames.shape[1:3]
                    h, w = context.frames.shape[1:3]
                    prompt["aspect"] = f"{w // math.gcd(w, h)}:{h // math.gcd(w, h)}"
                    prompt["resolution"] = f"{w}x{h}"
                    prompt["resolution_preset"] = next(
                        (k for k, v in RESOLUTION_PRESETS.items() if v == (w, h)), None)
                    for i, frame in enumerate(context.frames):
                        iio.imwrite(folder / f"frame_{i:03d}.png", frame)
                    # the image an image-to-video model continues from: the last context frame
                    iio.imwrite(folder / "first_frame.png", context.frames[-1])
                    write_h264(folder / "context.mp4", context.frames, fps)
                    iio.imwrite(folder / "context.gif", context.frames,
                                duration=1000.0 * truth.dt, loop=0)
                save_observation(folder / "context.npz", context)
                write_json_atomic(folder / "prompt.json", prompt)
                entries.append(prompt)
    if not entries:
        raise PhysgroundError(f"suite {suite.name} has no test rollouts to export")
    index = out / "index.json"
    write_json_atomic(index, {"suite": suite.name, "suite_hash": suite.config_hash(),
                              "rollouts": entries})
    manifest = pd.DataFrame([{
        "scenario": e["scenario"], "split": e["split"], "rollout": e["rollout"],
        "context_video": f"{folder_name(e['scenario'])}/{e['split']}/{e['rollout']}/context.mp4"
        if e["image_width"] else "",
        "first_frame": f"{folder_name(e['scenario'])}/{e['split']}/{e['rollout']}/"
        "first_frame.png" if e["image_width"] else "",
        "prompt": e["prompt"], "fps": e["fps"], "context_frames": e["context_frames"],
        "frames_to_generate": e["frames_to_generate"], "duration_s": e["duration_s"],
        "width": e["image_width"], "height": e["image_height"],
        "resolution": e["resolution"] or "",
        "prediction_file": e["prediction_file"]} for e in entries])
    write_text_atomic(out / "manifest.csv", manifest.to_csv(index=False))
    write_text_atomic(out / "README.md", _context_readme(suite.name))
    return index


def _camera_json(camera: Any) -> dict[str, Any] | None:
    """Pinhole camera as JSON: intrinsics K (px), extrinsics world->camera [R|t] (OpenCV
    axes: x right, y down, z forward), image size."""
    if camera is None:
        return None
    return {"intrinsics": np.asarray(camera.intrinsics).tolist(),
            "extrinsics": np.asarray(camera.extrinsics).tolist(),
            "width": int(camera.width), "height": int(camera.height),
            "convention": "OpenCV: x right, y down, z forward; extrinsics map world to "
                          "camera"}


def _context_readme(suite: str) -> str:
    doc = __doc__ or ""
    return (f"# Context for external models (suite `{suite}`)\n\n"
            "Each `<scenario>/<split>/<rollout>/prompt.json` says what to generate. Write "
            "the predictions as described below and score them with\n"
            f"`physground evaluate --suite {suite} --predictions PRED_DIR`.\n\n```\n"
            + doc + "```\n")
