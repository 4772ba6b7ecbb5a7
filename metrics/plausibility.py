"""Physical plausibility: quantities computed on the prediction itself, compared with the
same quantity computed on the truth.

Each metric evaluates one shared physical quantity (`physground.metrics.quantities`) on
both sides by the identical method, so discretization bias cancels, and reports their
difference per horizon step. Scalar estimates over the whole window (gravity fit,
restitution, first-contact time) are repeated at every step and scored at the last one.

Each registration declares its score family (conservation: energy, momentum, strain,
density, divergence; contact: penetration, restitution, contact time), its absolute
resolution floor in its unit and the violations the metric validity suite holds it to.
"""

from __future__ import annotations

import torch

from physground.metrics import quantities as q
from physground.metrics.batch import Batch, MissingInputError
from physground.metrics.registry import batched_metric

Tensor = torch.Tensor

ENERGY_LAWS = frozenset({"energy_conserved", "energy_nonincreasing"})
ENERGY_EPS = 1e-9  # J, floor of the energy scale


def _mass(batch: Batch) -> Tensor:
    return batch.require_static("mass", "particle_mass")


def _gravity(batch: Batch) -> Tensor:
    return batch.require_static("gravity")


def shared_topology(batch: Batch, name: str) -> Tensor:
    """A per-rollout integer array that must be identical across the batch (mesh edges)."""
    value = batch.require_static(name)
    if not bool((value == value[:1]).all()):
        raise MissingInputError(f"static['{name}'] differs between rollouts of one batch")
    return value[0]


def energies(batch: Batch) -> tuple[Tensor, Tensor]:
    """Cached `_energies`."""
    return batch.cached("energies", lambda: _energies(batch))


def _energies(batch: Batch) -> tuple[Tensor, Tensor]:
    """Mechanical energy ``K (+ K_rot) + U (+ spring energy)`` of (truth [R, C+H],
    pred [R, H]) in J.

    Rotational energy is included when both sides have ``angvel`` and ``quat`` and the
    truth has static ``inertia``; cloth spring energy when the truth has static
    ``springs``, ``spring_rest_length`` and ``spring_stiffness``, and its bending energy when
    it has ``bend_stiffness`` and ``resolution``. Both sides always use the same terms.
    """
    x_truth, x_pred = batch.truth_positions(), batch.pred_positions()
    v_truth, v_pred = batch.velocities()
    mass = batch.static_like(_mass(batch), 3)
    gravity = batch.static_like(_gravity(batch), 4)
    e_truth = q.total_energy(x_truth, v_truth, mass, gravity)
    e_pred = q.total_energy(x_pred, v_pred, mass, gravity)
    rotational = ("angvel" in batch.pred and "quat" in batch.pred and "angvel" in batch.truth
                  and "quat" in batch.truth and "inertia" in batch.static)
    if rotational:
        inertia = batch.static_like(batch.static["inertia"], 4)
        e_truth = e_truth + q.rotational_energy(batch.truth["angvel"], batch.truth["quat"],
                                                inertia)
        e_pred = e_pred + q.rotational_energy(batch.pred["angvel"], batch.pred["quat"], inertia)
    if all(k in batch.static for k in ("springs", "spring_rest_length", "spring_stiffness")):
        springs = shared_topology(batch, "springs")
        rest = batch.static_like(batch.static["spring_rest_length"], 3)
        k = batch.static_like(batch.static["spring_stiffness"], 3)
        e_truth = e_truth + q.spring_energy(x_truth, springs, rest, k)
        e_pred = e_pred + q.spring_energy(x_pred, springs, rest, k)
    if all(k in batch.static for k in ("bend_stiffness", "resolution")):
        resolution = int(shared_topology(batch, "resolution"))
        kb = batch.static_like(batch.static["bend_stiffness"], 2)
        e_truth = e_truth + q.grid_bending_energy(x_truth, resolution, kb)
        e_pred = e_pred + q.grid_bending_energy(x_pred, resolution, kb)
    return e_truth, e_pred


def energy_drift_batch(batch: Batch) -> Tensor:
    """``|E_pred(t) - E_true(t)| / max(|E_true(C-1)|, eps)``: relative energy error [R, H]."""
    e_truth, e_pred = energies(batch)
    scale = e_truth[:, batch.context - 1].abs().clamp_min(ENERGY_EPS)
    return (e_pred - e_truth[:, batch.context:]).abs() / scale.unsqueeze(1)


def momentum_drift_batch(batch: Batch) -> Tensor:
    """``|P_pred(t) - P_true(t)| / P_scale`` [R, H] with P = sum m v.

    ``P_scale = max(|P_true(C-1)|, sum_b m_b |v_b(C-1)|, eps)``: the momentum, or the
    total momentum magnitude of the bodies when they move against each other.
    """
    v_truth, v_pred = batch.velocities()
    mass = batch.static_like(_mass(batch), 3)  # [R, 1, B] or [R, 1, 1]
    p_truth = q.linear_momentum(v_truth, mass)
    p_pred = q.linear_momentum(v_pred, mass)
    last = v_truth[:, batch.context - 1]
    spread = (mass.squeeze(1).expand(last.shape[:-1]) * last.norm(dim=-1)).sum(-1)
    scale = torch.maximum(p_truth[:, batch.context - 1].norm(dim=-1), spread).clamp_min(1e-12)
    error = (p_pred - p_truth[:, batch.context:]).norm(dim=-1)
    return error / scale.unsqueeze(1)


# -- contacts ----------------------------------------------------------------------------


def _up(batch: Batch) -> Tensor:
    """Unit up vector [R, d]: against gravity, +z (last axis) without gravity."""
    g = _gravity(batch)
    norm = g.norm(dim=-1, keepdim=True)
    default = torch.zeros_like(g)
    default[:, -1] = 1.0
    return torch.where(norm > 0, -g / norm.clamp_min(1e-300), default)


def _ground(batch: Batch) -> Tensor:
    if "ground_height" in batch.static:
        return batch.static["ground_height"].reshape(-1)
    return torch.zeros(batch.size, dtype=torch.float64, device=batch.dt.device)


def _radius(batch: Batch, bodies: int) -> Tensor:
    radius = batch.require_static("radius")
    return radius.reshape(batch.size, -1).expand(batch.size, bodies)


def _half_size(batch: Batch, bodies: int) -> Tensor | None:
    """Box half extents [R, B, 3] (m) when the truth records ``half_size``, else None.

    Bodies whose half extents are all zero are treated as spheres of ``radius``.
    """
    if "half_size" not in batch.static:
        return None
    half = batch.static["half_size"]
    if tuple(half.shape) != (batch.size, bodies, 3):
        raise MissingInputError(
            f"static['half_size'] of {batch.scenario} has shape {list(half.shape[1:])} per "
            f"rollout, expected [{bodies}, 3] (box half extents of each body)"
        )
    return half


def penetration(batch: Batch, x: Tensor, quat: Tensor | None = None) -> Tensor:
    """Deepest penetration [R, T] in m: ground or any pair of bodies, whichever is deeper.

    x [R, T, B, d]. Ground: boxes (static ``half_size``, given ``quat`` [R, T, B, 4]) by
    their lowest corner (`quantities.box_ground_clearance`), other bodies as spheres of
    static ``radius``. Body-body overlap stays sphere-based: spheres of ``radius``, boxes
    as their inscribed spheres (radius = smallest half extent), which never overlap for
    disjoint boxes (no false positives for stacked boxes, whose bounding spheres do) but
    miss shallow box-box penetrations.
    """
    radius = _radius(batch, x.shape[2]).unsqueeze(1)  # [R, 1, B]
    up = _up(batch).view(batch.size, 1, 1, -1)
    height = (x * up).sum(-1)  # [R, T, B]
    ground_height = _ground(batch).view(-1, 1, 1)
    ground = torch.relu(ground_height + radius - height)
    half = _half_size(batch, x.shape[2])
    pair_radius = radius
    if half is not None:
        is_box = (half.abs().sum(-1) > 0).unsqueeze(1)  # [R, 1, B]
        pair_radius = torch.where(is_box, half.abs().amin(-1).unsqueeze(1), radius)
        if quat is not None:
            clearance = q.box_ground_clearance(x, quat, half.unsqueeze(1), ground_height, up)
            ground = torch.where(is_box, torch.relu(-clearance), ground)
    depth = ground.amax(-1)
    if x.shape[2] > 1:
        pair = q.pairwise_penetration(x, pair_radius)
        depth = torch.maximum(depth, pair.amax((-2, -1)))
    return depth


def _penetration_pair(batch: Batch) -> tuple[Tensor, Tensor]:
    """(truth [R, H], pred [R, H]) deepest penetrations; boxes use their orientation when
    both the truth and the prediction have ``quat`` (else both sides use spheres)."""
    def compute() -> tuple[Tensor, Tensor]:
        truth = batch.truth_positions()[:, batch.context:]
        q_truth = q_pred = None
        if "quat" in batch.truth and "quat" in batch.pred:
            q_truth, q_pred = batch.truth["quat"][:, batch.context:], batch.pred["quat"]
        return (penetration(batch, truth, q_truth),
                penetration(batch, batch.pred_positions(), q_pred))

    return batch.cached("penetration", compute)


def penetration_depth_batch(batch: Batch) -> Tensor:
    """``|d_pred(t) - d_true(t)|`` [R, H] in m, d the deepest ground/body penetration.

    Soft contacts make the truth penetrate slightly during impacts, so the prediction is
    compared with that rather than with zero.
    """
    truth, pred = _penetration_pair(batch)
    return (pred - truth).abs()


PENETRATION_TOLERANCE = 0.05  # fraction of the smallest radius counted as no penetration


def penetration_frequency_batch(batch: Batch) -> Tensor:
    """Fraction of steps 1..t where the prediction penetrates deeper than the truth by more
    than 5 % of the smallest radius [R, H] (cumulative)."""
    truth, pred = _penetration_pair(batch)
    tol = PENETRATION_TOLERANCE * batch.require_static("radius").reshape(batch.size, -1).amin(-1)
    events = (pred > truth + tol.unsqueeze(1)).to(torch.float64)
    steps = torch.arange(1, batch.horizon + 1, dtype=torch.float64, device=events.device)
    return events.cumsum(1) / steps


def _heights(batch: Batch, side: str) -> Tensor:
    """Heights above the contact level (centre height - ground - radius) [R, C+H, B]."""
    return batch.cached(f"heights_{side}", lambda: _compute_heights(batch, side))


def _compute_heights(batch: Batch, side: str) -> Tensor:
    x = batch.positions_with_context(side)
    up = _up(batch).view(batch.size, 1, 1, -1)
    radius = _radius(batch, x.shape[2]).unsqueeze(1)
    return (x * up).sum(-1) - _ground(batch).view(-1, 1, 1) - radius


BOUNCE_STEP = 1e-4  # m per frame: smaller height changes around a minimum are resting jitter


def first_bounce(height: Tensor, start: int, radius: Tensor) -> tuple[Tensor, Tensor]:
    """First ground bounce at or after frame ``start``: (frame index [R, B], found [R, B]).

    A bounce is a local minimum of the height (impossible in free flight) within one radius
    of the ground, with two frames on each side (for the one-sided velocities around it);
    height changes below 0.1 mm per frame around the minimum are resting jitter, not a
    bounce. Bodies are spheres of static ``radius`` (MuJoCo's bounding radius).
    """
    t = height.shape[1]
    k = torch.arange(t, device=height.device)
    dh = height[:, 1:] - height[:, :-1]
    is_min = torch.zeros_like(height, dtype=torch.bool)
    is_min[:, 1:-1] = (dh[:, :-1] < -BOUNCE_STEP) & (dh[:, 1:] > BOUNCE_STEP)
    near = height < radius.unsqueeze(1)
    ok = is_min & near & (k >= max(start, 2)).view(1, -1, 1) & (k <= t - 3).view(1, -1, 1)
    found = ok.any(1)
    # rows without a bounce get a valid dummy index (2) whose estimate is masked out
    index = torch.where(found, ok.to(torch.int8).argmax(1), torch.full_like(found, 2,
                                                                             dtype=torch.long))
    return index, found


def restitution(height: Tensor, index: Tensor, dt: Tensor, g: Tensor) -> Tensor:
    """Coefficient of restitution at bounce frames ``index`` [R, B] from heights [R, T, B].

    Velocities one frame before and after the bounce come from one-sided differences
    corrected for gravity (exact in free flight), then are carried to the contact level by
    energy conservation: ``v_c = sqrt(v^2 + 2 g h)``; ``e = v_c,out / v_c,in``.
    """
    def at(offset: int) -> Tensor:
        return height.gather(1, (index + offset).unsqueeze(1)).squeeze(1)

    dt_, g_ = dt.view(-1, 1), g.view(-1, 1)
    v_in = (at(-1) - at(-2)) / dt_ - 0.5 * g_ * dt_
    v_out = (at(2) - at(1)) / dt_ + 0.5 * g_ * dt_
    speed_in = torch.sqrt(torch.relu(v_in**2 + 2 * g_ * torch.relu(at(-1))))
    speed_out = torch.sqrt(torch.relu(v_out**2 + 2 * g_ * torch.relu(at(1))))
    rebound = torch.where(v_out > 0, speed_out, torch.zeros_like(speed_out))
    return rebound / speed_in.clamp_min(1e-12)


def restitution_error_batch(batch: Batch) -> Tensor:
    """``|e_pred - e_true|`` [R, H] (constant): restitution of the first bounce in the window.

    The estimator runs on both sides; a prediction with no bounce has e = 0 (it sticks or
    passes through the ground). Undefined for rollouts whose truth has no bounce in the
    window; averaged over bodies that bounce.
    """
    radius = _radius(batch, batch.truth[batch.position_name()].shape[2])
    g = _gravity(batch).norm(dim=-1)
    h_truth, h_pred = _heights(batch, "truth"), _heights(batch, "pred")
    i_truth, found_truth = first_bounce(h_truth, batch.context, radius)
    i_pred, found_pred = first_bounce(h_pred, batch.context, radius)
    e_truth = restitution(h_truth, i_truth, batch.dt, g)
    e_pred = torch.where(found_pred, restitution(h_pred, i_pred, batch.dt, g),
                         torch.zeros_like(e_truth))
    err = torch.where(found_truth, (e_pred - e_truth).abs(), torch.zeros_like(e_truth))
    count = found_truth.sum(-1)
    batch.mark_undefined(count == 0, "the truth has no ground bounce in the window")
    value = err.sum(-1) / count.clamp_min(1)
    value = torch.where(count > 0, value, torch.full_like(value, float("nan")))
    return value.unsqueeze(1).expand(-1, batch.horizon)


def first_contact(height: Tensor, start: int, radius: Tensor) -> Tensor:
    """Frame of the first ground contact at or after ``start`` [R, B] (T when none).

    Contact: the sphere touches the ground (height <= 0) or a bounce happens between
    frames (local minimum of the height within one radius of the ground).
    """
    t = height.shape[1]
    k = torch.arange(t, device=height.device).view(1, -1, 1)
    dh = height[:, 1:] - height[:, :-1]
    is_min = torch.zeros_like(height, dtype=torch.bool)
    is_min[:, 1:-1] = (dh[:, :-1] < -BOUNCE_STEP) & (dh[:, 1:] > BOUNCE_STEP)
    contact = (height <= 0) | (is_min & (height < radius.unsqueeze(1)))
    contact &= k >= start
    found = contact.any(1)
    return torch.where(found, contact.to(torch.int8).argmax(1), torch.full_like(found, t,
                                                                                dtype=torch.long))


def contact_time_error_batch(batch: Batch) -> Tensor:
    """``|t_pred - t_true|`` [R, H] (constant) in s: time of the first ground contact in the
    window, averaged over bodies; no contact counts as contact just after the window."""
    radius = _radius(batch, batch.truth[batch.position_name()].shape[2])
    t_truth = first_contact(_heights(batch, "truth"), batch.context, radius)
    t_pred = first_contact(_heights(batch, "pred"), batch.context, radius)
    err = (t_pred - t_truth).abs().to(torch.float64).mean(-1) * batch.dt
    return err.unsqueeze(1).expand(-1, batch.horizon)


BALLISTIC_TOLERANCE = 0.01  # |a_true - g| / |g| below which a frame counts as free flight


def gravity_error_batch(batch: Batch) -> Tensor:
    """``|g_pred - g_true| / |g|`` [R, H] (constant): gravity fitted on ballistic segments.

    Frames where the simulated truth is in free flight (its second-difference
    acceleration equals g within 1 %) select the segments; on those frames the
    prediction's accelerations (second differences of context + predicted positions) are
    averaged into ``g_pred``, the least-squares constant acceleration, and the truth's into
    ``g_true`` by the same estimator (equal to the true g to round-off for simulated
    states; measured from the true frames for frames-only predictions). Undefined when
    the window has no free flight.
    """
    name = batch.position_name()
    x_state = batch.truth[name]
    x_truth = batch.positions_with_context("truth")
    x_pred = batch.positions_with_context("pred")
    dt2 = (batch.dt**2).view(-1, 1, 1, 1)

    def accel(x: Tensor) -> Tensor:
        return (x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]) / dt2

    g = _gravity(batch).view(batch.size, 1, 1, -1)
    g_norm = g.norm(dim=-1)
    free = (accel(x_state) - g).norm(dim=-1) < BALLISTIC_TOLERANCE * g_norm  # [R, T-2, B]
    free[:, : batch.context - 1] = False  # accelerations centred on predicted frames only
    count = free.sum((1, 2))
    weights = free.to(torch.float64).unsqueeze(-1)

    def fit(x: Tensor) -> Tensor:
        return (accel(x) * weights).sum((1, 2)) / count.clamp_min(1).unsqueeze(-1)

    gn = g_norm.view(-1)
    value = (fit(x_pred) - fit(x_truth)).norm(dim=-1) / gn.clamp_min(1e-12)
    undefined = (count == 0) | (gn == 0)
    batch.mark_undefined(undefined, "the truth has no free flight under gravity in the window")
    value = torch.where(undefined, torch.full_like(value, float("nan")), value)
    return value.unsqueeze(1).expand(-1, batch.horizon)


# -- continua ----------------------------------------------------------------------------


def edge_strain_batch(batch: Batch) -> Tensor:
    """``|mean_e |s_pred| - mean_e |s_true||`` [R, H]: mean absolute edge strain of the
    prediction against the truth's (inextensible cloth keeps strain near zero)."""
    edges = shared_topology(batch, "edges")
    rest = batch.static_like(batch.require_static("rest_length"), 3)
    name = batch.position_name()
    s_truth = q.edge_strain(batch.truth_window(name), edges, rest).abs().mean(-1)
    s_pred = q.edge_strain(batch.pred_positions(), edges, rest).abs().mean(-1)
    return (s_pred - s_truth).abs()


def _sph_static(batch: Batch) -> tuple[Tensor, Tensor, Tensor, str]:
    """Particle mass, kernel radius, rest density and kernel name: the scenario's Wendland
    C2 kernel when it records ``kernel_support``, else the cubic spline of
    ``smoothing_length``."""
    mass = batch.require_static("particle_mass", "mass")
    rho0 = batch.require_static("rest_density")
    if "kernel_support" in batch.static:
        return mass, batch.static["kernel_support"].reshape(-1), rho0.reshape(-1), "wendland"
    h = batch.require_static("smoothing_length", "h")
    return mass, h.reshape(-1), rho0.reshape(-1), "cubic"


def density_deviation_batch(batch: Batch) -> Tensor:
    """``|dev_pred(t) - dev_true(t)|`` [R, H], ``dev = mean_i |rho_i / rho_0 - 1|``.

    Densities by SPH summation (`quantities.sph_density`, without wall images), the same
    estimator on both sides, so free-surface and wall deficits cancel.
    """
    mass, h, rho0, kernel = _sph_static(batch)
    name = batch.position_name()
    out = []
    for r in range(batch.size):
        m = mass[r] if mass.dim() > 1 else mass[r].item()
        rho_t = q.sph_density(batch.truth_window(name)[r], m, h[r].item(), kernel=kernel)
        rho_p = q.sph_density(batch.pred_positions()[r], m, h[r].item(), kernel=kernel)
        dev_t = (rho_t / rho0[r] - 1).abs().mean(-1)
        dev_p = (rho_p / rho0[r] - 1).abs().mean(-1)
        out.append((dev_p - dev_t).abs())
    return torch.stack(out)


def _spacing(batch: Batch) -> Tensor:
    return batch.require_static("grid_spacing", "dx", "cell_size").reshape(batch.size, -1)[:, 0]


def divergence_norm_batch(batch: Batch) -> Tensor:
    """``|rms(div u_pred) - rms(div u_true)| * dx / rms|u_true|`` [R, H] (dimensionless).

    Divergence by second-order differences on the cell-centred grid
    (`quantities.divergence_2d`), scaled by cell size over the truth's RMS speed so that
    it reads as the relative volume change per cell crossing.
    """
    dx = _spacing(batch)
    u_truth, u_pred = batch.truth_window("velocity"), batch.pred.get("velocity")
    if u_pred is None:
        raise MissingInputError("prediction has no states['velocity'] for the divergence")
    rms = []
    for u in (u_truth, u_pred):
        if bool((dx == dx[0]).all()):
            div = q.divergence_2d(u, float(dx[0]))
        else:
            div = torch.stack([q.divergence_2d(u[r], float(dx[r])) for r in range(batch.size)])
        rms.append(div.pow(2).mean((-2, -1)).sqrt())
    speed = u_truth.pow(2).sum(-1).mean((-2, -1)).sqrt().clamp_min(1e-12)
    return (rms[1] - rms[0]).abs() * dx.view(-1, 1) / speed


def _particle_mass(batch: Batch, n: int) -> Tensor:
    """Particle masses [R, 1, N] (one mass per rollout or one per particle)."""
    mass = batch.require_static("particle_mass", "mass").reshape(batch.size, -1)
    return mass.expand(batch.size, n).unsqueeze(1)


def mass_drift_batch(batch: Batch) -> Tensor:
    """``|M_pred(t) - M_true(t)| / M_true(C-1)`` [R, H], M the mass of the particles inside
    the container ``static['domain']`` [2, d] (lo, hi): mass leaking out of it."""
    domain = batch.require_static("domain")  # [R, 2, d]
    x_truth = batch.truth_window(batch.position_name())
    x_pred = batch.pred_positions()
    mass = _particle_mass(batch, x_truth.shape[2])
    lo, hi = domain[:, None, :1], domain[:, None, 1:2]  # [R, 1, 1, d]
    m_truth = q.mass_in_box(x_truth, mass, lo, hi)
    m_pred = q.mass_in_box(x_pred, mass, lo, hi)
    last = q.mass_in_box(batch.truth_context(batch.position_name())[:, -1:], mass, lo, hi)
    return (m_pred - m_truth).abs() / last.clamp_min(1e-300)


def collider_depth(batch: Batch, x: Tensor) -> Tensor:
    """Deepest penetration [R, T] in m of material points x [R, T, N, 3] below the ground
    (z = 0) or into a box of ``static['colliders']`` [K, 6] (K may be 0)."""
    depth = q.ground_penetration(x, 0.0).amax(-1)
    boxes = batch.static.get("colliders")
    if boxes is not None and boxes.shape[1] > 0:
        inside = q.box_penetration(x, boxes[:, None])  # [R, T, N, K]
        depth = torch.maximum(depth, inside.amax((-2, -1)))
    return depth


def collider_penetration_batch(batch: Batch) -> Tensor:
    """``|d_pred(t) - d_true(t)|`` [R, H] in m, d the deepest penetration of a material point
    into the ground or a collider (MPM projects points out only past a threshold, so the
    truth's small depth is the reference, not zero)."""
    x_truth = batch.truth_window(batch.position_name())
    return (collider_depth(batch, batch.pred_positions()) - collider_depth(batch, x_truth)).abs()


def volume_error_batch(batch: Batch) -> Tensor:
    """``|V_pred(t) - V_true(t)| / V_true(0)`` [R, H]: volume of the solid's tetrahedral
    mesh (``static['tets']`` over its material points, `quantities.tet_volume`)."""
    tets = shared_topology(batch, "tets")
    name = batch.position_name()
    v0 = q.tet_volume(batch.truth_context(name)[:, :1], tets).abs().clamp_min(1e-300)
    v_truth = q.tet_volume(batch.truth_window(name), tets)
    v_pred = q.tet_volume(batch.pred_positions(), tets)
    return (v_pred - v_truth).abs() / v0


# -- registrations -----------------------------------------------------------------------

energy_drift = batched_metric(
    "energy_drift", energy_drift_batch, higher_is_better=False,
    family="conservation", floor=1e-3, tolerates={"state_noise"},
    detects={"energy_injected"},
    tags=("state", "plausibility", "rigid", "cloth"),
    requires_states=("pos|x",), requires_laws=ENERGY_LAWS, unit="1",
    derivable_from_pixels=True,
    description="|E_pred - E_true| / |E_true at the last context frame|, E = K + U (+ K_rot)",
)
momentum_drift = batched_metric(
    "momentum_drift", momentum_drift_batch, higher_is_better=False,
    family="conservation", floor=1e-3, tolerates={"state_noise"},
    detects={"energy_injected"},
    tags=("state", "plausibility", "rigid", "cloth", "sph"),
    requires_states=("pos|x",), requires_laws={"momentum_conserved"}, unit="1",
    derivable_from_pixels=True,
    description="|P_pred - P_true| / momentum scale at the last context frame",
)
penetration_depth = batched_metric(
    "penetration_depth", penetration_depth_batch, higher_is_better=False,
    family="contact", floor=1e-4, tolerates={"state_noise"},
    detects={"interpenetration"},
    tags=("state", "plausibility", "rigid"),
    requires_states=("pos",), requires_laws={"non_penetration"}, unit="m",
    derivable_from_pixels=True,
    description="|deepest ground/body penetration of the prediction - that of the truth|"
                " (boxes by their lowest corner when quat is predicted)",
)
penetration_frequency = batched_metric(
    "penetration_frequency", penetration_frequency_batch, higher_is_better=False,
    family="contact", floor=0.02, reduce="last", tolerates={"state_noise"},
    detects={"interpenetration"},
    tags=("state", "plausibility", "rigid"),
    requires_states=("pos",), requires_laws={"non_penetration"}, unit="1",
    derivable_from_pixels=True,
    description="fraction of steps up to t penetrating deeper than the truth (+5% radius)",
)
gravity_error = batched_metric(
    "gravity_error", gravity_error_batch, higher_is_better=False,
    family="accuracy", floor=1e-3, reduce="last", min_horizon=2,
    detects={"gravity_scaled", "frozen"},
    tags=("state", "plausibility", "rigid"),
    requires_states=("pos",), requires_laws={"ballistic"}, unit="1",
    derivable_from_pixels=True,
    description="|g fitted on the prediction's ballistic segments - true g| / |g|",
)
restitution_error = batched_metric(
    "restitution_error", restitution_error_batch, higher_is_better=False,
    family="contact", floor=0.01, reduce="last", min_horizon=4,
    detects={"restitution_changed"},
    tags=("state", "plausibility", "rigid"),
    requires_states=("pos",), requires_laws={"ballistic", "non_penetration"}, unit="1",
    derivable_from_pixels=True,
    description="|restitution of the first bounce, prediction - truth|",
)
contact_time_error = batched_metric(
    "contact_time_error", contact_time_error_batch, higher_is_better=False,
    family="contact", floor=0.01, reduce="last",
    tags=("state", "plausibility", "rigid"),
    requires_states=("pos",), requires_laws={"non_penetration"}, unit="s",
    derivable_from_pixels=True,
    description="|time of first ground contact in the window, prediction - truth|",
)
edge_strain = batched_metric(
    "edge_strain", edge_strain_batch, higher_is_better=False,
    family="conservation", floor=1e-4, tolerates={"state_noise"},
    tags=("state", "plausibility", "cloth"),
    requires_states=("x",), requires_laws={"inextensible"}, unit="1",
    description="|mean absolute edge strain of the prediction - that of the truth| (cloth)",
)
density_deviation = batched_metric(
    "density_deviation", density_deviation_batch, higher_is_better=False,
    family="conservation", floor=1e-3, tolerates={"state_noise"},
    tags=("state", "plausibility", "fluid", "sph"),
    requires_states=("x",), requires_laws={"incompressible", "mass_conserved"},
    laws_mode="all", unit="1",
    description="|mean |rho/rho0 - 1| of the prediction - that of the truth| (SPH)",
)
divergence_norm = batched_metric(
    "divergence_norm", divergence_norm_batch, higher_is_better=False,
    family="conservation", floor=1e-3,
    tags=("state", "plausibility", "fluid", "smoke"),
    requires_states=("velocity",), requires_laws={"incompressible"}, unit="1",
    description="|RMS divergence of the prediction - truth's| * dx / RMS speed (smoke)",
)
mass_drift = batched_metric(
    "mass_drift", mass_drift_batch, higher_is_better=False,
    family="conservation", floor=1e-3,
    tags=("state", "plausibility", "granular", "fluid", "mpm"),
    requires_states=("x",), requires_laws={"mass_in_domain"}, unit="1",
    description="|mass inside the container, prediction - truth| / truth's at the last "
                "context frame (material leaking through walls or the ground)",
)
collider_penetration = batched_metric(
    "collider_penetration", collider_penetration_batch, higher_is_better=False,
    family="contact", floor=1e-3,
    tags=("state", "plausibility", "granular", "softbody", "mpm"),
    requires_states=("x",), requires_laws={"collider_non_penetration"}, unit="m",
    description="|deepest penetration of a material point into the ground or a box "
                "collider, prediction - truth|",
)
volume_error = batched_metric(
    "volume_error", volume_error_batch, higher_is_better=False,
    family="conservation", floor=1e-3,
    tags=("state", "plausibility", "softbody", "mpm"),
    requires_states=("x",), requires_laws={"solid_volume"}, unit="1",
    description="|volume of the solid's tetrahedral mesh, prediction - truth| / rest volume",
)
