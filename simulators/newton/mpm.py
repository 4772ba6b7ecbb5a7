"""Shared machinery of the Newton MPM scenarios: the implicit MPM run, particle lattices,
static box colliders, the side camera and rendering, rollout meta.

Every scenario here is a set of material points seeded on a regular lattice (each point
carries ``density * cell volume``; counts and masses never change, so mass is conserved
exactly while no point leaves the domain or becomes NaN), advanced by Newton's implicit MPM
solver (`SolverImplicitMPM`: APIC transfer on a sparse grid, an implicit rheology solve per
substep, then projection of the points out of the colliders). The material is Newton's
per-particle model: elastic (Young's modulus, Poisson ratio) with a Drucker-Prager /
von Mises yield surface (friction coefficient, yield pressure and deviatoric yield stress)
and a viscosity, so one solver makes sand (rigid-plastic frictional), viscous fluid
(frictionless, viscous, incompressible) and an elastoplastic solid. Newton is imported only
when a simulator is built. z is up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from physground.errors import SimulationError, ValidationError
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


def require_newton() -> Any:
    """Import newton, or raise a one-line error naming the optional extra."""
    if not INSTALLED:
        raise ImportError(MISSING)
    import newton

    return newton


@dataclass(frozen=True)
class MPMMaterial:
    """Per-particle material of Newton's implicit MPM (SI units). ``None`` keeps Newton's
    default for that attribute (its defaults: rigid (E = 1e15 Pa), friction 0.5, no
    deviatoric yield stress, no viscosity)."""

    young_modulus: float | None = None  # Pa
    poisson_ratio: float | None = None  # 1
    friction: float | None = None  # Drucker-Prager friction coefficient tan(phi)
    yield_pressure: float | None = None  # Pa, compressive yield
    tensile_yield_ratio: float | None = None  # tensile over compressive yield
    yield_stress: float | None = None  # Pa, deviatoric (von Mises) yield stress
    hardening: float | None = None  # 1
    viscosity: float | None = None  # Pa s
    damping: float | None = None  # s, elastic damping relaxation time

    def fill(self, model: Any) -> None:
        """Write the set attributes into ``model.mpm`` (in field order)."""
        for name in (
            "friction",
            "young_modulus",
            "yield_pressure",
            "poisson_ratio",
            "tensile_yield_ratio",
            "yield_stress",
            "hardening",
            "viscosity",
            "damping",
        ):
            value = getattr(self, name)
            if value is not None:
                getattr(model.mpm, name).fill_(float(value))


@dataclass(frozen=True)
class BoxCollider:
    """A static axis-aligned box (centre and half extents [m]) with Coulomb friction."""

    centre: tuple[float, float, float]
    half: tuple[float, float, float]
    friction: float = 0.0

    def as_row(self) -> np.ndarray:
        """[6] = (centre, half extents), the layout of static ``colliders``."""
        return np.array([*self.centre, *self.half], dtype=np.float64)


def channel_walls(
    width: float,
    far: float,
    back: bool = True,
    end: float | None = None,
    thick: float = 0.05,
    sunk: float = 0.0,
) -> list[BoxCollider]:
    """Frictionless walls of a channel along x of width ``width`` (y in [0, W]): the two
    side walls, a back wall at x = 0 when ``back`` and an end wall at x = ``end``, from
    ``sunk`` below the ground up to ``2 far`` (sunk walls close the wall-ground corners)."""
    z, hz = far - 0.5 * sunk, far + 0.5 * sunk
    walls = []
    if back:
        walls.append(BoxCollider((-thick, 0.5 * width, z), (thick, far, hz)))
    walls += [
        BoxCollider((far, -thick, z), (2 * far, thick, hz)),
        BoxCollider((far, width + thick, z), (2 * far, thick, hz)),
    ]
    if end is not None:
        walls.append(BoxCollider((end + thick, 0.5 * width, z), (thick, far, hz)))
    return walls


@dataclass(frozen=True)
class MPMScene:
    """What one run needs: material points, their mass, material, ground and colliders."""

    x0: np.ndarray  # [N,3] m
    particle_mass: float  # kg
    radius: float  # m, for collision queries and rendering
    material: MPMMaterial
    ground_friction: float
    colliders: Sequence[BoxCollider] = field(default_factory=tuple)
    v0: np.ndarray | None = None  # [N,3] m/s


def box_lattice(
    lo: Sequence[float], hi: Sequence[float], spacing: float
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """Cell centres [N,3] (x slowest, z fastest) of the box [lo, hi] cut into cells of about
    ``spacing`` (each side a whole number of cells), the cell size [3] and the counts."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    counts = np.maximum(np.round((hi - lo) / spacing).astype(int), 1)
    cell = (hi - lo) / counts
    axes = [
        lo[k] + (np.arange(c) + 0.5) * h for k, (c, h) in enumerate(zip(counts, cell, strict=True))
    ]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    return grid, cell, (int(counts[0]), int(counts[1]), int(counts[2]))


def lattice_tets(counts: tuple[int, int, int]) -> np.ndarray:
    """Tetrahedra [K,4] (int64) over the points of a `box_lattice` of ``counts``: each
    lattice cell of 8 neighbouring points cut into 6 positively oriented tetrahedra around
    its main diagonal (Kuhn's subdivision, conforming between cells), so their signed
    volumes sum to the volume enclosed by the deformed lattice's boundary surface."""
    nx, ny, nz = counts
    if min(counts) < 2:
        return np.zeros((0, 4), dtype=np.int64)
    index = np.arange(nx * ny * nz).reshape(nx, ny, nz)
    corner = {}
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                corner[dx, dy, dz] = index[
                    dx : nx - 1 + dx, dy : ny - 1 + dy, dz : nz - 1 + dz
                ].reshape(-1)
    tets = []
    # the 6 monotone paths from corner 000 to 111, one tetrahedron each
    for order in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        step = [0, 0, 0]
        path = [corner[0, 0, 0]]
        for axis in order:
            step[axis] = 1
            path.append(corner[tuple(step)])
        tet = np.stack(path, -1)
        # orientation: even permutations of the axes are positive
        if order in ((0, 2, 1), (1, 0, 2), (2, 1, 0)):
            tet = tet[:, [0, 2, 1, 3]]
        tets.append(tet)
    return np.concatenate(tets).astype(np.int64)


def side_camera(view: float, width: float, size: int, height: int | None = None,
                x0: float = 0.0) -> Any:
    """Camera on the -y side looking at the x-z plane: x right, z up; the square
    [x0, x0 + view] x [0, view] of that plane fills a square image of ``size`` pixels
    (vertical fov 20 deg from far away; frames ``size`` wide and ``height`` tall keep that
    vertical field of view)."""
    fov = 20.0
    distance = 0.5 * view / math.tan(math.radians(0.5 * fov))
    centre = np.array([x0 + 0.5 * view, 0.5 * width, 0.5 * view])
    eye = centre - np.array([0.0, distance, 0.0])
    return look_at_camera(eye, centre, np.array([0.0, 0.0, 1.0]), fov, size, height)


BOX_COLOR = np.array([0.55, 0.5, 0.45])  # grey-brown solid obstacles


def render_scene(
    xs: np.ndarray, camera: Any, radius: float, boxes: Sequence[BoxCollider] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Frames [T,H,W,3] and masks [T,H,W]: the particles splatted as discs (mask id 1,
    `splat_particles`), over the given boxes drawn by exact ray casting (ids 2, 3, ...)."""
    frames, masks = splat_particles(xs, camera, radius)
    if not boxes:
        return frames, masks
    hit = box_pixels(camera, boxes)  # [K,H,W]
    empty = masks == 0
    for k in range(len(boxes)):
        paint = hit[k][None] & empty
        frames[paint] = (BOX_COLOR * 255.0 + 0.5).astype(np.uint8)
        masks[paint] = 2 + k
        empty &= ~paint
    return frames, masks


def box_pixels(camera: Any, boxes: Sequence[BoxCollider]) -> np.ndarray:
    """Whether the ray through each pixel centre hits each box: bool [K,H,W] (slab test)."""
    h, w = camera.height, camera.width
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    pix = np.stack([u, v, np.ones_like(u)], -1)
    rays_cam = pix @ np.linalg.inv(camera.intrinsics).T
    rotation, translation = camera.extrinsics[:3, :3], camera.extrinsics[:3, 3]
    origin = -rotation.T @ translation
    rays = rays_cam @ rotation  # world directions (R^T d)
    out = np.zeros((len(boxes), h, w), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / rays
        for k, box in enumerate(boxes):
            lo = (np.asarray(box.centre) - box.half - origin) * inv
            hi = (np.asarray(box.centre) + box.half - origin) * inv
            near = np.nanmax(np.minimum(lo, hi), -1)
            far = np.nanmin(np.maximum(lo, hi), -1)
            out[k] = (far >= near) & (far > 0)
    return out


class SimulatorNewtonMPM:
    """One Newton implicit-MPM model per run (particle counts differ between scenes)."""

    def __init__(
        self, *, num_frames: int, dt: float, substeps: int, voxel_size: float, device: str
    ) -> None:
        self.newton = require_newton()
        start_warp()
        self.num_frames, self.dt, self.substeps = num_frames, dt, substeps
        self.voxel_size, self.device = voxel_size, device

    def run(self, scene: MPMScene) -> tuple[np.ndarray, np.ndarray]:
        """x, v [T,N,3] (float64) at every stored frame, starting from ``scene.x0``."""
        import warp as wp

        newton = self.newton
        from newton.solvers import SolverImplicitMPM

        builder = newton.ModelBuilder()
        SolverImplicitMPM.register_custom_attributes(builder)
        v0 = np.zeros_like(scene.x0) if scene.v0 is None else scene.v0
        for p, v in zip(scene.x0, v0, strict=True):
            builder.add_particle(
                pos=wp.vec3(*p), vel=wp.vec3(*v), mass=scene.particle_mass, radius=scene.radius
            )
        builder.add_ground_plane(cfg=newton.ModelBuilder.ShapeConfig(mu=scene.ground_friction))
        for box in scene.colliders:
            builder.add_shape_box(
                body=-1,
                cfg=newton.ModelBuilder.ShapeConfig(mu=box.friction),
                xform=wp.transform(wp.vec3(*box.centre), wp.quat_identity()),
                hx=box.half[0],
                hy=box.half[1],
                hz=box.half[2],
            )
        model = builder.finalize(device=self.device)
        model.set_gravity((0.0, 0.0, -GRAVITY))
        options = SolverImplicitMPM.Config()
        options.voxel_size = self.voxel_size
        options.grid_type = "sparse"
        options.air_drag = 0.0  # in vacuum: no drag on the material
        scene.material.fill(model)
        solver = SolverImplicitMPM(model, config=options)
        state, scratch = model.state(), model.state()
        dt = self.dt / self.substeps
        xs = np.empty((self.num_frames, len(scene.x0), 3))
        vs = np.empty_like(xs)
        for frame in range(self.num_frames):
            xs[frame] = state.particle_q.numpy()
            vs[frame] = state.particle_qd.numpy()
            if frame == self.num_frames - 1:
                break
            for _ in range(self.substeps):
                solver.step(state, scratch, None, None, dt)
                solver.project_outside(scratch, scratch, dt)
                state, scratch = scratch, state
        return xs, vs


def newton_meta(
    substeps: int,
    device: str,
    integrator: str = "implicit MPM (APIC transfer, sparse grid)",
    **extra: Any,
) -> dict[str, Any]:
    """Rollout ``meta`` common to Newton scenarios."""
    import warp as wp

    newton = require_newton()
    return {
        "simulator": "newton",
        "simulator_version": newton.__version__,
        "warp_version": wp.config.version,
        "integrator": integrator,
        "substeps": substeps,
        "device": device,
        **extra,
    }


@dataclass(frozen=True, kw_only=True)
class MPMConfig(WarpConfig):
    """Settings of an MPM scenario: grid, particle lattice, channel width and view.

    ``voxel_size`` 0.02 m with 2 particles per voxel and axis; 8 substeps per 1/30 s frame
    (dt = 1/240 s) keep the CFL number ``v dt / dx`` <= 0.5 up to 2.4 m/s, the impact
    speed of a fall from 0.3 m (as `granular.ColumnConfig`).
    """

    num_frames: int = 30
    substeps: int = 8
    width: float = 0.04  # m, channel (or block) width along y
    voxel_size: float = 0.02  # m, MPM grid spacing
    particles_per_cell: int = 2  # per voxel and axis
    view: float = 0.6  # m, side of the square field of view

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("width", "voxel_size", "view"):
            if not getattr(self, name) > 0:
                raise ValidationError(f"{name} = {getattr(self, name)}, expected > 0 m")
        if self.particles_per_cell < 1:
            raise ValidationError(f"particles_per_cell = {self.particles_per_cell}, expected >= 1")

    @property
    def spacing(self) -> float:
        """Particle lattice spacing (m)."""
        return self.voxel_size / self.particles_per_cell


@dataclass(frozen=True)
class MPMSetup:
    """A scenario's scene for one rollout, the statics it records and what it renders."""

    scene: MPMScene
    static: dict[str, Any]
    render_boxes: Sequence[BoxCollider] = ()


class ScenarioNewtonMPM(Scenario):
    """Base of the Newton MPM scenarios: subclasses build a `MPMSetup` per rollout
    (`setup`); simulation, the NaN check, rendering (particles id 1, `render_boxes` ids 2+,
    side camera), meta and the containment check are shared.

    Every subclass records statics ``domain`` [2,3] (lo, hi: the container the material
    stays in), ``colliders`` [K,6] (static boxes inside it: centre, half extents) and
    ``particle_mass``, so mass in the domain and penetration into colliders are checked
    here and scored by `metrics.plausibility` (laws ``mass_in_domain``,
    ``collider_non_penetration``).
    """

    simulator: ClassVar[str] = "newton"
    config_type: ClassVar[type[ScenarioConfig]] = MPMConfig
    config: MPMConfig
    state_names: ClassVar[tuple[str, ...]] = ("x", "v")
    integrator: ClassVar[str] = "implicit MPM (APIC transfer, sparse grid)"
    # camera: the square [view_x0, view_x0 + view] x [0, view] of the x-z plane
    view_x0: ClassVar[float] = 0.0

    def setup(self, params: dict[str, float], seed: int) -> MPMSetup:
        """The scene and statics of one rollout."""
        raise NotImplementedError

    def jittered_lattice(
        self, lo: Sequence[float], hi: Sequence[float], seed: int
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
        """`box_lattice` of the config's spacing with every point moved by up to 10 % of a
        cell (seeded): the material points of a block, its cell size and counts."""
        x, cell, counts = box_lattice(lo, hi, self.config.spacing)
        rng = np.random.default_rng(seed)
        return x + rng.uniform(-0.1, 0.1, x.shape) * cell, cell, counts

    def simulate(
        self, params: Sequence[dict[str, float]], seeds: Sequence[int], split: str
    ) -> list[Rollout]:
        check_batch(params, seeds, self.name)
        cfg = self.config
        params = [self.param_space.validate(p, where=f"{self.name}: ") for p in params]
        device = warp_device_of(cfg.device)
        sim = SimulatorNewtonMPM(
            num_frames=cfg.num_frames,
            dt=cfg.dt,
            substeps=cfg.substeps,
            voxel_size=cfg.voxel_size,
            device=device,
        )
        camera = side_camera(cfg.view, cfg.width, cfg.frame_width, cfg.frame_height,
                             self.view_x0)
        rollouts = []
        for p, seed in zip(params, seeds, strict=True):
            setup = self.setup(p, int(seed))
            xs, vs = sim.run(setup.scene)
            if not (np.isfinite(xs).all() and np.isfinite(vs).all()):
                raise SimulationError(f"{self.name} seed {seed}: MPM state became NaN or Inf")
            frames = masks = None
            if cfg.render:
                frames, masks = render_scene(xs, camera, setup.scene.radius, setup.render_boxes)
            rollouts.append(
                Rollout(
                    scenario=self.name,
                    split=split,
                    seed=int(seed),
                    params=dict(p),
                    dt=cfg.dt,
                    states={"x": xs, "v": vs},
                    static=setup.static,
                    frames=frames,
                    masks=masks,
                    camera=camera,
                    meta=newton_meta(
                        cfg.substeps,
                        device,
                        self.integrator,
                        max_speed=float(np.linalg.norm(vs, axis=-1).max()),
                    ),
                )
            )
        return rollouts

    def check(self, rollout: Rollout) -> str | None:
        """Blow-up: material leaving the domain, or entering a collider, by more than a
        voxel."""
        x = rollout.states["x"]
        slack = float(rollout.static["voxel_size"])
        lo, hi = np.asarray(rollout.static["domain"])
        if (x < lo - slack).any() or (x > hi + slack).any():
            return "material left its container (through the ground or a wall)"
        for box in np.asarray(rollout.static["colliders"]).reshape(-1, 6):
            depth = np.min(box[3:] - np.abs(x - box[:3]), axis=-1)
            if depth.max() > slack:
                return f"material entered the collider at {box[:3].tolist()}"
        return None
