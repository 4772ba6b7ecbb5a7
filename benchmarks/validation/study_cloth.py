"""Cloth validation: static sag against the lattice's own equilibrium and the continuum
closed form, and energy balance with damping off.

The lattice analysis here is independent of the Warp kernels: the elastic energy of the
spring network plus bending and gravity, minimised in float64 (L-BFGS with the exact
gradient). Its Hessian at the equilibrium gives the small-oscillation modes ``omega^2``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.optimize

from physground.benchmarks.validation.base import STUDIES, StudyResult
from physground.benchmarks.validation.figures import save_figure
from physground.simulators.warp.cloth import (
    GRAVITY,
    ClothEnvParams,
    ClothTopology,
    SimulatorWarpCloth,
    bend_stiffness,
    bending_energy,
    bending_forces_numpy,
    cloth_energy,
    cloth_topology,
)


def hanging_sheet(resolution: int, size: float = 1.0) -> tuple[ClothTopology, np.ndarray,
                                                                np.ndarray]:
    """Flat vertical sheet in the x-z plane, its top edge pinned: (topology, x [N,3], pinned)."""
    topo = cloth_topology(resolution, size)
    uv = topo.uv
    x = np.stack([(uv[:, 0] - 0.5) * size, np.zeros(len(uv)), 1.0 + uv[:, 1] * size], axis=1)
    return topo, x, np.isclose(uv[:, 1], 1.0)


def lattice_energy(free_x: np.ndarray, topo: ClothTopology, stiffness: float, mass: float,
                   free: np.ndarray, x_fixed: np.ndarray, kb: float,
                   load: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Energy (J) and its gradient over the free coordinates: springs + bending + gravity
    (+ a constant external force ``load [N,3]``)."""
    n = topo.num_nodes
    x = x_fixed.copy()
    x[free] = free_x.reshape(-1, 3)
    i, j = topo.springs.T
    d = x[j] - x[i]
    length = np.linalg.norm(d, axis=1)
    ks = stiffness * topo.kappa
    stretch = length - topo.spring_rest
    external = mass / n * np.broadcast_to(GRAVITY, x.shape)
    if load is not None:
        external = external + load
    energy = 0.5 * np.sum(ks * stretch**2) + bending_energy(x, topo, kb) - np.sum(external * x)
    fs = (ks * stretch / length)[:, None] * d
    grad = np.zeros_like(x)
    np.add.at(grad, i, -fs)
    np.add.at(grad, j, fs)
    grad -= external + bending_forces_numpy(x, topo, kb)
    return float(energy), grad[free].ravel()


def lattice_equilibrium(topo: ClothTopology, stiffness: float, mass: float, pinned: np.ndarray,
                        x0: np.ndarray, bending: float,
                        load: np.ndarray | None = None) -> np.ndarray:
    """Static equilibrium positions [N,3] of the lattice (float64, gradient ~1e-9 N)."""
    free = ~pinned
    kb = bend_stiffness(topo, bending)
    result = scipy.optimize.minimize(
        lattice_energy, x0[free].ravel(), args=(topo, stiffness, mass, free, x0, kb, load),
        jac=True, method="L-BFGS-B",
        options={"maxiter": 50000, "gtol": 1e-11, "ftol": 1e-16, "maxcor": 50})
    x = x0.copy()
    x[free] = result.x.reshape(-1, 3)
    return x


def lattice_modes(topo: ClothTopology, stiffness: float, mass: float, pinned: np.ndarray,
                  x_eq: np.ndarray, bending: float, eps: float = 1e-6) -> np.ndarray:
    """Squared angular frequencies omega^2 (1/s^2) of small oscillations about ``x_eq``,
    ascending, from the central-difference Hessian of `lattice_energy`."""
    free = ~pinned
    kb = bend_stiffness(topo, bending)
    base = x_eq[free].ravel()
    hessian = np.empty((base.size, base.size))
    for col in range(base.size):
        plus, minus = base.copy(), base.copy()
        plus[col] += eps
        minus[col] -= eps
        hessian[:, col] = (lattice_energy(plus, topo, stiffness, mass, free, x_eq, kb)[1]
                           - lattice_energy(minus, topo, stiffness, mass, free, x_eq, kb)[1]) / (
            2 * eps)
    hessian = 0.5 * (hessian + hessian.T)
    return np.linalg.eigvalsh(hessian / (mass / topo.num_nodes))


def simulate_sheet(topo: ClothTopology, x0: np.ndarray, pinned: np.ndarray, *, stiffness: float,
                   mass: float, damping: float, seconds: float, substeps: int = 80,
                   frame_dt: float = 1 / 30, air_drag: float = 0.0, bending: float = 3e-3,
                   wind: tuple[float, float, float] = (0.0, 0.0, 0.0),
                   v0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Warp rollout of one sheet without contacts: (x, v) [T,N,3] float32."""
    env = ClothEnvParams.from_numpy(
        "cpu", stiffness=np.array([stiffness]), damping=np.array([damping]),
        mass=np.array([mass]), wind=np.array([wind]), friction=np.zeros(1),
        sphere_center=np.array([[0.0, 0.0, -10.0]]), sphere_radius=np.zeros(1),
        free=(~pinned)[None].astype(np.float32))
    sim = SimulatorWarpCloth(topo, device="cpu", dt=frame_dt / substeps, air_drag=air_drag,
                             bending=bending, ground=-100.0)
    frames = int(round(seconds / frame_dt)) + 1
    v_init = np.zeros_like(x0) if v0 is None else v0
    xs, vs = sim.rollout(x0[None].astype(np.float32), v_init[None].astype(np.float32), env,
                         frames, substeps)
    return xs[0], vs[0]


def _static(topo: ClothTopology, stiffness: float, mass: float, pinned: np.ndarray,
            bending: float) -> dict:
    return {"mass": np.full(topo.num_nodes, mass / topo.num_nodes), "pinned": pinned,
            "gravity": GRAVITY, "springs": topo.springs,
            "spring_rest_length": topo.spring_rest, "spring_stiffness": stiffness * topo.kappa,
            "resolution": topo.resolution, "size": topo.size, "shear_ratio": 0.5,
            "bend_stiffness": bend_stiffness(topo, bending)}


def _plot(path: Path, xlabel: str, ylabel: str, curves: list[tuple[np.ndarray, np.ndarray, str]]
          ) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for xv, yv, label in curves:
        ax.plot(xv, yv, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return save_figure(fig, path)


SAG_TOLERANCE = 2e-4  # m, simulated rest shape vs lattice equilibrium (sag is ~3-10 mm)
CONTINUUM_TOLERANCE = 0.05  # relative, mid-sheet strain vs the strip solution


def cloth_static_sag(quick: bool, out_dir: Path) -> StudyResult:
    """A sheet hanging from its top edge comes to rest at the lattice's static equilibrium,
    and its mid-height strain matches the continuum strip ``M g s / (k W L)``."""
    resolution = 10 if quick else 16
    rows = []
    profiles = []
    for stiffness, mass in ((300.0, 0.4), (800.0, 0.3)):
        topo, x0, pinned = hanging_sheet(resolution)
        x_eq = lattice_equilibrium(topo, stiffness, mass, pinned, x0, 3e-3)
        xs, _ = simulate_sheet(topo, x0, pinned, stiffness=stiffness, mass=mass, damping=0.5,
                               seconds=2.0 if quick else 4.0)
        err = float(np.abs(xs[-1] - x_eq).max())
        # Continuum strip: tension at height s above the free edge is (M g / L) s per width W.
        n = topo.resolution
        centre = np.arange(n) * n + n // 2  # centre column, bottom to top
        z_sim, z_eq = xs[-1][centre, 2], x_eq[centre, 2]
        lo, hi = n // 3, 2 * n // 3
        s_mid = 0.5 * (topo.uv[centre[lo], 1] + topo.uv[centre[hi], 1]) * topo.size
        strain_expected = mass * 9.81 * s_mid / (stiffness * topo.size**2)
        spacing = (hi - lo) * topo.spacing
        strain_sim = (z_sim[hi] - z_sim[lo]) / spacing - 1.0
        rows.append({"stiffness_N_per_m": stiffness, "mass_kg": mass,
                     "max_abs_x_sim_minus_lattice_m": err,
                     "bottom_sag_sim_m": float(x0[centre[0], 2] - z_sim[0]),
                     "bottom_sag_lattice_m": float(x0[centre[0], 2] - z_eq[0]),
                     "mid_strain_sim": strain_sim, "mid_strain_strip": strain_expected,
                     "mid_strain_rel_error": abs(strain_sim / strain_expected - 1.0)})
        profiles.append((topo.uv[centre, 1], x0[centre, 2] - z_sim, f"sim k={stiffness:g}"))
        profiles.append((topo.uv[centre, 1], x0[centre, 2] - z_eq, f"lattice k={stiffness:g}"))
    table = pd.DataFrame(rows)
    passed = bool((table.max_abs_x_sim_minus_lattice_m < SAG_TOLERANCE).all()
                  and (table.mid_strain_rel_error < CONTINUUM_TOLERANCE).all())
    figure = _plot(out_dir / "cloth_static_sag.png", "height on the sheet (v)",
                   "downward displacement (m)", profiles)
    return StudyResult(
        name="cloth_static_sag", title="Cloth: static sag of a sheet hanging from one edge",
        reference="static equilibrium of the same spring lattice (float64 energy minimum); "
                  "continuum strip under self-weight, strain = M g s / (k W L)",
        tolerance=f"max |x_sim - x_lattice| < {SAG_TOLERANCE:g} m; mid-height strain within "
                  f"{100 * CONTINUUM_TOLERANCE:g} % of the strip solution",
        passed=passed, table=table, figures=(figure,),
        summary=f"max deviation {table.max_abs_x_sim_minus_lattice_m.max():.2e} m, strain error "
                f"{100 * table.mid_strain_rel_error.max():.2f} %",
        settings={"resolution": resolution, "bending": 3e-3, "damping": 0.5})


ENERGY_TOLERANCE = 5e-3  # relative to the largest kinetic energy (symplectic Euler: bounded)


def cloth_energy_balance(quick: bool, out_dir: Path) -> StudyResult:
    """With damping and drag off, a released stretched sheet conserves its total energy
    (symplectic Euler: bounded oscillating error, no drift)."""
    resolution = 8 if quick else 12
    seconds = 1.0 if quick else 3.0
    topo, x0, pinned = hanging_sheet(resolution)
    stiffness, mass = 500.0, 0.3
    # Start at the rest shape, swinging out of plane: gravity, springs and bending all work.
    x_start = x0.copy()
    x_start[:, 2] = x0[:, 2]
    v0 = np.zeros_like(x0)
    v0[:, 1] = 0.5 * (1.0 - topo.uv[:, 1])
    v0[pinned] = 0.0
    xs, vs = simulate_sheet(topo, x_start, pinned, stiffness=stiffness, mass=mass,
                            damping=0.0, seconds=seconds, v0=v0)
    static = _static(topo, stiffness, mass, pinned, 3e-3)
    energy = cloth_energy(xs.astype(np.float64), vs.astype(np.float64), static)
    kinetic = 0.5 * np.einsum("n,tnc->t", static["mass"], vs.astype(np.float64) ** 2)
    scale = float(kinetic.max())
    drift = np.abs(energy - energy[0]) / scale
    t = np.arange(len(energy)) / 30.0
    table = pd.DataFrame({"time_s": t, "energy_J": energy, "kinetic_J": kinetic,
                          "relative_error": drift})
    figure = _plot(out_dir / "cloth_energy_balance.png", "time (s)",
                   "|E(t) - E(0)| / max kinetic", [(t, drift, "relative energy error")])
    passed = bool(drift.max() < ENERGY_TOLERANCE)
    return StudyResult(
        name="cloth_energy_balance", title="Cloth: energy balance with damping and drag off",
        reference="conservation of kinetic + gravitational + spring + bending energy",
        tolerance=f"|E(t) - E(0)| < {ENERGY_TOLERANCE:g} x the largest kinetic energy",
        passed=passed, table=table, figures=(figure,),
        summary=f"max relative energy error {drift.max():.2e} over {seconds:g} s",
        settings={"resolution": resolution, "seconds": seconds, "substeps": 80})


STUDIES.register("cloth_static_sag", cloth_static_sag, tags=["cloth"])
STUDIES.register("cloth_energy_balance", cloth_energy_balance, tags=["cloth"])
