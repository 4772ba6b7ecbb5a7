"""Rigid-body studies: MuJoCo ground truth against closed forms.

* ``bounce_restitution``: apex ratio of the first rebound against e^2 over a grid of e and
  impact speed (the law `rigid/bounce` declares).
* ``pendulum_period``: period of `rigid/pendulum` against the complete elliptic integral.
* ``incline_law``: sliding acceleration of `rigid/incline` against g (sin - mu cos).
* ``elastic_collision``: head-on outcome of `rigid/collision` against the textbook
  velocities of a 1-D elastic collision.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from physground.benchmarks.validation.base import StudyResult
from physground.benchmarks.validation.figures import save_figure

G = 9.81


def first_rebound_apex(z: np.ndarray, vz: np.ndarray, radius: float) -> float:
    """Apex gap [m] of the flight after the first contact: median of gap + vz^2 / 2g over
    the frames with the ball above the ground between the first and the second contact."""
    gap = z - radius
    touching = gap < 0
    first = int(np.argmax(touching))
    released = first + int(np.argmax(~touching[first:]))
    second = released + int(np.argmax(touching[released:])) if touching[released:].any() \
        else len(gap)
    flight = slice(released, second)
    if second - released < 3:
        raise ValueError("the rebound has fewer than 3 frames in the air")
    return float(np.median(gap[flight] + vz[flight] ** 2 / (2 * G)))


def bounce_restitution(quick: bool, out_dir: Path) -> StudyResult:
    """Apex ratio of the first rebound over a grid of e and impact speed, against e^2."""
    from physground.scenario import get_scenario
    from physground.simulators.mujoco.bounce import BALL_RADIUS

    es = (0.3, 0.5, 0.7, 0.95)
    speeds = (1.0, 1.3, 2.7, 5.4) if quick else (1.0, 1.3, 2.0, 2.7, 4.0, 5.4, 8.0)
    # frames at 1/960 s resolve the apex; 16 substeps keep the default 1/15360 s step
    frames = int((2.0 * max(speeds) / G + 0.05) * 960) + 2
    scenario = get_scenario("rigid/bounce", render=False, num_frames=frames, dt=1 / 960,
                            substeps=16)
    params = [{"drop_height": v * v / (2 * G), "restitution": e, "friction": 0.5,
               "horizontal_speed": 0.0, "mass": 1.0} for e in es for v in speeds]
    rollouts = scenario.generate(params, [0] * len(params), "train")
    rows = []
    for p, r in zip(params, rollouts, strict=True):
        e = p["restitution"]
        apex = first_rebound_apex(r.states["pos"][:, 0, 2], r.states["vel"][:, 0, 2],
                                  BALL_RADIUS)
        ratio = apex / p["drop_height"]
        tol = 0.02
        rel = ratio / e**2 - 1
        rows.append({"restitution": e, "impact_speed_m_s": math.sqrt(2 * G * p["drop_height"]),
                     "apex_ratio": ratio, "e_squared": e**2, "rel_error": rel,
                     "tolerance": tol, "passed": abs(rel) <= tol})
    table = pd.DataFrame(rows)

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for e, group in table.groupby("restitution"):
        ax.plot(group["impact_speed_m_s"], 100 * group["rel_error"], "o-", label=f"e = {e:g}")
    ax.axhspan(-2, 2, color="0.9", zorder=0, label="tolerance")
    ax.set_xlabel("impact speed [m/s]")
    ax.set_ylabel("apex ratio / e² - 1 [%]")
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    figure = save_figure(fig, out_dir / "bounce_restitution.png")
    worst = table.loc[table["rel_error"].abs().idxmax()]
    return StudyResult(
        name="bounce_restitution", title="Bounce: apex ratio against e²",
        reference="closed form: a rebound at e times the impact speed reaches e² of the drop "
                  "height (free flight)",
        tolerance="|apex ratio / e² - 1| <= 2 % for e in [0.3, 0.95], impacts of 1-8 m/s",
        passed=bool(table["passed"].all()), table=table, figures=(figure,),
        summary=f"worst {100 * worst['rel_error']:+.2f} % at e = {worst['restitution']:g}, "
                f"{worst['impact_speed_m_s']:.1f} m/s",
        settings={"timestep_s": 1 / 15360, "integrator": "RK4", "frame_dt_s": 1 / 960},
    )


def pendulum_period(quick: bool, out_dir: Path) -> StudyResult:
    """Period of the sphere-bob pendulum against 4 sqrt(L/g) K(sin^2(theta0 / 2))."""
    from physground.scenario import get_scenario
    from physground.simulators.mujoco.pendulum import PIVOT
    from physground.simulators.mujoco.pendulum import pendulum_period as exact

    amplitudes = (0.2, 1.0, 2.0, 2.8) if quick else (0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 2.8, 3.0)
    scenario = get_scenario("rigid/pendulum", render=False, num_frames=480, dt=1 / 60,
                            substeps=16)
    params = [{"length": 0.8, "initial_angle": a, "mass": 1.0} for a in amplitudes]
    rows = []
    for p, r in zip(params, scenario.generate(params, [0] * len(params), "train"),
                    strict=True):
        x = r.states["pos"][:, 0]
        theta = np.arctan2(x[:, 0], PIVOT[2] - x[:, 2])
        t = np.arange(r.num_frames) * r.dt
        i = np.flatnonzero(np.sign(theta[1:]) != np.sign(theta[:-1]))
        crossings = t[i] - theta[i] * (t[i + 1] - t[i]) / (theta[i + 1] - theta[i])
        period = 2 * float(np.mean(np.diff(crossings)))
        want = exact(p["length"], p["initial_angle"])
        rel = period / want - 1
        rows.append({"amplitude_rad": p["initial_angle"], "period_s": period,
                     "elliptic_s": want, "small_angle_s": 2 * math.pi * math.sqrt(0.8 / G),
                     "rel_error": rel, "passed": abs(rel) <= 1e-4})
    table = pd.DataFrame(rows)

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    grid = np.linspace(0.05, 3.05, 200)
    ax.plot(grid, [exact(0.8, a) for a in grid], "-", label="elliptic integral")
    ax.plot(table["amplitude_rad"], table["period_s"], "o", label="MuJoCo")
    ax.axhline(table["small_angle_s"].iloc[0], ls=":", color="0.5", label="small angle")
    ax.set_xlabel("amplitude [rad]")
    ax.set_ylabel("period [s]")
    ax.legend(fontsize=8)
    figure = save_figure(fig, out_dir / "pendulum_period.png")
    return StudyResult(
        name="pendulum_period", title="Pendulum period against the elliptic integral",
        reference="T = 4 sqrt(L_eq / g) K(sin²(θ0/2)), L_eq = L + 0.4 r² / L (sphere bob)",
        tolerance="|T / T_exact - 1| <= 1e-4", passed=bool(table["passed"].all()),
        table=table, figures=(figure,),
        summary=f"max |rel error| {table['rel_error'].abs().max():.1e}",
        settings={"length_m": 0.8, "timestep_s": 1 / 960, "integrator": "RK4"},
    )


def incline_law(quick: bool, out_dir: Path) -> StudyResult:
    """Acceleration of a box sliding down `rigid/incline` against g (sin theta - mu cos)."""
    from physground.scenario import get_scenario
    from physground.simulators.mujoco.incline import HALF, slope_acceleration

    cases = [(20.0, 0.1), (25.0, 0.2), (35.0, 0.3), (45.0, 0.5)]
    if not quick:
        cases += [(15.0, 0.05), (30.0, 0.4), (50.0, 0.8)]  # steeper and rougher tips over
    scenario = get_scenario("rigid/incline", render=False)
    params = [{"incline_angle": math.radians(a), "friction": mu, "initial_speed": 0.0,
               "mass": 1.0} for a, mu in cases]
    rows = []
    for p, r in zip(params, scenario.generate(params, [0] * len(params), "train"),
                    strict=True):
        down = r.static["incline_down"]
        x = r.states["pos"][:, 0]
        s, v = (x - x[0]) @ down, r.states["vel"][:, 0] @ down
        t = np.arange(r.num_frames) * r.dt
        sliding = (x[:, 2] > 0.3 + HALF[2]) & (v > 0.02)
        fit = 2 * float(np.polyfit(t[sliding], s[sliding], 2)[0])
        want = slope_acceleration(p)
        rel = fit / want - 1
        rows.append({"angle_deg": math.degrees(p["incline_angle"]), "friction": p["friction"],
                     "acceleration_m_s2": fit, "expected_m_s2": want, "rel_error": rel,
                     "frames_fitted": int(sliding.sum()), "passed": abs(rel) <= 0.01})
    table = pd.DataFrame(rows)

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(table["expected_m_s2"], table["acceleration_m_s2"], "o", label="MuJoCo")
    top = 1.05 * table["expected_m_s2"].max()
    ax.plot([0, top], [0, top], "-", color="0.5", label="g (sin θ - μ cos θ)")
    ax.set_xlabel("expected acceleration [m/s²]")
    ax.set_ylabel("fitted acceleration [m/s²]")
    ax.legend(fontsize=8)
    figure = save_figure(fig, out_dir / "incline_law.png")
    return StudyResult(
        name="incline_law", title="Incline: sliding acceleration against Coulomb's law",
        reference="a = g (sin θ - μ cos θ) for a box sliding on a slope",
        tolerance="|a_fit / a - 1| <= 1 %", passed=bool(table["passed"].all()),
        table=table, figures=(figure,),
        summary=f"max |rel error| {100 * table['rel_error'].abs().max():.2f} %",
    )


def elastic_collision(quick: bool, out_dir: Path) -> StudyResult:
    """Head-on elastic collision of two spheres against the textbook 1-D velocities."""
    from physground.simulators.mujoco.collision import ScenarioCollision

    class HeadOn(ScenarioCollision):
        """Two spheres on the x axis closing at +-speed."""

        def initial_state(self, model, params, seed):  # type: ignore[no-untyped-def]
            v = params["speed"]
            return np.array([-0.6, 0.0, 0.6, 0.0]), np.array([v, 0.0, -v, 0.0])

    ratios = (1.0, 1.7, 3.0) if quick else (1.0, 1.3, 1.7, 2.2, 3.0)
    scenario = HeadOn(render=False, num_frames=30)
    params = [{"num_spheres": 2, "mass": 1.0, "mass_ratio": q, "speed": 2.0} for q in ratios]
    rows = []
    for r in scenario.generate(params, [0] * len(params), "train"):
        m1, m2 = r.static["mass"]
        u1, u2 = 2.0, -2.0
        v1 = ((m1 - m2) * u1 + 2 * m2 * u2) / (m1 + m2)
        v2 = ((m2 - m1) * u2 + 2 * m1 * u1) / (m1 + m2)
        got = r.states["vel"][-1, :, 0]
        err = float(np.abs(got - [v1, v2]).max() / 4.0)  # of the closing speed
        ke0 = 0.5 * (m1 * u1**2 + m2 * u2**2)
        ke1 = 0.5 * (m1 * got[0] ** 2 + m2 * got[1] ** 2)
        p0, p1 = m1 * u1 + m2 * u2, m1 * got[0] + m2 * got[1]
        rows.append({"mass_ratio": m2 / m1, "v1_m_s": got[0], "v1_expected": v1,
                     "v2_m_s": got[1], "v2_expected": v2, "velocity_error_rel": err,
                     "energy_rel_change": ke1 / ke0 - 1, "momentum_change": p1 - p0,
                     "passed": err <= 0.01 and abs(ke1 / ke0 - 1) <= 0.01
                     and abs(p1 - p0) <= 1e-9})
    table = pd.DataFrame(rows)

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    q = np.linspace(0.8, 3.2, 100)
    ax.plot(q, (2 - 6 * q) / (1 + q), "-", color="C0", label="v1 textbook")
    ax.plot(q, (6 - 2 * q) / (1 + q), "-", color="C1", label="v2 textbook")
    ax.plot(table["mass_ratio"], table["v1_m_s"], "o", color="C0", label="v1 MuJoCo")
    ax.plot(table["mass_ratio"], table["v2_m_s"], "s", color="C1", label="v2 MuJoCo")
    ax.set_xlabel("mass ratio m2 / m1")
    ax.set_ylabel("velocity after collision [m/s]")
    ax.legend(fontsize=8)
    figure = save_figure(fig, out_dir / "elastic_collision.png")
    return StudyResult(
        name="elastic_collision", title="Elastic collision against the textbook outcome",
        reference="v1' = ((m1 - m2) u1 + 2 m2 u2) / (m1 + m2), v2' symmetric; momentum and "
                  "kinetic energy conserved",
        tolerance="velocities within 1 % of the closing speed, kinetic energy within 1 %, "
                  "momentum to 1e-9 kg m/s",
        passed=bool(table["passed"].all()), table=table, figures=(figure,),
        summary=f"max velocity error {100 * table['velocity_error_rel'].max():.2f} % of "
                "the closing speed",
    )
