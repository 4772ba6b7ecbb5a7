"""Granular column collapse through Newton's implicit MPM solver (`SolverImplicitMPM`).

A rectangular column of sand, length ``L`` along the channel (x), height ``H = a L`` (z up)
and width ``W`` across (y), rests against a back wall at x = 0 between two side walls
y = 0 and y = W and is released at t = 0. The material is Newton's rigid-plastic
Drucker-Prager granular model (Young's modulus 1e15 Pa, i.e. no elastic regime; friction
coefficient ``tan(phi)`` for the friction angle ``phi``); the ground has Coulomb friction
``tan(phi)`` and the walls are frictionless, so the flow is the quasi-2D channel collapse of
Lube et al. (2005) and Balmforth & Kerswell (2005), whose final run-out ``(L_f - L) / L``
depends on the aspect ratio ``a`` (`benchmarks/validation/study_granular.py`).

Particles are seeded on a regular lattice, ``particles_per_cell`` per voxel per axis,
each carrying ``density * cell volume``; their count and masses never change, so mass is
conserved exactly as long as no particle leaves the domain or becomes NaN (checked).
The MPM run, walls, lattice and camera are `mpm.py`'s, shared with the other Newton
scenarios; Newton is imported only when a scenario is built.

States: ``x [T,N,3]`` positions (m), ``v [T,N,3]`` velocities (m/s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from physground.errors import SimulationError, ValidationError
from physground.params import Param, ParamSpace, Uniform
from physground.rollout import Rollout
from physground.scenario import Scenario, ScenarioConfig
from physground.simulators.newton.mpm import (
    GRAVITY,
    MPMMaterial,
    MPMScene,
    SimulatorNewtonMPM,
    box_lattice,
    channel_walls,
    newton_meta,
    require_newton,
    side_camera,
)
from physground.simulators.warp.common import WarpConfig, check_batch, warp_device_of
from physground.simulators.warp.sph import splat_particles

__all__ = ["GRAVITY", "ColumnConfig", "ScenarioColumnCollapse", "SimulatorColumnCollapse",
           "column_lattice", "column_voxel", "require_newton", "run_out", "side_camera"]

# Stiffness of the granular model: rigid-plastic (Newton's default for sand).
YOUNG_MODULUS = 1.0e15  # Pa
YIELD_PRESSURE = 1.0e12  # Pa (no compressive yield: cohesionless, no crushing)
INTEGRATOR = "implicit MPM (APIC transfer, sparse grid), Drucker-Prager grains"


@dataclass(frozen=True, kw_only=True)
class ColumnConfig(WarpConfig):
    """Column-collapse settings: MPM grid, particle lattice, channel and view.

    ``voxel_size`` 0.02 m with 2 particles per voxel and axis resolves a 0.1 m long column
    by 5 voxels; a column lower than ``min_cells`` voxels gets a finer grid, so that its
    height is resolved as well (`column_voxel`: at 2.5 voxels tall, a = 0.5 ran out 26 %
    short of Lube et al.'s law, at 5 voxels 10 %); 8 substeps per 1/30 s frame
    (dt = 1/240 s) keep the CFL number ``v dt / dx`` <= 0.5 up to the impact speed
    sqrt(2 g H) = 2.4 m/s of a 0.3 m column (with 4 substeps a 0.4 m column leaked grains
    through the ground).
    """

    num_frames: int = 30
    substeps: int = 8
    length: float = 0.1  # m, column length L along the channel
    width: float = 0.04  # m, channel width W
    voxel_size: float = 0.02  # m, MPM grid spacing
    particles_per_cell: int = 2  # per voxel and axis
    min_cells: int = 5  # voxels at least across the column's length and height
    view: float = 0.6  # m, side of the square field of view (x from 0, z from 0)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("length", "width", "voxel_size", "view"):
            if not getattr(self, name) > 0:
                raise ValidationError(f"{name} = {getattr(self, name)}, expected > 0 m")
        for name in ("particles_per_cell", "min_cells"):
            if getattr(self, name) < 1:
                raise ValidationError(f"{name} = {getattr(self, name)}, expected >= 1")


def column_voxel(config: ColumnConfig, height: float) -> float:
    """MPM grid spacing (m) for a column of ``height``: ``voxel_size``, refined so that
    the column's length and height each span at least ``min_cells`` voxels."""
    return min(config.voxel_size, min(config.length, height) / config.min_cells)


def column_lattice(length: float, width: float, height: float, spacing: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres [N,3] of a box [0,L]x[0,W]x[0,H] cut into cells of about ``spacing``,
    and the cell size [3] (each side divided into a whole number of cells)."""
    grid, cell, _ = box_lattice((0.0, 0.0, 0.0), (length, width, height), spacing)
    return grid, cell


def sand(friction: float) -> MPMMaterial:
    """Rigid-plastic cohesionless Drucker-Prager sand of friction coefficient tan(phi)."""
    return MPMMaterial(friction=friction, young_modulus=YOUNG_MODULUS,
                       yield_pressure=YIELD_PRESSURE)


class SimulatorColumnCollapse(SimulatorNewtonMPM):
    """The column in its channel: sand, a rough ground and frictionless walls."""

    def __init__(self, config: ColumnConfig, device: str) -> None:
        """``config.voxel_size`` is the grid of this simulator (see `column_voxel`)."""
        super().__init__(num_frames=config.num_frames, dt=config.dt,
                         substeps=config.substeps, voxel_size=config.voxel_size,
                         device=device)
        self.config = config

    def run_column(self, x0: np.ndarray, cell: np.ndarray, density: float, friction: float
                   ) -> tuple[np.ndarray, np.ndarray, float]:
        """x, v [T,N,3] (float64) and the particle mass (kg)."""
        cfg = self.config
        mass = float(density * np.prod(cell))
        scene = MPMScene(x0=x0, particle_mass=mass, radius=float(0.5 * cell.max()),
                         material=sand(friction), ground_friction=float(friction),
                         colliders=channel_walls(cfg.width, 2.0 * cfg.view))
        xs, vs = self.run(scene)
        return xs, vs, mass


def run_out(x: np.ndarray) -> float:
    """Front position (m): the largest x of any particle, [N,3] -> float."""
    return float(np.max(x[:, 0]))


class ScenarioColumnCollapse(Scenario):
    """A sand column collapses along a channel (Newton implicit MPM, quasi-2D)."""

    name: ClassVar[str] = "granular/column_collapse"
    simulator: ClassVar[str] = "newton"
    config_type: ClassVar[type[ScenarioConfig]] = ColumnConfig
    config: ColumnConfig
    state_names: ClassVar[tuple[str, ...]] = ("x", "v")
    laws: ClassVar[frozenset[str]] = frozenset(
        {"mass_conserved", "non_penetration", "energy_nonincreasing"})
    reference_overrides: ClassVar[dict[str, Any]] = {"substeps": 16}
    take_perturbation: ClassVar[dict[str, float]] = {
        "friction_angle": 0.5, "density": 10.0, "aspect_ratio": 0.01}
    # 3: the channel as a ``domain`` static (walls and ground, seen by entity models)
    # 4: columns lower than ``min_cells`` voxels simulated on a finer grid (`column_voxel`)
    version: ClassVar[str] = "4"
    # Observation: the column and channel are seen (so the aspect ratio is given); the
    # friction (also of the ground) and density must be inferred; solver settings and the
    # mass of a particle (density x cell volume) are withheld.
    given_static: ClassVar[frozenset[str]] = frozenset(
        {"column", "channel", "domain", "particle_radius"})
    # gravity (fixed here) is latent by the observation contract: models infer it.
    latent_static: ClassVar[frozenset[str]] = frozenset(
        {"ground_friction", "particle_mass", "gravity"})
    withheld_static: ClassVar[frozenset[str]] = frozenset(
        {"voxel_size", "young_modulus", "run_out"})
    given_params: ClassVar[frozenset[str]] = frozenset({"aspect_ratio"})
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        (Param("friction_angle", "deg", 15.0, 50.0, "internal (and ground) friction angle"),
         Param("density", "kg/m^3", 1000.0, 2500.0, "density of the granular bulk"),
         Param("aspect_ratio", "1", 0.3, 4.0, "column height over length H / L")),
        {"friction_angle": Uniform(28.0, 34.0), "density": Uniform(1400.0, 1700.0),
         "aspect_ratio": Uniform(0.8, 1.6)},
        # Taller columns of rougher sand.
        {"friction_angle": Uniform(36.0, 40.0), "aspect_ratio": Uniform(2.4, 3.0)},
    )

    def initial_state(self, params: dict[str, float], seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Particle lattice [N,3] of the column (jittered by 10 % of a cell, seeded) and the
        cell size [3] (m)."""
        cfg = self.config
        height = params["aspect_ratio"] * cfg.length
        spacing = column_voxel(cfg, height) / cfg.particles_per_cell
        x, cell = column_lattice(cfg.length, cfg.width, height, spacing)
        rng = np.random.default_rng(seed)
        return x + rng.uniform(-0.1, 0.1, x.shape) * cell, cell

    def simulate(
        self, params: Sequence[dict[str, float]], seeds: Sequence[int], split: str
    ) -> list[Rollout]:
        check_batch(params, seeds, self.name)
        cfg = self.config
        params = [self.param_space.validate(p, where=f"{self.name}: ") for p in params]
        device = warp_device_of(cfg.device)
        sims: dict[float, SimulatorColumnCollapse] = {}  # one per grid spacing
        camera = side_camera(cfg.view, cfg.width, cfg.frame_width, cfg.frame_height)
        rollouts = []
        for p, seed in zip(params, seeds, strict=True):
            height = p["aspect_ratio"] * cfg.length
            voxel = column_voxel(cfg, height)
            if voxel not in sims:
                sims[voxel] = SimulatorColumnCollapse(replace(cfg, voxel_size=voxel), device)
            x0, cell = self.initial_state(p, seed)
            friction = math.tan(math.radians(p["friction_angle"]))
            xs, vs, mass = sims[voxel].run_column(x0, cell, p["density"], friction)
            if not (np.isfinite(xs).all() and np.isfinite(vs).all()):
                raise SimulationError(f"{self.name} seed {seed}: MPM state became NaN or Inf")
            frames = masks = None
            if cfg.render:
                frames, masks = splat_particles(xs, camera, 0.5 * float(cell.max()))
            rollouts.append(Rollout(
                scenario=self.name, split=split, seed=int(seed), params=dict(p), dt=cfg.dt,
                states={"x": xs, "v": vs},
                static={"particle_mass": np.float64(mass),
                        "particle_radius": np.float64(0.5 * cell.max()),
                        "column": np.array([cfg.length, cfg.width, height]),
                        "channel": np.array([0.0, 0.0, cfg.width]),
                        # lower and upper corners of the space the grains may fill (m)
                        "domain": np.array([[0.0, 0.0, 0.0],
                                            [2.0 * cfg.view, cfg.width, 2.0 * cfg.view]]),
                        "ground_friction": np.float64(friction),
                        "gravity": np.array([0.0, 0.0, -GRAVITY]),
                        "voxel_size": np.float64(voxel),
                        "young_modulus": np.float64(YOUNG_MODULUS),
                        "run_out": np.float64(run_out(xs[-1]))},
                frames=frames, masks=masks, camera=camera,
                meta=newton_meta(cfg.substeps, device, INTEGRATOR,
                                 max_speed=float(np.linalg.norm(vs, axis=-1).max())),
            ))
        return rollouts

    def check(self, rollout: Rollout) -> str | None:
        """Blow-up: grains leaving through the ground or a wall by more than a voxel."""
        x = rollout.states["x"]
        slack = float(rollout.static["voxel_size"])
        width = float(rollout.static["channel"][2])
        if x[..., 2].min() < -slack or x[..., 0].min() < -slack:
            return "grains passed through the ground or the back wall"
        if x[..., 1].min() < -slack or x[..., 1].max() > width + slack:
            return "grains passed through a side wall"
        return None
