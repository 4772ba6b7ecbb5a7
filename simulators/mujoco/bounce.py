"""`rigid/bounce`: a ball dropped on a plane with restitution and Coulomb friction.

The ball (radius 0.1 m) is released from rest-height ``drop_height`` (gap between its lowest
point and the ground) with a horizontal speed, falls under gravity, bounces with normal
coefficient of restitution e and slides or rolls with sliding friction mu. Laws: between
contacts the flight is ballistic; total energy never increases; and each apex height
(gap + v_z^2 / 2g, exact in free flight) is e^2 times the previous one, since the normal
rebound speed is e times the impact speed.

The contact is MuJoCo's soft spring-damper (stiffness 5e5 / s^2, contact ~4.4 ms). Gravity
acts during contact: MuJoCo mixes the reference acceleration with the unconstrained one
(impedance d), and the one-sided force releases the ball when ``k x + b x' = -d g``, below
the ground, so the apex ratio falls short of the damping-only restitution by a relative
~3 g / (sqrt(k) v) at impact speed v. `bounce_damping` solves the damping for e on the
exact 1-D model of that contact (gravity, clamp, impedance) at the rollout's reference
impact speed: the harmonic mean of its first impact speed and `SLOWEST_IMPACT`, which
balances the residual over the bounces faster than 1 m/s. Integrator RK4 at 1/15360 s by
default (0.046 / sqrt(k)); measured first-bounce apex ratios are within 2.4 % of e^2 for
e >= 0.5 and 5.8 % for e = 0.3 at impacts of 1-5.4 m/s (the touch-down kink, where the
damping force jumps, and gravity weigh most at heavy damping; `benchmarks/validation`
runs the grid).
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar

import mujoco
import numpy as np
from scipy.optimize import brentq

from physground.params import Param, ParamSpace, Uniform
from physground.simulators.mujoco.base import ScenarioMuJoCo, visual_header

BALL_RADIUS = 0.1  # m
GRAVITY = 9.81  # m/s^2
# 1/s^2: contacts last ~pi / sqrt(k) = 4.4 ms and sink at most v / sqrt(k) (1.2 cm at 8.4 m/s).
# Stiffer contacts shrink gravity's share of the contact impulse (~g / (sqrt(k) v)).
CONTACT_STIFFNESS = 5e5
CONTACT_IMPEDANCE = 0.99  # MuJoCo solimp d (constant: d0 = dmax)
SLOWEST_IMPACT = 1.0  # m/s: the restitution law is tuned to hold for impacts at least this fast

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


def contact_rebound(
    damping: float, impact_speed: float, *, stiffness: float = CONTACT_STIFFNESS,
    impedance: float = CONTACT_IMPEDANCE, gravity: float = GRAVITY,
) -> float:
    """Square root of the apex ratio (rebound apex / drop height) of one bounce on MuJoCo's
    soft contact, from the exact 1-D model of it.

    With penetration x (down), MuJoCo's constrained acceleration during contact is
    ``x'' = (1 - d) g - k x - b x'`` (the reference spring-damper ``-k x - b x'`` mixed with
    the unconstrained ``g`` by the impedance d; in direct solref form MuJoCo scales k and b
    so that these are the effective values). The force ``m d (k x + b x' + d g) / d`` is
    one-sided, so the ball leaves at ``k x + b x' = -d g`` with upward speed u at depth x,
    and its apex gap is ``u^2 / 2g - x``. Closed form of the linear ODE; the release time is
    the first sign change of the force, refined by Brent's method.
    """
    k, b, d, g, v0 = stiffness, damping, impedance, gravity, impact_speed
    omega = math.sqrt(k)
    zeta = b / (2 * omega)
    if not 0 <= zeta < 1:
        raise ValueError(f"damping ratio {zeta} outside [0, 1)")
    wd = omega * math.sqrt(1 - zeta * zeta)
    xp = (1 - d) * g / k  # particular solution of the forced ODE
    y0, c = -xp, (v0 - zeta * omega * xp) / wd  # y = x - xp = exp(-zeta w t)(y0 cos + c sin)

    def state(t: float) -> tuple[float, float]:
        decay, cos, sin = math.exp(-zeta * omega * t), math.cos(wd * t), math.sin(wd * t)
        y = decay * (y0 * cos + c * sin)
        dy = decay * ((c * wd - zeta * omega * y0) * cos - (y0 * wd + zeta * omega * c) * sin)
        return y + xp, dy

    def force(t: float) -> float:  # k x + b x' + d g, proportional to the contact force
        x, dx = state(t)
        return k * x + b * dx + d * g

    grid = np.linspace(0.0, 2 * math.pi / wd, 4001)[1:]
    values = np.array([force(t) for t in grid])
    first = int(np.argmax(values < 0))
    if values[first] >= 0:
        raise ValueError("the contact never releases the ball")
    lo = grid[first - 1] if first else 0.0
    t_release = brentq(force, lo, grid[first], xtol=1e-15, rtol=1e-15)
    x, dx = state(t_release)
    apex = dx * dx / (2 * g) - x
    return math.sqrt(max(apex, 0.0) / (v0 * v0 / (2 * g)))


@functools.cache
def bounce_damping(
    restitution: float, impact_speed: float, *, stiffness: float = CONTACT_STIFFNESS,
    impedance: float = CONTACT_IMPEDANCE, gravity: float = GRAVITY,
) -> float:
    """Contact damping b [1/s] whose bounce at ``impact_speed`` [m/s] has apex ratio e^2.

    Inverts `contact_rebound` (decreasing in b) by Brent's method. A restitution above
    what an undamped contact gives at this speed gets b = 0 (gravity alone costs more).
    """
    kw = {"stiffness": stiffness, "impedance": impedance, "gravity": gravity}
    top = 2 * 0.999 * math.sqrt(stiffness)
    if contact_rebound(0.0, impact_speed, **kw) <= restitution:
        return 0.0
    if contact_rebound(top, impact_speed, **kw) >= restitution:
        return top
    return float(brentq(lambda b: contact_rebound(b, impact_speed, **kw) - restitution,
                        0.0, top, xtol=1e-10))


def reference_impact_speed(drop_height: float, gravity: float = GRAVITY) -> float:
    """Impact speed [m/s] the damping is tuned at: the harmonic mean of the first impact
    speed and `SLOWEST_IMPACT` (gravity's error goes as 1 / v, so this balances it)."""
    first = max(math.sqrt(2 * gravity * drop_height), SLOWEST_IMPACT)
    return 2.0 / (1.0 / first + 1.0 / SLOWEST_IMPACT)


class ScenarioBounce(ScenarioMuJoCo):
    """Ball dropped from rest height on a plane, seen from the side."""

    name: ClassVar[str] = "rigid/bounce"
    take_perturbation: ClassVar[dict[str, float]] = {
        "drop_height": 0.002, "horizontal_speed": 0.01, "restitution": 0.005}
    # 4 (above the MuJoCo base 3): damping solved with gravity during contact, stiffer
    # contact, 512 substeps.
    version: ClassVar[str] = "4"
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(PARAMS, TRAIN, OOD)
    laws: ClassVar[frozenset[str]] = frozenset(
        {"ballistic", "energy_nonincreasing", "non_penetration", "object_permanence"}
    )
    object_bodies: ClassVar[tuple[str, ...]] = ("ball",)
    config_defaults: ClassVar[dict[str, Any]] = {"substeps": 512}
    reference_overrides: ClassVar[dict[str, Any]] = {"integrator": "implicitfast",
                                                     "substeps": 768}

    def contact_solref(self, params: dict[str, float]) -> str:
        """MJCF ``solref`` (direct form: -stiffness, -damping) for the rollout's e."""
        e = params["restitution"]
        if e >= 1.0:
            return f"-{CONTACT_STIFFNESS:.6g} 0"
        b = bounce_damping(max(e, 1e-3), reference_impact_speed(params["drop_height"]))
        return f"-{CONTACT_STIFFNESS:.6g} -{b:.9g}"

    def mjcf(self, params: dict[str, float]) -> str:
        solref = self.contact_solref(params)
        mu = params["friction"]
        d = CONTACT_IMPEDANCE
        return f"""
<mujoco model="bounce">
  <option gravity="0 0 -{GRAVITY}" cone="elliptic"/>{visual_header(self.config.image_size)}
  <default><geom solref="{solref}" solimp="{d} {d} 0.001" friction="{mu:.9g} 0 0"
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

    Frames count as free flight when the gap exceeds 1 cm (out of the contact spring); a
    flight also ends where v_z rises between frames (a contact shorter than a frame, which
    gravity alone never causes)."""
    gap = z - radius
    free = gap > 0.01
    bounced = np.concatenate([[False], np.diff(vz) > 0])
    apexes: list[float] = []
    start = None
    for i in range(len(free) + 1):
        if start is not None and (i == len(free) or not free[i] or bounced[i]):
            if i - start >= 2:
                apexes.append(float(np.median(gap[start:i] + vz[start:i] ** 2 / (2 * g))))
            start = None
        if i < len(free) and free[i] and start is None:
            start = i
    return apexes
