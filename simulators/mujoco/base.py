"""Shared machinery of MuJoCo scenarios: batched rollout, state extraction, checks, rendering.

Each scenario writes an MJCF model for given parameters and an initial (qpos, qvel). The base
class appends world-frame sensors for every object body (``framepos``, ``framequat``,
``framelinvel``, ``frameangvel`` of the body frame) and the energy sensors, steps all rollouts
of a batch with `mujoco.rollout` (native threads; models with equal sizes share one call) and
keeps one frame every ``substeps`` physics steps. States come out of the rollout's sensor
array by slicing, with no per-frame Python work. MuJoCo evaluates sensors at the start of
each step, so sensor row ``k`` describes the state at time ``k h``; one extra step gives the
last frame.

Blow-ups are never returned: a NaN/Inf state, or MuJoCo's automatic reset after a diverged
acceleration (its simulation clock jumps back to zero), raises `SimulationError`; an energy
rise in a scenario whose laws say energy is conserved or non-increasing is caught by
`check`, which `physground.storage` applies before anything is written.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from physground.errors import SimulationError, ValidationError
from physground.rollout import Rollout
from physground.scenario import Scenario, ScenarioConfig
from physground.simulators.mujoco.rendering import camera_of, shared_renderer

STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS
INTEGRATORS = ("Euler", "RK4", "implicit", "implicitfast")
# Per object body: framepos (3), framequat (4), framelinvel (3), frameangvel (3).
_SENSORS = (("framepos", 3), ("framequat", 4), ("framelinvel", 3), ("frameangvel", 3))
_PER_BODY = sum(n for _, n in _SENSORS)


@dataclass(frozen=True, kw_only=True)
class MuJoCoConfig(ScenarioConfig):
    """Scenario settings plus the integrator and the number of physics steps per frame.

    ``energy_tolerance`` is the energy rise, as a fraction of the rollout's energy scale
    (initial kinetic energy plus potential energy above the ground), above which a rollout
    of an energy-conserving or dissipative scenario counts as a blow-up.
    """

    substeps: int = 32
    integrator: str = "RK4"
    threads: int = 0  # 0: one per CPU core
    energy_tolerance: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.substeps < 1:
            raise ValidationError(f"substeps = {self.substeps}, expected >= 1")
        if self.integrator not in INTEGRATORS:
            raise ValidationError(
                f"integrator = '{self.integrator}', expected one of {INTEGRATORS}"
            )
        if self.threads < 0:
            raise ValidationError(f"threads = {self.threads}, expected >= 0 (0: all cores)")
        if not self.energy_tolerance > 0:
            raise ValidationError(f"energy_tolerance = {self.energy_tolerance}, expected > 0")


def _restitution_of_damping(zeta: np.ndarray) -> np.ndarray:
    """Restitution of the clamped linear spring-damper ``x'' + 2 zeta w x' + w^2 x = 0``.

    The contact force ``k x + b x'`` is clamped at zero, so the bodies separate when the
    force (not the penetration) returns to zero: at phase ``theta`` with
    ``tan(theta) = -2 zeta sqrt(1 - zeta^2) / (1 - 2 zeta^2)``, theta in (0, pi].
    """
    root = np.sqrt(1 - zeta * zeta)
    theta = np.pi - np.arctan2(2 * zeta * root, 1 - 2 * zeta * zeta)
    return -np.exp(-zeta / root * theta) * (np.cos(theta) - zeta / root * np.sin(theta))


@functools.cache
def _damping_table() -> tuple[np.ndarray, np.ndarray]:
    """(restitution, zeta) on a fine grid, restitution increasing (zeta decreasing)."""
    zeta = np.linspace(0.999, 1e-7, 200_001)
    return np.ascontiguousarray(_restitution_of_damping(zeta)), zeta


def restitution_damping_ratio(restitution: float) -> float:
    """Damping ratio zeta of MuJoCo's one-sided spring-damper contact giving ``restitution``.

    The contact force k x + b x' is clamped at zero, so separation happens before the
    penetration returns to zero and the classic ``e = exp(-pi zeta / sqrt(1 - zeta^2))``
    underestimates the rebound; this inverts the clamped model's closed form (monotone in
    zeta) by interpolation on a fine table, accurate to ~1e-8 in zeta.
    """
    if not 0.0 < restitution < 1.0:
        raise ValidationError(
            f"restitution {restitution} must be in (0, 1) for a damped contact"
        )
    e_table, zeta_table = _damping_table()
    return float(np.interp(restitution, e_table, zeta_table))


def contact_solref(restitution: float, stiffness: float = 2e4) -> str:
    """MJCF ``solref`` in direct (-stiffness, -damping) form for a target restitution.

    ``stiffness`` is MuJoCo's reference stiffness [1/s^2] (acceleration per metre of
    penetration along the contact normal), independent of the bodies' masses.
    """
    if restitution >= 1.0:
        return f"-{stiffness:.6g} 0"
    zeta = restitution_damping_ratio(max(restitution, 1e-3))
    return f"-{stiffness:.6g} -{2 * zeta * math.sqrt(stiffness):.6g}"


def visual_header(image_size: int) -> str:
    """The MJCF ``<visual>`` block every scenario uses: small offscreen buffer, no shadows."""
    return f"""
  <visual>
    <global offwidth="{image_size}" offheight="{image_size}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.5 0.5 0.5" diffuse="0.5 0.5 0.5"/>
  </visual>"""


class ScenarioMuJoCo(Scenario):
    """Base class of rigid scenarios; subclasses provide the model and initial state.

    States (world frame, SI units, B object bodies): ``pos [T,B,3]`` body-frame origin (m;
    every scenario puts it at the centre of mass), ``quat [T,B,4]`` (w, x, y, z),
    ``vel [T,B,3]`` (m/s), ``angvel [T,B,3]`` (rad/s). ``meta['energy']`` is MuJoCo's
    kinetic plus gravitational potential energy per frame (J; potential ``m g z`` with z
    measured from 0); the elastic energy of contact springs is not included.
    """

    # 3 (above the base 2): frames rendered with one MjrContext per model (before, frames
    # depended on which scenario the process had rendered first)
    version: ClassVar[str] = "3"

    simulator: ClassVar[str] = "mujoco"
    config_type: ClassVar[type[ScenarioConfig]] = MuJoCoConfig
    config: MuJoCoConfig
    state_names: ClassVar[tuple[str, ...]] = ("pos", "quat", "vel", "angvel")
    reference_overrides: ClassVar[dict[str, Any]] = {"integrator": "implicitfast", "substeps": 64}
    config_defaults: ClassVar[dict[str, Any]] = {}  # per-scenario defaults of MuJoCoConfig
    object_bodies: ClassVar[tuple[str, ...]] = ()  # bodies whose states are emitted, in order
    # Observation: the bodies' shapes and the ground are seen; masses, inertias and gravity
    # must be inferred from the motion.
    given_static: ClassVar[frozenset[str]] = frozenset({"radius", "ground_height"})
    latent_static: ClassVar[frozenset[str]] = frozenset({"mass", "inertia", "gravity"})

    def __init__(self, config: ScenarioConfig | None = None, **overrides: Any) -> None:
        if config is None and self.config_defaults:
            config = dataclasses.replace(self.config_type(), **self.config_defaults)
        super().__init__(config, **overrides)

    @abc.abstractmethod
    def mjcf(self, params: dict[str, float]) -> str:
        """MJCF text for ``params``; must define a camera named ``main``."""

    @abc.abstractmethod
    def initial_state(
        self, model: mujoco.MjModel, params: dict[str, float], seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Initial (qpos, qvel) of one rollout."""

    def bodies(self, params: dict[str, float]) -> tuple[str, ...]:
        """Names of the object bodies for ``params`` (mask id = 1 + index)."""
        return self.object_bodies

    def check_params(self, params: dict[str, float]) -> None:
        """Constraints between parameters beyond their ranges; raise `ValidationError`."""

    def static(self, model: mujoco.MjModel, params: dict[str, float]) -> dict[str, Any]:
        """Time-invariant arrays of the object bodies: ``mass [B]`` (kg), ``inertia [B,3]``
        (kg m^2, principal), ``radius [B]`` (m, bounding sphere), ``gravity [3]`` (m/s^2),
        ``ground_height`` (m)."""
        ids = self._body_ids(model, params)
        return {
            "mass": model.body_mass[ids].astype(np.float64),
            "inertia": model.body_inertia[ids].astype(np.float64),
            "radius": np.array([_body_rbound(model, i) for i in ids]),
            "gravity": model.opt.gravity.astype(np.float64),
            "ground_height": np.float64(0.0),
        }

    # ------------------------------------------------------------------------- models

    def build_model(self, params: dict[str, float]) -> mujoco.MjModel:
        """Compile ``mjcf(params)`` with the object sensors, integrator and timestep."""
        return self._finish_model(mujoco.MjModel.from_xml_string(self.model_xml(params)))

    def build_models(self, params: Sequence[dict[str, float]]) -> list[mujoco.MjModel]:
        """`build_model` for a batch; MuJoCo compiles without the GIL, so in threads."""
        xmls = [self.model_xml(p) for p in params]
        threads = min(self._threads(), len(xmls))
        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                compiled = list(pool.map(mujoco.MjModel.from_xml_string, xmls))
        else:
            compiled = [mujoco.MjModel.from_xml_string(x) for x in xmls]
        return [self._finish_model(m) for m in compiled]

    def model_xml(self, params: dict[str, float]) -> str:
        """``mjcf(params)`` with the object and energy sensors appended."""
        xml = self.mjcf(params)
        head, tail = xml.rsplit("</mujoco>", 1)
        return head + self._sensor_xml(params) + "</mujoco>" + tail

    def _finish_model(self, model: mujoco.MjModel) -> mujoco.MjModel:
        model.opt.timestep = self.config.dt / self.config.substeps
        model.opt.integrator = getattr(mujoco.mjtIntegrator,
                                       f"mjINT_{self.config.integrator.upper()}")
        # Energy sensors compute energy of the current state on demand; with mjENBL_ENERGY
        # set they would read d->energy, which mj_forward updates only after the sensors.
        model.opt.enableflags &= ~int(mujoco.mjtEnableBit.mjENBL_ENERGY)
        return model

    def _threads(self) -> int:
        return self.config.threads or os.cpu_count() or 1

    def _sensor_xml(self, params: dict[str, float]) -> str:
        lines = [
            f'<{kind} name="pg_{kind}_{body}" objtype="xbody" objname="{body}"/>'
            for body in self.bodies(params)
            for kind, _ in _SENSORS
        ]
        lines += ['<e_potential name="pg_e_potential"/>', '<e_kinetic name="pg_e_kinetic"/>']
        return "<sensor>" + "".join(lines) + "</sensor>"

    def _body_ids(self, model: mujoco.MjModel, params: dict[str, float]) -> list[int]:
        return [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b)
                for b in self.bodies(params)]

    # ------------------------------------------------------------------------- simulation

    def simulate(
        self, params: Sequence[dict[str, float]], seeds: Sequence[int], split: str
    ) -> list[Rollout]:
        """One rollout per (params, seed), batched through `mujoco.rollout`."""
        params = [self.validate(p) for p in params]
        models = self.build_models(params)
        scratch: dict[tuple[int, ...], mujoco.MjData] = {}  # MjData costs ~1 ms: share it
        initial = []
        for m, p, seed in zip(models, params, seeds, strict=True):
            data = scratch.get(_size_key(m))
            if data is None:
                data = scratch[_size_key(m)] = mujoco.MjData(m)
            initial.append(self._initial_full_state(m, p, seed, data))
        states, sensors = self.rollout_batch(models, initial)
        return [
            self._to_rollout(model, p, seed, split, state, sensor)
            for model, p, seed, state, sensor in zip(models, params, seeds, states, sensors,
                                                      strict=True)
        ]

    def validate(self, params: dict[str, float]) -> dict[str, float]:
        """Names and physical ranges of ``params`` plus `check_params`; a clear error."""
        checked = self.param_space.validate(params, where=f"{self.name}: ")
        self.check_params(checked)
        return checked

    def _initial_full_state(
        self, model: mujoco.MjModel, params: dict[str, float], seed: int,
        data: mujoco.MjData | None = None,
    ) -> np.ndarray:
        """Full physics state [nstate] at the initial (qpos, qvel), clock 0."""
        if data is None:
            data = mujoco.MjData(model)
        else:
            mujoco.mj_resetData(model, data)
        qpos, qvel = self.initial_state(model, params, seed)
        data.qpos[:], data.qvel[:] = qpos, qvel
        state = np.empty(mujoco.mj_stateSize(model, STATE_SPEC))
        mujoco.mj_getState(model, data, state, STATE_SPEC)
        return state

    def rollout_batch(
        self, models: Sequence[mujoco.MjModel], initial: Sequence[np.ndarray]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Step every model from its initial state; per rollout the full physics state
        ``[T, nstate]`` and the sensor values ``[T, nsensordata]`` at the stored frames.

        Models with equal sizes (what `mujoco.rollout` needs) share one threaded call.
        """
        cfg = self.config
        nstep = (cfg.num_frames - 1) * cfg.substeps + 1
        threads = self._threads()
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, m in enumerate(models):
            groups.setdefault(_size_key(m), []).append(i)
        states: list[np.ndarray] = [np.empty(0)] * len(models)
        sensors: list[np.ndarray] = [np.empty(0)] * len(models)
        keep = np.arange(cfg.num_frames) * cfg.substeps
        for index in groups.values():
            batch = [models[i] for i in index]
            datas = [mujoco.MjData(batch[0]) for _ in range(min(threads, len(batch)))]
            start = np.stack([initial[i] for i in index])
            stepped, sensed = mj_rollout.rollout(batch, datas, start, nstep=nstep)
            # stepped[:, k] is the state after step k, i.e. at time (k + 1) h.
            full = np.concatenate([start[:, None], stepped[:, keep[1:] - 1]], axis=1)
            frame_sensors = sensed[:, keep]
            self._check_clock(stepped, batch[0].opt.timestep, index)
            for j, i in enumerate(index):
                states[i], sensors[i] = full[j], frame_sensors[j]
        return states, sensors

    def _check_clock(self, stepped: np.ndarray, timestep: float, index: list[int]) -> None:
        """MuJoCo resets a diverged simulation (bad qacc) to its initial pose and clock 0:
        a clock that does not advance by one timestep per step is a blow-up."""
        time = stepped[:, :, 0]
        want = np.arange(1, time.shape[1] + 1) * timestep
        bad = np.abs(time - want).max(axis=1) > 1e-6 * want[-1]
        bad |= ~np.isfinite(stepped).all(axis=(1, 2))
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise SimulationError(
                f"{self.name}: rollout {index[j]} of the batch diverged (NaN/Inf or MuJoCo "
                f"reset the simulation after an unstable acceleration); timestep "
                f"{timestep:.3g} s with {self.config.integrator}"
            )

    def _to_rollout(
        self,
        model: mujoco.MjModel,
        params: dict[str, float],
        seed: int,
        split: str,
        state: np.ndarray,
        sensor: np.ndarray,
    ) -> Rollout:
        cfg = self.config
        names = self.bodies(params)
        start = model.sensor_adr[
            mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, f"pg_framepos_{names[0]}")
        ]
        per_body = sensor[:, start : start + _PER_BODY * len(names)].reshape(
            len(sensor), len(names), _PER_BODY
        )
        pos, quat = per_body[..., 0:3].copy(), per_body[..., 3:7].copy()
        vel, angvel = per_body[..., 7:10].copy(), per_body[..., 10:13].copy()
        adr = model.sensor_adr
        e_pot = sensor[:, adr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR,
                                                 "pg_e_potential")]]
        e_kin = sensor[:, adr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR,
                                                 "pg_e_kinetic")]]
        energy = e_pot + e_kin
        if not (np.isfinite(sensor).all() and np.isfinite(state).all()):
            raise SimulationError(f"{self.name} seed {seed}: MuJoCo state became NaN or Inf")
        frames = masks = camera = None
        if cfg.render:
            renderer = shared_renderer(cfg.frame_width, cfg.frame_height)
            ids = self._body_ids(model, params)
            frames, masks = renderer.render(model, state, STATE_SPEC, ids)
            camera = camera_of(model, state, STATE_SPEC, "main", cfg.frame_width,
                               cfg.frame_height)
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

    # ------------------------------------------------------------------------- checks

    def energy_scale(self, rollout: Rollout) -> float:
        """Energy scale [J] of a rollout: initial kinetic energy plus the potential energy
        of every object above the ground (its centre's height plus its bounding radius)."""
        energy = np.asarray(rollout.meta["energy"])
        static = rollout.static
        mass, radius = np.asarray(static["mass"]), np.asarray(static["radius"])
        g = float(np.linalg.norm(static["gravity"]))
        height = rollout.states["pos"][0, :, 2] - float(static["ground_height"]) + radius
        potential_above_ground = float(np.sum(mass * g * np.abs(height)))
        kinetic0 = energy[0] - float(np.sum(mass * g * rollout.states["pos"][0, :, 2]))
        return abs(kinetic0) + potential_above_ground + 1e-9

    def check(self, rollout: Rollout) -> str | None:
        """Energy explosion: in a scenario whose laws say energy is conserved or never
        increases, total energy rising above its initial value by more than
        ``energy_tolerance`` times the energy scale."""
        if not self.laws & {"energy_conserved", "energy_nonincreasing"}:
            return None
        energy = np.asarray(rollout.meta["energy"])
        if not np.isfinite(energy).all():
            return "energy is NaN or Inf (simulator blow-up)"
        scale = self.energy_scale(rollout)
        rise = float(energy.max() - energy[0])
        if rise > self.config.energy_tolerance * scale:
            frame = int(np.argmax(energy - energy[0] > self.config.energy_tolerance * scale))
            return (
                f"energy explosion: total energy rose by {rise:.4g} J (from frame {frame}), "
                f"more than {self.config.energy_tolerance:g} x the energy scale "
                f"{scale:.4g} J, in a scenario where energy cannot grow"
            )
        return None


def _size_key(m: mujoco.MjModel) -> tuple[int, ...]:
    """Sizes that must agree for models to share MjData (and one `mujoco.rollout` call)."""
    return (m.nq, m.nv, m.na, m.nu, m.nbody, m.ngeom, m.njnt, m.nsensordata, m.nmocap, m.neq,
            m.nuserdata, m.nplugin, m.nhistory if hasattr(m, "nhistory") else 0)


def _body_rbound(model: mujoco.MjModel, body: int) -> float:
    """Radius [m] of the sphere around the body origin that bounds all its geoms."""
    geoms = np.flatnonzero(model.geom_bodyid == body)
    if len(geoms) == 0:
        return 0.0
    return float(max(np.linalg.norm(model.geom_pos[g]) + model.geom_rbound[g] for g in geoms))
