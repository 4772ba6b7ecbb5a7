"""`rigid/collision`: 2-6 spheres sliding and colliding on a frictionless horizontal plane.

Each sphere (radius 0.15 m) moves in the plane z = radius on two slide joints, so no
external force acts in the plane: total linear momentum sum(m_i v_i) is conserved exactly
(up to round-off). Sphere-sphere contacts are frictionless (condim 1) MuJoCo soft
contacts: an undamped spring (restitution 1) in `rigid/collision`, so kinetic energy is
conserved outside contacts up to the RK4 error of stepping onto the contact's kink, and a
spring-damper tuned for restitution e in `rigid/collision_inelastic`, where kinetic energy
only decreases. Caveat: when one sphere touches two others at once, MuJoCo solves the
coupled contacts jointly as constraints with non-negative forces, which is not a sum of
independent springs; such simultaneous contacts lose a few percent of kinetic energy
(measured up to 3.6% in 5-6 sphere OOD rollouts), while binary collisions keep it to ~0.3%
at the default 1/960 s step. Masses are spaced geometrically around ``mass`` with
heaviest/lightest = ``mass_ratio``; the seed places spheres on a ring of radius 1.2 m and
aims them near the centre with speeds around ``speed``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import mujoco
import numpy as np

from physground.errors import ValidationError
from physground.params import Choice, Param, ParamSpace, Uniform
from physground.simulators.mujoco.base import ScenarioMuJoCo, contact_solref, visual_header

SPHERE_RADIUS = 0.15  # m
RING_RADIUS = 1.2  # m
CONTACT_STIFFNESS = 1e5  # 1/s^2: contact lasts pi / sqrt(k) = 10 ms
MAX_SPHERES = 6
COLORS = ("0.9 0.15 0.1", "0.15 0.35 0.9", "0.1 0.7 0.2", "0.95 0.75 0.1", "0.7 0.2 0.8",
          "0.1 0.8 0.8")

PARAMS = (
    Param("num_spheres", "1", 2, MAX_SPHERES, "number of spheres"),
    Param("mass", "kg", 1e-3, 100.0, "geometric-mean sphere mass"),
    Param("mass_ratio", "1", 1.0, 100.0, "heaviest over lightest sphere mass"),
    Param("speed", "m/s", 0.0, 20.0, "typical initial speed"),
)
TRAIN: dict[str, Any] = {
    "num_spheres": Choice((2, 3, 4)),
    "mass": Uniform(0.5, 2.0),
    "mass_ratio": Uniform(1.0, 2.0),
    "speed": Uniform(0.5, 1.5),
}
# Combinatorial OOD: more spheres, heavier AND faster, all at once.
OOD: dict[str, Any] = {
    "num_spheres": Choice((5, 6)),
    "mass": Uniform(3.0, 5.0),
    "speed": Uniform(2.0, 3.0),
}


class ScenarioCollision(ScenarioMuJoCo):
    """Elastic collisions of 2-6 spheres on a frictionless plane, seen from above."""

    name: ClassVar[str] = "rigid/collision"
    take_perturbation: ClassVar[dict[str, float]] = {"speed": 0.01, "mass": 0.001}
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(PARAMS, TRAIN, OOD)
    laws: ClassVar[frozenset[str]] = frozenset(
        {"momentum_conserved", "energy_conserved", "non_penetration", "object_permanence"}
    )
    latent_static: ClassVar[frozenset[str]] = ScenarioMuJoCo.latent_static | {"restitution"}
    given_params: ClassVar[frozenset[str]] = frozenset({"num_spheres"})  # bodies in the states

    def restitution(self, params: dict[str, float]) -> float:
        return 1.0

    def check_params(self, params: dict[str, float]) -> None:
        if params["num_spheres"] != round(params["num_spheres"]):
            raise ValidationError(
                f"{self.name}: parameter 'num_spheres' = {params['num_spheres']:g} is not "
                "a whole number"
            )

    def bodies(self, params: dict[str, float]) -> tuple[str, ...]:
        return tuple(f"sphere{i}" for i in range(int(params["num_spheres"])))

    def masses(self, params: dict[str, float]) -> np.ndarray:
        """Sphere masses [kg]: geometric spacing around ``mass``, max/min = mass_ratio."""
        n = int(params["num_spheres"])
        exponent = np.linspace(-0.5, 0.5, n)
        return params["mass"] * params["mass_ratio"] ** exponent

    def mjcf(self, params: dict[str, float]) -> str:
        solref = contact_solref(self.restitution(params), CONTACT_STIFFNESS)
        spheres = "".join(
            f"""
    <body name="sphere{i}" pos="0 0 {SPHERE_RADIUS}">
      <joint name="x{i}" type="slide" axis="1 0 0"/>
      <joint name="y{i}" type="slide" axis="0 1 0"/>
      <geom type="sphere" size="{SPHERE_RADIUS}" mass="{m:.9g}" rgba="{COLORS[i]} 1"/>
    </body>"""
            for i, m in enumerate(self.masses(params))
        )
        return f"""
<mujoco model="collision">
  <option gravity="0 0 -9.81"/>{visual_header(self.config.image_size)}
  <default><geom solref="{solref}" solimp="0.9999 0.9999 0.001" friction="0 0 0" condim="1"
    margin="0"/></default>
  <worldbody>
    <light pos="0 0 8" dir="0 0 -1" directional="true" diffuse="0.4 0.4 0.4"/>
    <geom name="ground" type="plane" size="6 6 0.1" rgba="0.35 0.35 0.35 1"
      contype="0" conaffinity="0"/>
    <camera name="main" pos="0 0 6" xyaxes="1 0 0 0 1 0" fovy="45"/>{spheres}
  </worldbody>
</mujoco>"""

    def initial_state(
        self, model: mujoco.MjModel, params: dict[str, float], seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        n = int(params["num_spheres"])
        rng = np.random.default_rng([seed, n])
        angles = 2 * math.pi * (np.arange(n) + rng.uniform(-0.15, 0.15, n)) / n
        start = RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        aim = rng.uniform(-0.3, 0.3, (n, 2))
        direction = aim - start
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        speed = params["speed"] * rng.uniform(0.8, 1.2, n)
        # Slide joints measure displacement from the body's rest pose at the origin.
        return start.reshape(-1), (direction * speed[:, None]).reshape(-1)

    def static(self, model: mujoco.MjModel, params: dict[str, float]) -> dict[str, Any]:
        out = super().static(model, params)
        out["restitution"] = np.float64(self.restitution(params))
        return out


INELASTIC_PARAMS = (*PARAMS, Param("restitution", "1", 0.0, 1.0, "coefficient of restitution"))


class ScenarioCollisionInelastic(ScenarioCollision):
    """`rigid/collision` with restitution e < 1: momentum conserved, energy dissipated."""

    name: ClassVar[str] = "rigid/collision_inelastic"
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        INELASTIC_PARAMS,
        {**TRAIN, "restitution": Uniform(0.4, 0.8)},
        {**OOD, "restitution": Uniform(0.1, 0.3)},
    )
    laws: ClassVar[frozenset[str]] = frozenset(
        {"momentum_conserved", "energy_nonincreasing", "non_penetration", "object_permanence"}
    )

    def restitution(self, params: dict[str, float]) -> float:
        return params["restitution"]
