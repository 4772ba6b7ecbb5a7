"""Cross-engine cloth study: `cloth/hanging` in physground's Warp cloth and in Newton.

* ``cloth_cross_engine``: the hanging-sheet scene (placement, pins and material drawn as in
  `cloth/hanging`) simulated by physground's kernels (`SimulatorWarpCloth`) and by
  Newton's ``SolverSemiImplicit`` on the same spring lattice (the same springs, rest
  lengths, spring constants ``k kappa_s`` and dampings ``c kappa_s``, node masses ``M / N``,
  pinned nodes as zero-mass particles), both at the scenario's substep. Newton's springs
  have no bending term and no cell drag, so both run with bending and air drag off (the
  one model both engines share). The position difference over time is shown beside the
  noise floor of a second take of the same scene (parameters within the scenario's
  measurement precision, `Scenario.take_params`, re-simulated by the Warp cloth at the
  reference substep, `reference_overrides`) and beside the growth of a 1e-6 m nudge of the
  initial positions in the Warp cloth: without bending the released sheet buckles
  chaotically, so any round-off-sized difference (such as two engines' summation orders)
  grows to the second take's size within a second. Then each engine's rest shape, after
  damping, is held against the lattice's own static equilibrium (float64 energy
  minimum, `study_cloth.lattice_equilibrium`): the closed form that says which engine is
  right should they disagree.

Registered only when the optional ``newton`` extra is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from physground.benchmarks.validation.base import STUDIES, StudyResult
from physground.benchmarks.validation.figures import save_figure
from physground.simulators.newton import INSTALLED
from physground.simulators.warp.cloth import GRAVITY, ClothTopology

# Allowance for float32 round-off (m): both engines step in float32 with different
# summation orders; 1e-5 m is ~100 ulp of a 1 m coordinate.
ROUNDOFF = 1e-5
PERTURBATION = 1e-6  # m, the nudge of the chaos probe
REST_TOLERANCE = 2e-4  # m, rest shape vs the lattice equilibrium (as `cloth_static_sag`)


def newton_cloth_rollout(topo: ClothTopology, x0: np.ndarray, v0: np.ndarray,
                         pinned: np.ndarray, *, stiffness: float, mass: float, damping: float,
                         frames: int, substeps: int, frame_dt: float = 1 / 30
                         ) -> np.ndarray:
    """Positions [T,N,3] (float64 copy of float32) of the sheet's spring lattice stepped by
    Newton's semi-implicit solver: springs ``stiffness * kappa`` (N/m) and damping
    ``damping * kappa`` (N s/m), node mass ``mass / N`` (kg), pinned nodes massless
    (never move), gravity -z, no contacts."""
    import warp as wp

    from physground.simulators.newton.granular import require_newton
    from physground.simulators.warp.common import start_warp

    newton = require_newton()
    start_warp()
    builder = newton.ModelBuilder()
    node_mass = mass / topo.num_nodes
    for p, v, fixed in zip(x0, v0, pinned, strict=True):
        builder.add_particle(pos=wp.vec3(*p), vel=wp.vec3(*(0.0 * v if fixed else v)),
                             mass=0.0 if fixed else node_mass, radius=1e-4)
    for (i, j), kappa in zip(topo.springs, topo.kappa, strict=True):
        builder.add_spring(int(i), int(j), float(stiffness * kappa), float(damping * kappa),
                           control=0.0)
    model = builder.finalize(device="cpu")
    model.set_gravity(tuple(float(g) for g in GRAVITY))
    model.particle_grid = None  # no particle-particle contact: springs and gravity only
    solver = newton.solvers.SolverSemiImplicit(model)
    state, scratch = model.state(), model.state()
    # builder rest lengths are measured from the initial positions; use the flat sheet's
    model.spring_rest_length.assign(wp.array(topo.spring_rest.astype(np.float32),
                                             dtype=wp.float32, device="cpu"))
    dt = frame_dt / substeps
    xs = np.empty((frames, topo.num_nodes, 3))
    for frame in range(frames):
        xs[frame] = state.particle_q.numpy()
        if frame == frames - 1:
            break
        for _ in range(substeps):
            state.clear_forces()
            solver.step(state, scratch, None, None, dt)
            state, scratch = scratch, state
    return xs


def _first_over(curve: np.ndarray, level: float) -> int:
    """First frame where ``curve`` exceeds ``level`` (-1: never)."""
    over = np.nonzero(curve > level)[0]
    return int(over[0]) if len(over) else -1


def _rms(a: np.ndarray, b: np.ndarray, free: np.ndarray) -> np.ndarray:
    """RMS over the free nodes of the position difference per frame, [T] (m)."""
    return np.sqrt(np.mean(np.sum((a[:, free] - b[:, free]) ** 2, axis=-1), axis=-1))


def hanging_scene(seed: int, split: str = "train") -> tuple[Any, dict[str, float], ClothTopology,
                                                            np.ndarray, np.ndarray, np.ndarray]:
    """(scenario, params, topology, x0, v0, pinned) of `cloth/hanging` rollout ``seed``."""
    from physground.scenario import get_scenario

    scenario = get_scenario("cloth/hanging", render=False)
    params = scenario.sample_params(split, seed)
    topo = scenario.topology()
    x0, v0 = scenario.place(params, seed, topo)
    return scenario, params, topo, x0, v0, scenario.pinned(params, topo)


def cloth_cross_engine(quick: bool, out_dir: Path) -> StudyResult:
    """Warp cloth vs Newton semi-implicit on `cloth/hanging` scenes: dynamic difference
    against the second-take floor, and both rest shapes against the lattice equilibrium."""
    from physground.benchmarks.validation.study_cloth import (
        lattice_equilibrium,
        simulate_sheet,
    )

    seeds = (0,) if quick else (0, 1, 2)
    rows, curves = [], []
    for seed in seeds:
        scenario, p, topo, x0, v0, pinned = hanging_scene(seed)
        cfg = scenario.config
        frames = cfg.num_frames
        seconds = (frames - 1) * cfg.dt
        common = {"bending": 0.0, "air_drag": 0.0, "frame_dt": cfg.dt, "v0": v0}
        warp_x, _ = simulate_sheet(topo, x0, pinned, stiffness=p["stiffness"], mass=p["mass"],
                                   damping=p["damping"], seconds=seconds,
                                   substeps=cfg.substeps, **common)
        newton_x = newton_cloth_rollout(topo, x0, v0, pinned, stiffness=p["stiffness"],
                                        mass=p["mass"], damping=p["damping"], frames=frames,
                                        substeps=cfg.substeps, frame_dt=cfg.dt)
        take = scenario.take_params(p, seed, "train")
        take_x, _ = simulate_sheet(
            topo, x0, pinned, stiffness=take["stiffness"], mass=take["mass"],
            damping=take["damping"], seconds=seconds,
            substeps=scenario.reference_overrides["substeps"], **common)
        # the same Warp run from positions moved by 1e-6 m: how fast this scene amplifies
        # a round-off-sized difference (the bending-free sheet buckles chaotically)
        nudge = np.random.default_rng(seed).normal(0.0, PERTURBATION, x0.shape) * ~pinned[:, None]
        nudged_x, _ = simulate_sheet(topo, x0 + nudge, pinned, stiffness=p["stiffness"],
                                     mass=p["mass"], damping=p["damping"], seconds=seconds,
                                     substeps=cfg.substeps, **common)
        free = ~pinned
        warp64 = warp_x.astype(np.float64)
        engines = _rms(warp64, newton_x, free)
        floor = _rms(warp64, take_x.astype(np.float64), free)
        nudged = _rms(warp64, nudged_x.astype(np.float64), free)
        t = np.arange(frames) * cfg.dt
        # the noise floor of this chaotic scene: a second take, or the growth of a
        # round-off-sized nudge, whichever is larger (and float32 round-off itself)
        excess = engines - np.maximum(np.maximum(floor, nudged), ROUNDOFF)
        seen = floor > ROUNDOFF
        rows.append({"seed": seed, "check": "dynamics", "stiffness_N_per_m": p["stiffness"],
                     "mass_kg": p["mass"], "damping_N_s_per_m": p["damping"],
                     "pin_layout": p["pin_layout"],
                     "max_rms_warp_vs_newton_m": float(engines.max()),
                     "max_rms_second_take_m": float(floor.max()),
                     "max_rms_warp_nudged_1e-6_m": float(nudged.max()),
                     "first_frame_engines_over_1e-4_m": _first_over(engines, 1e-4),
                     "first_frame_nudged_over_1e-4_m": _first_over(nudged, 1e-4),
                     "max_ratio_engines_over_second_take": float((engines[seen]
                                                                  / floor[seen]).max()),
                     "passed": bool((excess <= 0).all())})
        curves.append((t, engines, floor, nudged, seed))
    # Rest shapes: the first scene's sheet hung by its whole top edge (pin layout 1),
    # released at rest hanging straight down (a swing about the pins is a rigid motion the
    # spring damping never stops; two-corner pins leave a slow, weakly damped sway),
    # damped to rest in both engines.
    scenario, p, topo, x0, _, _ = hanging_scene(0)
    p = {**p, "pin_layout": 1.0}
    pinned = scenario.pinned(p, topo)
    # 12 s: the slowest in-plane mode (the free corners' sway) rings down to ~0.2 mm
    damping, seconds = 0.5, 12.0
    substeps = scenario.config.substeps
    hang = x0.copy()
    hang[:, 1] = x0[pinned, 1].mean()
    hang[:, 2] = x0[:, 2] - (1.0 - topo.uv[:, 1]) * topo.size
    still = np.zeros_like(hang)
    warp_x, _ = simulate_sheet(topo, hang, pinned, stiffness=p["stiffness"], mass=p["mass"],
                               damping=damping, seconds=seconds, substeps=substeps,
                               bending=0.0, air_drag=0.0, v0=still)
    newton_x = newton_cloth_rollout(topo, hang, still, pinned, stiffness=p["stiffness"],
                                    mass=p["mass"], damping=damping,
                                    frames=int(round(seconds * 30)) + 1, substeps=substeps)
    x_eq = lattice_equilibrium(topo, p["stiffness"], p["mass"], pinned, hang, 0.0)
    bottom = np.isclose(topo.uv[:, 1], 0.0)
    for engine, xs in (("warp", warp_x.astype(np.float64)), ("newton", newton_x)):
        err = float(np.abs(xs[-1] - x_eq).max())
        rows.append({"seed": 0, "check": f"rest shape ({engine})",
                     "stiffness_N_per_m": p["stiffness"], "mass_kg": p["mass"],
                     "damping_N_s_per_m": damping, "pin_layout": p["pin_layout"],
                     "max_abs_rest_minus_lattice_m": err,
                     "bottom_sag_m": float(np.mean(hang[bottom, 2] - xs[-1][bottom, 2])),
                     "bottom_sag_lattice_m": float(np.mean(hang[bottom, 2] - x_eq[bottom, 2])),
                     "passed": err < REST_TOLERANCE})
    table = pd.DataFrame(rows)
    figure = _plot(out_dir / "cloth_cross_engine.png", curves)
    dyn = table[table.check == "dynamics"]
    rest = table[table.check != "dynamics"]
    return StudyResult(
        name="cloth_cross_engine",
        title="Cloth: physground's Warp cloth against Newton on cloth/hanging",
        reference="Newton SolverSemiImplicit on the same spring lattice; noise floor: a "
                  "second take of the scene (Scenario.take_params, reference substep); "
                  "static equilibrium of the lattice (float64 energy minimum)",
        tolerance=f"RMS position difference of the free nodes <= the noise floor at every "
                  f"frame: the larger of the second take's difference, of a {PERTURBATION:g} m "
                  f"nudge's growth (the bending-free sheet is chaotic) and {ROUNDOFF:g} m; "
                  f"each rest shape within {REST_TOLERANCE:g} m of the lattice equilibrium",
        passed=bool(table["passed"].all()), table=table, figures=(figure,),
        summary=f"engines differ by at most {dyn.max_rms_warp_vs_newton_m.max():.2e} m, "
                f"second take by {dyn.max_rms_second_take_m.max():.2e} m; rest shapes within "
                f"{rest.max_abs_rest_minus_lattice_m.max():.2e} m of the lattice",
        settings={"scenes": f"cloth/hanging train seeds {list(seeds)}",
                  "bending": 0.0, "air_drag": 0.0,
                  "substeps": "scenario's (80 per frame); second take at 160",
                  "rest_damping": damping, "rest_seconds": seconds},
    )


def _plot(path: Path, curves: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]]
          ) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for t, engines, floor, nudged, seed in curves:
        line, = ax.semilogy(t[1:], engines[1:], label=f"Warp vs Newton, seed {seed}")
        ax.semilogy(t[1:], floor[1:], "--", color=line.get_color(),
                    label=f"second take, seed {seed}")
        ax.semilogy(t[1:], nudged[1:], ":", color=line.get_color(),
                    label=f"Warp nudged {PERTURBATION:g} m, seed {seed}")
    ax.axhline(ROUNDOFF, color="0.6", lw=0.8, label="round-off allowance")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("RMS node position difference (m)")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


if INSTALLED:
    STUDIES.register("cloth_cross_engine", f"{__name__}:cloth_cross_engine",
                     tags=("cloth", "newton", "slow"))
