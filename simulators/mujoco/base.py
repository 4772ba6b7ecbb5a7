"""Shared machinery of MuJoCo scenarios: batched rollout, state extraction, rendering.

Each scenario writes an MJCF model for given parameters and an initial (qpos, qvel); the
base class steps all rollouts of a batch with `mujoco.rollout` (native threads), keeps one
frame every ``substeps`` physics steps, reads world-frame body states and renders frames
and object masks from a fixed camera named ``main``.
"""

from __future__ import annotations

import abc
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from physground.errors import SimulationError
from physground.rollout import Rollout
from physground.scenario import Scenario, ScenarioConfig
from physground.simulators.mujoco.rendering import FrameRenderer, camera_of

STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS


@dataclass(frozen=True, kw_only=True)
class MuJoCoConfig(ScenarioConfig):
    """Scenario settings plus the integrator and the number of physics steps per frame."""

    substeps: int = 32
    integrator: str = "RK4"
    threads: int = 0  # 0: one per CPU core

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.substeps < 1:
            raise ValueError(f"substeps = {self.substeps}, expected >= 1")


def restitution_damping_ratio(restitution: float) -> float:
    """Damping ratio zeta of MuJoCo's one-sided spring-damper contact giving ``restitution``.

    The contact force k x + b x' is clamped at zero, so separation happens before the
    penetration returns to zero and the classic ``e = exp(-pi zeta / sqrt(1 - zeta^2))``
    underestimates the rebound; this solves the clamped model exactly for zeta.
    """
    from scipy.optimize import brentq

    if not 0.0 < restitution < 1.0:
        raise ValueError(f"restitution {restitution} must be in (0, 1) for a damped contact")

    def clamped_restitution(zeta: float) -> float:
        root = math.sqrt(1 - zeta * zeta)

        def force(theta: float) -> float:  # (k x + b x') / (v w), theta = w_d t
            return (1 - 2 * zeta * zeta) / root * math.sin(theta) + 2 * zeta * math.cos(theta)

        theta = brentq(force, 1e-9, math.pi) if force(math.pi) < 0 else math.pi
        return -math.exp(-zeta / root * theta) * (math.cos(theta) - zeta / root * math.sin(theta))

    return float(brentq(lambda z: clamped_restitution(z) - restitution, 1e-6, 0.999))


def contact_solref(restitution: float, stiffness: float = 2e4) -> str:
    """MJCF ``solref`` in direct (-stiffness, -damping) form for a target restitution."""
    if restitution >= 1.0:
        return f"-{stiffness:.6g} 0"
    zeta = restitution_damping_ratio(max(restitution, 1e-3))
    return f"-{stiffness:.6g} -{2 * zeta * math.sqrt(stiffness):.6g}"


class ScenarioMuJoCo(Scenario):
    """Base class of rigid scenarios; subclasses provide the model and initial state."""

    simulator: ClassVar[str] = "mujoco"
    config_type: ClassVar[type[ScenarioConfig]] = MuJoCoConfig
    config: MuJoCoConfig
    state_names: ClassVar[tuple[str, ...]] = ("pos", "quat", "vel", "angvel")
    reference_overrides: ClassVar[dict[str, Any]] = {"integrator": "implicitfast", "substeps": 64}
    object_bodies: ClassVar[tuple[str, ...]]  # bodies whose states are emitted, in order

    @abc.abstractmethod
    def mjcf(self, params: dict[str, float]) -> str:
        """MJCF text for ``params``; must define a camera named ``main``."""

    @abc.abstractmethod
    def initial_state(
        self, model: mujoco.MjModel, params: dict[str, float], seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Initial (qpos, qvel) of one rollout."""

    def static(self, model: mujoco.MjModel, params: dict[str, float]) -> dict[str, Any]:
        """Time-invariant arrays: masses [kg], radii [m], gravity [m/s^2] of object bodies."""
        ids = self._body_ids(model)
        return {
            "mass": model.body_mass[ids].astype(np.float64),
            "inertia": model.body_inertia[ids].astype(np.float64),
            "radius": np.array([model.geom_rbound[model.body_geomadr[i]] for i in ids]),
            "gravity": model.opt.gravity.astype(np.float64),
            "ground_height": np.float64(0.0),
        }

    # -------------------------------------------------------------------------------

    def build_model(self, params: dict[str, float]) -> mujoco.MjModel:
        model = mujoco.MjModel.from_xml_string(self.mjcf(params))
        model.opt.timestep = self.config.dt / self.config.substeps
        model.opt.integrator = getattr(mujoco.mjtIntegrator, f"mjINT_{self.config.integrator}")
        model.opt.enableflags |= mujoco.mjtEnableBit.mjENBL_ENERGY
        return model

    def _body_ids(self, model: mujoco.MjModel) -> list[int]:
        return [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in self.object_bodies]

    def simulate(
        self, params: Sequence[dict[str, float]], seeds: Sequence[int], split: str
    ) -> list[Rollout]:
        models = [self.build_model(p) for p in params]
        states = self.rollout_states(models, params, seeds)
        return [
            self._to_rollout(model, p, seed, split, traj)
            for model, p, seed, traj in zip(models, params, seeds, states, strict=True)
        ]

    def rollout_states(
        self,
        models: Sequence[mujoco.MjModel],
        params: Sequence[dict[str, float]],
        seeds: Sequence[int],
    ) -> np.ndarray:
        """Full physics state at every stored frame, [batch, num_frames, nstate]."""
        cfg = self.config
        data = mujoco.MjData(models[0])
        nstate = mujoco.mj_stateSize(models[0], STATE_SPEC)
        initial = np.empty((len(models), nstate))
        for i, (model, p, seed) in enumerate(zip(models, params, seeds, strict=True)):
            mujoco.mj_resetData(model, data)
            data.qpos[:], data.qvel[:] = self.initial_state(model, p, seed)
            mujoco.mj_getState(model, data, initial[i], STATE_SPEC)
        nstep = (cfg.num_frames - 1) * cfg.substeps
        threads = cfg.threads or os.cpu_count() or 1
        datas = [mujoco.MjData(models[0]) for _ in range(min(threads, len(models)))]
        stepped, _ = mj_rollout.rollout(list(models), datas, initial, nstep=nstep)
        frames = stepped[:, cfg.substeps - 1 :: cfg.substeps]
        return np.concatenate([initial[:, None], frames], axis=1)

    def _to_rollout(
        self,
        model: mujoco.MjModel,
        params: dict[str, float],
        seed: int,
        split: str,
        states: np.ndarray,
    ) -> Rollout:
        cfg = self.config
        data = mujoco.MjData(model)
        ids = self._body_ids(model)
        T, B = states.shape[0], len(ids)
        pos, quat = np.empty((T, B, 3)), np.empty((T, B, 4))
        vel, angvel = np.empty((T, B, 3)), np.empty((T, B, 3))
        energy = np.empty(T)
        frames = masks = camera = None
        renderer = FrameRenderer(model, cfg.image_size, "main", ids) if cfg.render else None
        if renderer is not None:
            frames = np.empty((T, cfg.image_size, cfg.image_size, 3), np.uint8)
            masks = np.empty((T, cfg.image_size, cfg.image_size), np.uint8)
        velocity6 = np.empty(6)
        try:
            for t in range(T):
                mujoco.mj_setState(model, data, states[t], STATE_SPEC)
                mujoco.mj_forward(model, data)
                energy[t] = data.energy.sum()
                pos[t], quat[t] = data.xpos[ids], data.xquat[ids]
                for b, body in enumerate(ids):  # world-frame [angular, linear] at body origin
                    mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, body,
                                             velocity6, 0)
                    angvel[t, b], vel[t, b] = velocity6[:3], velocity6[3:]
                if renderer is not None:
                    frames[t], masks[t] = renderer.render(data)  # type: ignore[index]
            if renderer is not None:
                camera = camera_of(model, data, "main", cfg.image_size)
        finally:
            if renderer is not None:
                renderer.close()
        if not np.isfinite(states).all():
            raise SimulationError(f"{self.name} seed {seed}: MuJoCo state became NaN or Inf")
        return Rollout(
            scenario=self.name, split=split, seed=seed, params=dict(params), dt=cfg.dt,
            states={"pos": pos, "quat": quat, "vel": vel, "angvel": angvel},
            static=self.static(model, params), frames=frames, masks=masks, camera=camera,
            meta={
                "simulator": "mujoco", "simulator_version": mujoco.__version__,
                "integrator": cfg.integrator, "substeps": cfg.substeps,
                "timestep": model.opt.timestep, "energy": energy.tolist(),
            },
        )
