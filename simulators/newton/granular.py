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
Newton is imported here only, when a scenario is built.

States: ``x [T,N,3]`` positions (m), ``v [T,N,3]`` velocities (m/s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from physground.errors import SimulationError, ValidationError
from physground.params import Param, ParamSpace, Uniform
from physground.rollout import Rollout
from physground.scenario import Scenario, ScenarioConfig
from physground.simulators.newton import INSTALLED, MISSING
from physground.simulators.warp.common import (
    WarpConfig,
    check_batch,
    look_at_camera,
    start_warp,
    warp_device_of,
)
from physground.simulators.warp.sph import splat_particles

GRAVITY = 9.81  # m/s^2, along -z
# Stiffness of the granular model: rigid-plastic (Newton's default for sand).
YOUNG_MODULUS = 1.0e15  # Pa
YIELD_PRESSURE = 1.0e12  # Pa (no compressive yield: cohesionless, no crushing)


def require_newton() -> Any:
    """Import newton, or raise a one-line error naming the optional extra."""
    if not INSTALLED:
        raise ImportError(MISSING)
    import newton

    return newton


@dataclass(frozen=True, kw_only=True)
class ColumnConfig(WarpConfig):
    """Column-collapse settings: MPM grid, particle lattice, channel and view.

    ``voxel_size`` 0.02 m with 2 particles per voxel and axis resolves a 0.1 m long column
    by 5 voxels; 8 substeps per 1/30 s frame (dt = 1/240 s) keep the CFL number
    ``v dt / dx`` <= 0.5 up to the impact speed sqrt(2 g H) = 2.4 m/s of a 0.3 m column
    (with 4 substeps a 0.4 m column leaked grains through the ground).
    """

    num_frames: int = 30
    substeps: int = 8
    length: float = 0.1  # m, column length L along the channel
    width: float = 0.04  # m, channel width W
    voxel_size: float = 0.02  # m, MPM grid spacing
    particles_per_cell: int = 2  # per voxel and axis
    view: float = 0.6  # m, side of the square field of view (x from 0, z from 0)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("length", "width", "voxel_size", "view"):
            if not getattr(self, name) > 0:
                raise ValidationError(f"{name} = {getattr(self, name)}, expected > 0 m")
        if self.particles_per_cell < 1:
            raise ValidationError(
                f"particles_per_cell = {self.particles_per_cell}, expected >= 1")


def column_lattice(length: float, width: float, height: float, spacing: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres [N,3] of a box [0,L]x[0,W]x[0,H] cut into cells of about ``spacing``,
    and the cell size [3] (each side divided into a whole number of cells)."""
    sides = np.array([length, width, height])
    counts = np.maximum(np.round(sides / spacing).astype(int), 1)
    cell = sides / counts
    axes = [(np.arange(c) + 0.5) * h for c, h in zip(counts, cell, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    return grid, cell


def side_camera(view: float, width: float, size: int, height: int | None = None) -> Any:
    """Camera on the -y side looking at the channel's x-z plane: x right, z up; the square
    [0, view]^2 of that plane fills the image (fov 20 deg from far away)."""
    fov = 20.0
    distance = 0.5 * view / math.tan(math.radians(0.5 * fov))
    centre = np.array([0.5 * view, 0.5 * width, 0.5 * view])
    eye = centre - np.array([0.0, distance, 0.0])
    camera = look_at_camera(eye, centre, np.array([0.0, 0.0, 1.0]), fov, size, height)
    return camera


class SimulatorColumnCollapse:
    """One Newton MPM model per rollout (its particle count follows the aspect ratio)."""

    def __init__(self, config: ColumnConfig, device: str) -> None:
        self.newton = require_newton()
        start_warp()
        self.config, self.device = config, device

    def run(self, x0: np.ndarray, cell: np.ndarray, density: float, friction: float
            ) -> tuple[np.ndarray, np.ndarray, float]:
        """x, v [T,N,3] (float64) and the particle mass (kg)."""
        import warp as wp

        newton = self.newton
        from newton.solvers import SolverImplicitMPM

        cfg = self.config
        builder = newton.ModelBuilder()
        SolverImplicitMPM.register_custom_attributes(builder)
        mass = float(density * np.prod(cell))
        radius = float(0.5 * cell.max())
        for p in x0:
            builder.add_particle(pos=wp.vec3(*p), vel=wp.vec3(0.0), mass=mass, radius=radius)
        mu = float(friction)
        builder.add_ground_plane(cfg=newton.ModelBuilder.ShapeConfig(mu=mu))
        wall = newton.ModelBuilder.ShapeConfig(mu=0.0)
        far, thick = 2.0 * cfg.view, 0.05
        # back wall (x < 0) and the two side walls (y < 0, y > W), static boxes
        for centre, half in (((-thick, 0.5 * cfg.width, far), (thick, far, far)),
                             ((far, -thick, far), (2 * far, thick, far)),
                             ((far, cfg.width + thick, far), (2 * far, thick, far))):
            builder.add_shape_box(body=-1, cfg=wall, xform=wp.transform(
                wp.vec3(*centre), wp.quat_identity()), hx=half[0], hy=half[1], hz=half[2])
        model = builder.finalize(device=self.device)
        model.set_gravity((0.0, 0.0, -GRAVITY))
        options = SolverImplicitMPM.Config()
        options.voxel_size = cfg.voxel_size
        options.grid_type = "sparse"
        options.air_drag = 0.0  # no drag: the grains flow in vacuum as in the law's theory
        model.mpm.friction.fill_(mu)
        model.mpm.young_modulus.fill_(YOUNG_MODULUS)
        model.mpm.yield_pressure.fill_(YIELD_PRESSURE)
        solver = SolverImplicitMPM(model, config=options)
        state, scratch = model.state(), model.state()
        dt = cfg.dt / cfg.substeps
        xs = np.empty((cfg.num_frames, len(x0), 3))
        vs = np.empty_like(xs)
        for frame in range(cfg.num_frames):
            xs[frame] = state.particle_q.numpy()
            vs[frame] = state.particle_qd.numpy()
            if frame == cfg.num_frames - 1:
                break
            for _ in range(cfg.substeps):
                solver.step(state, scratch, None, None, dt)
                solver.project_outside(scratch, scratch, dt)
                state, scratch = scratch, state
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
    version: ClassVar[str] = "1"
    # Observation: the column and channel are seen (so the aspect ratio is given); the
    # friction (also of the ground) and density must be inferred; solver settings and the
    # mass of a particle (density x cell volume) are withheld.
    given_static: ClassVar[frozenset[str]] = frozenset(
        {"column", "channel", "particle_radius"})
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
        spacing = cfg.voxel_size / cfg.particles_per_cell
        x, cell = column_lattice(cfg.length, cfg.width, params["aspect_ratio"] * cfg.length,
                                 spacing)
        rng = np.random.default_rng(seed)
        return x + rng.uniform(-0.1, 0.1, x.shape) * cell, cell

    def simulate(
        self, params: Sequence[dict[str, float]], seeds: Sequence[int], split: str
    ) -> list[Rollout]:
        check_batch(params, seeds, self.name)
        cfg = self.config
        params = [self.param_space.validate(p, where=f"{self.name}: ") for p in params]
        device = warp_device_of(cfg.device)
        sim = SimulatorColumnCollapse(cfg, device)
        camera = side_camera(cfg.view, cfg.width, cfg.frame_width, cfg.frame_height)
        rollouts = []
        for p, seed in zip(params, seeds, strict=True):
            x0, cell = self.initial_state(p, seed)
            friction = math.tan(math.radians(p["friction_angle"]))
            xs, vs, mass = sim.run(x0, cell, p["density"], friction)
            if not (np.isfinite(xs).all() and np.isfinite(vs).all()):
                raise SimulationError(f"{self.name} seed {seed}: MPM state became NaN or Inf")
            frames = masks = None
            if cfg.render:
                frames, masks = splat_particles(xs, camera, 0.5 * float(cell.max()))
            height = p["aspect_ratio"] * cfg.length
            rollouts.append(Rollout(
                scenario=self.name, split=split, seed=int(seed), params=dict(p), dt=cfg.dt,
                states={"x": xs, "v": vs},
                static={"particle_mass": np.float64(mass),
                        "particle_radius": np.float64(0.5 * cell.max()),
                        "column": np.array([cfg.length, cfg.width, height]),
                        "channel": np.array([0.0, 0.0, cfg.width]),
                        "ground_friction": np.float64(friction),
                        "gravity": np.array([0.0, 0.0, -GRAVITY]),
                        "voxel_size": np.float64(cfg.voxel_size),
                        "young_modulus": np.float64(YOUNG_MODULUS),
                        "run_out": np.float64(run_out(xs[-1]))},
                frames=frames, masks=masks, camera=camera,
                meta=newton_meta(cfg.substeps, device,
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


def newton_meta(substeps: int, device: str, **extra: Any) -> dict[str, Any]:
    """Rollout ``meta`` common to Newton scenarios."""
    import warp as wp

    newton = require_newton()
    return {"simulator": "newton", "simulator_version": newton.__version__,
            "warp_version": wp.config.version,
            "integrator": "implicit MPM (APIC transfer, sparse grid), Drucker-Prager grains",
            "substeps": substeps, "device": device, **extra}
