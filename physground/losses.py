"""Physics losses for a user's own world model: plain torch tensors in, a scalar loss out.

Every function is differentiable, batched over a leading batch axis B, and dimensionless
(0 on physically exact data, growing with the violation), so losses of different kinds
can be summed with weights. Inputs are SI (see `physground.units`): positions in m,
velocities in m/s, masses in kg, gravity in m/s^2, dt in s; pixel losses take soft masks
in [0, 1] and pixel units. Shapes: ``pos``/``vel`` ``[B, T, N, d]`` (T frames, N bodies or
nodes, d = 2 or 3), ``mass`` ``[B, N]`` or ``[N]``, ``gravity`` ``[B, d]`` or ``[d]``.

The physical quantities come from `physground.metrics.quantities` (written once, shared
with the metrics) and the pixel/grid losses from `physground.learned.losses`; this module
is a documented facade over them for training loops that do not use physground's models.

Observation contract: a model must not *read* latent statics (gravity, mass, ...; see
`physground.observation`), and `physground.learned.torch_dataset.WindowDataset` does not
hand them to it. A loss may use the ground truth's gravity or mass: the training target
is supervision, like the target frames themselves.

    from physground import losses as PL
    x = torch.cat([context_pos[:, -2:], predicted_pos], dim=1)   # [B, T, N, 3]
    loss = mse + 0.1 * PL.ballistic_residual(x, dt, gravity) \\
         + 1.0 * PL.ground_penetration_loss(x, radius)
"""

from __future__ import annotations

import torch
from torch import Tensor

from physground.errors import ValidationError
from physground.metrics import quantities as Q

__all__ = [
    "ballistic_residual",
    "collider_penetration_loss",
    "divergence_loss",
    "edge_strain_loss",
    "energy_drift",
    "ground_penetration_loss",
    "ground_signed_distance",
    "mask_area_loss",
    "mass_in_domain_loss",
    "mask_centroid_gravity_loss",
    "momentum_drift",
    "volume_loss",
]


def _per_system(value: Tensor, ref: Tensor, trailing: int) -> Tensor:
    """``value`` ([...] without or with the batch axis) shaped to broadcast over ``ref``'s
    batch axis and T: [B, 1, *rest] (``trailing`` = number of non-batch axes of value)."""
    v = torch.as_tensor(value, dtype=ref.dtype, device=ref.device)
    if v.dim() == trailing:  # no batch axis: the same for every system
        v = v.expand(ref.shape[0], *v.shape)
    return v[:, None]


def _check(name: str, x: Tensor) -> None:
    if x.dim() != 4:
        raise ValidationError(f"{name} has shape {list(x.shape)}, expected [B, T, N, d]")


def energy_drift(pos: Tensor, vel: Tensor, mass: Tensor, gravity: Tensor) -> Tensor:
    """Drift of the mechanical energy E = K + U from the first frame, a dimensionless mean
    square ``mean_t ((E_t - E_0) / E_s)^2`` with E_s = sum m |g| (1 m) + K_0 per system.

    pos, vel [B, T, N, d] (m, m/s); mass [B, N] or [N] (kg); gravity [B, d] or [d] (m/s^2).
    Only for systems that conserve energy (free flight, elastic contact).
    """
    _check("pos", pos)
    m = _per_system(mass, pos, 1)  # [B, 1, N]
    g = _per_system(gravity, pos, 1)  # [B, 1, d]
    energy = Q.total_energy(pos, vel, m, g[:, :, None, :])  # [B, T]
    scale = (m[:, 0] * g[:, 0].norm(dim=-1, keepdim=True)).sum(-1) \
        + Q.kinetic_energy(vel[:, 0], m[:, 0])
    e = energy / scale.clamp_min(1e-9)[:, None]
    return ((e[:, 1:] - e[:, :1]) ** 2).mean()


def momentum_drift(vel: Tensor, mass: Tensor) -> Tensor:
    """Drift of the total linear momentum P = sum m v from the first frame,
    ``mean_t |P_t - P_0|^2 / P_s^2`` with P_s = sum m |v_0| per system (dimensionless).

    vel [B, T, N, d] (m/s); mass [B, N] or [N] (kg). For isolated systems (no gravity,
    no walls), e.g. colliding bodies on a frictionless plane.
    """
    _check("vel", vel)
    m = _per_system(mass, vel, 1)
    p = Q.linear_momentum(vel, m)  # [B, T, d]
    scale = (m[:, 0] * vel[:, 0].norm(dim=-1)).sum(-1).clamp_min(1e-9)
    return (((p[:, 1:] - p[:, :1]) / scale[:, None, None]) ** 2).sum(-1).mean()


def ground_signed_distance(pos: Tensor, radius: Tensor | float,
                           ground_height: Tensor | float = 0.0,
                           up: Tensor | None = None) -> Tensor:
    """Signed distance of each sphere's surface to the ground plane (m), ``up . x - h0 - r``:
    positive above, negative when penetrating. pos [..., N, d] (m), radius [N] or scalar (m),
    up [d] unit normal (default the last axis) -> [..., N]."""
    h0 = torch.as_tensor(ground_height, dtype=pos.dtype, device=pos.device)
    return _height(pos, up) - h0 - torch.as_tensor(radius, dtype=pos.dtype, device=pos.device)


def _height(pos: Tensor, up: Tensor | None) -> Tensor:
    if up is None:
        return pos[..., -1]
    return (pos * torch.as_tensor(up, dtype=pos.dtype, device=pos.device)).sum(-1)


def ground_penetration_loss(pos: Tensor, radius: Tensor | float,
                            ground_height: Tensor | float = 0.0,
                            up: Tensor | None = None) -> Tensor:
    """Non-penetration of spheres and the ground, ``mean (depth / r_s)^2`` with depth =
    max(0, h0 + r - up . x) (`quantities.ground_penetration`) and r_s the mean radius
    (1 mm at least). pos [B, T, N, d] (m), radius [N], [B, 1, N] or scalar (m)."""
    depth = Q.ground_penetration(pos, radius, ground_height, up)
    scale = torch.as_tensor(radius, dtype=pos.dtype, device=pos.device).mean().clamp_min(1e-3)
    return ((depth / scale) ** 2).mean()


def ballistic_residual(pos: Tensor, dt: float, gravity: Tensor,
                       free: Tensor | None = None) -> Tensor:
    """Gravity consistency of free flight from positions alone: the finite-difference
    acceleration a_t = (x_{t+1} - 2 x_t + x_{t-1}) / dt^2 equals g,
    ``mean |a_t - g|^2 / |g|^2`` over the free-flight entries.

    pos [B, T, N, d] (m), T >= 3, sampled every dt (s); gravity [B, d] or [d] (m/s^2);
    free [B, T-2, N] bool, True where body n is in free flight around frame t (default all;
    mask out contacts, which legitimately accelerate otherwise).
    """
    _check("pos", pos)
    accel = Q.finite_difference_acceleration(pos.movedim(1, 0), dt).movedim(0, 1)
    g = _per_system(gravity, pos, 1)[:, :, None, :]  # [B, 1, 1, d]
    err = ((accel - g) ** 2).sum(-1) / (g * g).sum(-1).clamp_min(1e-9)  # [B, T-2, N]
    if free is None:
        return err.mean()
    if free.shape != err.shape:
        raise ValidationError(f"free has shape {list(free.shape)}, expected {list(err.shape)}"
                              " [B, T-2, N]")
    return (err * free).sum() / free.sum().clamp_min(1)


def edge_strain_loss(pos: Tensor, edges: Tensor, rest_length: Tensor,
                     tol: float = 0.0) -> Tensor:
    """Cloth inextensibility, ``mean relu(|strain| - tol)^2`` with strain = |x_i - x_j| / L0 - 1
    (`quantities.edge_strain`). pos [B, T, N, 3] (m), edges [E, 2] node indices, rest_length
    [E] (m); tol the dimensionless strain allowed for free."""
    strain = Q.edge_strain(pos, edges, rest_length)
    return (torch.relu(strain.abs() - tol) ** 2).mean()



def collider_penetration_loss(pos: Tensor, boxes: Tensor, radius: Tensor | float = 0.0,
                              scale: float = 1e-2) -> Tensor:
    """Non-penetration of points (spheres of ``radius``) and axis-aligned box colliders,
    ``mean (depth / scale)^2`` with depth the distance inside each box to its nearest face
    (`quantities.box_penetration`). pos [B, T, N, d] (m), boxes [K, 2d] rows (centre, half
    extents) (m); ``scale`` (m) the depth that costs 1 (e.g. the MPM voxel)."""
    _check("pos", pos)
    return ((Q.box_penetration(pos, boxes, radius) / scale) ** 2).mean()


def mass_in_domain_loss(pos: Tensor, mass: Tensor | float, lo: Tensor, hi: Tensor,
                        softness: float = 1e-3) -> Tensor:
    """Mass conservation in a container [lo, hi] (m): the softly counted mass inside it
    (`quantities.mass_in_box`, sigmoid edges of ``softness`` m) relative to the first
    frame's, ``mean ((M_t - M_0) / M_0)^2``. pos [B, T, N, d] (m), mass scalar, [N] or
    [B, 1, N] (kg); material leaking through a wall or the ground leaves the box."""
    _check("pos", pos)
    inside = Q.mass_in_box(pos, mass, lo, hi, softness=softness)  # [B, T]
    ref = inside[:, :1].clamp_min(torch.finfo(pos.dtype).tiny)
    return (((inside - ref) / ref) ** 2).mean()


def volume_loss(pos: Tensor, tets: Tensor, volume0: Tensor | None = None) -> Tensor:
    """Volume of a solid's tetrahedral mesh (`quantities.tet_volume`) kept at ``volume0``
    [B] (m^3; default the first frame's), ``mean ((V_t - V_0) / V_0)^2``: compression and
    dilation of a soft body. pos [B, T, N, 3] (m), tets [K, 4] node indices (positively
    oriented)."""
    _check("pos", pos)
    volume = Q.tet_volume(pos, tets)  # [B, T]
    ref = volume[:, :1] if volume0 is None else torch.as_tensor(
        volume0, dtype=pos.dtype, device=pos.device).reshape(-1, 1)
    return (((volume - ref) / ref) ** 2).mean()

def divergence_loss(velocity: Tensor, spacing: float) -> Tensor:
    """Incompressibility of 2-D grid velocities [..., H, W, 2] (m/s, component 0 along W) with
    cell size ``spacing`` (m): ``mean (div u)^2 (dx / U)^2``, U the RMS speed."""
    from physground.learned.losses import divergence_loss as _divergence

    return _divergence(velocity, spacing)


def mask_area_loss(masks: Tensor, area0: Tensor | None = None) -> Tensor:
    """Object permanence of soft masks [B, T, H, W] in [0, 1]: the soft area A_t (px) stays at
    ``area0`` [B] (default the first frame's), ``mean ((A_t - A_0) / A_0)^2``."""
    from physground.learned.losses import pixel_physics_loss

    return pixel_physics_loss("permanence", masks, area0=area0)


def mask_centroid_gravity_loss(masks: Tensor, gravity_px: Tensor, dt: float,
                               free: Tensor | None = None) -> Tensor:
    """Free fall seen in soft masks [B, T, H, W] (T >= 3): the mask centroid's acceleration
    (px/s^2) equals gravity projected to the image ``gravity_px`` [B, 2] (px/s^2, (u, v) =
    (column, row)), ``mean_B |a - g_px|^2 / |g_px|^2`` with ``a`` the least-squares constant
    acceleration of the centroids over the free-flight steps ``free`` [B, T-2] (second
    differences centred on frames 1..T-2; default all), robust to pixel-quantised
    centroids where a single second difference is not."""
    from physground.learned.losses import pixel_physics_loss

    return pixel_physics_loss("centroid_gravity", masks, gravity_px=gravity_px, free=free,
                              dt=dt)
