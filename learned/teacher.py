"""The explicit simulator as a teacher: step it from the model's own predicted state and
penalize the gap between the model's next state and the simulator's.

For each predicted step t -> t+1 of a rollout x_0..x_H (x_0 the true context state),

    L = mean_t |x_{t+1} - S_x(x_t, v_t)|^2 / (a_s dt^2)^2 + |v_{t+1} - S_v(x_t, v_t)|^2 / (a_s dt)^2

with S one frame of the scenario's own simulator and a_s = |g| (an acceleration scale).
Warp cloth and SPH steps are differentiable (`ClothTorchStep`, `SPHTorchStep`:
torch.autograd.Functions over `wp.Tape`), so gradients also flow through S into the model's
earlier predictions. Smoke, a grid field rather than entities, has its own loss of the same
form (`smoke_teacher_loss`, through `SmokeTorchStep` on the staggered grid). MuJoCo
is not differentiable: its step is a fixed target (stop-gradient), and the gradient flows
through the model's x_{t+1} only. Rigid entities are set up through their joints
(`set_body_state`): free bodies with identity orientation and zero angular velocity (exact
for the frictionless spheres of the rigid scenarios, whose translation does not depend on
orientation), slide-jointed (planar) bodies by their displacement along each axis.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from physground.errors import ValidationError
from physground.rollout import Rollout


class Teacher(Protocol):
    differentiable: bool

    def __call__(self, x: torch.Tensor, v: torch.Tensor, rows: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """One stored frame of the simulator from x, v [B,N,d] of rollouts ``rows``."""
        ...


class TeacherMuJoCo:
    """One frame of a MuJoCo scenario (``substeps`` physics steps) from entity states."""

    differentiable = False

    def __init__(self, rollouts: Sequence[Rollout]) -> None:
        from physground.scenario import get_scenario

        first = rollouts[0]
        config = dict(first.meta.get("scenario_config", {}))
        config.update(render=False)
        self.scenario = get_scenario(first.scenario, **config)
        self.rollouts = list(rollouts)

    @functools.lru_cache(maxsize=256)  # noqa: B019  (one teacher per training run)
    def _model(self, row: int) -> Any:
        import mujoco

        params = self.rollouts[row].params
        model = self.scenario.build_model(params)
        names = (self.scenario.bodies(params) if hasattr(self.scenario, "bodies")
                 else self.scenario.object_bodies)
        ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in names]
        return model, mujoco.MjData(model), ids

    def __call__(self, x: torch.Tensor, v: torch.Tensor, rows: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        import mujoco

        xs, vs = x.detach().double().cpu().numpy(), v.detach().double().cpu().numpy()
        x_out, v_out = xs.copy(), vs.copy()  # padded entities (no body) stay put
        velocity6 = np.empty(6)
        for b, row in enumerate(rows.tolist()):
            model, data, ids = self._model(int(row))
            mujoco.mj_resetData(model, data)
            mujoco.mj_kinematics(model, data)  # body frames and joint axes at qpos0
            for n, body in enumerate(ids):
                set_body_state(model, data, body, xs[b, n], vs[b, n])
            mujoco.mj_forward(model, data)
            for _ in range(self.scenario.config.substeps):
                mujoco.mj_step(model, data)
            for n, body in enumerate(ids):
                mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, body,
                                         velocity6, 0)
                x_out[b, n], v_out[b, n] = data.xpos[body], velocity6[3:]
        return (torch.as_tensor(x_out).to(x), torch.as_tensor(v_out).to(v))


def set_body_state(model: Any, data: Any, body: int, x: np.ndarray, v: np.ndarray) -> None:
    """Put ``body`` at world position ``x`` with linear velocity ``v`` through its joints: a
    free joint (identity orientation, no spin) or slide joints (planar and linear bodies:
    the displacement along each axis from the pose at ``qpos0``, which ``data`` must hold
    after `mujoco.mj_kinematics`)."""
    import mujoco

    reference = data.xpos[body].copy()
    first = model.body_jntadr[body]
    for joint in range(first, first + model.body_jntnum[body]):
        qa, da, kind = model.jnt_qposadr[joint], model.jnt_dofadr[joint], model.jnt_type[joint]
        if kind == mujoco.mjtJoint.mjJNT_FREE:
            data.qpos[qa:qa + 7] = [*x, 1.0, 0.0, 0.0, 0.0]
            data.qvel[da:da + 6] = [*v, 0.0, 0.0, 0.0]
        elif kind == mujoco.mjtJoint.mjJNT_SLIDE:
            axis = data.xaxis[joint]
            data.qpos[qa] = model.qpos0[qa] + float(np.dot(np.asarray(x) - reference, axis))
            data.qvel[da] = float(np.dot(v, axis))
        else:
            raise ValidationError(
                f"teacher: body {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, body)} has "
                f"a {mujoco.mjtJoint(kind).name} joint; expected free or slide joints")


# Cloth physics a model cannot see (latent statics, `ScenarioWarpCloth.latent_static`) that
# the cloth step needs, besides the per-batch stiffness, damping, mass and wind.
CLOTH_LATENT_STATIC = ("gravity", "air_drag", "friction", "shear_ratio",
                       "bending_rigidity")


def nominal_cloth_physics(rollouts: Sequence[Rollout]) -> dict[str, Any]:
    """The training set's average cloth physics, as JSON values: ``stiffness``,
    ``damping``, ``mass`` (means of the parameters), ``wind`` [3] and the latent statics
    of `CLOTH_LATENT_STATIC` (means). A model that cannot see a rollout's own physics (the
    default track) steps the simulator with these and learns the remaining gap."""
    def mean(values: Sequence[Any]) -> Any:
        return np.mean(np.asarray(values, dtype=np.float64), axis=0).tolist()

    out = {k: mean([r.params[k] for r in rollouts]) for k in ("stiffness", "damping", "mass")}
    out["wind"] = mean([r.static["wind"] for r in rollouts])
    out.update({k: mean([r.static[k] for r in rollouts]) for k in CLOTH_LATENT_STATIC})
    return out


class TeacherWarpCloth:
    """One frame of a Warp cloth scenario, differentiable through `ClothTorchStep`
    (with the rollouts' own substeps, or ``substeps`` for a coarser step).

    With ``nominal`` physics (`nominal_cloth_physics`) the sources may be observations:
    only their given statics (mesh, pins, sphere, ground) are read and every latent
    quantity comes from ``nominal``; without it (the training teacher) each rollout's own
    parameters and statics are used."""

    differentiable = True

    def __init__(self, rollouts: Sequence[Any], device: str = "cpu",
                 substeps: int | None = None, nominal: dict[str, Any] | None = None) -> None:
        from physground.simulators.warp.cloth import ClothTorchStep

        if nominal is None:
            statics = [dict(r.static) for r in rollouts]
            rows = [[r.params["stiffness"], r.params["damping"], r.params["mass"],
                     *np.asarray(r.static["wind"], dtype=np.float64)] for r in rollouts]
            counts = [substeps or int(r.meta["substeps"]) for r in rollouts]
        else:
            if substeps is None:
                raise ValidationError("a cloth step with nominal physics needs its substeps")
            from physground.observation import observation_spec

            given = observation_spec(rollouts[0].scenario).given_static
            latent = {k: np.asarray(nominal[k]) for k in CLOTH_LATENT_STATIC}
            statics = [{**{k: v for k, v in r.static.items() if k in given}, **latent}
                       for r in rollouts]
            rows = [[nominal["stiffness"], nominal["damping"], nominal["mass"],
                     *nominal["wind"]]] * len(rollouts)
            counts = [substeps] * len(rollouts)
        self.statics = statics
        self.steps = [ClothTorchStep(st, dt=r.dt, device=device, substeps=n)
                      for st, r, n in zip(statics, rollouts, counts, strict=True)]
        self.params = torch.tensor(rows, dtype=torch.float32)
        # Rollouts that share pins, sphere and friction can share one stepper per batch.
        self._key = [self._signature(st) for st in statics]

    @staticmethod
    def _signature(s: dict[str, Any]) -> tuple[Any, ...]:
        return (np.asarray(s["pinned"]).tobytes(), float(s["sphere_radius"]),
                np.asarray(s["sphere_center"]).tobytes(), float(s["friction"]))

    def __call__(self, x: torch.Tensor, v: torch.Tensor, rows: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        rows_l = rows.tolist()
        out_x: list[Any] = [None] * len(rows_l)
        out_v: list[Any] = [None] * len(rows_l)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for b, row in enumerate(rows_l):
            groups.setdefault(self._key[row], []).append(b)
        for members in groups.values():
            idx = torch.as_tensor(members, device=x.device)
            p = self.params[[rows_l[b] for b in members]].to(x)
            step = self.steps[rows_l[members[0]]]
            x1, v1 = step(x[idx], v[idx], p[:, 0], p[:, 1], p[:, 2], p[:, 3:6])
            for k, b in enumerate(members):
                out_x[b], out_v[b] = x1[k], v1[k]
        return torch.stack(out_x), torch.stack(out_v)


def _shared_static(rollouts: Sequence[Any], keys: Sequence[str], what: str) -> dict[str, Any]:
    """The statics ``keys`` of the first rollout, checked to be the same in every one (one
    simulator serves the whole training set)."""
    first = rollouts[0].static
    for r in rollouts[1:]:
        for k in keys:
            if not np.array_equal(np.asarray(r.static[k]), np.asarray(first[k])):
                raise ValidationError(f"{what} teacher: static['{k}'] differs between "
                                      f"rollouts (seed {rollouts[0].seed} vs {r.seed}); "
                                      "one teacher serves rollouts of one configuration")
    return {k: first[k] for k in keys}


class TeacherWarpSPH:
    """One frame of the Warp SPH dam break, differentiable through `SPHTorchStep`.

    Each rollout's own viscosity, gravity and box width (its parameters: labels the model
    never sees) drive the step; the discretization (spacing, smoothing length, rest
    density, sound speed) and the substeps are shared by the training set."""

    differentiable = True
    KEYS = ("spacing", "smoothing_length", "rest_density", "sound_speed")

    def __init__(self, rollouts: Sequence[Rollout], device: str = "cpu") -> None:
        from physground.simulators.warp.sph import SPHTorchStep

        static = _shared_static(rollouts, self.KEYS, "SPH")
        substeps = {int(r.meta["substeps"]) for r in rollouts}
        if len(substeps) != 1:
            raise ValidationError(f"SPH teacher: rollouts mix substeps {sorted(substeps)}")
        self.step = SPHTorchStep(static, dt=rollouts[0].dt, substeps=substeps.pop(),
                                 device=device)
        self.params = torch.tensor([[r.params["viscosity"], r.params["gravity"],
                                     r.params["box_width"]] for r in rollouts],
                                   dtype=torch.float64)

    def __call__(self, x: torch.Tensor, v: torch.Tensor, rows: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.params[rows.cpu()].to(x)
        return self.step(x, v, p[:, 0], p[:, 1], p[:, 2])


class TeacherWarpSmoke:
    """One frame of the Warp smoke plume on the staggered (MAC) grid, differentiable
    through `SmokeTorchStep`, with each rollout's own buoyancy (a label).

    ``teacher(density, u, v, rows)``: density [B,H,W], face velocities u [B,H,W+1] and
    v [B,H+1,W] (m/s), the rollouts' ``face_u``/``face_v`` states; re-stepping a stored
    state reproduces the stored next frame. ``teacher.cell(density, velocity, rows)`` takes
    cell-centred velocities [B,H,W,2] instead (faces reconstructed by averaging: close to,
    not exactly, the stored continuation)."""

    differentiable = True

    def __init__(self, rollouts: Sequence[Rollout], device: str = "cpu") -> None:
        from physground.simulators.warp.smoke import SmokeTorchStep

        static = _shared_static(rollouts, ("grid_size", "grid_spacing"), "smoke")
        settings = {(int(r.meta["substeps"]), int(r.meta["pressure_iterations"]),
                     str(r.meta.get("advection", "semi_lagrangian"))) for r in rollouts}
        if len(settings) != 1:
            raise ValidationError(f"smoke teacher: rollouts mix solver settings "
                                  f"(substeps, pressure iterations, advection) {sorted(settings)}")
        substeps, iterations, advection = settings.pop()
        self.step = SmokeTorchStep(static, dt=rollouts[0].dt, substeps=substeps,
                                   pressure_iterations=iterations, device=device,
                                   advection=advection)
        self.buoyancy = torch.tensor([float(r.params["buoyancy"]) for r in rollouts],
                                     dtype=torch.float64)

    def __call__(self, density: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
                 rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.step.mac(density, u, v, self.buoyancy[rows.cpu()].to(density))

    def cell(self, density: torch.Tensor, velocity: torch.Tensor, rows: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.step(density, velocity, self.buoyancy[rows.cpu()].to(density))


def _scenario_class(name: str) -> type:
    from physground.scenario import SCENARIOS

    factory = SCENARIOS.get(name)
    return factory if isinstance(factory, type) else getattr(factory, "func", type(factory))


def make_teacher(rollouts: Sequence[Rollout], device: str = "cpu") -> Any:
    """The teacher of the scenario of ``rollouts``, by its simulator: `TeacherMuJoCo`,
    `TeacherWarpCloth`, `TeacherWarpSPH` (entity teachers, for `teacher_loss`) or
    `TeacherWarpSmoke` (a grid teacher, for `smoke_teacher_loss`)."""
    from physground.scenario import get_scenario
    from physground.simulators.warp.cloth import ScenarioWarpCloth
    from physground.simulators.warp.smoke import ScenarioSmoke
    from physground.simulators.warp.sph import ScenarioDamBreak

    scenario = get_scenario(rollouts[0].scenario, render=False)
    if scenario.simulator == "mujoco":
        return TeacherMuJoCo(rollouts)
    teachers: tuple[tuple[type, Any], ...] = (
        (ScenarioWarpCloth, TeacherWarpCloth), (ScenarioDamBreak, TeacherWarpSPH),
        (ScenarioSmoke, TeacherWarpSmoke))
    for cls, teacher in teachers:
        if isinstance(scenario, cls):
            return teacher(rollouts, device=device)
    raise ValidationError(
        f"no simulator teacher for scenario '{rollouts[0].scenario}' "
        "(available: MuJoCo rigid scenarios, Warp cloth, SPH and smoke)"
    )


def teacher_loss(state: Any, *, scenario: str, options: dict[str, Any]) -> torch.Tensor:
    """Simulator-as-teacher loss of an `EntityRollout` (needs ``teacher`` and ``rows``)."""
    teacher = state.teacher
    if teacher is None or state.rows is None:
        raise ValidationError(f"teacher loss for '{scenario}' needs a simulator teacher and "
                              "the rollout index of each window")
    x, v = state.full()
    B, T = x.shape[:2]
    xin, vin = x[:, :-1].reshape(-1, *x.shape[2:]), v[:, :-1].reshape(-1, *v.shape[2:])
    rows = state.rows.repeat_interleave(T - 1)
    if not teacher.differentiable:
        xin, vin = xin.detach(), vin.detach()
    xs, vs = teacher(xin, vin, rows)
    xs, vs = xs.reshape(B, T - 1, *x.shape[2:]), vs.reshape(B, T - 1, *v.shape[2:])
    a_s = state.static.gravity.norm(dim=-1).clamp_min(1.0)[:, None, None, None]
    dt = state.dt
    ex = (x[:, 1:] - xs) / (a_s * dt * dt)
    ev = (v[:, 1:] - vs) / (a_s * dt)
    moving = (~state.static.pinned[:, None, :, None]).expand_as(ex)
    return ((ex * ex + ev * ev) * moving).sum() / moving.sum().clamp_min(1)


def smoke_teacher_loss(teacher: TeacherWarpSmoke, density: torch.Tensor, u: torch.Tensor,
                       v: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Simulator-as-teacher loss of a predicted smoke rollout on the MAC grid.

    ``density [B,T,H,W]``, ``u [B,T,H,W+1]``, ``v [B,T,H+1,W]`` (m/s): the starting state
    then the model's T-1 frames; ``rows [B]`` the rollout of each system. For each step

        L = mean_t |rho_{t+1} - S_rho|^2 / rho_s^2 + (|u_{t+1} - S_u|^2 + |v_{t+1} - S_v|^2)
            / (b dt)^2

    with S one frame of the smoke simulator from the model's own state t, rho_s the RMS
    density of the starting state and b the buoyancy (an acceleration scale, at least 1
    m/s^2); gradients flow through S (Warp tape) into earlier predictions. 0 on the truth.
    """
    B, T = density.shape[:2]
    if T < 2:
        raise ValidationError(f"smoke teacher loss needs >= 2 frames, got density "
                              f"{list(density.shape)}")
    for name, value in (("u", u), ("v", v)):
        if value.shape[:2] != (B, T):
            raise ValidationError(f"smoke teacher loss: {name} has shape {list(value.shape)}, "
                                  f"expected leading [B,T] = {[B, T]} as density")
    steps = rows.repeat_interleave(T - 1)
    flat = [a[:, :-1].reshape(-1, *a.shape[2:]) for a in (density, u, v)]
    rho_s, u_s, v_s = (a.reshape(B, T - 1, *a.shape[1:]) for a in teacher(*flat, steps))
    dt = teacher.step.simulator.dt * teacher.step.substeps
    vel_scale = teacher.buoyancy[rows.cpu()].to(density).clamp_min(1.0) * dt
    rho_scale = density[:, 0].detach().square().mean(dim=(-1, -2)).sqrt().clamp_min(1e-6)
    e_rho = ((density[:, 1:] - rho_s) / rho_scale[:, None, None, None]).square().mean()
    w = vel_scale[:, None, None, None]
    e_u = ((u[:, 1:] - u_s) / w).square().mean()
    e_v = ((v[:, 1:] - v_s) / w).square().mean()
    return e_rho + e_u + e_v
