"""Rollouts as batched entity systems in torch: one description for bodies, cloth nodes and
SPH particles, shared by the state model, the hybrid and the physics-consistency losses.

An entity system is ``N`` point entities in ``d`` dimensions with positions ``x [.., N, d]``
(m) and velocities ``v [.., N, d]`` (m/s) read from the rollout's position/velocity state
pair (rigid ``pos``/``vel``, cloth and SPH ``x``/``v``), plus the static description in
`EntityStatic`: per-entity mass (kg), radius (m) and pinned flag, gravity (m/s^2), the
ground height (m), mesh edges with rest lengths (m), and SPH smoothing length (m) and rest
density (kg/m^d). Aliases for static names are resolved here, once.

A model builds its inputs from `Observation`s (at prediction) or from training rollouts
seen as observations (`physground.observation.observe`), so only given statics enter;
gravity, latent everywhere, is inferred from the observed motion (`infer_gravity`). Losses
may use the training rollouts' full statics (true masses and gravity): they are labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from physground.errors import ValidationError

# State name of each position and of its time derivative.
POSITION_VELOCITY = (("pos", "vel"), ("x", "v"))

_ALIASES: dict[str, tuple[str, ...]] = {
    "mass": ("mass", "masses", "particle_mass", "node_mass"),
    "radius": ("radius", "radii", "particle_radius"),
    "pinned": ("pinned", "pinned_mask", "pinned_nodes", "fixed"),
    "edges": ("edges", "edge_index", "springs"),
    "rest_length": ("rest_length", "rest_lengths", "edge_rest_length", "spring_rest_length"),
    "smoothing_length": ("smoothing_length", "kernel_radius", "h"),
    "rest_density": ("rest_density", "density0", "rho0"),
    "ground_height": ("ground_height", "ground"),
    "gravity": ("gravity",),
    "box": ("box", "bounds", "domain"),
}


def state_keys(rollout: Any) -> tuple[str, str | None]:
    """(position name, velocity name or None) of a rollout's entity states."""
    for pos, vel in POSITION_VELOCITY:
        if pos in rollout.states:
            return pos, vel if vel in rollout.states else None
    raise ValidationError(
        f"{rollout.scenario} rollout has states {sorted(rollout.states)}; an entity model "
        f"needs one of {[p for p, _ in POSITION_VELOCITY]} (positions [T,N,d])"
    )


def _static(rollout: Any, key: str) -> Any:
    for name in _ALIASES[key]:
        if name in rollout.static:
            return rollout.static[name]
    return None


@dataclass(frozen=True)
class EntityStatic:
    """Time-invariant description of a batch of ``B`` systems of ``N`` entities in ``d``-D.

    Tensors carry a leading batch axis: mass [B,N] (kg), radius [B,N] (m), pinned [B,N]
    (bool), gravity [B,d] (m/s^2), ground_height [B] (m, NaN when there is no ground),
    smoothing_length [B] and rest_density [B] (NaN when not SPH), box [B,2d] container walls
    (lower corner then upper corner, m; +-inf for open sides, NaN when there is no box).
    ``edges [E,2]`` (long) and ``rest_length [B,E]`` (m) are the mesh springs, shared by
    every system of the batch. ``present [B,N]`` (bool) marks real entities when systems of
    different entity counts are padded to one ``N`` (None: all real); padded entities are
    pinned, massless and of zero radius, have no edges and are left out of every loss.
    """

    mass: torch.Tensor
    radius: torch.Tensor
    pinned: torch.Tensor
    gravity: torch.Tensor
    ground_height: torch.Tensor
    smoothing_length: torch.Tensor
    rest_density: torch.Tensor
    box: torch.Tensor
    edges: torch.Tensor | None = None
    rest_length: torch.Tensor | None = None
    present: torch.Tensor | None = None

    @property
    def is_padded(self) -> bool:
        """Whether some systems carry padded (absent) entities."""
        return self.present is not None and not bool(self.present.all())

    def real(self) -> torch.Tensor:
        """Bool [B,N]: the real (not padded) entities."""
        if self.present is not None:
            return self.present
        return torch.ones_like(self.pinned, dtype=torch.bool)

    @property
    def has_ground(self) -> bool:
        return bool(torch.isfinite(self.ground_height).all())

    @property
    def has_box(self) -> bool:
        return not bool(torch.isnan(self.box).any())

    @property
    def is_sph(self) -> bool:
        return bool(torch.isfinite(self.smoothing_length).all())

    def up(self) -> torch.Tensor:
        """Unit vector against gravity [B,d] (the last axis when gravity is zero)."""
        g = self.gravity
        norm = g.norm(dim=-1, keepdim=True)
        fallback = torch.zeros_like(g)
        fallback[..., -1] = 1.0
        return torch.where(norm > 0, -g / norm.clamp_min(1e-12), fallback)

    def with_gravity(self, gravity: torch.Tensor) -> EntityStatic:
        """The same systems with gravity [B,d] (e.g. inferred from the context) instead."""
        return replace(self, gravity=gravity.to(self.mass))

    def to(self, device: str | torch.device) -> EntityStatic:
        return replace(self, **{f.name: None if getattr(self, f.name) is None
                                else getattr(self, f.name).to(device) for f in fields(self)})

    def index(self, rows: torch.Tensor | Sequence[int]) -> EntityStatic:
        """The systems ``rows`` of the batch (edges are shared and kept)."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.mass.device)
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in out.items():
            if value is not None and name != "edges":
                out[name] = value[rows]
        return EntityStatic(**out)


def _per_entity(value: Any, n: int, default: float, what: str) -> np.ndarray:
    if value is None:
        return np.full(n, default)
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        return np.full(n, float(arr[0]))
    if arr.size != n:
        raise ValidationError(f"static['{what}'] has {arr.size} values, expected 1 or {n}")
    return arr


def _gravity(rollout: Any, d: int) -> np.ndarray:
    """The static gravity vector (zero where it is not visible, e.g. in an observation)."""
    value = _static(rollout, "gravity")
    if value is not None and np.size(value) == d:
        return np.asarray(value, dtype=np.float64).reshape(d)
    g = np.zeros(d)
    if value is not None and np.size(value) == 1:
        g[-1] = -abs(float(np.asarray(value).reshape(())))
    return g


def infer_gravity(v: torch.Tensor, dt: float, pinned: torch.Tensor, frames: int
                  ) -> torch.Tensor:
    """Gravity [d] (m/s^2) inferred from observed velocities v [T,N,d]: the component-wise
    median of the accelerations (v[t+1] - v[t]) / dt of the unpinned entities over the last
    ``frames`` frames. Exact for bodies in free flight and robust to the minority that is
    in contact at any time; supported or resting systems give ~0 (then `EntityStatic.up`
    falls back to the last axis). Zero with fewer than two frames."""
    v = v[-frames:]
    if v.shape[0] < 2:
        return torch.zeros(v.shape[-1], dtype=v.dtype, device=v.device)
    accel = (v[1:] - v[:-1]) / dt
    free = ~pinned.to(torch.bool)
    samples = accel[:, free] if bool(free.any()) else accel
    return samples.reshape(-1, v.shape[-1]).median(dim=0).values


def _pinned(value: Any, n: int) -> np.ndarray:
    if value is None:
        return np.zeros(n, dtype=bool)
    arr = np.asarray(value).reshape(-1)
    if arr.dtype == bool and arr.size == n:
        return arr
    if arr.size == n and set(np.unique(arr).tolist()) <= {0, 1} and n > 2:
        return arr.astype(bool)
    mask = np.zeros(n, dtype=bool)
    mask[arr.astype(np.int64)] = True
    return mask


def entity_counts(rollouts: Sequence[Any]) -> list[int]:
    """Number of entities N of each rollout or observation (positions [T,N,d])."""
    out = []
    for r in rollouts:
        pos_key, _ = state_keys(r)
        out.append(int(np.shape(r.states[pos_key])[1]))
    return out


def pad_entities(values: torch.Tensor, n: int, axis: int = -2) -> torch.Tensor:
    """``values`` with its entity ``axis`` zero-padded to ``n`` entries (e.g. x [T,N,d])."""
    axis = axis % values.dim()
    missing = n - values.shape[axis]
    if missing < 0:
        raise ValidationError(f"cannot pad {values.shape[axis]} entities down to {n}")
    if missing == 0:
        return values
    shape = list(values.shape)
    shape[axis] = missing
    return torch.cat([values, values.new_zeros(shape)], dim=axis)


def entity_static(rollouts: Sequence[Any], device: str = "cpu") -> EntityStatic:
    """Batch the static description of rollouts or observations of one scenario; what a
    source does not show takes a neutral default (unit mass, zero radius and gravity, no
    ground). Systems with fewer entities than the largest (``rigid/collision``: 2-6
    spheres) are padded to its count N: padded entities are pinned, massless, of zero
    radius and marked absent in ``present [B,N]``."""
    if not rollouts:
        raise ValidationError("entity_static needs at least one rollout")
    pos_key, _ = state_keys(rollouts[0])
    d = int(np.shape(rollouts[0].states[pos_key])[2])
    counts = entity_counts(rollouts)
    n_max = max(counts)
    cols: dict[str, list[Any]] = {k: [] for k in ("mass", "radius", "pinned", "gravity",
                                                    "ground", "h", "rho0", "rest", "box",
                                                    "present")}
    edges = None
    for r, n in zip(rollouts, counts, strict=True):
        if int(np.shape(r.states[pos_key])[2]) != d:
            raise ValidationError(
                f"{r.scenario} seed {r.seed}: states['{pos_key}'] has "
                f"{np.shape(r.states[pos_key])[2]} components per entity, expected {d} "
                "as in the batch"
            )
        pad = n_max - n
        cols["mass"].append(np.pad(_per_entity(_static(r, "mass"), n, 1.0, "mass"), (0, pad)))
        cols["radius"].append(np.pad(_per_entity(_static(r, "radius"), n, 0.0, "radius"),
                                     (0, pad)))
        cols["pinned"].append(np.pad(_pinned(_static(r, "pinned"), n), (0, pad),
                                     constant_values=True))
        cols["present"].append(np.arange(n_max) < n)
        cols["gravity"].append(_gravity(r, d))
        ground = _static(r, "ground_height")
        cols["ground"].append(np.nan if ground is None else float(np.asarray(ground)))
        box = _static(r, "box")
        cols["box"].append(np.full(2 * d, np.nan) if box is None or np.size(box) != 2 * d
                           else np.asarray(box, dtype=np.float64).reshape(2 * d))
        h, rho0 = _static(r, "smoothing_length"), _static(r, "rest_density")
        cols["h"].append(np.nan if h is None else float(np.asarray(h)))
        cols["rho0"].append(np.nan if rho0 is None else float(np.asarray(rho0)))
        e = _static(r, "edges")
        if e is not None:
            e = np.asarray(e, dtype=np.int64).reshape(-1, 2)
            if edges is None:
                edges = e
            elif not np.array_equal(edges, e):
                raise ValidationError(f"{r.scenario}: mesh edges differ within "
                                      "the batch; batch rollouts of one mesh")
            rest = _static(r, "rest_length")
            cols["rest"].append(np.asarray(rest, dtype=np.float64).reshape(-1) if rest is not None
                                else _rest_from_positions(np.asarray(r.states[pos_key][0]), e))
    if edges is not None and len(set(counts)) > 1:
        raise ValidationError(f"{rollouts[0].scenario}: mesh systems of {sorted(set(counts))} "
                              "entities in one batch; batch rollouts of one mesh")

    def t(values: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.array(values), dtype=dtype, device=device)

    return EntityStatic(
        mass=t(cols["mass"]), radius=t(cols["radius"]), pinned=t(cols["pinned"], torch.bool),
        gravity=t(cols["gravity"]), ground_height=t(cols["ground"]),
        smoothing_length=t(cols["h"]), rest_density=t(cols["rho0"]), box=t(cols["box"]),
        edges=None if edges is None else t(edges, torch.long),
        rest_length=None if edges is None else t(cols["rest"]),
        present=None if len(set(counts)) == 1 else t(cols["present"], torch.bool),
    )


def _rest_from_positions(x0: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x0[edges[:, 1]] - x0[edges[:, 0]], axis=-1)


def entity_states(
    rollout: Any, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions and velocities [T,N,d]; velocities by finite differences when not stored."""
    pos_key, vel_key = state_keys(rollout)
    x = torch.as_tensor(np.array(rollout.states[pos_key]), device=device).to(dtype)
    if vel_key is not None:
        v = torch.as_tensor(np.array(rollout.states[vel_key]), device=device).to(dtype)
    else:
        v = torch.zeros_like(x)
        if x.shape[0] > 1:
            v[1:] = (x[1:] - x[:-1]) / rollout.dt
            v[0] = v[1]
    return x, v


def quat_integrate(quat: np.ndarray, angvel: np.ndarray, dt: float, steps: int) -> np.ndarray:
    """Quaternions (w,x,y,z) [B,4] rotated by a constant world angular velocity [B,3] (rad/s)
    for ``steps`` frames of ``dt``: q(t) = exp(t w / 2) q0; returns [steps,B,4]."""
    out = np.empty((steps, *quat.shape))
    speed = np.linalg.norm(angvel, axis=-1, keepdims=True)
    axis = np.divide(angvel, speed, out=np.zeros_like(angvel), where=speed > 0)
    for k in range(steps):
        half = 0.5 * speed * dt * (k + 1)
        dq = np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)
        w1, v1 = dq[..., :1], dq[..., 1:]
        w2, v2 = quat[..., :1], quat[..., 1:]
        out[k] = np.concatenate([w1 * w2 - (v1 * v2).sum(-1, keepdims=True),
                                 w1 * v2 + w2 * v1 + np.cross(v1, v2)], axis=-1)
    return out
