"""An elastoplastic block dropped on the ground through Newton's implicit MPM solver.

A block of side ``s`` (x, z) and depth ``W`` (y) falls from rest from height ``h`` (its
bottom face above the ground) onto a rough ground (Coulomb friction 0.5). The material is
Newton's elastoplastic model: Hookean elasticity of Young's modulus ``E`` (Poisson ratio
0.3) with a von Mises yield surface of deviatoric yield stress ``sigma_y`` (zero
friction coefficient, no pressure yield): below the yield stress the block bounces
elastically; above it, the impact stress ``~ rho c v`` (``c = sqrt(E / rho)``, ``v =
sqrt(2 g h)``) flattens it for good. Stiffness and plasticity are the latent parameters.

The particles of the block, seeded on a lattice, are joined into the tetrahedra of that
lattice (static ``tets``, `mpm.lattice_tets`) so its volume, and hence its compression, is
defined on predicted positions too (`metrics.quantities.tet_volume`).

States: ``x [T,N,3]`` positions (m), ``v [T,N,3]`` velocities (m/s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from physground.errors import ValidationError
from physground.params import Param, ParamSpace, Uniform
from physground.scenario import ScenarioConfig
from physground.simulators.newton.mpm import (
    GRAVITY,
    MPMConfig,
    MPMMaterial,
    MPMScene,
    MPMSetup,
    ScenarioNewtonMPM,
    lattice_tets,
)

DENSITY = 1000.0  # kg/m^3
POISSON_RATIO = 0.3
GROUND_FRICTION = 0.5
FAR = 10.0  # m, the open half-space z >= 0 as a box


def elastoplastic(young_modulus: float, yield_stress: float) -> MPMMaterial:
    """Hookean solid with a von Mises yield stress (Pa), no pressure-dependent yield."""
    return MPMMaterial(
        young_modulus=young_modulus,
        poisson_ratio=POISSON_RATIO,
        friction=0.0,
        tensile_yield_ratio=1.0,
        yield_stress=yield_stress,
    )


@dataclass(frozen=True, kw_only=True)
class SoftbodyConfig(MPMConfig):
    """Block size (m) and where it falls, on top of the MPM settings."""

    size: float = 0.08  # block side along x and z
    width: float = 0.08  # block depth along y
    centre_x: float = 0.2  # m, the block's centre along x
    view: float = 0.4

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.size > 0:
            raise ValidationError(f"size = {self.size}, expected > 0 m")


class ScenarioSoftbodyDrop(ScenarioNewtonMPM):
    """A soft elastoplastic block dropped on the ground (Newton implicit MPM)."""

    name: ClassVar[str] = "softbody/drop"
    config_type: ClassVar[type[ScenarioConfig]] = SoftbodyConfig
    config: SoftbodyConfig
    integrator: ClassVar[str] = (
        "implicit MPM (APIC transfer, sparse grid), Hookean elasticity with von Mises plasticity"
    )
    laws: ClassVar[frozenset[str]] = frozenset(
        {
            "mass_conserved",
            "mass_in_domain",
            "non_penetration",
            "collider_non_penetration",
            "energy_nonincreasing",
            "solid_volume",
            "object_permanence",
        }
    )
    reference_overrides: ClassVar[dict[str, Any]] = {"substeps": 16}
    take_perturbation: ClassVar[dict[str, float]] = {
        "young_modulus": 1.0e3,
        "yield_stress": 200.0,
        "drop_height": 0.001,
    }
    version: ClassVar[str] = "3"
    # The block and its height are seen; stiffness and yield stress are inferred.
    given_static: ClassVar[frozenset[str]] = frozenset(
        {"block", "tets", "domain", "colliders", "particle_radius"}
    )
    latent_static: ClassVar[frozenset[str]] = frozenset({"particle_mass", "gravity"})
    withheld_static: ClassVar[frozenset[str]] = frozenset(
        {"voxel_size", "ground_friction", "poisson_ratio"}
    )
    given_params: ClassVar[frozenset[str]] = frozenset({"drop_height"})
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        (
            Param("young_modulus", "Pa", 5.0e3, 5.0e6, "Young's modulus of the block"),
            Param("yield_stress", "Pa", 1.0e2, 1.0e6, "von Mises yield stress (plasticity)"),
            Param("drop_height", "m", 0.0, 0.3, "height of the block's bottom above ground"),
        ),
        {
            "young_modulus": Uniform(3.0e4, 1.0e5),
            "yield_stress": Uniform(3.0e3, 3.0e4),
            "drop_height": Uniform(0.1, 0.2),
        },
        # Softer and weaker blocks: deeper compression, more plastic flattening.
        {"young_modulus": Uniform(1.0e4, 2.0e4), "yield_stress": Uniform(8.0e2, 2.0e3)},
    )

    def setup(self, params: dict[str, float], seed: int) -> MPMSetup:
        cfg = self.config
        lo = (cfg.centre_x - 0.5 * cfg.size, 0.0, params["drop_height"])
        hi = (cfg.centre_x + 0.5 * cfg.size, cfg.width, params["drop_height"] + cfg.size)
        x0, cell, counts = self.jittered_lattice(lo, hi, seed)
        mass = float(DENSITY * np.prod(cell))
        radius = float(0.5 * cell.max())
        scene = MPMScene(
            x0=x0,
            particle_mass=mass,
            radius=radius,
            material=elastoplastic(params["young_modulus"], params["yield_stress"]),
            ground_friction=GROUND_FRICTION,
        )
        static = {
            "particle_mass": np.float64(mass),
            "particle_radius": np.float64(radius),
            "block": np.array([cfg.size, cfg.width, cfg.size]),
            "tets": lattice_tets(counts),
            "domain": np.array([[-FAR, -FAR, 0.0], [FAR, FAR, FAR]]),
            "colliders": np.zeros((0, 6)),
            "ground_friction": np.float64(GROUND_FRICTION),
            "poisson_ratio": np.float64(POISSON_RATIO),
            "gravity": np.array([0.0, 0.0, -GRAVITY]),
            "voxel_size": np.float64(cfg.voxel_size),
        }
        return MPMSetup(scene=scene, static=static)
