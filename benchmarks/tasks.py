"""Units of benchmark work: generate a dataset, train a model, evaluate a model.

Every task is a frozen, picklable description with a stable ``key()`` and a ``run()``;
the local process pool and Ray run the same task objects (`physground.benchmarks.executors`).

- `GenerateTask`: one ground-truth dataset (scenario, split); cached by content hash and
  resumable (`physground.storage.generate_dataset`).
- `TrainTask`: one trainable model on one scenario's train split; returns the checkpoint.
- `EvalTask`: one (model, scenario, split, track): the model predicts every rollout of the
  dataset from the `Observation` of its first ``context`` frames (on the default track, or
  the conditioned one when the suite opts in), the predictions are scored in one batch
  (`physground.metrics.evaluate.evaluate_batch`) and returned as tidy rows carrying the
  track. Anchors (the reference re-simulation) take the privileged `Anchor.anchor` path.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from physground.errors import PhysgroundError
from physground.provenance import content_hash
from physground.rollout import Prediction, Rollout
from physground.storage import Dataset

RESULT_COLUMNS = ["model", "track", "scenario", "split", "rollout", "metric", "horizon",
                  "value", "failure"]
RESULT_DTYPES = {"model": "object", "track": "object", "scenario": "object", "split": "object",
                 "rollout": "int64", "metric": "object", "horizon": "int64",
                 "value": "float64", "failure": "object"}


@dataclass(frozen=True, kw_only=True)
class GenerateTask:
    """Generate (or finish, or reuse) the dataset of ``spec`` under ``data_root``."""

    spec: Any  # physground.storage.DatasetSpec (frozen, picklable)
    data_root: str

    def key(self) -> str:
        return "generate-" + content_hash(asdict(self.spec))[:16]

    def label(self) -> str:
        return f"generate {self.spec.scenario} {self.spec.split}"

    def run(self) -> str:
        from physground.storage import generate_dataset

        return str(generate_dataset(self.spec, Path(self.data_root), progress=False).path)


@dataclass(frozen=True, kw_only=True)
class TrainTask:
    """Train ``model`` on the dataset at ``train_dataset``; writes a checkpoint to ``out``.

    Returns the checkpoint directory; a checkpoint already in ``out`` is reused (or its
    interrupted training resumed).
    """

    model: str
    scenario: str
    train_dataset: str
    out: str
    steps: int | None
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"

    def key(self) -> str:
        data = asdict(self)
        data.pop("train_dataset")
        data.pop("out")
        return "train-" + content_hash(data)[:16]

    def label(self) -> str:
        return f"train {self.model} on {self.scenario}"

    def run(self) -> dict[str, str]:
        """``{"checkpoint": directory}``, or ``{"failure": reason}`` when the model cannot
        be trained on this data (an input or data error, e.g. a model that needs a fixed
        number of bodies on a scenario whose rollouts differ)."""
        from physground.learned import training

        dataset = Dataset(Path(self.train_dataset))
        try:
            return {"checkpoint": str(self._train(training, dataset))}
        except PhysgroundError as err:
            if "training option" in str(err):  # a suite mistake, not a model limitation
                raise
            return {"failure": f"training {self.model} on {self.scenario} failed: {err}"}

    def _train(self, training: Any, dataset: Dataset) -> Path:
        """Train through `physground.learned.training.train`, checkpointing to ``out`` every
        quarter of the steps and resuming from it (an interrupted training continues, a
        finished checkpoint is reused as is). ``options`` are
        `TrainConfig` fields (``model_config``, ``lr``, ``batch_size``, ``unroll`` ...)."""
        import dataclasses

        from physground.errors import ValidationError, did_you_mean

        fields = {f.name for f in dataclasses.fields(training.TrainConfig)}
        reserved = {"model", "steps", "seed", "device", "checkpoint_dir", "resume", "progress"}
        for key in self.options:
            if key not in fields or key in reserved:
                allowed = sorted(fields - reserved)
                raise ValidationError(
                    f"training option '{key}' for {self.model}{did_you_mean(key, allowed)}; "
                    f"expected one of {allowed}"
                )
        steps = self.steps if self.steps is not None else 200
        options = {"checkpoint_every": max(50, steps // 4), **self.options}
        config = training.TrainConfig(
            model=self.model, steps=steps, seed=self.seed, device=self.device,
            checkpoint_dir=self.out, resume=True, progress=False, **options,
        )
        training.train(config, dataset)
        return Path(self.out)


@dataclass(frozen=True, kw_only=True)
class EvalTask:
    """Score ``model`` on every rollout of ``dataset`` (context frames in, horizon out)."""

    model: str
    scenario: str
    split: str
    dataset: str  # dataset directory
    dataset_hash: str  # manifest config hash: ties results to the exact ground truth
    context: int
    horizon: int
    metrics: tuple[str, ...]
    checkpoint: str | None = None  # directory of a trained model, when the model learns
    checkpoint_hash: str | None = None  # content of the checkpoint: retrained -> rescored
    failure: str | None = None  # why the model could not be trained: every rollout fails
    device: str = "cpu"
    samples_dir: str | None = None  # where to save rollout 0's truth and prediction
    track: str = "default"  # "conditioned": latent parameters are given (a separate track)
    samples: int = 1  # predictions per rollout; sample k runs with torch/numpy seeded k

    def key(self) -> str:
        """Stable identity of the task; finished tasks are stored under it."""
        data = asdict(self)
        for location in ("samples_dir", "dataset", "checkpoint"):
            data.pop(location)
        if data["track"] == "default":  # keys of default-track tasks stay as they were
            data.pop("track")
        if data["samples"] == 1:  # the default keeps the keys of earlier runs
            data.pop("samples")
        return content_hash(data)[:16]

    def label(self) -> str:
        track = "" if self.track == "default" else f" [{self.track}]"
        return f"{self.model} on {self.scenario} {self.split}{track}"

    def run(self) -> pd.DataFrame:
        truths = Dataset(Path(self.dataset)).rollouts()
        if self.failure is not None:
            predictions = [Prediction.for_rollout(t, model=self.model, context=self.context,
                                                  horizon=self.horizon, failure=self.failure)
                           for t in truths]
            return score(self.model, truths, predictions, self.metrics,
                         self.samples_dir if self.track == "default" else None,
                         track=self.track)
        model = load_model(self.model, self.checkpoint, self.device)
        frames = []
        for sample in range(self.samples):
            if self.samples > 1:
                import torch

                torch.manual_seed(sample)
                np.random.seed(sample)  # noqa: NPY002  (seeds models that use the global RNG)
            predictions = [predict_safely(model, self.model, t, self.context, self.horizon,
                                          track=self.track) for t in truths]
            keep = self.samples_dir if self.track == "default" and sample == 0 else None
            frame = score(self.model, truths, predictions, self.metrics, keep,
                          track=self.track)
            if self.samples > 1:
                frame["sample"] = np.int64(sample)
            frames.append(frame)
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def score(model: str, truths: list[Rollout], predictions: list[Prediction],
          metrics: tuple[str, ...], samples_dir: str | None, *,
          track: str = "default") -> pd.DataFrame:
    """Tidy result rows of ``model``'s predictions on ``track``; saves rollout 0 as a
    sample."""
    from physground.metrics.evaluate import evaluate_batch

    if samples_dir is not None and truths:
        save_sample(Path(samples_dir), truths[0], predictions[0])
    if not truths or not metrics:
        return empty_results()
    table = evaluate_batch(truths, predictions, list(metrics))
    frame = pd.DataFrame({
        "model": model,
        "track": track,
        "scenario": table["scenario"].astype(str).to_numpy(),
        "split": table["split"].astype(str).to_numpy(),
        "rollout": table["seed"].to_numpy(dtype=np.int64),
        "metric": table["metric"].astype(str).to_numpy(),
        "horizon": table["horizon"].to_numpy(dtype=np.int64),
        "value": table["value"].to_numpy(dtype=np.float64),
        "failure": table["failure"].astype(str).to_numpy(),
    })
    return frame[RESULT_COLUMNS].astype(RESULT_DTYPES)


def empty_results() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in RESULT_DTYPES.items()})


def load_model(name: str, checkpoint: str | None, device: str) -> Any:
    """A registered model, restored from ``checkpoint`` when it is a trained one."""
    from physground.world_model import MODELS

    factory = MODELS.get(name)
    if checkpoint is not None:
        return factory.load(Path(checkpoint), device=device)
    return factory()


def predict_safely(
    model: Any, name: str, truth: Rollout, context: int, horizon: int, *,
    track: str = "default",
) -> Prediction:
    """The model's prediction from the observation of ``truth``'s first ``context`` frames,
    bound to ``truth``; or a failed Prediction recording why it could not predict.

    A model sees only `Rollout.context` (an `Observation` on ``track``); an `Anchor` (the
    reference re-simulation) is called on the truth itself, the one privileged path.
    Input errors (reading a latent parameter included), numerical errors and runtime errors
    of a model are scored as failures of that rollout (never dropped); programming errors
    (TypeError, AttributeError ...) raise.
    """
    from physground.world_model import Anchor

    try:
        if isinstance(model, Anchor):
            return model.anchor(truth, context, horizon)
        prediction = model.predict(truth.context(context, track=track), horizon)
        return prediction.bind(truth, context=context, horizon=horizon)
    except PhysgroundError as err:
        reason = str(err)
    except (RuntimeError, ValueError, FloatingPointError, ArithmeticError) as err:
        reason = f"{type(err).__name__}: {err}"
    return Prediction.for_rollout(truth, model=name, context=context, horizon=horizon,
                                  failure=f"model raised {reason}")


def sample_path(samples_dir: Path, scenario: str, split: str, who: str) -> Path:
    """Where rollout 0 of (scenario, split) is kept for ``who`` (``truth`` or a model)."""
    return Path(samples_dir) / f"{scenario.replace('/', '__')}__{split}__{who}.npz"


def save_sample(samples_dir: Path, truth: Rollout, prediction: Prediction) -> None:
    """Keep one rollout's truth (all frames) and prediction (horizon frames) for plots and
    videos: states, numeric statics, frames, params, dt, context and the failure, if any."""
    from physground.atomic import atomic_path

    for who, traj in (("truth", truth), (prediction.model, prediction)):
        path = sample_path(samples_dir, truth.scenario, truth.split, who)
        if who == "truth" and path.exists():
            continue
        arrays = {f"state__{k}": np.asarray(v) for k, v in traj.states.items()}
        arrays.update({f"static__{k}": np.asarray(v) for k, v in truth.static.items()
                       if np.asarray(v).dtype != object})
        if traj.frames is not None:
            arrays["frames"] = np.asarray(traj.frames)
        failure = getattr(traj, "failure", None) or ""
        info = {"scenario": truth.scenario, "split": truth.split, "seed": truth.seed,
                "params": truth.params, "model": who, "failure": failure,
                "camera": truth.camera.to_dict() if truth.camera is not None else None}
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, context=np.int64(prediction.context),
                                dt=np.float64(truth.dt), info=np.array(json.dumps(info)),
                                **arrays)


def load_sample(path: Path) -> dict[str, Any]:
    """A saved sample as ``{"states", "static", "frames", "context", "dt", "info"}``."""
    with np.load(path, allow_pickle=False) as data:
        out: dict[str, Any] = {"states": {}, "static": {}, "frames": None,
                               "context": int(data["context"]), "dt": float(data["dt"]),
                               "info": json.loads(str(data["info"])) if "info" in data else {}}
        for key in data.files:
            if key.startswith("state__"):
                out["states"][key[7:]] = data[key]
            elif key.startswith("static__"):
                out["static"][key[8:]] = data[key]
            elif key == "frames":
                out["frames"] = data[key]
    return out
