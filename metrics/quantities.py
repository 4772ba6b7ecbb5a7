"""Physical quantities, written once in torch and shared by metrics and physics losses.

Every function is pure, batched over arbitrary leading dimensions, differentiable
(``torch.autograd.gradcheck`` passes in float64) and runs on whatever device its inputs
live on. Units are SI: positions [m], velocities [m/s], masses [kg], gravity [m/s^2],
energies [J], momenta [kg m/s]. Body axes are the second-to-last dimension (``B`` bodies,
``N`` cloth nodes or SPH particles), spatial axes the last (``d`` = 2 or 3).
"""

from __future__ import annotations

import math

import torch

from physground.errors import ValidationError

Tensor = torch.Tensor


def _mass_like(mass: Tensor | float, ref: Tensor) -> Tensor:
    """Masses as a tensor broadcastable to ``ref[..., B]`` (scalar or [B] or [..., B])."""
    return torch.as_tensor(mass, dtype=ref.dtype, device=ref.device)


def kinetic_energy(vel: Tensor, mass: Tensor | float) -> Tensor:
    """Translational kinetic energy ``K = sum_b m_b |v_b|^2 / 2`` [J].

    vel [..., B, d] (m/s), mass [B] or scalar (kg) -> [...].
    """
    m = _mass_like(mass, vel)
    return 0.5 * (m * (vel * vel).sum(-1)).sum(-1)


def potential_energy(pos: Tensor, mass: Tensor | float, gravity: Tensor) -> Tensor:
    """Gravitational potential energy ``U = -sum_b m_b g . x_b`` [J].

    With gravity (0, 0, -g) this is ``sum_b m_b g z_b`` (zero at z = 0).
    pos [..., B, d] (m), mass [B] or scalar (kg), gravity [d] (m/s^2) -> [...].
    """
    m = _mass_like(mass, pos)
    g = torch.as_tensor(gravity, dtype=pos.dtype, device=pos.device)
    return -(m * (pos * g).sum(-1)).sum(-1)


def quat_rotate_inverse(quat: Tensor, vec: Tensor) -> Tensor:
    """Rotate world vectors into the body frame: ``R(q)^T v``; quat [..., 4] as (w, x, y, z)."""
    q = quat / quat.norm(dim=-1, keepdim=True)
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * torch.cross(u, vec, dim=-1)
    # R^T v = v - w t + u x t for the conjugate rotation
    return vec - w * t + torch.cross(u, t, dim=-1)


def rotational_energy(angvel: Tensor, quat: Tensor, inertia: Tensor) -> Tensor:
    """Rotational kinetic energy ``sum_b w_b^T I_b w_b / 2`` [J].

    angvel [..., B, 3] world-frame angular velocity (rad/s), quat [..., B, 4] body
    orientation (w, x, y, z), inertia [B, 3] principal moments (kg m^2) in the body frame
    (MuJoCo's ``body_inertia``; the inertial frame is assumed aligned with the body frame)
    -> [...].
    """
    body = quat_rotate_inverse(quat, angvel)
    i = torch.as_tensor(inertia, dtype=angvel.dtype, device=angvel.device)
    return 0.5 * (i * body * body).sum(-1).sum(-1)


def total_energy(
    pos: Tensor,
    vel: Tensor,
    mass: Tensor | float,
    gravity: Tensor,
    *,
    angvel: Tensor | None = None,
    quat: Tensor | None = None,
    inertia: Tensor | None = None,
) -> Tensor:
    """Mechanical energy ``E = K + U (+ K_rot when angvel, quat and inertia are given)`` [J].

    pos, vel [..., B, d], mass [B] or scalar, gravity [d] -> [...].
    """
    energy = kinetic_energy(vel, mass) + potential_energy(pos, mass, gravity)
    if angvel is not None and quat is not None and inertia is not None:
        energy = energy + rotational_energy(angvel, quat, inertia)
    return energy


def linear_momentum(vel: Tensor, mass: Tensor | float) -> Tensor:
    """Total linear momentum ``P = sum_b m_b v_b`` [kg m/s]; vel [..., B, d] -> [..., d]."""
    m = _mass_like(mass, vel)
    return (m.unsqueeze(-1) * vel).sum(-2)


def center_of_mass(pos: Tensor, mass: Tensor | float) -> Tensor:
    """Mass-weighted mean position [m]; pos [..., B, d] -> [..., d]."""
    m = _mass_like(mass, pos).expand(pos.shape[:-1]).unsqueeze(-1)
    return (m * pos).sum(-2) / m.sum(-2)


def finite_difference_velocity(pos: Tensor, dt: float | Tensor) -> Tensor:
    """Velocity from positions sampled every ``dt`` seconds; pos [T, ...] -> [T, ...] (m/s).

    Second-order central differences inside, second-order one-sided at both ends
    (``torch.gradient`` with ``edge_order=2``), so the velocity of a quadratic trajectory
    (free flight under constant gravity) is exact at every frame. Needs T >= 3; with T = 2
    the forward difference is used for both frames.
    """
    if pos.shape[0] < 2:
        raise ValidationError(
            f"finite differences need >= 2 frames, got positions {list(pos.shape)}"
        )
    if pos.shape[0] == 2:
        v = (pos[1] - pos[0]) / dt
        return torch.stack([v, v])
    if isinstance(dt, Tensor):
        return torch.gradient(pos, dim=0, edge_order=2)[0] / dt
    return torch.gradient(pos, spacing=float(dt), dim=0, edge_order=2)[0]


def finite_difference_acceleration(pos: Tensor, dt: float | Tensor) -> Tensor:
    """Acceleration ``(x[t+1] - 2 x[t] + x[t-1]) / dt^2`` at interior frames; [T,...] -> [T-2,...].

    Exact for quadratic trajectories (ballistic flight).
    """
    if pos.shape[0] < 3:
        raise ValidationError(f"accelerations need >= 3 frames, got positions {list(pos.shape)}")
    return (pos[2:] - 2.0 * pos[1:-1] + pos[:-2]) / (dt * dt)


def ground_penetration(pos: Tensor, radius: Tensor | float, ground_height: float | Tensor = 0.0,
                       up: Tensor | None = None) -> Tensor:
    """Depth of each sphere below the ground plane ``max(0, h0 + r - up . x)`` [m].

    pos [..., B, d], radius [B] or scalar, up [d] unit normal (default +z) -> [..., B].
    Uses a smooth-free ``relu`` so it is differentiable almost everywhere.
    """
    if up is None:
        height = pos[..., -1]
    else:
        height = (pos * torch.as_tensor(up, dtype=pos.dtype, device=pos.device)).sum(-1)
    r = torch.as_tensor(radius, dtype=pos.dtype, device=pos.device)
    return torch.relu(ground_height + r - height)


def runout_front(pos: Tensor, origin: float | Tensor = 0.0, axis: int = 0,
                 temperature: float | None = None) -> Tensor:
    """Front position of a granular flow along ``axis`` past ``origin`` [m]: the largest
    particle coordinate, pos [..., N, d] -> [...].

    With ``temperature`` (m) the max is a log-sum-exp softened over that length scale (a
    differentiable bound: exceeds the max by at most ``temperature * log N``), for losses.
    """
    coord = pos[..., axis] - torch.as_tensor(origin, dtype=pos.dtype, device=pos.device)
    if temperature is None:
        return coord.amax(dim=-1)
    if not temperature > 0:
        raise ValidationError(f"temperature = {temperature}, expected > 0 m")
    return temperature * torch.logsumexp(coord / temperature, dim=-1)


def mass_in_box(pos: Tensor, mass: Tensor | float, lo: Tensor, hi: Tensor,
                softness: float = 0.0) -> Tensor:
    """Mass of the particles inside the axis-aligned box [lo, hi] [kg].

    pos [..., N, d], mass scalar or [..., N], lo and hi [d] (or broadcastable [..., 1, d])
    -> [...]. Mass conservation in a container: particles leaking through a wall or the
    ground leave the box and its mass. ``softness`` (m) > 0 counts each particle by a
    product of sigmoids of its distances to the faces instead of 0/1 (differentiable, for
    losses; exact 1/2 on a face).
    """
    lo = torch.as_tensor(lo, dtype=pos.dtype, device=pos.device)
    hi = torch.as_tensor(hi, dtype=pos.dtype, device=pos.device)
    if softness > 0:
        weight = (torch.sigmoid((pos - lo) / softness)
                  * torch.sigmoid((hi - pos) / softness)).prod(-1)
    elif softness == 0:
        weight = ((pos >= lo) & (pos <= hi)).all(-1).to(pos.dtype)
    else:
        raise ValidationError(f"softness = {softness}, expected >= 0 m")
    return (_mass_like(mass, weight) * weight).sum(-1)


def box_penetration(pos: Tensor, boxes: Tensor, radius: Tensor | float = 0.0) -> Tensor:
    """Depth of each point (sphere of ``radius``) inside each axis-aligned box [m]: the
    distance to the box's nearest face, ``max(0, min_k (h_k + r - |x_k - c_k|))``.

    pos [..., N, d], boxes [K, 2d] or [..., K, 2d] rows (centre, half extents) -> [..., N, K]
    (zero outside; differentiable almost everywhere).
    """
    d = pos.shape[-1]
    boxes = torch.as_tensor(boxes, dtype=pos.dtype, device=pos.device)
    if boxes.shape[-1] != 2 * d:
        raise ValidationError(f"boxes have {boxes.shape[-1]} columns, expected {2 * d} "
                              "(centre and half extents)")
    centre, half = boxes[..., :d].unsqueeze(-3), boxes[..., d:].unsqueeze(-3)  # [..., 1, K, d]
    r = torch.as_tensor(radius, dtype=pos.dtype, device=pos.device)
    slack = half + r - (pos.unsqueeze(-2) - centre).abs()  # [..., N, K, d]
    return torch.relu(slack.amin(-1))


def tet_volume(pos: Tensor, tets: Tensor) -> Tensor:
    """Total signed volume of tetrahedra over the points [m^3]: ``sum det(x1-x0, x2-x0,
    x3-x0) / 6``. pos [..., N, 3], tets [K, 4] (int, positively oriented) -> [...].

    For a solid's material points joined into a tetrahedral mesh (its rest lattice) this is
    the volume of the deformed mesh: exact under any piecewise-affine motion, smooth in the
    points, and it follows compression and dilation where a convex hull would not (it fills
    concavities) and grid occupancy would (only in whole cells, without a gradient).
    """
    tets = torch.as_tensor(tets, device=pos.device).long()
    p = pos[..., tets, :]  # [..., K, 4, 3]
    e = p[..., 1:, :] - p[..., :1, :]
    det = (e[..., 0, :] * torch.linalg.cross(e[..., 1, :], e[..., 2, :], dim=-1)).sum(-1)
    return det.sum(-1) / 6.0


def box_ground_clearance(pos: Tensor, quat: Tensor, half_size: Tensor,
                         ground_height: float | Tensor = 0.0,
                         up: Tensor | None = None) -> Tensor:
    """Height of the lowest point of oriented boxes above the ground plane [m] (signed).

    The support distance of a box with half extents h and rotation R(q) along the unit
    up normal n is ``sum_k |(R e_k) . n| h_k = sum_k |(R^T n)_k| h_k``, so the clearance is
    ``n . p - h0 - sum_k |(R^T n)_k| h_k``: zero for a box resting on a face, an edge or a
    corner, negative when it penetrates. pos [..., B, 3] box centres (m), quat [..., B, 4]
    orientation (w, x, y, z; normalized here), half_size [B, 3] or broadcastable (m),
    ground_height h0 (m) broadcastable to [..., B], up [3] or broadcastable to pos
    (default +z) -> [..., B]. Differentiable except where a component of R^T n is zero.
    """
    if up is None:
        n = torch.zeros_like(pos)
        n[..., -1] = 1.0
    else:
        n = torch.as_tensor(up, dtype=pos.dtype, device=pos.device).expand_as(pos)
    h = torch.as_tensor(half_size, dtype=pos.dtype, device=pos.device)
    support = (quat_rotate_inverse(quat, n).abs() * h).sum(-1)
    return (pos * n).sum(-1) - ground_height - support


def pairwise_penetration(pos: Tensor, radius: Tensor | float) -> Tensor:
    """Overlap of every pair of spheres ``max(0, r_i + r_j - |x_i - x_j|)`` [m].

    pos [..., B, d], radius broadcastable to [..., B] -> [..., B, B], zero diagonal.
    The distance uses ``sqrt(|dx|^2 + eps)`` so the gradient exists for coincident bodies.
    """
    diff = pos.unsqueeze(-2) - pos.unsqueeze(-3)
    dist = torch.sqrt((diff * diff).sum(-1) + 1e-12)
    r = torch.as_tensor(radius, dtype=pos.dtype, device=pos.device).expand(pos.shape[:-1])
    overlap = torch.relu(r.unsqueeze(-1) + r.unsqueeze(-2) - dist)
    eye = torch.eye(pos.shape[-2], dtype=torch.bool, device=pos.device)
    return overlap.masked_fill(eye, 0.0)


def edge_strain(x: Tensor, edges: Tensor, rest_length: Tensor) -> Tensor:
    """Engineering strain of each cloth edge ``|x_i - x_j| / L0 - 1`` (dimensionless).

    x [..., N, 3] node positions (m), edges [E, 2] node indices, rest_length [E] (m)
    -> [..., E]. Positive when stretched, negative when compressed.
    """
    e = torch.as_tensor(edges, device=x.device, dtype=torch.long)
    d = x[..., e[:, 0], :] - x[..., e[:, 1], :]
    length = torch.sqrt((d * d).sum(-1) + 1e-18)
    return length / torch.as_tensor(rest_length, dtype=x.dtype, device=x.device) - 1.0


def spring_energy(x: Tensor, springs: Tensor, rest_length: Tensor,
                  stiffness: Tensor | float) -> Tensor:
    """Elastic energy of linear springs ``sum_s k_s (|x_i - x_j| - L_s)^2 / 2`` [J].

    x [..., N, d] (m), springs [S, 2] node indices, rest_length [S] (m), stiffness [S] or
    scalar (N/m) -> [...].
    """
    e = torch.as_tensor(springs, device=x.device, dtype=torch.long)
    d = x[..., e[:, 0], :] - x[..., e[:, 1], :]
    length = torch.sqrt((d * d).sum(-1) + 1e-18)
    k = torch.as_tensor(stiffness, dtype=x.dtype, device=x.device)
    rest = torch.as_tensor(rest_length, dtype=x.dtype, device=x.device)
    return 0.5 * (k * (length - rest) ** 2).sum(-1)


def grid_bending_energy(x: Tensor, resolution: int, stiffness: Tensor | float) -> Tensor:
    """Bending energy of a square ``resolution`` x ``resolution`` node grid [J]:
    ``kb/2 sum |x_{i-1} - 2 x_i + x_{i+1}|^2`` over rows and columns (second differences
    of the sheet, zero for a flat or uniformly stretched sheet).

    x [..., N, 3] (m) with N = resolution^2 in row-major grid order, stiffness ``kb`` per
    stencil (N/m, ``D / h^2`` for a bending rigidity D) -> [...].
    """
    grid = x.reshape(*x.shape[:-2], resolution, resolution, x.shape[-1])
    along_u = grid[..., :, :-2, :] - 2 * grid[..., :, 1:-1, :] + grid[..., :, 2:, :]
    along_v = grid[..., :-2, :, :] - 2 * grid[..., 1:-1, :, :] + grid[..., 2:, :, :]
    kb = torch.as_tensor(stiffness, dtype=x.dtype, device=x.device)
    return 0.5 * kb * ((along_u**2).sum((-3, -2, -1)) + (along_v**2).sum((-3, -2, -1)))


def divergence_2d(velocity: Tensor, spacing: float | tuple[float, float]) -> Tensor:
    """Divergence ``du/dx + dv/dy`` [1/s] of a cell-centred 2-D velocity field.

    velocity [..., H, W, 2] with component 0 along W (x) and 1 along H (y); spacing is the
    cell size (dx, dy) in m (a scalar for square cells). Second-order central differences
    inside the grid, second-order one-sided at the walls -> [..., H, W].
    """
    dx, dy = (spacing, spacing) if isinstance(spacing, (int, float)) else spacing
    du_dx = torch.gradient(velocity[..., 0], spacing=float(dx), dim=-1, edge_order=2)[0]
    dv_dy = torch.gradient(velocity[..., 1], spacing=float(dy), dim=-2, edge_order=2)[0]
    return du_dx + dv_dy


def sph_kernel_cubic(r: Tensor, h: float | Tensor, dim: int = 3) -> Tensor:
    """Monaghan's cubic-spline SPH kernel W(r, h) with support radius 2h [1/m^d].

    ``W = sigma/h^d * (1 - 1.5 q^2 + 0.75 q^3)`` for q = r/h < 1,
    ``sigma/h^d * 0.25 (2 - q)^3`` for 1 <= q < 2, else 0; sigma = 2/3, 10/(7 pi), 1/pi
    in 1, 2, 3 dimensions, so that W integrates to 1.
    """
    sigma = {1: 2.0 / 3.0, 2: 10.0 / (7.0 * math.pi), 3: 1.0 / math.pi}[dim]
    q = r / h
    inner = 1.0 - 1.5 * q**2 + 0.75 * q**3
    outer = 0.25 * torch.relu(2.0 - q) ** 3
    return sigma / h**dim * torch.where(q < 1.0, inner, outer)


def sph_kernel_wendland(r: Tensor, support: float | Tensor, dim: int = 2) -> Tensor:
    """Wendland C2 kernel with compact support R [1/m^d]:
    ``W = sigma / R^d (1 - q)^4 (1 + 4 q)`` for q = r/R < 1; sigma = 7/pi (2-D),
    21/(2 pi) (3-D), so that W integrates to 1."""
    sigma = {2: 7.0 / math.pi, 3: 21.0 / (2.0 * math.pi)}[dim]
    q = r / support
    return sigma / support**dim * torch.relu(1.0 - q) ** 4 * (1.0 + 4.0 * q)


def sph_density(x: Tensor, particle_mass: Tensor | float, smoothing_length: float | Tensor,
                chunk: int | None = None, kernel: str = "cubic") -> Tensor:
    """SPH density summation ``rho_i = sum_j m_j W(|x_i - x_j|, h)`` [kg/m^d].

    x [..., N, d] particle positions (m), particle_mass scalar or [N] (kg); ``kernel``
    ``cubic``: Monaghan's cubic spline with smoothing length h (support 2h);
    ``wendland``: Wendland C2 with support ``smoothing_length`` -> [..., N]. All pairs are
    evaluated, ``chunk`` rows at a time to bound memory (O(N^2) work; by default chunks of
    about 4 million pair distances).
    """
    dim = x.shape[-1]
    if chunk is None:
        chunk = max(1, int(4e6 // max(1, x[..., 0].numel())))
    m = torch.as_tensor(particle_mass, dtype=x.dtype, device=x.device)
    out = []
    for start in range(0, x.shape[-2], chunk):
        xi = x[..., start:start + chunk, :]
        diff = xi.unsqueeze(-2) - x.unsqueeze(-3)
        r = torch.sqrt((diff * diff).sum(-1) + 1e-24)
        if kernel == "wendland":
            w = sph_kernel_wendland(r, smoothing_length, dim)
        else:
            w = sph_kernel_cubic(r, smoothing_length, dim)
        out.append((w * m).sum(-1))
    return torch.cat(out, dim=-1)


def soft_mask_moments(weights: Tensor) -> tuple[Tensor, Tensor]:
    """Soft area [px] and centroid (u, v) [px] of soft masks; weights [..., H, W] in [0, 1].

    ``area = sum w``, ``centroid = sum w (u, v) / area`` with u the column and v the row
    index (pixel centres at integer coordinates + 0.5). The centroid is differentiable
    in the weights; it is undefined (NaN-free but meaningless) for empty masks, whose
    area is 0.
    """
    h, w = weights.shape[-2:]
    v = torch.arange(h, dtype=weights.dtype, device=weights.device) + 0.5
    u = torch.arange(w, dtype=weights.dtype, device=weights.device) + 0.5
    area = weights.sum((-2, -1))
    safe = area.clamp_min(1e-12)
    cu = (weights.sum(-2) * u).sum(-1) / safe
    cv = (weights.sum(-1) * v).sum(-1) / safe
    return area, torch.stack([cu, cv], dim=-1)
