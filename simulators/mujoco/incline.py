"""`rigid/incline`: a box sliding down an inclined plane with Coulomb friction.

A flat box (0.3 x 0.2 x 0.1 m, too flat to tip) starts on an incline of angle theta,
1.5 m above the floor, with speed v0 down the slope. While it slides down, Newton's law
with Coulomb friction gives the constant acceleration along the slope

    a = g (sin(theta) - mu cos(theta)),

so it speeds up when mu < tan(theta) and decelerates to rest (and stays there) when
mu > tan(theta); released from rest with mu > tan(theta) it never moves. At the bottom it
slides onto the floor. The box-incline friction is mu (MuJoCo takes the larger friction of
the two geoms; the incline and floor have 0). Contacts use elliptic friction cones with
a high impedance ratio and stiff references to keep the soft-contact creep of sticking
boxes below a millimetre per second; integrator RK4 at 1/960 s by default.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import mujoco
import numpy as np

from physground.params import Param, ParamSpace, Uniform
from physground.simulators.mujoco.base import ScenarioMuJoCo, visual_header

HALF = (0.15, 0.1, 0.05)  # m, half sizes of the box (x along the slope, z along the normal)
TOP_HEIGHT = 1.5  # m, height of the incline surface at the box's start
BACK = 0.5  # m of incline behind the start

PARAMS = (
    Param("incline_angle", "rad", 0.0, math.radians(60), "slope angle theta"),
    Param("friction", "1", 0.0, 2.0, "Coulomb friction coefficient mu"),
    Param("initial_speed", "m/s", 0.0, 5.0, "initial speed down the slope"),
    Param("mass", "kg", 1e-3, 100.0, "box mass"),
)
TRAIN: dict[str, Any] = {
    "incline_angle": Uniform(math.radians(15), math.radians(30)),
    "friction": Uniform(0.1, 0.5),
    "initial_speed": Uniform(0.0, 1.0),
    "mass": Uniform(0.5, 2.0),
}
# Combinatorial OOD: steeper AND rougher at once (both sliding and sticking occur).
OOD: dict[str, Any] = {
    "incline_angle": Uniform(math.radians(35), math.radians(45)),
    "friction": Uniform(0.6, 0.9),
}


def slope_frame(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors down the slope and normal to it (both in the x-z plane)."""
    down = np.array([math.cos(angle), 0.0, -math.sin(angle)])
    normal = np.array([math.sin(angle), 0.0, math.cos(angle)])
    return down, normal


class ScenarioIncline(ScenarioMuJoCo):
    """Box on an incline, seen from the side."""

    name: ClassVar[str] = "rigid/incline"
    take_perturbation: ClassVar[dict[str, float]] = {"incline_angle": 0.002, "initial_speed": 0.01}
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(PARAMS, TRAIN, OOD)
    laws: ClassVar[frozenset[str]] = frozenset(
        {"energy_nonincreasing", "non_penetration", "object_permanence"}
    )
    # the ramp is seen (drawn in the frames): its plane is given, so is its angle
    given_static: ClassVar[frozenset[str]] = ScenarioMuJoCo.given_static | {
        "half_size", "incline_down", "incline_normal", "incline_point"}
    given_params: ClassVar[frozenset[str]] = frozenset({"incline_angle"})
    object_bodies: ClassVar[tuple[str, ...]] = ("box",)

    def mjcf(self, params: dict[str, float]) -> str:
        angle = params["incline_angle"]
        down, normal = slope_frame(angle)
        top = np.array([0.0, 0.0, TOP_HEIGHT])
        length = TOP_HEIGHT / max(math.sin(angle), 1e-3) + BACK  # to the floor
        half_length = 0.5 * length
        centre = top + down * (half_length - BACK) - normal * 0.1
        quat = f"{math.cos(angle / 2):.12g} 0 {math.sin(angle / 2):.12g} 0"
        return f"""
<mujoco model="incline">
  <option gravity="0 0 -9.81" cone="elliptic" impratio="10"/>{visual_header(self.config.image_size)}
  <default><geom solref="0.004 1" solimp="0.95 0.99 0.001" condim="3"
    friction="0 0 0"/></default>
  <worldbody>
    <light pos="2 -3 6" dir="0 0.4 -1" directional="true"/>
    <geom name="floor" type="plane" size="20 5 0.1" rgba="0.55 0.55 0.55 1"/>
    <geom name="incline" type="box" size="{half_length:.9g} 1 0.1"
      pos="{centre[0]:.12g} 0 {centre[2]:.12g}" quat="{quat}" rgba="0.6 0.5 0.35 1"/>
    <camera name="main" pos="2.6 -10 1.5" xyaxes="1 0 0 0 0 1" fovy="38"/>
    <body name="box">
      <freejoint/>
      <geom type="box" size="{HALF[0]} {HALF[1]} {HALF[2]}" mass="{params['mass']:.9g}"
        friction="{params['friction']:.9g} 0.005 0.0001" rgba="0.9 0.15 0.1 1"/>
    </body>
  </worldbody>
</mujoco>"""

    def initial_state(
        self, model: mujoco.MjModel, params: dict[str, float], seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        angle = params["incline_angle"]
        down, normal = slope_frame(angle)
        centre = np.array([0.0, 0.0, TOP_HEIGHT]) + normal * HALF[2]
        # Rotation about +y by theta maps the box's x to `down` and its z to `normal`.
        quat = np.array([math.cos(angle / 2), 0.0, math.sin(angle / 2), 0.0])
        qpos = np.concatenate([centre, quat])
        qvel = np.concatenate([down * params["initial_speed"], np.zeros(3)])
        return qpos, qvel

    def static(self, model: mujoco.MjModel, params: dict[str, float]) -> dict[str, Any]:
        out = super().static(model, params)
        down, normal = slope_frame(params["incline_angle"])
        out["incline_down"] = down
        out["incline_normal"] = normal
        out["incline_point"] = np.array([0.0, 0.0, TOP_HEIGHT])
        out["half_size"] = np.array([HALF])
        return out


def slope_acceleration(params: dict[str, float], g: float = 9.81) -> float:
    """Analytic acceleration down the slope [m/s^2] of a sliding box (negative: braking)."""
    angle, mu = params["incline_angle"], params["friction"]
    return g * (math.sin(angle) - mu * math.cos(angle))
