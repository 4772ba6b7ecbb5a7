"""`rigid/bounce`: a ball dropped on a plane with restitution and Coulomb friction.

The ball (radius 0.1 m) is released from rest-height ``drop_height`` (gap between its lowest
point and the ground) with a horizontal speed, falls under gravity, bounces with normal
coefficient of restitution e and slides or rolls with sliding friction mu. Laws: between
contacts the flight is ballistic; total energy never increases; and each apex height
(gap + v_z^2 / 2g, exact in free flight) is e^2 times the previous one, since the normal
rebound speed is e times the impact speed. The contact is MuJoCo's soft spring-damper
whose damping is solved for e (`contact_solref`), stiffness 2e4 / s^2; integrator RK4 at
1/960 s by default.
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from physground.params import Param, ParamSpace, Uniform
from physground.simulators.mujoco.base import ScenarioMuJoCo, contact_solref, visual_header

BALL_RADIUS = 0.1  # m
# 1/s^2: contacts last ~pi / sqrt(k) = 22 ms (22 RK4 steps, which keeps the restitution
# within ~1% of its target) and sink at most v / sqrt(k) (5.7 cm at 8 m/s impact speed)
CONTACT_STIFFNESS = 2e4

PARAMS = (
    Param("drop_height", "m", 0.0, 20.0, "gap between ball and ground at release"),
    Param("restitution", "1", 0.0, 1.0, "normal coefficient of restitution"),
    Param("friction", "1", 0.0, 2.0, "Coulomb sliding friction coefficient"),
    Param("horizontal_speed", "m/s", 0.0, 10.0, "initial horizontal speed"),
    Param("mass", "kg", 1e-3, 100.0, "mass of the ball"),
)
TRAIN = {
    "drop_height": Uniform(1.0, 2.0),
    "restitution": Uniform(0.5, 0.8),
    "friction": Uniform(0.2, 0.8),
    "horizontal_speed": Uniform(0.0, 1.0),
    "mass": Uniform(0.5, 2.0),
}
# Combinatorial OOD: dropped from higher AND bouncier at once.
OOD = {"drop_height": Uniform(2.5, 3.5), "restitution": Uniform(0.85, 0.95)}


class ScenarioBounce(ScenarioMuJoCo):
    """Ball dropped from rest height on a plane, seen from the side."""

    name: ClassVar[str] = "rigid/bounce"
    take_perturbation: ClassVar[dict[str, float]] = {
        "drop_height": 0.002, "horizontal_speed": 0.01, "restitution": 0.005}
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(PARAMS, TRAIN, OOD)
    laws: ClassVar[frozenset[str]] = frozenset(
        {"ballistic", "energy_nonincreasing", "non_penetration", "object_permanence"}
    )
    object_bodies: ClassVar[tuple[str, ...]] = ("ball",)

    def mjcf(self, params: dict[str, float]) -> str:
        solref = contact_solref(params["restitution"], CONTACT_STIFFNESS)
        mu = params["friction"]
        return f"""
<mujoco model="bounce">
  <option gravity="0 0 -9.81" cone="elliptic"/>{visual_header(self.config.image_size)}
  <default><geom solref="{solref}" solimp="0.99 0.99 0.001" friction="{mu:.9g} 0 0"
    condim="3"/></default>
  <worldbody>
    <light pos="1 -3 6" dir="0 0.4 -1" directional="true"/>
    <geom name="ground" type="plane" size="20 5 0.1" rgba="0.55 0.55 0.55 1"/>
    <camera name="main" pos="1.0 -9.0 1.7" xyaxes="1 0 0 0 0 1" fovy="28"/>
    <body name="ball" pos="0 0 1">
      <freejoint/>
      <geom type="sphere" size="{BALL_RADIUS}" mass="{params['mass']:.9g}"
        rgba="0.15 0.35 0.9 1"/>
    </body>
  </worldbody>
</mujoco>"""

    def initial_state(
        self, model: mujoco.MjModel, params: dict[str, float], seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        qpos = np.array([0.0, 0.0, BALL_RADIUS + params["drop_height"], 1.0, 0, 0, 0])
        qvel = np.array([params["horizontal_speed"], 0.0, 0.0, 0.0, 0.0, 0.0])
        return qpos, qvel


def apex_heights(z: np.ndarray, vz: np.ndarray, g: float, radius: float) -> list[float]:
    """Apex gap of each free flight (median over its frames of gap + vz^2 / 2g) [m].

    Frames count as free flight when the gap exceeds 1 cm (out of the contact spring)."""
    gap = z - radius
    free = gap > 0.01
    apexes: list[float] = []
    start = None
    for i in range(len(free) + 1):
        if i < len(free) and free[i]:
            start = i if start is None else start
        elif start is not None:
            if i - start >= 2:
                apexes.append(float(np.median(gap[start:i] + vz[start:i] ** 2 / (2 * g))))
            start = None
    return apexes
