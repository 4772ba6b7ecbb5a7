"""MuJoCo rigid-body scenarios.

MuJoCo picks its OpenGL backend when it is imported, so it is chosen here first: the
user's ``MUJOCO_GL`` when set, else EGL when libEGL is installed, else OSMesa (software)
when libOSMesa is; `rendering.make_renderer` explains what to install when neither works.
"""

import ctypes.util
import os


def _choose_gl_backend() -> str:
    if "MUJOCO_GL" in os.environ:
        return os.environ["MUJOCO_GL"]
    if ctypes.util.find_library("EGL"):
        return "egl"
    if ctypes.util.find_library("OSMesa"):
        return "osmesa"
    return "egl"


os.environ["MUJOCO_GL"] = _choose_gl_backend()

from physground.scenario import SCENARIOS  # noqa: E402

# name -> (module:attr, tags); variants may point at functools.partial objects.
_M = "physground.simulators.mujoco"
_RIGID = {
    "rigid/projectile": f"{_M}.projectile:ScenarioProjectile",
    "rigid/projectile_drag": f"{_M}.projectile:ScenarioProjectileDrag",
    "rigid/projectile_occluded": f"{_M}.projectile:ScenarioProjectileOccluded",
    "rigid/bounce": f"{_M}.bounce:ScenarioBounce",
    "rigid/collision": f"{_M}.collision:ScenarioCollision",
    "rigid/collision_inelastic": f"{_M}.collision:ScenarioCollisionInelastic",
    "rigid/pendulum": f"{_M}.pendulum:ScenarioPendulum",
    "rigid/pendulum_damped": f"{_M}.pendulum:ScenarioPendulumDamped",
    "rigid/double_pendulum": f"{_M}.pendulum:ScenarioDoublePendulum",
    "rigid/double_pendulum_damped": f"{_M}.pendulum:ScenarioDoublePendulumDamped",
    "rigid/incline": f"{_M}.incline:ScenarioIncline",
    "rigid/stack": f"{_M}.stack:ScenarioStack",
    "rigid/dominoes": f"{_M}.dominoes:ScenarioDominoes",
}
for _name, _target in _RIGID.items():
    SCENARIOS.register(_name, _target, tags=["rigid", "mujoco", "benchmark"])
