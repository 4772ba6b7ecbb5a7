"""Viscous dam break through Newton's implicit MPM solver, beside the SPH dam break.

A column of viscous fluid (length ``L`` along x, height ``H = a L``, width ``W`` across y)
rests against the back wall of a tank of length ``L_t`` with frictionless side walls and is
released at t = 0. The material is Newton's incompressible (rigid bulk, E = 1e15 Pa)
frictionless viscoplastic model with zero yield stress: a Newtonian fluid of dynamic
viscosity ``mu``, solved implicitly (so large viscosities do not limit the timestep). The
rough ground (Coulomb friction 1) approximates no slip. Viscosity sets the regime: at the
low end the column slumps inertially in ~sqrt(H / g); at the high end the viscous time
``rho H^2 / mu`` slows it (the OOD split moves viscosity beyond the training range).
Viscosities start at 10 Pa s: at 8 substeps per frame a 5 Pa s film thinner than a voxel
leaked through the floor (16 substeps held it), so the solver is trusted from there.

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
    channel_walls,
)

GROUND_FRICTION = 1.0  # Coulomb coefficient of the tank floor (near no-slip)


def viscous_fluid(viscosity: float) -> MPMMaterial:
    """Incompressible Newtonian fluid of dynamic viscosity ``viscosity`` (Pa s)."""
    return MPMMaterial(friction=0.0, tensile_yield_ratio=1.0, yield_stress=0.0, viscosity=viscosity)


@dataclass(frozen=True, kw_only=True)
class ViscousConfig(MPMConfig):
    """Column length and tank length (m) on top of the MPM settings."""

    length: float = 0.1  # column length L along the tank
    tank: float = 0.5  # tank length along x (end wall there)
    view: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.length < self.tank:
            raise ValidationError(
                f"length = {self.length}, expected 0 < length < tank = {self.tank} m"
            )


class ScenarioViscousDamBreak(ScenarioNewtonMPM):
    """A column of viscous fluid collapses along a tank (Newton implicit MPM, quasi-2D)."""

    name: ClassVar[str] = "fluid/viscous_dam_break"
    config_type: ClassVar[type[ScenarioConfig]] = ViscousConfig
    config: ViscousConfig
    integrator: ClassVar[str] = (
        "implicit MPM (APIC transfer, sparse grid), incompressible Newtonian viscous fluid"
    )
    laws: ClassVar[frozenset[str]] = frozenset(
        {
            "mass_conserved",
            "mass_in_domain",
            "non_penetration",
            "collider_non_penetration",
            "energy_nonincreasing",
        }
    )
    reference_overrides: ClassVar[dict[str, Any]] = {"substeps": 16}
    # The aspect ratio (the column, given) is not perturbed: its height sets the particle
    # count, and a second take must keep the particles to be compared with the first.
    take_perturbation: ClassVar[dict[str, float]] = {"viscosity": 0.2, "density": 5.0}
    version: ClassVar[str] = "3"
    # The column and tank are seen (so the aspect ratio is given); viscosity and density
    # are inferred from the flow.
    given_static: ClassVar[frozenset[str]] = frozenset(
        {"column", "domain", "colliders", "particle_radius"}
    )
    latent_static: ClassVar[frozenset[str]] = frozenset({"particle_mass", "gravity"})
    withheld_static: ClassVar[frozenset[str]] = frozenset({"voxel_size", "ground_friction"})
    given_params: ClassVar[frozenset[str]] = frozenset({"aspect_ratio"})
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        (
            Param("viscosity", "Pa s", 10.0, 500.0, "dynamic viscosity of the fluid"),
            Param("density", "kg/m^3", 800.0, 1500.0, "density of the fluid"),
            Param("aspect_ratio", "1", 0.5, 4.0, "column height over length H / L"),
        ),
        {
            "viscosity": Uniform(20.0, 60.0),
            "density": Uniform(950.0, 1300.0),
            "aspect_ratio": Uniform(1.5, 2.5),
        },
        # Far more viscous fluids (syrups, molten sugar).
        {"viscosity": Uniform(150.0, 300.0)},
    )

    def setup(self, params: dict[str, float], seed: int) -> MPMSetup:
        cfg = self.config
        height = params["aspect_ratio"] * cfg.length
        x0, cell, _ = self.jittered_lattice((0.0, 0.0, 0.0), (cfg.length, cfg.width, height), seed)
        far = 2.0 * cfg.view
        mass = float(params["density"] * np.prod(cell))
        radius = float(0.5 * cell.max())
        scene = MPMScene(
            x0=x0,
            particle_mass=mass,
            radius=radius,
            material=viscous_fluid(params["viscosity"]),
            ground_friction=GROUND_FRICTION,
            colliders=channel_walls(cfg.width, far, end=cfg.tank, sunk=cfg.voxel_size),
        )
        static = {
            "particle_mass": np.float64(mass),
            "particle_radius": np.float64(radius),
            "column": np.array([cfg.length, cfg.width, height]),
            "domain": np.array([[0.0, 0.0, 0.0], [cfg.tank, cfg.width, far]]),
            "colliders": np.zeros((0, 6)),
            "ground_friction": np.float64(GROUND_FRICTION),
            "gravity": np.array([0.0, 0.0, -GRAVITY]),
            "voxel_size": np.float64(cfg.voxel_size),
        }
        return MPMSetup(scene=scene, static=static)
