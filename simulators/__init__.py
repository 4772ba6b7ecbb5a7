"""Explicit simulators and their scenarios. Importing this registers every built-in
scenario lazily (as ``"module:attr"`` strings), so MuJoCo and Warp load only when used."""

from physground.scenario import SCENARIOS

SCENARIOS.register(
    "rigid/projectile",
    "physground.simulators.mujoco.projectile:ScenarioProjectile",
    tags=["rigid", "mujoco", "benchmark"],
)
