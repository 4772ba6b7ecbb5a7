"""`rigid/dominoes`: a chain of dominoes toppled by a push on the first one.

Dominoes are 0.06 x 0.2 x 0.4 m boxes (thickness t, width, height h) standing on the floor
along x with centre spacing s. The first one starts rotating about its front bottom edge
with angular speed ``push``. Until it touches the second one it is a rigid body pivoting
on that edge, so its tilt theta obeys

    theta'' = 3 g (h sin(theta) - t cos(theta)) / (2 (h^2 + t^2)),  theta(0) = 0,
    theta'(0) = push,

and it strikes the next domino when its top front corner reaches it, h sin(theta) = s - t
(`first_contact_time` integrates this). Causality: domino k+1 starts to move only after
domino k reached it, so onset times increase along the chain; if s - t >= h nothing but
the first domino ever moves. Contacts use elliptic friction cones; RK4 at 1/960 s.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import mujoco
import numpy as np

from physground.errors import ValidationError
from physground.params import Choice, Param, ParamSpace, Uniform
from physground.simulators.mujoco.base import ScenarioMuJoCo, visual_header

THICK, WIDTH, HEIGHT = 0.06, 0.2, 0.4  # m
MAX_DOMINOES = 10
GRAVITY = 9.81

PARAMS = (
    Param("num_dominoes", "1", 2, MAX_DOMINOES, "number of dominoes"),
    Param("spacing_ratio", "1", THICK / HEIGHT + 0.05, 3.0, "centre spacing over height"),
    Param("push", "rad/s", 0.0, 20.0, "initial angular speed of the first domino"),
    Param("friction", "1", 0.0, 2.0, "Coulomb friction coefficient"),
)
TRAIN: dict[str, Any] = {
    "num_dominoes": Choice((4, 5, 6)),
    "spacing_ratio": Uniform(0.4, 0.65),
    "push": Uniform(1.5, 2.5),
    "friction": Uniform(0.5, 0.8),
}
# Combinatorial OOD: longer chains, wider spacing AND harder pushes at once.
OOD: dict[str, Any] = {
    "num_dominoes": Choice((8, 9, 10)),
    "spacing_ratio": Uniform(0.7, 0.8),
    "push": Uniform(3.0, 4.0),
}
COLORS = ("0.9 0.15 0.1", "0.15 0.35 0.9")


class ScenarioDominoes(ScenarioMuJoCo):
    """A row of dominoes along x, seen from the side and slightly above."""

    name: ClassVar[str] = "rigid/dominoes"
    take_perturbation: ClassVar[dict[str, float]] = {"push": 0.05, "spacing_ratio": 0.002}
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(PARAMS, TRAIN, OOD)
    laws: ClassVar[frozenset[str]] = frozenset(
        {"energy_nonincreasing", "non_penetration", "object_permanence"}
    )
    given_static: ClassVar[frozenset[str]] = ScenarioMuJoCo.given_static | {"half_size",
                                                                            "spacing"}
    # the row's layout is seen in the first frame: count and spacing are given
    given_params: ClassVar[frozenset[str]] = frozenset({"num_dominoes", "spacing_ratio"})

    def check_params(self, params: dict[str, float]) -> None:
        if params["num_dominoes"] != round(params["num_dominoes"]):
            raise ValidationError(
                f"{self.name}: parameter 'num_dominoes' = {params['num_dominoes']:g} is not "
                "a whole number"
            )

    def bodies(self, params: dict[str, float]) -> tuple[str, ...]:
        return tuple(f"domino{i}" for i in range(int(params["num_dominoes"])))

    def mjcf(self, params: dict[str, float]) -> str:
        n, s = int(params["num_dominoes"]), params["spacing_ratio"] * HEIGHT
        dominoes = "".join(
            f"""
    <body name="domino{i}" pos="{i * s:.9g} 0 {HEIGHT / 2}">
      <freejoint/>
      <geom type="box" size="{THICK / 2} {WIDTH / 2} {HEIGHT / 2}" mass="0.2"
        rgba="{COLORS[i % 2]} 1"/>
    </body>"""
            for i in range(n)
        )
        centre = 0.5 * (n - 1) * s
        return f"""
<mujoco model="dominoes">
  <option gravity="0 0 -{GRAVITY}" cone="elliptic" impratio="10"/>{visual_header(
            self.config.image_size)}
  <default><geom solref="0.004 1" solimp="0.95 0.99 0.001" condim="3"
    friction="{params['friction']:.9g} 0.005 0.0001"/></default>
  <worldbody>
    <light pos="{centre:.6g} -3 6" dir="0 0.4 -1" directional="true"/>
    <geom name="floor" type="plane" size="{centre + 5:.6g} 5 0.1" pos="{centre:.6g} 0 0"
      rgba="0.55 0.55 0.55 1"/>
    <camera name="main" pos="{centre:.6g} {-1.2 - 1.6 * centre:.6g} {0.6 + 0.5 * centre:.6g}"
      xyaxes="1 0 0 0 0.3 1" fovy="45"/>{dominoes}
  </worldbody>
</mujoco>"""

    def initial_state(
        self, model: mujoco.MjModel, params: dict[str, float], seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        n, s = int(params["num_dominoes"]), params["spacing_ratio"] * HEIGHT
        qpos = np.zeros((n, 7))
        qpos[:, 0] = np.arange(n) * s
        qpos[:, 2] = HEIGHT / 2
        qpos[:, 3] = 1.0
        qvel = np.zeros((n, 6))
        # Rotation about the front bottom edge: v_com = w x (com - edge).
        w = params["push"]
        qvel[0, :3] = np.cross([0.0, w, 0.0], [-THICK / 2, 0.0, HEIGHT / 2])
        qvel[0, 4] = w  # free-joint angular velocity, body frame (= world frame at t = 0)
        return qpos.reshape(-1), qvel.reshape(-1)

    def static(self, model: mujoco.MjModel, params: dict[str, float]) -> dict[str, Any]:
        out = super().static(model, params)
        n = int(params["num_dominoes"])
        out["half_size"] = np.tile([THICK / 2, WIDTH / 2, HEIGHT / 2], (n, 1))
        out["spacing"] = np.float64(params["spacing_ratio"] * HEIGHT)
        return out


def first_contact_time(params: dict[str, float]) -> float:
    """Time [s] at which the first domino, pivoting on its front edge, touches the second
    (inf when the gap s - t is at least the height h, or the push cannot tip it)."""
    from scipy.integrate import solve_ivp

    gap = params["spacing_ratio"] * HEIGHT - THICK
    if gap >= HEIGHT:
        return math.inf
    target = math.asin(gap / HEIGHT)
    k = 3 * GRAVITY / (2 * (HEIGHT**2 + THICK**2))

    def rhs(t: float, y: np.ndarray) -> list[float]:
        return [y[1], k * (HEIGHT * math.sin(y[0]) - THICK * math.cos(y[0]))]

    def reached(t: float, y: np.ndarray) -> float:
        return y[0] - target

    reached.terminal = True  # type: ignore[attr-defined]
    sol = solve_ivp(rhs, (0.0, 10.0), [0.0, params["push"]], events=reached, rtol=1e-10,
                    atol=1e-12)
    return float(sol.t_events[0][0]) if len(sol.t_events[0]) else math.inf
