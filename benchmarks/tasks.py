"""The unit of benchmark work: one (model, scenario, split) evaluation task.

A task is a frozen, picklable description; ``run()`` loads the dataset, lets the model
predict every rollout from its context, scores the predictions and returns tidy rows.
The local executor and Ray run the same task objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from physground.errors import PhysgroundError
from physground.provenance import content_hash
from physground.rollout import Prediction, Rollout
from physground.storage import Dataset

RESULT_COLUMNS = ["model", "scenario", "split", "rollout", "metric", "horizon", "value",
                  "failure"]


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
    device: str = "cpu"
    samples_dir: str | None = None  # where to save rollout 0's truth and prediction

    def key(self) -> str:
        """Stable identity of the task; finished tasks are stored under it."""
        data = asdict(self)
        data.pop("samples_dir")
        data.pop("dataset")
        return content_hash(data)[:16]

    def run(self) -> pd.DataFrame:
        from physground.metrics.evaluate import evaluate

        model = load_model(self.model, self.checkpoint, self.device)
        rows: list[dict[str, Any]] = []
        for index, truth in enumerate(Dataset(Path(self.dataset))):
            prediction = predict_safely(model, self.model, truth, self.context, self.horizon)
            for row in evaluate(truth, prediction, list(self.metrics)):
                rows.append({"model": self.model, "scenario": self.scenario,
                             "split": self.split, "rollout": truth.seed, **row})
            if index == 0 and self.samples_dir is not None:
                save_sample(Path(self.samples_dir), truth, prediction)
        frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
        return frame.astype({"rollout": "int64", "horizon": "int64", "value": "float64"})


def load_model(name: str, checkpoint: str | None, device: str) -> Any:
    """A registered model, restored from ``checkpoint`` when it is a trained one."""
    from physground.world_model import MODELS

    factory = MODELS.get(name)
    if checkpoint is not None:
        return factory.load(Path(checkpoint), device=device)
    return factory()


def predict_safely(
    model: Any, name: str, truth: Rollout, context: int, horizon: int
) -> Prediction:
    """The model's prediction, or a failed Prediction recording why it could not predict."""
    try:
        return model.predict(truth.context(context), horizon)
    except PhysgroundError as err:
        reason = str(err)
    except (RuntimeError, ValueError, FloatingPointError) as err:
        reason = f"{type(err).__name__}: {err}"
    return Prediction.for_rollout(truth, model=name, context=context, horizon=horizon,
                                  failure=f"model raised {reason}")


def sample_path(samples_dir: Path, scenario: str, split: str, who: str) -> Path:
    return samples_dir / f"{scenario.replace('/', '__')}__{split}__{who}.npz"


def save_sample(samples_dir: Path, truth: Rollout, prediction: Prediction) -> None:
    """Keep one rollout's truth and prediction (states, frames) for plots and videos."""
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
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, context=np.int64(prediction.context),
                                dt=np.float64(truth.dt), **arrays)
