"""Granular flow onto a rigid obstacle through Newton's implicit MPM solver.

A sand column (length ``L``, height ``H`` along z, width ``W`` across y) rests against the
back wall of the frictionless-walled channel of `granular.py` and collapses; at a gap
``d`` in front of it a static box of height ``h`` spans the channel. The flow piles
against the obstacle and overtops it where the column is tall enough: grains must stay out
of the box (non-penetration, law ``collider_non_penetration``) and inside the channel (mass
conservation, ``mass_in_domain``). Material: the rigid-plastic Drucker-Prager sand of the
column collapse (`granular.sand`), friction ``tan(phi)`` on the ground and the obstacle.

States: ``x [T,N,3]`` positions (m), ``v [T,N,3]`` velocities (m/s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from physground.errors import ValidationError
from physground.params import Param, ParamSpace, Uniform
from physground.scenario import ScenarioConfig
from physground.simulators.newton.granular import YOUNG_MODULUS, sand
from physground.simulators.newton.mpm import (
    GRAVITY,
    BoxCollider,
    MPMConfig,
    MPMScene,
    MPMSetup,
    ScenarioNewtonMPM,
    channel_walls,
)


@dataclass(frozen=True, kw_only=True)
class ObstacleConfig(MPMConfig):
    """Column and obstacle sizes (m) on top of the MPM settings."""

    length: float = 0.1  # column length L along the channel
    height: float = 0.2  # column height H
    obstacle_length: float = 0.04  # obstacle extent along the channel

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("length", "height", "obstacle_length"):
            if not getattr(self, name) > 0:
                raise ValidationError(f"{name} = {getattr(self, name)}, expected > 0 m")


class ScenarioGranularObstacle(ScenarioNewtonMPM):
    """A sand column collapses onto a box obstacle across the channel (quasi-2D MPM)."""

    name: ClassVar[str] = "granular/obstacle"
    config_type: ClassVar[type[ScenarioConfig]] = ObstacleConfig
    config: ObstacleConfig
    integrator: ClassVar[str] = (
        "implicit MPM (APIC transfer, sparse grid), Drucker-Prager grains, static box collider"
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
    take_perturbation: ClassVar[dict[str, float]] = {
        "friction_angle": 0.5,
        "density": 10.0,
        "obstacle_height": 0.001,
        "obstacle_gap": 0.001,
    }
    version: ClassVar[str] = "3"
    # The column, channel and obstacle are seen; the friction and density are inferred.
    given_static: ClassVar[frozenset[str]] = frozenset(
        {"column", "domain", "colliders", "particle_radius"}
    )
    latent_static: ClassVar[frozenset[str]] = frozenset(
        {"ground_friction", "particle_mass", "gravity"}
    )
    withheld_static: ClassVar[frozenset[str]] = frozenset({"voxel_size", "young_modulus"})
    given_params: ClassVar[frozenset[str]] = frozenset({"obstacle_height", "obstacle_gap"})
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        (
            Param("friction_angle", "deg", 15.0, 50.0, "internal, ground and obstacle friction"),
            Param("density", "kg/m^3", 1000.0, 2500.0, "density of the granular bulk"),
            Param("obstacle_height", "m", 0.01, 0.15, "height of the box across the channel"),
            Param("obstacle_gap", "m", 0.0, 0.3, "gap from the column's front to the box"),
        ),
        {
            "friction_angle": Uniform(28.0, 34.0),
            "density": Uniform(1400.0, 1700.0),
            "obstacle_height": Uniform(0.03, 0.06),
            "obstacle_gap": Uniform(0.05, 0.12),
        },
        # Smoother sand against a taller obstacle.
        {"friction_angle": Uniform(20.0, 24.0), "obstacle_height": Uniform(0.08, 0.1)},
    )

    def setup(self, params: dict[str, float], seed: int) -> MPMSetup:
        cfg = self.config
        x0, cell, _ = self.jittered_lattice(
            (0.0, 0.0, 0.0), (cfg.length, cfg.width, cfg.height), seed
        )
        friction = math.tan(math.radians(params["friction_angle"]))
        start = cfg.length + params["obstacle_gap"]
        h = params["obstacle_height"]
        # the box spans the channel and reaches into the side walls (no gap at them)
        obstacle = BoxCollider(
            (start + 0.5 * cfg.obstacle_length, 0.5 * cfg.width, 0.5 * h),
            (0.5 * cfg.obstacle_length, 0.5 * cfg.width + 0.05, 0.5 * h),
            friction,
        )
        far = 2.0 * cfg.view
        mass = float(params["density"] * np.prod(cell))
        radius = float(0.5 * cell.max())
        scene = MPMScene(
            x0=x0,
            particle_mass=mass,
            radius=radius,
            material=sand(friction),
            ground_friction=friction,
            colliders=[*channel_walls(cfg.width, far), obstacle],
        )
        # the recorded collider is its part inside the channel
        inside = BoxCollider(obstacle.centre, (obstacle.half[0], 0.5 * cfg.width, obstacle.half[2]))
        static = {
            "particle_mass": np.float64(mass),
            "particle_radius": np.float64(radius),
            "column": np.array([cfg.length, cfg.width, cfg.height]),
            "domain": np.array([[0.0, 0.0, 0.0], [far, cfg.width, far]]),
            "colliders": inside.as_row()[None],
            "ground_friction": np.float64(friction),
            "gravity": np.array([0.0, 0.0, -GRAVITY]),
            "voxel_size": np.float64(cfg.voxel_size),
            "young_modulus": np.float64(YOUNG_MODULUS),
        }
        return MPMSetup(scene=scene, static=static, render_boxes=[inside])
