"""Differentiable physics-consistency losses, built from the shared physical quantities of
`physground.metrics.quantities` (each quantity is written once, for metrics and losses).

State losses act on a predicted `EntityRollout` (positions x and velocities v
[B,H,N,d] after the context state x0, v0 [B,N,d]); each is a dimensionless mean square
that is 0 on physically exact data and grows with the violation:

- ``energy``: E = K + U (`total_energy`); with law ``energy_conserved``
  mean((E_t - E_0)/E_s)^2, with ``energy_nonincreasing`` mean(relu(E_{t+1} - E_t)/E_s)^2,
  E_s = m|g|L + m|v_0|^2/2 per system, L = 1 m.
- ``momentum``: mean(|P_t - P_0|^2) / P_s^2 (law ``momentum_conserved``).
- ``penetration``: mean((ground + pairwise overlap) / r_s)^2 (`ground_penetration`,
  `pairwise_penetration`), r_s the mean radius; for point entities the SPH smoothing
  length when there is one (a fluid particle's size), else 1 mm.
- ``ballistic``: in free flight (clearance larger than the distance coverable in one
  frame, law ``ballistic``) the acceleration (v_{t+1} - v_t)/dt equals g:
  mean|a - g|^2 / |g|^2 over free-flight entries.
- ``strain``: cloth inextensibility, mean(relu(|edge_strain| - tol))^2.
- ``density``: SPH, mean(relu(rho/rho_0 - 1 - tol))^2 over the predicted frames
  (`sph_density`).
- ``divergence``: grid velocity fields, mean(div u)^2 * (dx/U)^2 (`divergence_2d`).
- ``teacher``: the explicit simulator stepped from the model's own state (see
  `physground.learned.teacher`), mean|x_model - x_sim|^2 / (a_s dt^2)^2.

Pixel losses (`pixel_physics_loss`) act on soft object masks [B,T,H,W]:
``centroid_gravity`` (the centroid's least-squares acceleration over the free-flight frames
equals projected gravity) and ``permanence`` (the area is conserved). The video model
applies them to the coverage of its predicted RGB (`rgb_coverage`, what the pixel metrics
track), not to its mask channel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from physground.errors import ValidationError, did_you_mean
from physground.learned.entities import EntityStatic
from physground.metrics import quantities as Q
from physground.registry import Registry


@dataclass
class EntityRollout:
    """A predicted entity rollout: x, v [B,H,N,d] following the state x0, v0 [B,N,d]."""

    x: torch.Tensor
    v: torch.Tensor
    x0: torch.Tensor
    v0: torch.Tensor
    static: EntityStatic
    dt: float
    rows: torch.Tensor | None = None  # rollout index of each system (teacher parameters)
    teacher: Any = None  # simulator teacher (`physground.learned.teacher.make_teacher`)

    def full(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions and velocities [B,H+1,N,d] including the starting state."""
        return (torch.cat([self.x0[:, None], self.x], dim=1),
                torch.cat([self.v0[:, None], self.v], dim=1))


def entity_data_loss(x: torch.Tensor, v: torch.Tensor, x_true: torch.Tensor,
                     v_true: torch.Tensor, *, scale: torch.Tensor, dt: float,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error of positions and velocities [B,H,N,d] in acceleration units.

    An error e_v in velocity reads as e_v/dt and e_x as e_x/dt^2, both divided by the
    acceleration scale ``scale`` [d] of the training data, so the terms are comparable.
    ``mask [B,N]`` (bool, `EntityStatic.present`) averages over the real entities only.
    """
    s = scale.clamp_min(1e-6)
    ev = (v - v_true) / (dt * s)
    ex = (x - x_true) / (dt * dt * s)
    if mask is None:
        return (ev * ev).mean() + (ex * ex).mean()
    w = mask[:, None, :, None].to(ev.dtype).expand_as(ev)
    return ((ev * ev + ex * ex) * w).sum() / w.sum().clamp_min(1)


def _energy(x: torch.Tensor, v: torch.Tensor, static: EntityStatic) -> torch.Tensor:
    """Mechanical energy K + U [B,T] (J) of positions/velocities [B,T,N,d]."""
    return Q.total_energy(x, v, static.mass[:, None], static.gravity[:, None, None, :])


def energy_scale(static: EntityStatic, v0: torch.Tensor) -> torch.Tensor:
    """Energy scale per system [B] (J): m |g| (1 m) + m |v_0|^2 / 2, summed over entities."""
    m = static.mass
    pot = (m * static.gravity.norm(dim=-1, keepdim=True)).sum(-1)
    kin = Q.kinetic_energy(v0, m)
    return (pot + kin).clamp_min(1e-9)


@dataclass(frozen=True, kw_only=True)
class PhysicsLoss:
    """A registered physics-consistency loss.

    ``fn(state, laws=..., scenario=..., options=...)`` maps a predicted `EntityRollout` to a
    scalar (state losses); pixel losses act on soft masks (`pixel_physics_loss`).
    ``requires_laws`` with ``laws_mode`` ("any"/"all"): the scenario laws it needs.
    """

    name: str
    fn: Callable[..., torch.Tensor] | None
    modality: str = "state"
    requires_laws: frozenset[str] = frozenset()
    laws_mode: str = "any"
    description: str = ""


# Third-party losses: `LOSSES.register` or the entry-point group ``physground.losses``.
LOSSES: Registry[PhysicsLoss] = Registry("loss", group="physground.losses")


def physics_loss(name: str, *, requires_laws: Iterable[str] = (), laws_mode: str = "any",
                 tags: Iterable[str] = ("state",), description: str = "") -> Callable:
    """Decorator registering a state physics loss ``fn(state, *, laws, scenario, options)``."""
    def decorator(fn: Callable[..., torch.Tensor]) -> PhysicsLoss:
        loss = PhysicsLoss(name=name, fn=fn, requires_laws=frozenset(requires_laws),
                           laws_mode=laws_mode, description=description or (fn.__doc__ or ""))
        LOSSES.register(name, loss, tags=tags)
        return loss

    return decorator


def entity_physics_loss(term: str, state: EntityRollout, *, laws: frozenset[str],
                        scenario: str = "", options: dict[str, Any] | None = None
                        ) -> torch.Tensor:
    """The registered state physics loss ``term`` on a predicted entity rollout."""
    from physground.metrics.registry import laws_hold

    if term not in LOSSES:
        states = [n for n in LOSSES.names() if LOSSES.get(n).modality == "state"]
        raise ValidationError(f"unknown state physics loss '{term}'"
                              f"{did_you_mean(term, states)}; known: {', '.join(states)}")
    loss = LOSSES.get(term)
    if loss.modality != "state" or loss.fn is None:
        raise ValidationError(f"physics loss '{term}' acts on {loss.modality}, not on states")
    if not laws_hold(loss.requires_laws, loss.laws_mode, laws):
        joined = f" {'or' if loss.laws_mode == 'any' else 'and'} ".join(
            sorted(loss.requires_laws))
        raise _not_applicable(term, scenario, joined)
    return loss.fn(state, laws=laws, scenario=scenario, options=options or {})


@physics_loss("energy", requires_laws={"energy_conserved", "energy_nonincreasing"})
def _energy_loss(state: EntityRollout, *, laws: frozenset[str], scenario: str,
                 options: dict[str, Any]) -> torch.Tensor:
    """Energy drift (conserved) or growth (non-increasing) relative to the energy scale."""
    x, v = state.full()
    e = _energy(x, v, state.static) / energy_scale(state.static, state.v0)[:, None]
    if "energy_conserved" in laws:
        return ((e[:, 1:] - e[:, :1]) ** 2).mean()
    tol = float(options.get("energy_tol", 0.0))
    return (torch.relu(e[:, 1:] - e[:, :-1] - tol) ** 2).mean()


@physics_loss("momentum", requires_laws={"momentum_conserved"})
def _momentum_loss(state: EntityRollout, **_: Any) -> torch.Tensor:
    """Total linear momentum drift relative to the context momentum scale."""
    static = state.static
    _, v = state.full()
    p = Q.linear_momentum(v, static.mass[:, None])
    scale = (static.mass * state.v0.norm(dim=-1)).sum(-1).clamp_min(1e-6)
    return (((p[:, 1:] - p[:, :1]) / scale[:, None, None]) ** 2).sum(-1).mean()


@physics_loss("penetration")
def _penetration_loss(state: EntityRollout, **_: Any) -> torch.Tensor:
    """Ground, container-wall and pairwise overlap relative to the mean radius (padded
    entities, `EntityStatic.present`, penetrate nothing)."""
    static = state.static
    x, _ = state.full()
    real = static.real()[:, None]  # [B,1,N]
    scale = static.radius[static.real()].mean()
    if float(scale) <= 0 and static.is_sph:  # SPH particles: their smoothing length
        scale = static.smoothing_length.mean()
    scale = scale.clamp_min(1e-3)
    total = x.new_zeros(())
    if static.has_ground:
        depth = Q.ground_penetration(x, static.radius[:, None],
                                     static.ground_height[:, None, None],
                                     up=static.up()[:, None, None])
        total = total + ((depth * real / scale) ** 2).mean()
    if static.has_box:  # outside the container walls
        d = x.shape[-1]
        lo, hi = static.box[:, None, None, :d], static.box[:, None, None, d:]
        out = (torch.relu(lo - x) + torch.relu(x - hi)) * real[..., None]
        total = total + ((torch.nan_to_num(out, nan=0.0) / scale) ** 2).mean()
    if x.shape[-2] > 1 and float(static.radius.max()) > 0 and static.edges is None:
        overlap = Q.pairwise_penetration(x, static.radius[:, None])
        overlap = overlap * (real[..., :, None] & real[..., None, :])
        total = total + ((overlap / scale) ** 2).mean()
    return total


@physics_loss("ballistic", requires_laws={"ballistic"})
def _ballistic_term(state: EntityRollout, **_: Any) -> torch.Tensor:
    """Acceleration equals gravity during free flight."""
    x, v = state.full()
    return ballistic_loss(x, v, state.static, state.dt)


@physics_loss("strain")
def _strain_loss(state: EntityRollout, *, scenario: str, options: dict[str, Any],
                 **_: Any) -> torch.Tensor:
    """Cloth edge strain beyond ``strain_tol``."""
    static = state.static
    if static.edges is None or static.rest_length is None:
        raise _not_applicable("strain", scenario, "mesh edges in static")
    x, _ = state.full()
    tol = float(options.get("strain_tol", 0.0))
    strain = Q.edge_strain(x, static.edges, static.rest_length[:, None])
    return (torch.relu(strain.abs() - tol) ** 2).mean()


@physics_loss("density")
def _density_loss(state: EntityRollout, *, scenario: str, options: dict[str, Any],
                  **_: Any) -> torch.Tensor:
    """SPH density above rest density (+ ``density_tol``)."""
    static = state.static
    if not static.is_sph or not bool(torch.isfinite(static.rest_density).all()):
        raise _not_applicable("density", scenario, "SPH smoothing_length and rest_density")
    tol = float(options.get("density_tol", 0.0))
    # rho_i = sum_j m_j W(|x_i - x_j|, h): the kernel of `quantities.sph_density` over
    # all pairs at once (cdist), ~2.5x faster than its chunked loop for training
    h = static.smoothing_length[:, None, None, None]
    r = torch.cdist(state.x, state.x)
    w = Q.sph_kernel_cubic(r, h, state.x.shape[-1])
    rho = (w * static.mass[:, None, None, :]).sum(-1)
    ratio = rho / static.rest_density[:, None, None]
    return (torch.relu(ratio - 1.0 - tol) ** 2).mean()


@physics_loss("teacher")
def _teacher_loss(state: EntityRollout, *, scenario: str, options: dict[str, Any],
                  **_: Any) -> torch.Tensor:
    """The explicit simulator stepped from the model's own state."""
    from physground.learned.teacher import teacher_loss

    return teacher_loss(state, scenario=scenario, options=options)


for _name in ("centroid_gravity", "permanence"):  # computed by `pixel_physics_loss`
    LOSSES.register(_name, PhysicsLoss(name=_name, fn=None, modality="pixels"),
                    tags=["pixels"])

STATE_TERMS = tuple(n for n in LOSSES.names() if LOSSES.get(n).modality == "state")
PIXEL_TERMS = tuple(n for n in LOSSES.names() if LOSSES.get(n).modality == "pixels")


def free_flight(x: torch.Tensor, v: torch.Tensor, static: EntityStatic, dt: float
                ) -> torch.Tensor:
    """Bool [B,T-1,N]: steps t -> t+1 during which no entity can touch the ground or another
    body (clearance larger than |v| dt + |g| dt^2 at both ends). x, v [B,T,N,d]."""
    with torch.no_grad():
        g = static.gravity.norm(dim=-1)[:, None, None]
        reach = v.norm(dim=-1) * dt + g * dt * dt
        free = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
        if static.has_ground:
            height = (x * static.up()[:, None, None]).sum(-1)
            clearance = height - static.ground_height[:, None, None] - static.radius[:, None]
            free &= clearance > reach
        if x.shape[-2] > 1:
            dist = torch.cdist(x, x)
            gap = dist - static.radius[:, None, :, None] - static.radius[:, None, None, :]
            eye = torch.eye(x.shape[-2], dtype=torch.bool, device=x.device)
            gap = gap.masked_fill(eye, float("inf"))
            if static.present is not None:  # padded entities are nobody's neighbours
                gap = gap.masked_fill(~static.present[:, None, None, :], float("inf"))
            gap = gap.amin(-1)
            free &= gap > 2 * reach
        free &= ~static.pinned[:, None]
        return free[:, 1:] & free[:, :-1]


def ballistic_loss(x: torch.Tensor, v: torch.Tensor, static: EntityStatic, dt: float
                   ) -> torch.Tensor:
    """mean |(v_{t+1} - v_t)/dt - g|^2 / |g|^2 over free-flight steps (0 when there are none)."""
    mask = free_flight(x, v, static, dt)
    accel = (v[:, 1:] - v[:, :-1]) / dt
    g = static.gravity[:, None, None]
    g2 = (static.gravity * static.gravity).sum(-1).clamp_min(1e-9)[:, None, None]
    err = ((accel - g) ** 2).sum(-1) / g2
    return (err * mask).sum() / mask.sum().clamp_min(1)


def divergence_loss(velocity: torch.Tensor, spacing: float) -> torch.Tensor:
    """mean(div u)^2 (dx/U)^2 of grid velocities [..., H, W, 2] (m/s) with cell size dx (m);
    U is the RMS speed, so the loss is dimensionless."""
    div = Q.divergence_2d(velocity, spacing)
    speed2 = (velocity.detach() ** 2).sum(-1).mean().clamp_min(1e-12)
    return (div * div).mean() * spacing * spacing / speed2


# ---------------------------------------------------------------------------- pixels


def fitted_acceleration(centroid: torch.Tensor, free: torch.Tensor, dt: float
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares constant acceleration [B,2] (px/s^2) of centroids [B,T,2] over the
    free-flight steps ``free`` [B,T-2] (second difference t-1, t, t+1 centred on frame t):
    each contiguous run of free steps is one parabola c0 + v t + a t^2/2 of its own c0, v
    (a bounce between runs resets the velocity), all runs of a window share a. Returns it
    and whether the window has any free step [B]; differentiable in ``centroid``.

    A fit over every free frame, not each second difference alone: pixel-quantised
    centroids of a 1-2 px object step by 0.5 px, so one second difference is off by about
    6 g dt^2 at 32 px and 30 fps, while the fit's error falls as T^-5/2.
    """
    B, T = centroid.shape[:2]
    out = centroid.new_zeros(B, 2)
    has = free.detach().to("cpu", torch.bool).any(1)
    t = torch.arange(T, dtype=torch.float64) * dt
    flags = free.detach().to("cpu", torch.bool)
    for b in range(B):
        if not bool(has[b]):
            continue
        runs, start = [], None
        for i, f in enumerate(flags[b].tolist() + [False]):
            if f and start is None:
                start = i
            elif not f and start is not None:
                runs.append((start, i + 1))  # frames start .. i+1 (steps start .. i-1)
                start = None
        frames = torch.cat([torch.arange(a, e + 1) for a, e in runs])
        design = torch.zeros(len(frames), 2 * len(runs) + 1, dtype=torch.float64)
        row = 0
        for k, (a, e) in enumerate(runs):
            n = e + 1 - a
            design[row : row + n, 2 * k] = 1.0
            design[row : row + n, 2 * k + 1] = t[a : e + 1]
            row += n
        design[:, -1] = 0.5 * t[frames] ** 2
        weights = torch.linalg.pinv(design)[-1].to(centroid)  # row giving a
        out[b] = weights @ centroid[b, frames.to(centroid.device)]
    return out, has.to(centroid.device)


def rgb_coverage(rgb: torch.Tensor, background: torch.Tensor, colour: torch.Tensor,
                 soft_gate: float = 0.0) -> torch.Tensor:
    """Differentiable object coverage [B,T,H,W] of frames ``rgb`` [B,T,3,H,W] in [0, 1]:
    the estimator the pixel metrics measure positions with (`pixel_tracking.ColourTracker`)
    on one object colour ``colour`` [B,3] over a static ``background`` [B,3,H,W].

    Each pixel p is a mixture b + a (c - b), a = clip(<p - b, c - b> / |c - b|^2, 0, 1)
    in `weighted_ycc` colours; a counts where the mixture explains the pixel (residual
    <= `RESIDUAL`), the contrast is seen and a >= `MIN_COVERAGE`, as in the tracker (the
    gates carry no gradient), so a model cannot meet a pixel loss on its mask channel
    while the frames the metrics track disagree. ``soft_gate > 0`` replaces the hard
    coverage gate by a * sigmoid((a - MIN_COVERAGE) / soft_gate) (training: a pixel just
    below the gate keeps its gradient).
    """
    from physground.metrics import pixel_tracking as PT

    ycc = torch.as_tensor(PT.weighted_ycc(np.eye(3)), dtype=rgb.dtype, device=rgb.device)
    p = torch.einsum("btchw,cd->btdhw", rgb, ycc)
    bg = torch.einsum("bchw,cd->bdhw", background, ycc)[:, None]
    e = torch.einsum("bc,cd->bd", colour, ycc)[:, None, :, None, None] - bg
    norm2 = (e * e).sum(2).clamp_min(1e-9)
    d = p - bg
    a = ((d * e).sum(2) / norm2).clamp(0.0, 1.0)
    with torch.no_grad():
        residual = torch.sqrt(((d - a[:, :, None] * e) ** 2).sum(2) / norm2)
        ok = (norm2 > (PT.MIN_CONTRAST / 255.0) ** 2) & (residual <= PT.RESIDUAL)
    if soft_gate > 0:  # a smooth step at MIN_COVERAGE: a gated pixel's gradient stays alive
        return a * ok * torch.sigmoid((a - PT.MIN_COVERAGE) / soft_gate)
    return a * ok * (a >= PT.MIN_COVERAGE)


def context_colours(rgb: torch.Tensor, masks: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(background [B,3,H,W], object colour [B,3]) from context frames ``rgb``
    [B,K,3,H,W] and hard masks [B,K,H,W]: the mean colour under the masks, and per pixel
    the mean of the frames where no object covers it (the mean uncovered colour where an
    object covers it in every frame), as `pixel_tracking.ColourTracker.fit` learns them."""
    m = (masks > 0.5).to(rgb.dtype)[:, :, None]
    colour = (rgb * m).sum((1, 3, 4)) / m.sum((1, 3, 4)).clamp_min(1.0)
    free = 1.0 - m
    count = free.sum(1)
    mean_free = (rgb * free).sum((1, 3, 4)) / free.sum((1, 3, 4)).clamp_min(1.0)
    background = (rgb * free).sum(1) / count.clamp_min(1.0)
    background = torch.where(count > 0, background, mean_free[:, :, None, None])
    return background, colour


def pixel_physics_loss(term: str, masks: torch.Tensor, *, gravity_px: torch.Tensor | None = None,
                       free: torch.Tensor | None = None, area0: torch.Tensor | None = None,
                       dt: float = 1.0) -> torch.Tensor:
    """A pixel loss (one of `PIXEL_TERMS`) on soft object masks or coverages [B,T,H,W].

    ``centroid_gravity``: the centroid c_t (px, `soft_mask_moments`) accelerates at the
    projected gravity ``gravity_px`` [B,2] (px/s^2) on free-flight steps ``free`` [B,T-2]
    (default all): |a - g_px|^2 / |g_px|^2 with a the least-squares constant acceleration
    of the centroids of the free frames (`fitted_acceleration`), averaged over windows with
    free flight. ``permanence``: the soft area A_t stays at ``area0`` [B] (default the
    first frame's): mean((A_t - A_0)/A_0)^2.
    """
    area, centroid = Q.soft_mask_moments(masks)
    if term == "permanence":
        ref = area[:, :1] if area0 is None else area0[:, None]
        return (((area - ref) / ref.clamp_min(1.0)) ** 2).mean()
    if term == "centroid_gravity":
        if gravity_px is None:
            raise ValidationError("centroid_gravity needs gravity_px [B,2] in px/s^2")
        if masks.shape[1] < 3:
            raise ValidationError(f"centroid_gravity needs >= 3 frames, got {masks.shape[1]}")
        if free is None:
            free = torch.ones(masks.shape[0], masks.shape[1] - 2, dtype=torch.bool)
        if tuple(free.shape) != (masks.shape[0], masks.shape[1] - 2):
            raise ValidationError(f"centroid_gravity: free must be [B, T-2] = "
                                  f"{[masks.shape[0], masks.shape[1] - 2]}, got "
                                  f"{list(free.shape)}")
        # a step counts only where the object is seen in its three frames
        seen = area > 0.5
        free = free.to(seen.device) & seen[:, 2:] & seen[:, 1:-1] & seen[:, :-2]
        accel, has = fitted_acceleration(centroid, free, dt)
        g2 = (gravity_px * gravity_px).sum(-1).clamp_min(1e-9)
        err = ((accel - gravity_px.to(accel)) ** 2).sum(-1) / g2
        return (err * has).sum() / has.sum().clamp_min(1)
    raise ValidationError(f"unknown pixel physics loss '{term}'; known: {PIXEL_TERMS}")


def _not_applicable(term: str, scenario: str, needs: str) -> ValidationError:
    return ValidationError(
        f"physics loss '{term}' does not apply to scenario '{scenario}': it needs {needs}"
    )
