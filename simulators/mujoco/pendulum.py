"""Pendulums: `rigid/pendulum`, `rigid/double_pendulum` and their damped variants.

Bobs are solid spheres (radius 0.1 m) on massless rods (thin decoration geoms, not part
of the masks) hanging from a pivot at (0, 0, 2 m), swinging in the x-z plane about hinges
along y. Angles are measured from the downward vertical, positive towards +x.

Single pendulum (physical pendulum of a sphere of inertia I_c = 2/5 m r^2 at distance L):
    (m L^2 + I_c) theta'' = -m g L sin(theta) - c theta'
which is the simple pendulum of equivalent length L_eq = L + I_c / (m L); undamped, its
period is T = 4 sqrt(L_eq / g) K(sin^2(theta0 / 2)) (K: complete elliptic integral of the
first kind, parameter m) and its energy is conserved; with joint damping c [N m s/rad]
energy decays as dE/dt = -c theta'^2.

Double pendulum: the second hinge sits at the first bob's centre; with absolute rod angles
theta1, theta2 the Lagrangian is that of two point masses plus the bobs' spin energy
1/2 I_c theta_i'^2 (`double_pendulum_rhs`). The motion is chaotic at the energies used:
`divergence_horizon` measures when two rollouts whose first angles differ by 1e-6 rad
separate. Integrator RK4 at 1/960 s by default.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import mujoco
import numpy as np

from physground.params import Param, ParamSpace, Uniform
from physground.simulators.mujoco.base import ScenarioMuJoCo, visual_header
from physground.simulators.mujoco.rendering import DECORATION_GROUP

BOB_RADIUS = 0.1  # m
PIVOT_HEIGHT = 2.0  # m
PIVOT = np.array([0.0, 0.0, PIVOT_HEIGHT])
GRAVITY = 9.81  # m/s^2


def _rod(length: float) -> str:
    """A massless, collision-free rod from the body centre up to its hinge."""
    return (f'<geom type="capsule" fromto="0 0 0 0 0 {length:.9g}" size="0.008" mass="0" '
            f'contype="0" conaffinity="0" group="{DECORATION_GROUP}" rgba="0.3 0.3 0.3 1"/>')


def _header(name: str, image_size: int) -> str:
    return f"""
<mujoco model="{name}">
  <option gravity="0 0 -{GRAVITY}"/>{visual_header(image_size)}
  <worldbody>
    <light pos="0 -3 5" dir="0 0.5 -1" directional="true"/>
    <geom name="ground" type="plane" size="5 5 0.1" rgba="0.55 0.55 0.55 1"
      contype="0" conaffinity="0"/>
    <geom name="pivot" type="sphere" size="0.025" pos="0 0 {PIVOT_HEIGHT}"
      contype="0" conaffinity="0" rgba="0.2 0.2 0.2 1"/>
    <camera name="main" pos="0 -4.2 1.15" xyaxes="1 0 0 0 0 1" fovy="45"/>"""


SINGLE_PARAMS = (
    Param("length", "m", 0.15, 1.9, "rod length, pivot to bob centre"),
    Param("initial_angle", "rad", -math.pi, math.pi, "release angle from the vertical"),
    Param("mass", "kg", 1e-3, 100.0, "bob mass"),
)
SINGLE_TRAIN: dict[str, Any] = {
    "length": Uniform(0.5, 1.0),
    "initial_angle": Uniform(0.3, 1.2),
    "mass": Uniform(0.5, 2.0),
}
# Combinatorial OOD: longer AND released from higher at once.
SINGLE_OOD: dict[str, Any] = {"length": Uniform(1.2, 1.6), "initial_angle": Uniform(1.5, 2.5)}
DAMPING = Param("damping", "N m s/rad", 0.0, 10.0, "hinge damping coefficient")


class ScenarioPendulum(ScenarioMuJoCo):
    """Undamped single pendulum released from rest, seen from the side."""

    name: ClassVar[str] = "rigid/pendulum"
    take_perturbation: ClassVar[dict[str, float]] = {"initial_angle": 0.002, "length": 0.001}
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        SINGLE_PARAMS, SINGLE_TRAIN, SINGLE_OOD)
    laws: ClassVar[frozenset[str]] = frozenset({"energy_conserved", "object_permanence"})
    given_static: ClassVar[frozenset[str]] = ScenarioMuJoCo.given_static | {"pivot"}
    latent_static: ClassVar[frozenset[str]] = ScenarioMuJoCo.latent_static | {"length",
                                                                              "damping"}
    object_bodies: ClassVar[tuple[str, ...]] = ("bob",)

    def damping(self, params: dict[str, float]) -> float:
        return 0.0

    def mjcf(self, params: dict[str, float]) -> str:
        length, c = params["length"], self.damping(params)
        return _header("pendulum", self.config.image_size) + f"""
    <body name="bob" pos="0 0 {PIVOT_HEIGHT - length:.9g}">
      <joint name="hinge" type="hinge" axis="0 -1 0" pos="0 0 {length:.9g}" damping="{c:.9g}"/>
      <geom type="sphere" size="{BOB_RADIUS}" mass="{params['mass']:.9g}"
        rgba="0.9 0.15 0.1 1"/>
      {_rod(length)}
    </body>
  </worldbody>
</mujoco>"""

    def initial_state(
        self, model: mujoco.MjModel, params: dict[str, float], seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        return np.array([params["initial_angle"]]), np.zeros(1)

    def static(self, model: mujoco.MjModel, params: dict[str, float]) -> dict[str, Any]:
        out = super().static(model, params)
        out["radius"] = np.array([BOB_RADIUS])
        out["pivot"] = PIVOT.copy()
        out["length"] = np.array([params["length"]])
        out["damping"] = np.array([self.damping(params)])
        return out


class ScenarioPendulumDamped(ScenarioPendulum):
    """Single pendulum with viscous hinge damping: energy never increases."""

    name: ClassVar[str] = "rigid/pendulum_damped"
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        (*SINGLE_PARAMS, DAMPING),
        {**SINGLE_TRAIN, "damping": Uniform(0.02, 0.1)},
        {**SINGLE_OOD, "damping": Uniform(0.15, 0.25)},
    )
    laws: ClassVar[frozenset[str]] = frozenset({"energy_nonincreasing", "object_permanence"})

    def damping(self, params: dict[str, float]) -> float:
        return params["damping"]


def pendulum_period(length: float, amplitude: float, g: float = GRAVITY) -> float:
    """Exact period [s] of the sphere-bob pendulum released from rest at ``amplitude``."""
    from scipy.special import ellipk

    l_eq = length + 0.4 * BOB_RADIUS**2 / length
    return 4 * math.sqrt(l_eq / g) * float(ellipk(math.sin(amplitude / 2) ** 2))


DOUBLE_PARAMS = (
    Param("length1", "m", 0.15, 0.95, "upper rod length"),
    Param("length2", "m", 0.15, 0.95, "lower rod length"),
    Param("angle1", "rad", -math.pi, math.pi, "initial upper rod angle from the vertical"),
    Param("angle2", "rad", -math.pi, math.pi, "initial lower rod angle from the vertical"),
    Param("mass1", "kg", 1e-3, 100.0, "upper bob mass"),
    Param("mass2", "kg", 1e-3, 100.0, "lower bob mass"),
)
DOUBLE_TRAIN: dict[str, Any] = {
    "length1": Uniform(0.4, 0.6),
    "length2": Uniform(0.4, 0.6),
    "angle1": Uniform(1.0, 2.0),
    "angle2": Uniform(1.0, 2.0),
    "mass1": Uniform(0.5, 1.5),
    "mass2": Uniform(0.5, 1.5),
}
# Combinatorial OOD: longer rods AND higher release angles.
DOUBLE_OOD: dict[str, Any] = {
    "length1": Uniform(0.7, 0.85),
    "length2": Uniform(0.7, 0.85),
    "angle1": Uniform(2.3, 2.8),
    "angle2": Uniform(2.3, 2.8),
}


class ScenarioDoublePendulum(ScenarioMuJoCo):
    """Undamped double pendulum released from rest: chaotic, energy conserved."""

    name: ClassVar[str] = "rigid/double_pendulum"
    take_perturbation: ClassVar[dict[str, float]] = {
        "angle1": 0.002, "angle2": 0.002, "length1": 0.001, "length2": 0.001}
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        DOUBLE_PARAMS, DOUBLE_TRAIN, DOUBLE_OOD)
    laws: ClassVar[frozenset[str]] = frozenset({"energy_conserved", "object_permanence"})
    given_static: ClassVar[frozenset[str]] = ScenarioMuJoCo.given_static | {"pivot"}
    latent_static: ClassVar[frozenset[str]] = ScenarioMuJoCo.latent_static | {"length",
                                                                              "damping"}
    object_bodies: ClassVar[tuple[str, ...]] = ("bob1", "bob2")

    def damping(self, params: dict[str, float]) -> float:
        return 0.0

    def mjcf(self, params: dict[str, float]) -> str:
        l1, l2, c = params["length1"], params["length2"], self.damping(params)
        return _header("double_pendulum", self.config.image_size) + f"""
    <body name="bob1" pos="0 0 {PIVOT_HEIGHT - l1:.9g}">
      <joint name="hinge1" type="hinge" axis="0 -1 0" pos="0 0 {l1:.9g}" damping="{c:.9g}"/>
      <geom type="sphere" size="{BOB_RADIUS}" mass="{params['mass1']:.9g}"
        rgba="0.9 0.15 0.1 1"/>
      {_rod(l1)}
      <body name="bob2" pos="0 0 {-l2:.9g}">
        <joint name="hinge2" type="hinge" axis="0 -1 0" pos="0 0 {l2:.9g}"
          damping="{c:.9g}"/>
        <geom type="sphere" size="{BOB_RADIUS}" mass="{params['mass2']:.9g}"
          rgba="0.15 0.35 0.9 1"/>
        {_rod(l2)}
      </body>
    </body>
  </worldbody>
</mujoco>"""

    def initial_state(
        self, model: mujoco.MjModel, params: dict[str, float], seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        # The second hinge measures the lower rod's angle relative to the upper rod.
        a1, a2 = params["angle1"], params["angle2"]
        return np.array([a1, a2 - a1]), np.zeros(2)

    def static(self, model: mujoco.MjModel, params: dict[str, float]) -> dict[str, Any]:
        out = super().static(model, params)
        out["radius"] = np.full(2, BOB_RADIUS)
        out["pivot"] = PIVOT.copy()
        out["length"] = np.array([params["length1"], params["length2"]])
        out["damping"] = np.full(2, self.damping(params))
        return out


class ScenarioDoublePendulumDamped(ScenarioDoublePendulum):
    """Double pendulum with viscous damping on both hinges: energy never increases."""

    name: ClassVar[str] = "rigid/double_pendulum_damped"
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        (*DOUBLE_PARAMS, DAMPING),
        {**DOUBLE_TRAIN, "damping": Uniform(0.01, 0.05)},
        {**DOUBLE_OOD, "damping": Uniform(0.08, 0.15)},
    )
    laws: ClassVar[frozenset[str]] = frozenset({"energy_nonincreasing", "object_permanence"})

    def damping(self, params: dict[str, float]) -> float:
        return params["damping"]


def double_pendulum_rhs(params: dict[str, float], damping: float = 0.0):  # noqa: ANN201
    """Right-hand side f(t, y) of the double pendulum ODE, y = (theta1, theta2, w1, w2) with
    absolute rod angles; includes the bobs' spin inertia I_c = 2/5 m r^2 and hinge damping
    (torques -c w1 and -c (w2 - w1) on the relative hinge angles)."""
    l1, l2 = params["length1"], params["length2"]
    m1, m2 = params["mass1"], params["mass2"]
    i1, i2 = 0.4 * m1 * BOB_RADIUS**2, 0.4 * m2 * BOB_RADIUS**2
    g = GRAVITY

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        t1, t2, w1, w2 = y
        c = math.cos(t1 - t2)
        s = math.sin(t1 - t2)
        mass = np.array([[(m1 + m2) * l1 * l1 + i1, m2 * l1 * l2 * c],
                         [m2 * l1 * l2 * c, m2 * l2 * l2 + i2]])
        # Generalized forces on absolute angles; damping acts on hinge-relative rates.
        force = np.array([
            -m2 * l1 * l2 * s * w2 * w2 - (m1 + m2) * g * l1 * math.sin(t1)
            - damping * w1 + damping * (w2 - w1),
            m2 * l1 * l2 * s * w1 * w1 - m2 * g * l2 * math.sin(t2) - damping * (w2 - w1),
        ])
        acc = np.linalg.solve(mass, force)
        return np.array([w1, w2, acc[0], acc[1]])

    return rhs


def divergence_horizon(
    scenario: ScenarioDoublePendulum,
    params: dict[str, float],
    delta: float = 1e-6,
    threshold: float = 0.1,
) -> float:
    """Time [s] until two rollouts whose ``angle1`` differ by ``delta`` rad have their lower
    bobs more than ``threshold`` m apart (inf when they never do within the rollout)."""
    perturbed = {**params, "angle1": params["angle1"] + delta}
    a, b = scenario.simulate([params, perturbed], [0, 0], "test_id")
    gap = np.linalg.norm(a.states["pos"][:, 1] - b.states["pos"][:, 1], axis=-1)
    apart = np.flatnonzero(gap > threshold)
    return float(apart[0] * a.dt) if len(apart) else math.inf
