"""`rigid/bounce`: a ball dropped on a plane with restitution and Coulomb friction.

The ball (radius 0.1 m) is released from rest-height ``drop_height`` (gap between its lowest
point and the ground) with a horizontal speed, falls under gravity, bounces with normal
coefficient of restitution e and slides or rolls with sliding friction mu. Laws: between
contacts the flight is ballistic; total energy never increases; and each apex height
(gap + v_z^2 / 2g, exact in free flight) is e^2 times the previous one, since the normal
rebound speed is e times the impact speed.

The contact is MuJoCo's soft spring-damper (stiffness 5e5 / s^2, contact ~4.4 ms). Gravity
acts during contact only through the impedance d: MuJoCo mixes the reference acceleration
with the unconstrained one, ``(1 - d) g``, and the one-sided force releases the ball below
the ground, so with a constant d = 0.99 the apex ratio fell short of the damping-only
restitution by a relative ~3 g / (sqrt(k) v) at impact speed v, and the damping force,
jumping to b v at touch-down, made RK4 at 1/15360 s scatter the apex ratio by +-3 % (e =
0.3) with where in a step the contact began. The impedance now rises from 0.05 to 0.99
over the first 0.1 mm (`CONTACT_SOLIMP`): the force grows smoothly from ~0, and gravity in
that layer offsets most of the 1/v deficit. `bounce_damping` solves the damping for e on
the exact 1-D model of that contact (`contact_rebound`: gravity, impedance ramp, clamp) at
the rollout's reference impact speed: the harmonic mean of its first impact speed and
`SLOWEST_IMPACT`, which balances the residual over the bounces faster than 1 m/s.
Integrator RK4 at 1/15360 s by default (0.046 / sqrt(k)); measured first-bounce apex
ratios are within 1.6 % of e^2 for e in [0.3, 0.95] at impacts of 1-8 m/s
(`benchmarks/validation` runs the grid).
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar

import mujoco
import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from physground.params import Param, ParamSpace, Uniform
from physground.simulators.mujoco.base import ScenarioMuJoCo, visual_header

BALL_RADIUS = 0.1  # m
GRAVITY = 9.81  # m/s^2
# 1/s^2: contacts last ~pi / sqrt(k) = 4.4 ms and sink at most v / sqrt(k) (1.2 cm at 8.4 m/s).
# Stiffer contacts shrink gravity's share of the contact impulse (~g / (sqrt(k) v)).
CONTACT_STIFFNESS = 5e5
# MuJoCo solimp (d0, dmax, width, midpoint, power): the impedance rises from 0.05 at the
# surface to 0.99 over the first 0.1 mm (smoothly, power 2), so the damping force grows from
# ~0 instead of jumping to b v at touch-down (a kink RK4 at 1/15360 s resolved only to +-3 %
# of the apex ratio, by where in a step the contact began), and gravity still acts in that
# layer, which offsets the rebound lost by leaving below the ground (~g / (sqrt(k) v)).
CONTACT_SOLIMP = (0.05, 0.99, 1e-4, 0.5, 2.0)
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


def impedance(depth: float, solimp: tuple[float, ...] = CONTACT_SOLIMP) -> float:
    """MuJoCo's constraint impedance d at penetration ``depth`` [m] for ``solimp`` (d0,
    dmax, width, midpoint, power): d0 at the surface, dmax from ``width`` down, joined by
    two power-law pieces that meet at ``midpoint`` (a C1 sigmoid for power 2)."""
    d0, dmax, width, mid, power = solimp
    x = min(max(depth / width, 0.0), 1.0)
    if x <= mid:
        y = x**power / mid ** (power - 1) if x > 0 else 0.0
    else:
        y = 1 - (1 - x) ** power / (1 - mid) ** (power - 1)
    return d0 + y * (dmax - d0)


def contact_rebound(
    damping: float, impact_speed: float, *, stiffness: float = CONTACT_STIFFNESS,
    solimp: tuple[float, ...] = CONTACT_SOLIMP, gravity: float = GRAVITY,
) -> float:
    """Square root of the apex ratio (rebound apex / drop height) of one bounce on MuJoCo's
    soft contact, from the exact 1-D model of it.

    With penetration x (down) and impedance d(x), MuJoCo's constrained acceleration is the
    unconstrained one (g) mixed with the reference ``-b_r x' - k_r d x``:
    ``x'' = (1 - d) g - d b_r x' - d^2 k_r x``, where the direct solref form sets
    ``k_r = k / dmax^2`` and ``b_r = b / dmax`` (so k and b are the effective values below
    ``width``). The force, proportional to ``g + b_r x' + k_r d x``, is one-sided: the ball
    leaves where it reaches zero, with upward speed u at depth x, and its apex gap is
    ``u^2 / 2g - x`` (0 if it is still held after 4 undamped periods: it came to rest).
    Integrated by DOP853 (rtol 1e-9) with the release as a terminal
    event; it matches MuJoCo at a 1/245760 s step to 1e-4 relative.
    """
    k, b, g, v0 = stiffness, damping, gravity, impact_speed
    dmax, width = solimp[1], solimp[2]
    k_ref, b_ref = k / dmax**2, b / dmax

    def rhs(_t: float, s: np.ndarray) -> tuple[float, float]:
        d = impedance(s[0], solimp)
        return s[1], (1 - d) * g - d * b_ref * s[1] - d * d * k_ref * s[0]

    def force(_t: float, s: np.ndarray) -> float:
        return g + b_ref * s[1] + k_ref * impedance(s[0], solimp) * s[0]

    force.terminal, force.direction = True, -1  # type: ignore[attr-defined]
    period = 2 * math.pi / math.sqrt(k)
    sol = solve_ivp(rhs, (0.0, 4 * period), (0.0, v0), method="DOP853", rtol=1e-9,
                    atol=1e-12 * v0 / math.sqrt(k), events=force,
                    first_step=min(width / v0, period) / 20)
    if not sol.t_events[0].size:  # (near-)critically damped: the ball comes to rest
        return 0.0
    x, dx = sol.y_events[0][0]
    apex = dx * dx / (2 * g) - x
    return math.sqrt(max(apex, 0.0) / (v0 * v0 / (2 * g)))


@functools.cache
def bounce_damping(
    restitution: float, impact_speed: float, *, stiffness: float = CONTACT_STIFFNESS,
    solimp: tuple[float, ...] = CONTACT_SOLIMP, gravity: float = GRAVITY,
) -> float:
    """Contact damping b [1/s] whose bounce at ``impact_speed`` [m/s] has apex ratio e^2.

    Inverts `contact_rebound` (decreasing in b) by Brent's method. A restitution above
    what an undamped contact gives at this speed gets b = 0 (gravity alone costs more).
    """
    kw = {"stiffness": stiffness, "solimp": solimp, "gravity": gravity}
    top = 2 * 0.999 * math.sqrt(stiffness)
    if contact_rebound(0.0, impact_speed, **kw) <= restitution:
        return 0.0
    if contact_rebound(top, impact_speed, **kw) >= restitution:
        return top
    return float(brentq(lambda b: contact_rebound(b, impact_speed, **kw) - restitution,
                        0.0, top, xtol=1e-7 * top))


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
    # contact, 512 substeps. 5: impedance ramp over the first 0.1 mm (`CONTACT_SOLIMP`).
    version: ClassVar[str] = "5"
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
        solimp = " ".join(f"{x:g}" for x in CONTACT_SOLIMP)
        return f"""
<mujoco model="bounce">
  <option gravity="0 0 -{GRAVITY}" cone="elliptic"/>{visual_header(self.config.image_size)}
  <default><geom solref="{solref}" solimp="{solimp}" friction="{mu:.9g} 0 0"
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
