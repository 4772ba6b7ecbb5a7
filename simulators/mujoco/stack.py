"""`rigid/stack`: a tower of 3-6 equal cubes that stands or topples depending on offsets.

Cube k (edge 0.2 m, k = 0 on the floor) is shifted along x relative to cube k-1 by
``offset * 0.2 m * u_k`` with u_k uniform in [-1, 1] drawn from the seed. With friction
high enough that nothing slides, the static stability law of block stacking decides the
outcome: the tower stands if and only if, for every k >= 1, the centre of mass of cubes
k..N-1 lies over the top face of cube k-1, |x_com(k..N-1) - x_(k-1)| < 0.1 m
(`stability_margin` > 0). ``static['stands']`` records that prediction. Contacts use
elliptic friction cones; integrator RK4 at 1/960 s by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import mujoco
import numpy as np

from physground.errors import ValidationError
from physground.params import Choice, Param, ParamSpace, Uniform
from physground.rollout import Rollout
from physground.simulators.mujoco.base import ScenarioMuJoCo, visual_header

HALF = 0.1  # m, half edge of each cube
MAX_BOXES = 6
COLORS = ("0.9 0.15 0.1", "0.15 0.35 0.9", "0.1 0.7 0.2", "0.95 0.75 0.1", "0.7 0.2 0.8",
          "0.1 0.8 0.8")

PARAMS = (
    Param("num_boxes", "1", 2, MAX_BOXES, "number of cubes in the tower"),
    Param("offset", "1", 0.0, 1.0, "largest shift between neighbours, in cube edges"),
    Param("friction", "1", 0.0, 2.0, "Coulomb friction coefficient"),
    Param("mass", "kg", 1e-3, 100.0, "mass of each cube"),
)
TRAIN: dict[str, Any] = {
    "num_boxes": Choice((3, 4)),
    "offset": Uniform(0.1, 0.45),
    "friction": Uniform(0.7, 1.0),
    "mass": Uniform(0.2, 1.0),
}
# Combinatorial OOD: taller towers AND larger offsets at once.
OOD: dict[str, Any] = {"num_boxes": Choice((5, 6)), "offset": Uniform(0.5, 0.65)}


def stability_margin(x: np.ndarray) -> float:
    """Smallest distance [m] by which the centre of mass of each sub-tower lies inside the
    top face of the cube below it (negative: the tower topples). ``x``: cube centres [N]."""
    margins = [HALF - abs(float(np.mean(x[k:])) - float(x[k - 1])) for k in range(1, len(x))]
    return min(margins) if margins else HALF


class ScenarioStack(ScenarioMuJoCo):
    """Tower of cubes on the floor, seen from the side."""

    name: ClassVar[str] = "rigid/stack"
    take_perturbation: ClassVar[dict[str, float]] = {"offset": 0.005}
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(PARAMS, TRAIN, OOD)
    laws: ClassVar[frozenset[str]] = frozenset(
        {"energy_nonincreasing", "non_penetration", "object_permanence"}
    )
    given_static: ClassVar[frozenset[str]] = ScenarioMuJoCo.given_static | {"half_size"}
    withheld_static: ClassVar[frozenset[str]] = frozenset({"stability_margin", "stands"})
    given_params: ClassVar[frozenset[str]] = frozenset({"num_boxes"})  # bodies in the states

    def check_params(self, params: dict[str, float]) -> None:
        if params["num_boxes"] != round(params["num_boxes"]):
            raise ValidationError(
                f"{self.name}: parameter 'num_boxes' = {params['num_boxes']:g} is not a whole "
                "number"
            )

    def bodies(self, params: dict[str, float]) -> tuple[str, ...]:
        return tuple(f"box{i}" for i in range(int(params["num_boxes"])))

    def offsets(self, params: dict[str, float], seed: int) -> np.ndarray:
        """Cube centres along x [N] (m): cumulative random shifts, the bottom cube at 0."""
        n = int(params["num_boxes"])
        rng = np.random.default_rng([seed, n])
        shifts = params["offset"] * 2 * HALF * rng.uniform(-1.0, 1.0, n)
        shifts[0] = 0.0
        return np.cumsum(shifts)

    def mjcf(self, params: dict[str, float]) -> str:
        mu = params["friction"]
        boxes = "".join(
            f"""
    <body name="box{i}" pos="0 0 {HALF * (2 * i + 1):.9g}">
      <freejoint/>
      <geom type="box" size="{HALF} {HALF} {HALF}" mass="{params['mass']:.9g}"
        rgba="{COLORS[i]} 1"/>
    </body>"""
            for i in range(int(params["num_boxes"]))
        )
        return f"""
<mujoco model="stack">
  <option gravity="0 0 -9.81" cone="elliptic" impratio="10"/>{visual_header(self.config.image_size)}
  <default><geom solref="0.004 1" solimp="0.95 0.99 0.001" condim="3"
    friction="{mu:.9g} 0.005 0.0001"/></default>
  <worldbody>
    <light pos="1 -3 6" dir="0 0.4 -1" directional="true"/>
    <geom name="floor" type="plane" size="10 5 0.1" rgba="0.55 0.55 0.55 1"/>
    <camera name="main" pos="0 -5.5 0.75" xyaxes="1 0 0 0 0 1" fovy="30"/>{boxes}
  </worldbody>
</mujoco>"""

    def initial_state(
        self, model: mujoco.MjModel, params: dict[str, float], seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        x = self.offsets(params, seed)
        n = len(x)
        qpos = np.zeros((n, 7))
        qpos[:, 0] = x
        # A 0.1 mm gap per level: the cubes settle onto each other instead of starting
        # inside each other's soft contacts.
        qpos[:, 2] = HALF * (2 * np.arange(n) + 1) + 1e-4 * np.arange(n)
        qpos[:, 3] = 1.0
        return qpos.reshape(-1), np.zeros(6 * n)

    def static(self, model: mujoco.MjModel, params: dict[str, float]) -> dict[str, Any]:
        out = super().static(model, params)
        out["half_size"] = np.full((int(params["num_boxes"]), 3), HALF)
        return out

    def simulate(
        self, params: Sequence[dict[str, float]], seeds: Sequence[int], split: str
    ) -> list[Rollout]:
        """As the base class, adding the analytic stand/topple prediction to ``static``."""
        rollouts = super().simulate(params, seeds, split)
        for rollout in rollouts:
            margin = stability_margin(rollout.states["pos"][0, :, 0])
            rollout.static["stability_margin"] = np.float64(margin)
            rollout.static["stands"] = np.bool_(margin > 0)
        return rollouts
