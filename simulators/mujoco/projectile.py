"""`rigid/projectile`: a ball launched with random speed and angle, bouncing on a plane.

Free flight obeys x(t) = x0 + v0 t + g t^2 / 2; RK4 integrates this exactly (the
trajectory is a polynomial of degree 2), so the ground truth matches the analytic
ballistic arc to round-off before the first contact. Contacts are `rigid/bounce`'s MuJoCo
soft contact (stiffness 5e5 / s^2, impedance ramp over the first 0.1 mm), its damping solved
for the requested coefficient of restitution with the rollout's gravity acting during the
contact (`bounce_damping`). Measured (frames at 1/480 s, RK4 at 1/15360 s): the rebound
speed ratio is within 1.3 % of e for e in [0.3, 0.95], impacts faster than 1 m/s and gravity
8.5-13.5 m/s^2; with the earlier contact (stiffness 2e4, damping tuned without gravity)
first rebounds fell short by up to 11 % at e = 0.3 and 3.6 % at e = 0.5 (frames at 1/30 s).

`rigid/projectile_drag` adds linear (Stokes) air drag F = -c v with drag rate
gamma = c / m [1/s], off in `rigid/projectile`. Free flight then has the closed form
v(t) = v_inf + (v0 - v_inf) exp(-gamma t), x(t) = x0 + v_inf t + (v0 - v_inf)(1 - exp(-gamma t))
/ gamma, with terminal velocity v_inf = g / gamma. The drag is MuJoCo joint damping on the
ball's free joint (the same rate also damps its spin).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import mujoco
import numpy as np

from physground.params import Param, ParamSpace, Uniform
from physground.simulators.mujoco.base import ScenarioMuJoCo, visual_header
from physground.simulators.mujoco.bounce import (
    CONTACT_SOLIMP,
    CONTACT_STIFFNESS,
    SLOWEST_IMPACT,
    bounce_damping,
)

BALL_RADIUS = 0.15  # m
BALL_MASS = 1.0  # kg
LAUNCH_HEIGHT = 0.5  # m, height of the ball's centre at launch

PARAMS = (
    Param("launch_speed", "m/s", 0.0, 50.0, "initial speed of the ball"),
    Param("launch_angle", "rad", 0.0, math.pi / 2, "elevation above the horizontal"),
    Param("restitution", "1", 0.0, 1.0, "normal coefficient of restitution"),
    Param("gravity", "m/s^2", 0.0, 50.0, "magnitude of gravitational acceleration"),
)

TRAIN = {
    "launch_speed": Uniform(2.5, 4.0),
    "launch_angle": Uniform(math.radians(35), math.radians(65)),
    "restitution": Uniform(0.5, 0.75),
    "gravity": Uniform(8.5, 10.5),
}
# Combinatorial OOD: faster, bouncier and under stronger gravity, all at once.
OOD = {
    "launch_speed": Uniform(4.5, 5.5),
    "restitution": Uniform(0.8, 0.9),
    "gravity": Uniform(11.5, 13.5),
}


class ScenarioProjectile(ScenarioMuJoCo):
    """Ball launched from (0, 0, 0.5 m) in the x-z plane, seen from the side."""

    name: ClassVar[str] = "rigid/projectile"
    take_perturbation: ClassVar[dict[str, float]] = {
        "launch_speed": 0.02, "launch_angle": 0.002, "restitution": 0.005}
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(PARAMS, TRAIN, OOD)
    laws: ClassVar[frozenset[str]] = frozenset(
        {"ballistic", "energy_nonincreasing", "non_penetration", "object_permanence"}
    )
    object_bodies: ClassVar[tuple[str, ...]] = ("ball",)
    # 4 (above the MuJoCo base 3): `rigid/bounce`'s contact (stiffer, impedance ramp, damping
    # solved with gravity during contact at the reference impact speed), 512 substeps.
    version: ClassVar[str] = "4"
    config_defaults: ClassVar[dict[str, Any]] = {"substeps": 512}
    reference_overrides: ClassVar[dict[str, Any]] = {"integrator": "implicitfast",
                                                     "substeps": 768}

    def contact_solref(self, params: dict[str, float]) -> str:
        """MJCF ``solref`` (direct form: -stiffness, -damping) whose bounce, with the rollout's
        gravity acting during contact, has the requested restitution at the reference impact
        speed (harmonic mean of the first impact's normal speed and `SLOWEST_IMPACT`)."""
        e, g = params["restitution"], params["gravity"]
        if e >= 1.0:
            return f"-{CONTACT_STIFFNESS:.6g} 0"
        vz = params["launch_speed"] * math.sin(params["launch_angle"])
        first = max(math.sqrt(vz * vz + 2 * g * (LAUNCH_HEIGHT - BALL_RADIUS)), SLOWEST_IMPACT)
        reference = 2.0 / (1.0 / first + 1.0 / SLOWEST_IMPACT)
        b = bounce_damping(max(e, 1e-3), reference, stiffness=CONTACT_STIFFNESS,
                           solimp=CONTACT_SOLIMP, gravity=g)
        return f"-{CONTACT_STIFFNESS:.6g} -{b:.9g}"

    def mjcf(self, params: dict[str, float]) -> str:
        solref = self.contact_solref(params)
        solimp = " ".join(f"{x:g}" for x in CONTACT_SOLIMP)
        return f"""
<mujoco model="projectile">
  <option gravity="0 0 {-params['gravity']:.9g}"/>{visual_header(self.config.image_size)}
  <default><geom solref="{solref}" solimp="{solimp}" friction="0 0 0"
    condim="1"/></default>
  <worldbody>
    <light pos="2.5 -3 6" dir="0 0.4 -1" directional="true"/>
    <geom name="ground" type="plane" size="20 5 0.1" rgba="0.55 0.55 0.55 1"/>
    <camera name="main" pos="3.0 -9.0 1.6" xyaxes="1 0 0 0 0 1" fovy="45"/>{self.scenery()}
    <body name="ball" pos="0 0 {LAUNCH_HEIGHT}">
      <joint type="free" damping="{self.drag_damping(params):.9g}"/>
      <geom type="sphere" size="{BALL_RADIUS}" mass="{BALL_MASS}" rgba="0.9 0.15 0.1 1"/>
    </body>
  </worldbody>
</mujoco>"""

    def drag_damping(self, params: dict[str, float]) -> float:
        """Linear drag coefficient c = gamma m [kg/s] (0: no air drag)."""
        return 0.0

    def scenery(self) -> str:
        """Extra static MJCF geoms of the world (none here)."""
        return ""

    def initial_state(
        self, model: mujoco.MjModel, params: dict[str, float], seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        qpos = np.array([0.0, 0.0, LAUNCH_HEIGHT, 1.0, 0.0, 0.0, 0.0])
        speed, angle = params["launch_speed"], params["launch_angle"]
        qvel = np.array([speed * math.cos(angle), 0.0, speed * math.sin(angle), 0, 0, 0])
        return qpos, qvel


DRAG_PARAMS = (*PARAMS, Param("drag", "1/s", 0.0, 20.0, "linear air-drag rate c/m"))
# Combinatorial OOD: the projectile's OOD shifts plus stronger drag.
DRAG_TRAIN = {**TRAIN, "drag": Uniform(0.1, 0.4)}
DRAG_OOD = {**OOD, "drag": Uniform(0.6, 0.9)}


class ScenarioProjectileDrag(ScenarioProjectile):
    """`rigid/projectile` with linear air drag F = -gamma m v (drag rate gamma [1/s])."""

    name: ClassVar[str] = "rigid/projectile_drag"
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(DRAG_PARAMS, DRAG_TRAIN, DRAG_OOD)
    laws: ClassVar[frozenset[str]] = frozenset(
        {"energy_nonincreasing", "non_penetration", "object_permanence"}
    )

    def drag_damping(self, params: dict[str, float]) -> float:
        return params["drag"] * BALL_MASS


def drag_trajectory(
    params: dict[str, float], t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Analytic free-flight position [T,3] (m) and velocity [T,3] (m/s) under linear drag."""
    gamma, g = params["drag"], params["gravity"]
    speed, angle = params["launch_speed"], params["launch_angle"]
    v0 = np.array([speed * math.cos(angle), 0.0, speed * math.sin(angle)])
    x0 = np.array([0.0, 0.0, LAUNCH_HEIGHT])
    v_inf = np.array([0.0, 0.0, -g / gamma])
    decay = np.exp(-gamma * t)[:, None]
    vel = v_inf + (v0 - v_inf) * decay
    pos = x0 + v_inf * t[:, None] + (v0 - v_inf) * (1 - decay) / gamma
    return pos, vel


# Occluder: a wall between camera and ball, hiding x in about [1.2, 2.15] m at the ball's
# depth; every training trajectory passes behind it (horizontal speed >= 1.06 m/s for 2 s).
OCCLUDER_X = (1.5, 2.3)  # m
OCCLUDER_Y = -1.5  # m


class ScenarioProjectileOccluded(ScenarioProjectile):
    """`rigid/projectile` passing behind a wall: object permanence under full occlusion.

    The ball's states exist in every frame while its mask is empty behind the wall, and it
    re-emerges with the same mask id.
    """

    name: ClassVar[str] = "rigid/projectile_occluded"

    def scenery(self) -> str:
        lo, hi = OCCLUDER_X
        return f"""
    <geom name="occluder" type="box" size="{(hi - lo) / 2:.6g} 0.05 1.25"
      pos="{(hi + lo) / 2:.6g} {OCCLUDER_Y} 1.25" contype="0" conaffinity="0"
      rgba="0.25 0.3 0.4 1"/>"""
