"""A stack of (truth, prediction) pairs as float64 tensors, the input of batched metrics.

Rollouts of one scenario share shapes, so R of them stack into ``[R, T, ...]`` tensors and
every metric is a handful of vectorized torch operations over all of them at once (the
speed benchmark scores 10,000 rollouts x 100 steps this way). The truth is kept for frames
[0, context + horizon): the context (what the model saw) and the target window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from physground.errors import ValidationError
from physground.rollout import Camera, Prediction, Rollout

Tensor = torch.Tensor

# Position state names and the velocity state stored beside each (rigid, cloth/SPH).
POSITION_NAMES = ("pos", "x")
VELOCITY_OF = {"pos": "vel", "x": "v"}


class MissingInputError(ValidationError):
    """The prediction or truth lacks what a metric needs (a state, frames, masks ...)."""


@dataclass
class Batch:
    """R stacked (truth, prediction) pairs with a common context C and horizon H.

    ``truth[name]`` is [R, C + H, ...], ``pred[name]`` [R, H, ...] (float64);
    ``static[name]`` [R, ...] for numeric arrays of equal shape; ``params[name]`` [R];
    ``dt`` [R] seconds. Frames are uint8 tensors [R, T, H, W, 3] and masks integer
    [R, T, H, W] where present on every pair.
    """

    scenario: str
    context: int
    horizon: int
    dt: Tensor
    truth: dict[str, Tensor]
    pred: dict[str, Tensor]
    static: dict[str, Tensor]
    params: dict[str, Tensor]
    truth_frames: Tensor | None = None
    truth_masks: Tensor | None = None
    pred_frames: Tensor | None = None
    pred_masks: Tensor | None = None
    cameras: list[Camera | None] = field(default_factory=list)
    # (rollout mask [R], reason) recorded by metrics whose value is undefined for a truth
    undefined: list[tuple[np.ndarray, str]] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return int(self.dt.shape[0])

    @classmethod
    def stack(cls, truths: Sequence[Rollout], predictions: Sequence[Prediction],
              device: str = "cpu") -> Batch:
        """Stack pairs that share scenario, context, horizon and array shapes."""
        if not truths or len(truths) != len(predictions):
            raise ValidationError(
                f"need equally many truths and predictions, got {len(truths)} and "
                f"{len(predictions)}"
            )
        first = predictions[0]
        context, horizon = first.context, first.horizon
        for p in predictions:
            if (p.context, p.horizon) != (context, horizon):
                raise ValidationError(
                    f"batch mixes context/horizon ({p.context}, {p.horizon}) with "
                    f"({context}, {horizon}); group predictions first"
                )
        stop = context + horizon

        def stack(arrays: Sequence[Any]) -> Tensor:
            return torch.from_numpy(np.stack([np.asarray(a, dtype=np.float64) for a in arrays]))

        truth_names = [k for k, v in truths[0].states.items()
                       if np.issubdtype(np.asarray(v).dtype, np.number)]
        truth = {k: stack([t.states[k][:stop] for t in truths]).to(device) for k in truth_names}
        pred_names = [k for k in first.states if all(k in p.states for p in predictions)]
        pred = {k: stack([p.states[k] for p in predictions]).to(device) for k in pred_names}
        static: dict[str, Tensor] = {}
        for key in truths[0].static:
            values = [np.asarray(t.static.get(key)) for t in truths]
            if all(v.shape == values[0].shape and np.issubdtype(v.dtype, np.number)
                   for v in values):
                if np.issubdtype(values[0].dtype, np.integer):
                    static[key] = torch.from_numpy(np.stack(values)).to(device)
                else:
                    static[key] = stack(values).to(device)
        param_names = sorted(truths[0].params)
        params = {k: torch.tensor([float(t.params.get(k, np.nan)) for t in truths],
                                  dtype=torch.float64, device=device) for k in param_names}
        dt = torch.tensor([t.dt for t in truths], dtype=torch.float64, device=device)

        def frames_of(items: Sequence[Any], attr: str, sl: slice) -> Tensor | None:
            arrays = [getattr(x, attr) for x in items]
            if any(a is None for a in arrays):
                return None
            return torch.from_numpy(np.stack([np.asarray(a)[sl] for a in arrays])).to(device)

        return cls(
            scenario=truths[0].scenario, context=context, horizon=horizon, dt=dt,
            truth=truth, pred=pred, static=static, params=params,
            truth_frames=frames_of(truths, "frames", slice(0, stop)),
            truth_masks=frames_of(truths, "masks", slice(0, stop)),
            pred_frames=frames_of(predictions, "frames", slice(None)),
            pred_masks=frames_of(predictions, "masks", slice(None)),
            cameras=[t.camera for t in truths],
        )

    # -- access -------------------------------------------------------------------------

    def truth_window(self, name: str) -> Tensor:
        """Truth frames [context, context + horizon) of state ``name``: [R, H, ...]."""
        return self._truth(name)[:, self.context:]

    def truth_context(self, name: str) -> Tensor:
        """The context frames [0, context) of state ``name``: [R, C, ...]."""
        return self._truth(name)[:, : self.context]

    def _truth(self, name: str) -> Tensor:
        if name not in self.truth:
            raise MissingInputError(
                f"truth of {self.scenario} has no states['{name}'] (has {sorted(self.truth)})"
            )
        return self.truth[name]

    def require_static(self, *names: str) -> Tensor:
        """The first of ``names`` present in the truth's static arrays, [R, ...]."""
        for name in names:
            if name in self.static:
                return self.static[name]
        raise MissingInputError(
            f"truth of {self.scenario} has no static {' or '.join(map(repr, names))} "
            f"(has {sorted(self.static)})"
        )

    def position_name(self) -> str:
        for name in POSITION_NAMES:
            if name in self.truth:
                return name
        raise MissingInputError(
            f"truth of {self.scenario} has no position state {POSITION_NAMES} "
            f"(has {sorted(self.truth)})"
        )

    @property
    def pixel_mode(self) -> bool:
        """True when positions must come from the predicted frames (no position state)."""
        name = self.position_name()
        return name not in self.pred and self.pred_frames is not None

    def pred_positions(self) -> Tensor:
        """Predicted positions [R, H, B, d]: the state when predicted, else from pixels."""
        name = self.position_name()
        if name in self.pred:
            return self.pred[name]
        if self.pred_frames is None:
            raise MissingInputError(
                f"prediction has no states['{name}'] and no frames to derive it from "
                f"(has states {sorted(self.pred)})"
            )
        return self._pixel_positions("pred")

    def truth_positions(self) -> Tensor:
        """Truth positions [R, C+H, B, d] compared with the prediction's.

        The simulator state, except when the prediction is frames only: then the truth's
        positions are measured from its own frames by the same soft-mask estimator, so
        that the measurement error of pixels cancels (the true video scores like the
        truth). Where an object is hidden in the true frames (occluded or out of view) the
        simulator state stands in.
        """
        if not self.pixel_mode:
            return self._truth(self.position_name())
        return self._pixel_positions("truth")

    def _pixel_positions(self, side: str) -> Tensor:
        """Positions measured from frames; hidden objects handled as in `truth_positions`:
        where the object is hidden in both the true and the predicted frame, the
        prediction is taken as right (the simulator state on both sides); hidden only in
        the prediction, it stays NaN and the metric records a failure. Predicted
        positions within `pixels.PIXEL_RESOLUTION` px of the truth's are snapped to them
        (`pixels.snap_to_truth`): a codec's centroid jitter is no physics error."""
        if "pixel_positions" not in self._cache:
            from physground.metrics.pixels import (
                pixel_resolution,
                positions_from_frames,
                snap_to_truth,
            )

            if self.truth_frames is None or self.pred_frames is None:
                raise MissingInputError(f"truth of {self.scenario} has no frames")
            state = self._truth(self.position_name())
            truth = positions_from_frames(self, "truth")
            pred = positions_from_frames(self, "pred")
            hidden = torch.isnan(truth)
            window = hidden[:, self.context:] & torch.isnan(pred)
            pred = torch.where(window, state[:, self.context:], pred)
            # displacements below the pixel resolution are not measured
            pred = snap_to_truth(pred, torch.where(hidden, state, truth)[:, self.context:],
                                 pixel_resolution(self))
            self._cache["pixel_positions"] = {"truth": torch.where(hidden, state, truth),
                                              "pred": pred}
        return self._cache["pixel_positions"][side]

    def positions_with_context(self, side: str) -> Tensor:
        """Context positions followed by the ``side`` ('truth' or 'pred') window [R, C+H, ...].

        A model is given the context, so finite differences at the first predicted frame
        use the true context frames before it.
        """
        truth = self.truth_positions()
        if side == "truth":
            return truth
        return torch.cat([truth[:, : self.context], self.pred_positions()], dim=1)

    def velocities(self) -> tuple[Tensor, Tensor]:
        """(truth [R, C+H, B, d], pred [R, H, B, d]) velocities, computed the same way.

        The stored velocity state when both sides have it, else second-order finite
        differences of positions over context + window (the identical method on both sides,
        so that discretization error cancels in comparisons).
        """
        if "velocities" in self._cache:
            return self._cache["velocities"]
        name = self.position_name()
        vel_name = VELOCITY_OF[name]
        if vel_name in self.truth and vel_name in self.pred:
            out = (self.truth[vel_name], self.pred[vel_name])
        else:
            x_truth = self.truth_positions()
            dt = self.dt.view(-1, *([1] * (x_truth.dim() - 1)))
            v_truth = torch.gradient(x_truth, dim=1, edge_order=2)[0] / dt
            x_pred = self.positions_with_context("pred")
            v_pred = torch.gradient(x_pred, dim=1, edge_order=2)[0] / dt
            out = (v_truth, v_pred[:, self.context:])
        self._cache["velocities"] = out
        return out

    def static_like(self, value: Tensor, ndim: int) -> Tensor:
        """A per-rollout static array [R, *s] viewed as [R, 1, ..., 1, *s] of ``ndim`` dims."""
        extra = ndim - value.dim()
        return value.view(value.shape[0], *([1] * extra), *value.shape[1:])

    def cached(self, key: str, compute: Any) -> Any:
        """``compute()`` once per batch: metrics sharing an intermediate (heights,
        energies, penetration depths) compute it once."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def mark_undefined(self, mask: Tensor | np.ndarray, reason: str) -> None:
        """Record that the metric is undefined for the truths selected by ``mask`` [R]."""
        mask = np.asarray(mask.cpu() if isinstance(mask, Tensor) else mask, dtype=bool)
        if mask.any():
            self.undefined.append((mask, reason))
