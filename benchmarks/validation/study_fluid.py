"""Liquid studies: the SPH dam break against experiment and hydrostatics.

* ``dam_break_front``: surge-front position of a 2:1 column against Martin & Moyce (1952).
* ``hydrostatic_density``: density of a column at rest against the hydrostatic pressure
  inverted through the Tait equation.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from physground.benchmarks.validation.base import StudyResult
from physground.benchmarks.validation.figures import save_figure

MARTIN_MOYCE = "martin_moyce_1952.csv"
LETHE_SHIFT = 0.175  # T added to the simulated time in Lethe's Martin & Moyce example (diagnostic)
G = 9.81


def martin_moyce() -> pd.DataFrame:
    """Martin & Moyce (1952), Fig. 3, n^2 = 2: columns ``a_inch``, ``T``, ``Z``."""
    data = resources.files("physground.benchmarks.validation") / "reference" / MARTIN_MOYCE
    with data.open() as f:
        return pd.read_csv(f, comment="#")


def wendland_2d(q: np.ndarray, support: float) -> np.ndarray:
    """Wendland C2 kernel in 2-D [1/m^2] at distances ``q`` in units of ``support``."""
    s = np.clip(1 - q, 0, None)
    return 7 / (math.pi * support**2) * s**4 * (1 + 4 * q)


def summation_density(x: np.ndarray, static: dict) -> np.ndarray:
    """SPH summation density [kg/m^2] of positions [N,2] with the scenario's mirror walls
    (left, right, floor) and kernel normalisation, recomputed independently in NumPy."""
    support = float(static["kernel_support"])
    mass = float(static["particle_mass"]) * float(static.get("kernel_normalization", 1.0))
    width = float(static["box"][2])
    rho = np.zeros(len(x))
    for image in (x, x * [-1, 1], x * [1, -1], x * [-1, -1],
                  np.stack([2 * width - x[:, 0], x[:, 1]], 1),
                  np.stack([2 * width - x[:, 0], -x[:, 1]], 1)):
        q = np.linalg.norm(x[:, None] - image[None], axis=-1) / support
        rho += mass * np.sum(wendland_2d(q, support), axis=1)
    return rho


def edge_front(x: np.ndarray, static: dict, step: float | None = None) -> np.ndarray:
    """Leading edge [m] of the water body on the floor for positions [T,N,2]: the largest x
    where the kernel-summed colour function ``c(x, 0) = kappa m / rho_0 sum_j W`` (floor
    ghosts included) is still >= 1/2, linearly interpolated between probes ``step`` apart
    (default spacing / 8).

    A continuum edge, like the liquid fraction 1/2 contour of VOF: half a particle spacing
    beyond the last particle centre of a flat front (``c`` = 1 inside the lattice, ~1/2 at
    its edge), so the column starts at exactly x = a where the particle centres start at
    a - dx / 2.
    """
    support = float(static["kernel_support"])
    spacing = float(static["spacing"])
    weight = float(static["particle_mass"]) * float(static.get("kernel_normalization", 1.0))
    weight /= float(static["rest_density"])
    step = spacing / 8 if step is None else step
    out = np.full(len(x), np.nan)
    for k, frame in enumerate(x):
        low = frame[frame[:, 1] < support]
        if not len(low):
            continue
        probes = np.arange(max(low[:, 0].min() - support, 0.0), low[:, 0].max() + support, step)
        r = np.hypot(probes[:, None] - low[None, :, 0], low[None, :, 1]) / support
        colour = 2 * weight * np.sum(wendland_2d(r, support), axis=1)
        wet = np.flatnonzero(colour >= 0.5)
        if not len(wet):
            continue
        i = wet[-1]
        if i + 1 < len(probes):
            c0, c1 = colour[i], colour[i + 1]
            out[k] = probes[i] + step * (c0 - 0.5) / (c0 - c1)
        else:
            out[k] = probes[i]
    return out


def release_delay(
    big_t: np.ndarray, front: np.ndarray, points: pd.DataFrame, most: float = 0.5
) -> tuple[float, np.ndarray]:
    """The time shift dT (>= 0) of the simulated front Z(T - dT) that minimises the largest
    relative error against ``points`` (columns ``T``, ``Z``), and those errors.

    A diagnostic, not the pass criterion: it separates a late start of the experiment
    (finite release of the column) from an error in the front's shape.
    """
    best_shift, best_errors = 0.0, np.full(len(points), np.inf)
    for shift in np.arange(0.0, most + 1e-9, 0.005):
        errors = np.interp(points["T"].to_numpy() - shift, big_t, front) / points["Z"] - 1
        if np.abs(errors).max() < np.abs(best_errors).max():
            best_shift, best_errors = float(shift), np.asarray(errors)
    return best_shift, best_errors


def dam_break_front(quick: bool, out_dir: Path) -> StudyResult:
    """Front position Z = x / a against T = t sqrt(2 g / a) for T <= 3.

    The front is the water body's leading edge on the floor (`edge_front`: colour function
    1/2, the liquid-fraction 1/2 of VOF comparisons): an isolated particle ahead of the body
    does not count, and the column starts at Z = 1.00 (the largest particle centre starts
    at Z = 1 - dx / 2a and is reported alongside).

    Measured (viscosity 0.1, free-slip floor, c = 60 m/s): the edge runs ahead of the
    published points most at T = 1.21, by +12.4 %, +16.3 % and +19.0 % at dx = 25, 12.5 and
    6.25 mm (largest particle x: +8.3, +14.2, +17.9 %); the error grows as the resolution
    goes up (and the artificial viscosity, which scales with h, goes down), towards the
    inviscid solution. Ruled out as the cause, each measured at those spacings:

    * front definition: the tip is the body, not a sheet (at T = 1.2 the layer 3 dx behind
      the tip is 2.3-3.2 dx thick); even the furthest x where the layer is >= 0.1 a deep
      leads by +6.1, +9.2, +11.8 %;
    * sound speed: c = 120 m/s with alpha = 0.05 (the same artificial viscosity alpha h c)
      gives +13.3 % (edge, dx = 25 mm) against +12.4 % at c = 60 m/s; density <= 1.008 rho_0;
    * initial state: the column starts at rest, pre-compressed hydrostatically (the
      ``hydrostatic_density`` study holds it within 0.5 % and 0.02 m/s rms);
    * the published points: the CSV (PySPH's digitisation of Fig. 3) agrees within 2 % with
      an independent transcription of the paper's tabulated front times (Z = 1.22, 1.44,
      1.89 at T = 0.84, 1.19, 1.63).

    The shape matches within 4.1-5.0 % once the simulated edge is delayed by dT = 0.125,
    0.195, 0.240 (`release_delay`, fitted per spacing; 5-13 ms at the experiment's a = 1.125
    and 2.25 in). A fixed delay is what Lethe's Martin & Moyce example applies (its
    post-processing adds ``time_correction = 0.175`` to the simulated T, with the liquid
    fraction 1/2 as the front, chaos-polymtl/lethe examples/multiphysics/dam-break/
    dam-break-2d.py, no rationale given): with dT = 0.175 the edge is within 6.9, 5.3,
    7.5 % (column ``rel_error_lethe_shift``), still over 5 %. A late start alone does not
    fit the paper's own first tabulated point either (T = 0.41, Z = 1.11, in the table
    transcription Lethe ships): there the undelayed edge agrees within -2.2, -1.1, -0.2 %;
    the experiment's front then advances only 0.12 a up to T = 0.84, the simulated one
    0.22-0.29 a. A published particle method shows the same pattern: Koshizuka & Oka's
    (1996) MPS front (the curve PySPH ships in db_exp_data.py) is +1.0 % at the tabulated
    T = 0.41, +8.4 % at T = 1.21 and -9.2 % at T = 2.95. Later on the simulated front is
    slower than the experiment (dZ/dT = 1.35-1.43 for T in 2.2-3, the 1.125 in series 1.56,
    Ritter's inviscid shallow-water tip 2). No source at hand states how the column was
    released or what held the early front back (floor friction and surface tension at
    a = 3-6 cm are absent from the model), so the criterion stays undelayed. A no-slip
    floor (wall ghosts with reversed tangential velocity under the same artificial
    viscosity) falls behind instead, -14.8 % at T = 2.95 (dx = 25 mm, largest particle x):
    the artificial viscosity (alpha h c / 8 = 0.024 m^2/s at 25 mm, 24000x water) makes its
    boundary layer the whole surge.
    """
    from physground.scenario import get_scenario

    spacings = (0.025,) if quick else (0.025, 0.0125)
    reference = martin_moyce()
    points = reference[reference["T"] <= 3.0]
    rows, curves = [], {}
    for dx in spacings:
        columns = int(round(0.25 / dx))
        a = columns * dx
        substeps = int(round(240 * 0.025 / dx / 4))  # dt / substeps scales with dx (CFL)
        scenario = get_scenario("fluid/dam_break", render=False, columns=columns,
                                rows=2 * columns, spacing=dx, num_frames=48, dt=1 / 120,
                                substeps=substeps)
        (r,) = scenario.generate([{"viscosity": 0.1, "gravity": G, "box_width": 2.0}], [0],
                                 "train")
        t = np.arange(r.num_frames) * r.dt
        big_t = t * math.sqrt(2 * G / a)
        front = edge_front(r.states["x"], r.static) / a
        lead = r.states["x"][:, :, 0].max(axis=1) / a
        delay, delayed = release_delay(big_t, front, points)
        curves[dx] = (big_t, front, delay)
        for k, (_, point) in enumerate(points.iterrows()):
            z = float(np.interp(point["T"], big_t, front))
            rel = z / point["Z"] - 1
            rows.append({"spacing_m": dx, "series_a_inch": point["a_inch"], "T": point["T"],
                         "Z_measured": point["Z"], "Z_sph": z, "rel_error": rel,
                         "passed": abs(rel) <= 0.05,
                         "Z_sph_lead_particle": float(np.interp(point["T"], big_t, lead)),
                         "release_delay_T": delay, "rel_error_delayed": float(delayed[k]),
                         "rel_error_lethe_shift": float(np.interp(
                             point["T"] - LETHE_SHIFT, big_t, front) / point["Z"] - 1)})
    table = pd.DataFrame(rows)

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for dx, (big_t, front, delay) in curves.items():
        keep = big_t <= 3.3
        (line,) = ax.plot(big_t[keep], front[keep], "-", label=f"SPH, dx = {dx * 1000:g} mm")
        ax.plot(big_t[keep] + delay, front[keep], "--", color=line.get_color(), lw=1,
                label=f"same, delayed by ΔT = {delay:.3f}")
    for a_inch, series in reference[reference["T"] <= 3.3].groupby("a_inch"):
        ax.plot(series["T"], series["Z"], "o", mfc="none", label=f"Martin & Moyce, a = {a_inch} in")
    ax.set_xlabel("T = t √(2g/a)")
    ax.set_ylabel("Z = x_front / a")
    ax.legend(fontsize=8)
    figure = save_figure(fig, out_dir / "dam_break_front.png")
    worst = table.loc[table["rel_error"].abs().idxmax()]
    lead_rel = table["Z_sph_lead_particle"] / table["Z_measured"] - 1
    delays = ", ".join(f"{g['release_delay_T'].iloc[0]:.3f}"
                       for _, g in table.groupby("spacing_m", sort=False))
    return StudyResult(
        name="dam_break_front", title="Dam break: surge front against Martin & Moyce (1952)",
        reference="Martin, J. C. & Moyce, W. J. (1952), Phil. Trans. R. Soc. Lond. A 244, "
                  "312-324, Fig. 3 (n² = 2), doi:10.1098/rsta.1952.0006",
        tolerance="|Z_sph / Z_measured - 1| <= 5 % at every published point with T <= 3",
        passed=bool(table["passed"].all()), table=table, figures=(figure,),
        summary=f"water edge worst {100 * worst['rel_error']:+.1f} % at T = {worst['T']:.2f} "
                f"(dx = {1000 * worst['spacing_m']:g} mm; largest particle x: "
                f"{100 * lead_rel.abs().max():.1f} %); delayed by dT = {delays} (per "
                f"spacing) the edge is within {100 * table['rel_error_delayed'].abs().max():.1f}"
                f" % of every point, with Lethe's fixed dT = {LETHE_SHIFT} within "
                f"{100 * table['rel_error_lethe_shift'].abs().max():.1f} %; what holds the "
                "experiment's early front back is not known",
        settings={"column": "a x 2a, a = 0.25 m", "box_width_m": 2.0, "viscosity": 0.1,
                  "front": "floor colour function 1/2 (edge_front)"},
    )


def hydrostatic_density(quick: bool, out_dir: Path) -> StudyResult:
    """Density of a settled column filling its box against rho_0 (1 + p / B)^(1/7), with the
    pressure p = g (mass above) / width counted from the particles themselves."""
    from physground.scenario import get_scenario

    sound = 10.0  # m/s: soft enough that the floor compression (~3.5 %) dwarfs kernel noise
    columns, rows_n, dx = 12, 16, 0.025
    frames = 45 if quick else 90
    scenario = get_scenario("fluid/dam_break", render=False, columns=columns, rows=rows_n,
                            spacing=dx, sound_speed=sound, substeps=40, num_frames=frames)
    (r,) = scenario.generate([{"viscosity": 0.4, "gravity": G, "box_width": columns * dx}],
                             [0], "train")
    x, v = r.states["x"][-1], r.states["v"][-1]
    rho0 = float(r.static["rest_density"])
    stiffness = rho0 * sound**2 / 7
    mass = float(r.static["particle_mass"])
    rho = summation_density(x, r.static)
    above = (x[None, :, 1] > x[:, None, 1]).sum(axis=1)  # particles above each particle
    pressure = G * mass * (above + 0.5) / (columns * dx)
    expected = rho0 * (1 + pressure / stiffness) ** (1 / 7)
    interior = x[:, 1] < x[:, 1].max() - float(r.static["kernel_support"])
    rel = rho[interior] / expected[interior] - 1
    depth = x[:, 1].max() - x[:, 1]
    bins = np.linspace(depth[interior].min(), depth[interior].max(), 7)
    which = np.digitize(depth[interior], bins[1:-1])
    table = pd.DataFrame([
        {"depth_m": float(depth[interior][which == k].mean()),
         "density_sph": float(rho[interior][which == k].mean()),
         "density_hydrostatic": float(expected[interior][which == k].mean()),
         "rel_error": float(rel[which == k].mean()),
         "particles": int((which == k).sum())}
        for k in range(len(bins) - 1) if (which == k).any()
    ])
    v_rms = float(np.sqrt((v**2).sum(-1).mean()))
    table["passed"] = table["rel_error"].abs() <= 0.005
    passed = bool(table["passed"].all()) and v_rms < 0.02

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    order = np.argsort(depth[interior])
    ax.plot(rho[interior] / rho0, depth[interior], ".", ms=3, color="0.6", label="particles")
    ax.plot(expected[interior][order] / rho0, depth[interior][order], "-",
            label="hydrostatic (Tait)")
    ax.plot(table["density_sph"] / rho0, table["depth_m"], "o", label="SPH, binned")
    ax.invert_yaxis()
    ax.set_xlabel("density / ρ0")
    ax.set_ylabel("depth below surface [m]")
    ax.legend(fontsize=8)
    figure = save_figure(fig, out_dir / "hydrostatic_density.png")
    return StudyResult(
        name="hydrostatic_density", title="Column at rest: hydrostatic density profile",
        reference="hydrostatics p = ρ g depth (mass above per width) through the Tait "
                  "equation ρ = ρ0 (1 + p / B)^(1/7), B = ρ0 c² / 7",
        tolerance="binned |ρ / ρ_hydrostatic - 1| <= 0.5 % below the surface layer; "
                  "rms speed < 0.02 m/s after settling",
        passed=passed, table=table, figures=(figure,),
        summary=f"max binned error {100 * table['rel_error'].abs().max():.2f} %, "
                f"floor compression {100 * (table['density_hydrostatic'].max() / rho0 - 1):.1f} %, "
                f"rms speed {v_rms:.4f} m/s after {r.num_frames * r.dt:.1f} s",
        settings={"sound_speed_m_s": sound, "columns": columns, "rows": rows_n,
                  "viscosity": 0.4, "settle_s": (frames - 1) * r.dt},
    )
