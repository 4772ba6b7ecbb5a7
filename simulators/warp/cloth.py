"""Cloth: a batched, differentiable mass-spring triangle mesh in NVIDIA Warp.

Model
-----
A square sheet of ``n x n`` nodes (side ``size`` m) triangulated on a regular grid. Every
node ``i`` has mass ``m_i = M / N`` (kg); pinned nodes have infinite mass. Forces:

* springs: *stretch* springs on grid edges and *shear* springs on both cell diagonals,
  ``f_ij = (k_s (|x_j - x_i| - L_ij) + c_s (v_j - v_i) . d_ij) d_ij`` with ``d_ij`` the unit
  edge direction, ``k_s = k * kappa_s`` (N/m) and ``c_s = c * kappa_s`` (N s/m). The
  weights ``kappa_s`` (`membrane_weights`, halved on the border) make ``k = stiffness`` the
  sheet's *membrane stiffness*: a strip of width W under tension T stretches by the strain
  ``T / (k W)``, at every resolution, with Poisson ratio ``shear_ratio / (1 + shear_ratio)``;
* bending: the energy ``D/2 (w_uu^2 + w_vv^2)`` per unit area (rigidity ``D`` in N m, the
  config's ``bending``), discretised on the rows and columns of the grid. It resists
  out-of-plane displacement of a flat sheet, so a sheet hanging flat is stable (springs
  between second neighbours have no such stiffness: the flat sheet under any compression
  would buckle at the grid scale from round-off);
* aerodynamic drag with wind ``w`` on each grid cell of vector area ``A n``:
  ``f = C_d A (n . (w - v_cell)) n``, shared equally by its four nodes (``C_d`` in
  N s/m^3). The cell's vector area is half the cross product of its diagonals, independent
  of the triangulation, so the drag keeps mirror symmetry;
* gravity ``m g``.

Contacts with a sphere and the ground plane ``z = ground`` are enforced on positions after
each substep (projection to the surface offset by ``thickness``), removing the approaching
normal velocity and applying Coulomb friction to the tangential velocity
(``|dv_t| <= mu |dv_n|``).

Integrator, and why
-------------------
Semi-implicit (symplectic) Euler with a fixed number of substeps per stored frame:
``v += dt (f(x, v) / m + g)``, ``x += dt v``, then contact projection. Chosen over XPBD and
over implicit Euler because

1. it is *differentiable as written*: each substep is four data-parallel kernels (springs,
   drag, second differences for bending, integrate) with no iterative solve, so `wp.Tape`
   records an exact discrete adjoint;
   XPBD's Gauss-Seidel constraint sweeps race on shared nodes (or need graph colouring) and
   implicit Euler needs a linear solve whose adjoint is a second solve;
2. it is *batched and device independent*: one launch covers every spring of every
   environment, the same kernels run on ``cpu`` and ``cuda`` (one element per thread on
   CUDA, one environment per thread on the CPU, see `chunk_size`); the non-differentiable
   fast path of a rollout replays one captured graph per frame and, on the CPU, runs each
   substep as a single row sweep (`cloth_substep_rows`) that applies the same force terms
   to every node in the same order, so every path gives bit-identical states;
3. it is *the same integrator in NumPy* (`cloth_substep_numpy`) for the speed benchmark and
   for a two-formulation test;
4. it is symplectic, so without damping the energy error stays bounded instead of drifting,
   and with damping and drag the energy decays as it physically should. The price is a
   stability limit ``dt < 2 / omega_max``; the default 80 substeps per 1/30 s frame keep
   ``omega_max dt`` below ~1 over the whole train and OOD stiffness/mass ranges.

States (per rollout): ``x [T,N,3]`` positions (m), ``v [T,N,3]`` velocities (m/s), z up.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import warp as wp

from physground.errors import SimulationError, ValidationError
from physground.params import Choice, Param, ParamSpace, Uniform
from physground.rollout import Camera, Rollout
from physground.scenario import Scenario, ScenarioConfig
from physground.simulators.warp.common import (
    WarpConfig,
    check_batch,
    chunk_count,
    chunk_size,
    look_at_camera,
    start_warp,
    torch_to_warp,
    warp_device_of,
    warp_meta,
    warp_to_torch,
)

GRAVITY = np.array([0.0, 0.0, -9.81])  # m/s^2, z up

# ----------------------------------------------------------------------------- kernels


# Node arrays are passed flattened, [B*N] (environment b's node n at b N + n), so that the
# row-sweep kernel, whose arrays are then all one-dimensional, gets Warp's CPU
# specialisation for contiguous arrays; the separate kernels share the same functions.


@wp.func
def _spring_force(
    x: wp.array(dtype=wp.vec3),
    v: wp.array(dtype=wp.vec3),
    i: int,
    j: int,
    rest: float,
    kappa: float,
    k: float,
    c: float,
    f: wp.array(dtype=wp.vec3),
):
    """Damped spring between the flat node indices ``i`` and ``j`` (rest length ``rest``,
    weight ``kappa``; stiffness ``k``, damping ``c`` per unit weight), into ``f``."""
    d = x[j] - x[i]
    length = wp.length(d)
    direction = d / length
    rel = wp.dot(v[j] - v[i], direction)
    magnitude = kappa * (k * (length - rest) + c * rel)
    force = magnitude * direction
    wp.atomic_add(f, i, force)
    wp.atomic_sub(f, j, force)


@wp.kernel
def cloth_spring_forces(
    x: wp.array(dtype=wp.vec3),
    v: wp.array(dtype=wp.vec3),
    springs: wp.array2d(dtype=wp.int32),
    rest: wp.array(dtype=wp.float32),
    kappa: wp.array(dtype=wp.float32),
    stiffness: wp.array(dtype=wp.float32),
    damping: wp.array(dtype=wp.float32),
    nodes: int,
    chunk: int,
    f: wp.array(dtype=wp.vec3),
):
    """Damped springs, accumulated into f [B*N]; launch dim (batch, threads): thread t
    takes springs [t chunk, (t + 1) chunk) in order (see `chunk_size`)."""
    b, t = wp.tid()
    k = stiffness[b]
    c = damping[b]
    base = b * nodes
    start = t * chunk
    for s in range(start, wp.min(start + chunk, springs.shape[0])):
        _spring_force(x, v, base + springs[s, 0], base + springs[s, 1], rest[s], kappa[s],
                      k, c, f)


@wp.func
def _cell_drag(
    x: wp.array(dtype=wp.vec3),
    v: wp.array(dtype=wp.vec3),
    a: int,
    i: int,
    j: int,
    k: int,
    w: wp.vec3,
    drag: float,
    f: wp.array(dtype=wp.vec3),
):
    """Drag on the grid cell with corners (a, i, j, k) = (row, col), (row, col + 1),
    (row + 1, col), (row + 1, col + 1) (flat indices) in the wind ``w``, shared by the four.

    The cell's vector area ``S = (x_k - x_a) x (x_j - x_i) / 2`` (its two diagonals) does
    not depend on how the cell is split into triangles, so mirror-image cells get
    mirror-image forces."""
    cross = wp.cross(x[k] - x[a], x[j] - x[i])  # = 2 S
    rel = w - 0.25 * (v[a] + v[i] + v[j] + v[k])
    # A n (n . u) = S (S . u) / |S|, shared by the four corners
    force = cross * (drag * wp.dot(cross, rel) / (8.0 * wp.length(cross)))
    wp.atomic_add(f, a, force)
    wp.atomic_add(f, i, force)
    wp.atomic_add(f, j, force)
    wp.atomic_add(f, k, force)


@wp.func
def _cell_row_drag(
    x: wp.array(dtype=wp.vec3),
    v: wp.array(dtype=wp.vec3),
    first: int,
    res: int,
    w: wp.vec3,
    drag: float,
    f: wp.array(dtype=wp.vec3),
):
    """`_cell_drag` of the cells of one cell row, left to right (``first`` = flat index of
    the row's first node), with the two corners a cell shares with the next kept in
    registers: the same operations on the same values, in the same order."""
    xa = x[first]
    xj = x[first + res]
    va = v[first]
    vj = v[first + res]
    fa = f[first]
    fj = f[first + res]
    for col in range(res - 1):
        a = first + col
        xi = x[a + 1]
        xk = x[a + res + 1]
        vi = v[a + 1]
        vk = v[a + res + 1]
        cross = wp.cross(xk - xa, xj - xi)  # = 2 S
        rel = w - 0.25 * (va + vi + vj + vk)
        force = cross * (drag * wp.dot(cross, rel) / (8.0 * wp.length(cross)))
        f[a] = fa + force
        fi = f[a + 1] + force
        f[a + res] = fj + force
        fk = f[a + res + 1] + force
        xa = xi
        xj = xk
        va = vi
        vj = vk
        fa = fi
        fj = fk
    f[first + res - 1] = fa
    f[first + 2 * res - 1] = fj


@wp.kernel
def cloth_drag_forces(
    x: wp.array(dtype=wp.vec3),
    v: wp.array(dtype=wp.vec3),
    quads: wp.array2d(dtype=wp.int32),
    wind: wp.array(dtype=wp.vec3),
    drag: float,
    nodes: int,
    chunk: int,
    f: wp.array(dtype=wp.vec3),
):
    """Linear normal drag against the wind per grid cell (`_cell_drag`); launch dim
    (batch, threads), thread t taking cells [t chunk, (t + 1) chunk) in order."""
    b, t = wp.tid()
    w = wind[b]
    base = b * nodes
    start = t * chunk
    for q in range(start, wp.min(start + chunk, quads.shape[0])):
        _cell_drag(x, v, base + quads[q, 0], base + quads[q, 1], base + quads[q, 2],
                   base + quads[q, 3], w, drag, f)


@wp.func
def _line_curvature(x: wp.array(dtype=wp.vec3), n: int, step: int, index: int,
                    count: int) -> wp.vec3:
    """Second difference x[n-step] - 2 x[n] + x[n+step] at position ``index`` of a grid line
    of ``count`` nodes; zero where the stencil leaves the line."""
    out = wp.vec3(0.0, 0.0, 0.0)
    if index > 0 and index < count - 1:
        out = x[n - step] - 2.0 * x[n] + x[n + step]
    return out


@wp.func
def _node_curvature(x: wp.array(dtype=wp.vec3), b: int, row: int, col: int, res: int,
                    curvature: wp.array(dtype=wp.vec3)):
    """Second differences of node (row, col) of environment ``b`` along its row
    (``curvature[2 b N + n]``) and its column (``curvature[2 b N + N + n]``)."""
    nodes = res * res
    n = row * res + col
    curvature[2 * b * nodes + n] = _line_curvature(x, b * nodes + n, 1, col, res)
    curvature[(2 * b + 1) * nodes + n] = _line_curvature(x, b * nodes + n, res, row, res)


@wp.kernel
def cloth_curvature(
    x: wp.array(dtype=wp.vec3),
    resolution: int,
    chunk: int,
    curvature: wp.array(dtype=wp.vec3),
):
    """Second differences of every node (`_node_curvature`), zero where the stencil leaves
    the sheet: computed once per node for `bending_force`. Launch dim (batch, threads)
    over the row-major nodes."""
    b, t = wp.tid()
    start = t * chunk
    end = wp.min(start + chunk, resolution * resolution)
    for row in range(start // resolution, (end + resolution - 1) // resolution):
        first = wp.max(start - row * resolution, 0)
        for col in range(first, wp.min(end - row * resolution, resolution)):
            _node_curvature(x, b, row, col, resolution, curvature)


@wp.func
def bending_force(curvature: wp.array(dtype=wp.vec3), b: int, row: int, col: int, res: int,
                  kb: float) -> wp.vec3:
    """-dE/dx_n of E = kb/2 sum |x_{m-1} - 2 x_m + x_{m+1}|^2 over rows and columns, from
    the second differences of `cloth_curvature` (neighbours off the line contribute 0)."""
    nodes = res * res
    u = 2 * b * nodes + row * res + col
    w = u + nodes
    zero = wp.vec3(0.0, 0.0, 0.0)
    before = zero
    after = zero
    if col > 0:
        before = curvature[u - 1]
    if col < res - 1:
        after = curvature[u + 1]
    lap = before - 2.0 * curvature[u] + after
    below = zero
    above = zero
    if row > 0:
        below = curvature[w - res]
    if row < res - 1:
        above = curvature[w + res]
    lap += below - 2.0 * curvature[w] + above
    return -kb * lap


@wp.func
def contact_velocity(vel: wp.vec3, normal: wp.vec3, mu: float) -> wp.vec3:
    """Remove the approaching normal velocity; Coulomb friction on the tangential part."""
    vn = wp.dot(vel, normal)
    out = vel
    if vn < 0.0:
        vt = vel - vn * normal
        speed = wp.length(vt)
        scale = wp.float32(0.0)
        if speed > 1.0e-9:
            scale = wp.max(0.0, 1.0 - mu * (-vn) / speed)
        out = vt * scale
    return out


@wp.func
def _integrate_node(
    x: wp.array(dtype=wp.vec3),
    v: wp.array(dtype=wp.vec3),
    f: wp.array(dtype=wp.vec3),
    curvature: wp.array(dtype=wp.vec3),
    free: wp.array(dtype=wp.float32),
    b: int,
    row: int,
    col: int,
    res: int,
    bend: float,
    clear_forces: int,
    node_mass: float,
    gravity: wp.vec3,
    dt: float,
    centre: wp.vec3,
    radius: float,
    mu: float,
    ground: float,
    thickness: float,
    x_out: wp.array(dtype=wp.vec3),
    v_out: wp.array(dtype=wp.vec3),
):
    """Symplectic Euler update of node (row, col) of environment ``b`` with bending,
    sphere and ground contact."""
    n = b * res * res + row * res + col
    force = f[n]
    if clear_forces != 0:
        f[n] = wp.vec3(0.0, 0.0, 0.0)
    if free[n] == 0.0:
        x_out[n] = x[n]
        v_out[n] = wp.vec3(0.0, 0.0, 0.0)
    else:
        if bend > 0.0:
            force += bending_force(curvature, b, row, col, res, bend)
        vel = v[n] + dt * (force / node_mass + gravity)
        pos = x[n] + dt * vel
        if radius > 0.0:
            offset = pos - centre
            dist = wp.length(offset)
            reach = radius + thickness
            if dist < reach:
                normal = offset / dist
                pos = centre + normal * reach
                vel = contact_velocity(vel, normal, mu)
        if pos[2] < ground + thickness:
            pos = wp.vec3(pos[0], pos[1], ground + thickness)
            vel = contact_velocity(vel, wp.vec3(0.0, 0.0, 1.0), mu)
        x_out[n] = pos
        v_out[n] = vel


@wp.kernel
def cloth_integrate(
    x: wp.array(dtype=wp.vec3),
    v: wp.array(dtype=wp.vec3),
    f: wp.array(dtype=wp.vec3),
    curvature: wp.array(dtype=wp.vec3),
    free: wp.array(dtype=wp.float32),
    mass: wp.array(dtype=wp.float32),
    inv_nodes: float,
    resolution: int,
    bend: float,
    clear_forces: int,
    gravity: wp.vec3,
    dt: float,
    sphere_center: wp.array(dtype=wp.vec3),
    sphere_radius: wp.array(dtype=wp.float32),
    friction: wp.array(dtype=wp.float32),
    ground: float,
    thickness: float,
    chunk: int,
    x_out: wp.array(dtype=wp.vec3),
    v_out: wp.array(dtype=wp.vec3),
):
    """Symplectic Euler substep (`_integrate_node`; ``curvature`` from `cloth_curvature`,
    read only if ``bend > 0``); launch dim (batch, threads), thread t taking the row-major
    nodes [t chunk, (t + 1) chunk). ``clear_forces = 1`` zeroes ``f`` after reading it
    (fast path; not under `wp.Tape`, whose adjoint needs ``f``)."""
    b, t = wp.tid()
    node_mass = mass[b] * inv_nodes
    start = t * chunk
    end = wp.min(start + chunk, resolution * resolution)
    for row in range(start // resolution, (end + resolution - 1) // resolution):
        first = wp.max(start - row * resolution, 0)
        for col in range(first, wp.min(end - row * resolution, resolution)):
            _integrate_node(x, v, f, curvature, free, b, row, col, resolution, bend,
                            clear_forces, node_mass, gravity, dt, sphere_center[b],
                            sphere_radius[b], friction[b], ground, thickness, x_out, v_out)


@wp.kernel(enable_backward=False)
def cloth_substep_rows(
    x: wp.array(dtype=wp.vec3),
    v: wp.array(dtype=wp.vec3),
    f: wp.array(dtype=wp.vec3),
    curvature: wp.array(dtype=wp.vec3),
    rest: wp.array(dtype=wp.float32),
    kappa: wp.array(dtype=wp.float32),
    stiffness: wp.array(dtype=wp.float32),
    damping: wp.array(dtype=wp.float32),
    wind: wp.array(dtype=wp.vec3),
    drag: float,
    free: wp.array(dtype=wp.float32),
    mass: wp.array(dtype=wp.float32),
    inv_nodes: float,
    res: int,
    bend: float,
    gravity: wp.vec3,
    dt: float,
    sphere_center: wp.array(dtype=wp.vec3),
    sphere_radius: wp.array(dtype=wp.float32),
    friction: wp.array(dtype=wp.float32),
    ground: float,
    thickness: float,
    x_out: wp.array(dtype=wp.vec3),
    v_out: wp.array(dtype=wp.vec3),
):
    """The whole substep of `cloth_spring_forces`, `cloth_drag_forces`, `cloth_curvature`
    and `cloth_integrate` (with cleared forces) in one sweep down the sheet's rows, one
    thread per environment (CPU fast path for the `cloth_topology` spring and cell order,
    whose endpoints it computes instead of loading them).

    Step ``s`` takes the row springs of row ``s``, the column springs between rows
    ``s - 1`` and ``s``, the two diagonal families of cell row ``s - 2`` and ``s - 3``, the
    drag of cell row ``s - 4``, the second differences of node row ``s - 4`` and integrates
    node row ``s - 5``. Every node so receives its force terms in exactly the order of the
    separate kernels (all row springs, all column springs, ..., then drag), so the result
    is bit-identical, while the data in use is a few rows instead of whole arrays. Forward
    only (it clears the forces the adjoint would need): no adjoint is compiled."""
    b = wp.tid()
    k = stiffness[b]
    c = damping[b]
    w = wind[b]
    node_mass = mass[b] * inv_nodes
    centre = sphere_center[b]
    radius = sphere_radius[b]
    mu = friction[b]
    line = res - 1  # springs per row, cells per cell row
    columns = res * line  # offset of the column springs
    diagonals = 2 * res * line  # offset of the first diagonal family
    cells = line * line
    base = b * res * res
    for step in range(res + 5):
        if step < res:
            for col in range(line):
                s = step * line + col
                n = base + step * res + col
                _spring_force(x, v, n, n + 1, rest[s], kappa[s], k, c, f)
        band = step - 1
        if band >= 0 and band < line:
            for col in range(res):
                s = columns + band * res + col
                n = base + band * res + col
                _spring_force(x, v, n, n + res, rest[s], kappa[s], k, c, f)
        first = step - 2
        if first >= 0 and first < line:
            for col in range(line):
                s = diagonals + first * line + col
                n = base + first * res + col
                _spring_force(x, v, n, n + res + 1, rest[s], kappa[s], k, c, f)
        second = step - 3
        if second >= 0 and second < line:
            for col in range(line):
                s = diagonals + cells + second * line + col
                n = base + second * res + col
                _spring_force(x, v, n + 1, n + res, rest[s], kappa[s], k, c, f)
        ready = step - 4
        if ready >= 0 and ready < res:
            if drag > 0.0 and ready < line:
                _cell_row_drag(x, v, base + ready * res, res, w, drag, f)
            if bend > 0.0:
                for col in range(res):
                    _node_curvature(x, b, ready, col, res, curvature)
        done = step - 5
        if done >= 0:
            for col in range(res):
                _integrate_node(x, v, f, curvature, free, b, done, col, res, bend, 1,
                                node_mass, gravity, dt, centre, radius, mu, ground, thickness,
                                x_out, v_out)


@wp.kernel
def cloth_render(
    mesh_ids: wp.array(dtype=wp.uint64),
    sphere_center: wp.array(dtype=wp.vec3),
    sphere_radius: wp.array(dtype=wp.float32),
    eye: wp.vec3,
    cam_to_world: wp.mat33,
    focal: float,
    width: int,
    height: int,
    ground: float,
    rgb: wp.array3d(dtype=wp.vec3),
    mask: wp.array3d(dtype=wp.int32),
):
    """Ray cast cloth mesh, sphere and checkered ground; launch dim (batch, rows, cols)."""
    b, row, col = wp.tid()
    half_w = 0.5 * float(width)
    half_h = 0.5 * float(height)
    ray = wp.normalize(
        cam_to_world
        * wp.vec3((float(col) + 0.5 - half_w) / focal, (float(row) + 0.5 - half_h) / focal, 1.0)
    )
    light = wp.normalize(wp.vec3(0.4, -0.5, 0.8))
    color = wp.vec3(0.75, 0.85, 0.95)
    object_id = wp.int32(0)
    t_best = wp.float32(1.0e6)
    if ray[2] < 0.0:
        t = (ground - eye[2]) / ray[2]
        if t > 0.0:
            p = eye + t * ray
            parity = (int(wp.floor(p[0] * 2.0)) + int(wp.floor(p[1] * 2.0))) % 2
            shade = 0.55 + 0.12 * float(wp.abs(parity))
            color = wp.vec3(shade, shade, shade)
            t_best = t
    radius = sphere_radius[b]
    if radius > 0.0:
        oc = eye - sphere_center[b]
        half_b = wp.dot(oc, ray)
        disc = half_b * half_b - (wp.dot(oc, oc) - radius * radius)
        if disc > 0.0:
            t = -half_b - wp.sqrt(disc)
            if t > 0.0 and t < t_best:
                normal = wp.normalize(eye + t * ray - sphere_center[b])
                lambert = 0.3 + 0.7 * wp.max(wp.dot(normal, light), 0.0)
                color = wp.vec3(0.35, 0.45, 0.8) * lambert
                t_best = t
    hit = wp.mesh_query_ray(mesh_ids[b], eye, ray, t_best)
    if hit.result:
        lambert = 0.35 + 0.65 * wp.abs(wp.dot(hit.normal, light))
        base = wp.vec3(0.95, 0.5, 0.15)
        if hit.sign < 0.0:
            base = wp.vec3(0.85, 0.3, 0.2)
        color = base * lambert
        object_id = 1
    rgb[b, row, col] = color
    mask[b, row, col] = object_id


# ----------------------------------------------------------------------------- topology


@dataclass(frozen=True)
class ClothTopology:
    """Grid mesh of a square sheet and its springs (NumPy, shared by a whole batch).

    ``uv [N,2]`` material coordinates in [0, 1]; ``rest [N,3]`` flat rest positions (m) in
    the local plane; ``faces [F,3]`` (for rendering and strain); ``quads [Q,4]`` grid cells
    ``(a, b, c, d)`` = (row, col), (row, col+1), (row+1, col), (row+1, col+1) (for drag);
    ``edges [E,2]`` unique triangle edges; ``springs [S,2]`` with ``spring_rest [S]`` (m) and
    relative stiffness ``kappa [S]``: the spring constant per unit membrane stiffness
    (see `membrane_weights`).
    """

    resolution: int
    size: float
    uv: np.ndarray
    faces: np.ndarray
    quads: np.ndarray
    edges: np.ndarray
    springs: np.ndarray
    spring_rest: np.ndarray
    kappa: np.ndarray

    @property
    def num_nodes(self) -> int:
        return self.resolution * self.resolution

    @property
    def spacing(self) -> float:
        """Rest distance between neighbouring nodes (m)."""
        return self.size / (self.resolution - 1)

    @property
    def edge_rest(self) -> np.ndarray:
        flat = self.uv * self.size
        return np.linalg.norm(flat[self.edges[:, 1]] - flat[self.edges[:, 0]], axis=1)


def membrane_weights(shear_ratio: float) -> tuple[float, float]:
    """Spring constants (stretch, shear) per unit membrane stiffness ``E`` (N/m).

    A square lattice with axis springs ``k_a`` and diagonal springs ``k_d`` has, under a
    uniform strain, the plane-stress moduli ``C11 = k_a + k_d`` and ``C12 = C66 = k_d``; its
    uniaxial (2D Young's) stiffness is ``E = C11 - C12^2 / C11``, with Poisson ratio
    ``C12 / C11``. Solving ``E = 1`` with ``k_d = shear_ratio * k_a`` gives these weights, so
    ``stiffness`` is the membrane stiffness at every resolution and shear ratio.
    """
    c11, c12 = 1.0 + shear_ratio, shear_ratio
    axis = 1.0 / (c11 - c12 * c12 / c11)
    return axis, shear_ratio * axis


@functools.lru_cache(maxsize=8)
def cloth_topology(resolution: int, size: float = 1.0, shear_ratio: float = 0.5) -> ClothTopology:
    """Regular ``resolution x resolution`` sheet with stretch and shear springs.

    Stretch springs on the sheet's border carry half weight (they bound half a cell), so a
    finite sheet has the membrane stiffness of the infinite lattice; out-of-plane bending
    is not a spring (see `SimulatorWarpCloth`).
    """
    if resolution < 3:
        raise ValidationError(f"cloth resolution = {resolution}, expected >= 3 nodes per side")
    n = resolution
    idx = np.arange(n * n).reshape(n, n)  # idx[row, col]; row along v, col along u
    u, v = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    uv = np.stack([u.ravel(), v.ravel()], axis=1)
    a, b_, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = np.concatenate(
        [np.stack([a, b_, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)]
    )
    quads = np.stack([a, b_, c, d], -1).reshape(-1, 4)
    edge_set = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edge_set, axis=1), axis=0)
    rows = np.stack([idx[:, :-1], idx[:, 1:]], -1)
    cols = np.stack([idx[:-1, :], idx[1:, :]], -1)
    border_rows = np.zeros(rows.shape[:2], bool)
    border_rows[[0, -1], :] = True
    border_cols = np.zeros(cols.shape[:2], bool)
    border_cols[:, [0, -1]] = True
    stretch = np.concatenate([rows.reshape(-1, 2), cols.reshape(-1, 2)])
    on_border = np.concatenate([border_rows.ravel(), border_cols.ravel()])
    shear = np.concatenate(
        [np.stack([a, d], -1).reshape(-1, 2), np.stack([b_, c], -1).reshape(-1, 2)]
    )
    springs = np.concatenate([stretch, shear]).astype(np.int32)
    axis_weight, shear_weight = membrane_weights(shear_ratio)
    kappa = np.concatenate(
        [np.where(on_border, 0.5, 1.0) * axis_weight, np.full(len(shear), shear_weight)]
    )
    flat = uv * size
    spring_rest = np.linalg.norm(flat[springs[:, 1]] - flat[springs[:, 0]], axis=1)
    return ClothTopology(
        resolution=n, size=size, uv=uv, faces=faces.astype(np.int32),
        quads=quads.astype(np.int32), edges=edges.astype(np.int32), springs=springs,
        spring_rest=spring_rest, kappa=kappa,
    )


# ----------------------------------------------------------------------------- simulator


@dataclass
class ClothEnvParams:
    """Per-environment physical parameters as Warp arrays (leading batch dimension B).

    ``stiffness [B]`` N/m, ``damping [B]`` N s/m, ``mass [B]`` total kg, ``wind [B]`` vec3
    m/s, ``friction [B]`` Coulomb coefficient, ``sphere_center [B]`` vec3 m,
    ``sphere_radius [B]`` m (0 disables the sphere), ``free [B,N]`` 1 for free nodes and
    0 for pinned ones.
    """

    stiffness: wp.array
    damping: wp.array
    mass: wp.array
    wind: wp.array
    friction: wp.array
    sphere_center: wp.array
    sphere_radius: wp.array
    free: wp.array

    @classmethod
    def from_numpy(
        cls, device: str, requires_grad: bool = False, **arrays: np.ndarray
    ) -> ClothEnvParams:
        """Upload NumPy arrays named like the fields; a missing name raises KeyError."""
        vec3 = {"wind", "sphere_center"}
        out = {}
        for field in dataclasses.fields(cls):
            value = np.asarray(arrays[field.name], dtype=np.float32)
            out[field.name] = wp.array(
                value, dtype=wp.vec3 if field.name in vec3 else wp.float32, device=device,
                requires_grad=requires_grad and field.name not in {"free", "sphere_radius"},
            )
        return cls(**out)

    @property
    def batch(self) -> int:
        return self.stiffness.shape[0]


@dataclass
class _ClothFrame:
    """Double-buffered state, force and curvature buffers and the captured frame graph."""

    key: tuple[int, ...]
    env: ClothEnvParams  # held so that id(env) stays unique while the graph reads it
    x: list[wp.array]
    v: list[wp.array]
    f: wp.array
    curvature: wp.array
    graph: Any


class SimulatorWarpCloth:
    """Batched cloth stepper: holds the topology on a device and launches the substeps.

    ``substep`` reads (x, v) and writes fresh (x_out, v_out) arrays, so a sequence of
    substeps over distinct arrays can be recorded by `wp.Tape` and differentiated.
    ``bending`` is the bending rigidity ``D`` (N m) of the out-of-plane bending energy
    ``D/2 (w_uu^2 + w_vv^2)`` per unit area, discretised as ``kb/2 |x_{i-1} - 2 x_i +
    x_{i+1}|^2`` along every row and column with ``kb = D / h^2`` (h the node spacing): it
    vanishes on the flat rest shape and under rigid motions and, unlike springs between
    second neighbours, has stiffness against out-of-plane displacement of a flat sheet.
    """

    def __init__(
        self,
        topology: ClothTopology,
        *,
        device: str = "cpu",
        dt: float,
        gravity: np.ndarray = GRAVITY,
        air_drag: float = 1.0,
        bending: float = 0.0,
        ground: float = 0.0,
        thickness: float = 0.01,
    ) -> None:
        start_warp()
        self.topology = topology
        self.device = device
        self.dt = float(dt)
        self.gravity = wp.vec3(*np.asarray(gravity, dtype=np.float32))
        self.air_drag = float(air_drag)
        self.bending = float(bending)
        self.bend_stiffness = bend_stiffness(topology, bending)
        self.ground = float(ground)
        self.thickness = float(thickness)
        self.springs = wp.array(topology.springs, dtype=wp.int32, device=device)
        self.spring_rest = wp.array(topology.spring_rest, dtype=wp.float32, device=device)
        self.kappa = wp.array(topology.kappa, dtype=wp.float32, device=device)
        self.quads = wp.array(topology.quads, dtype=wp.int32, device=device)
        self._frame_cache: _ClothFrame | None = None
        # The row-sweep kernel runs one thread per environment: for the CPU only, and it
        # relies on the spring and cell order of `cloth_topology`.
        grid = cloth_topology(topology.resolution)
        self.rows_kernel = wp.get_device(device).is_cpu and (
            np.array_equal(topology.springs, grid.springs)
            and np.array_equal(topology.quads, grid.quads))

    def substep(
        self, x: wp.array, v: wp.array, f: wp.array, env: ClothEnvParams,
        x_out: wp.array, v_out: wp.array, clear_forces: bool = False,
        curvature: wp.array | None = None,
    ) -> None:
        """One substep of every environment; ``f`` must be zero on entry (and is zeroed on
        exit with ``clear_forces``, the fast path that `wp.Tape` cannot differentiate; on
        the CPU it is the single row-sweep kernel `cloth_substep_rows`, bit-identical to
        the separate kernels). ``curvature [B, 2N]`` is scratch for the bending stencils (a
        fresh array when not given, as `wp.Tape` needs one per substep)."""
        batch, nodes = x.shape
        if curvature is None:
            curvature = wp.zeros((batch, 2 * nodes), dtype=wp.vec3, device=self.device,
                                 requires_grad=x.requires_grad)
        # Node arrays flattened to [B*N] (views, gradients included).
        xf, vf, ff, cf = x.flatten(), v.flatten(), f.flatten(), curvature.flatten()
        xo, vo, free = x_out.flatten(), v_out.flatten(), env.free.flatten()
        if clear_forces and self.rows_kernel:
            wp.launch(
                cloth_substep_rows, dim=batch,
                inputs=[xf, vf, ff, cf, self.spring_rest, self.kappa, env.stiffness,
                        env.damping, env.wind, self.air_drag, free, env.mass, 1.0 / nodes,
                        self.topology.resolution, self.bend_stiffness, self.gravity, self.dt,
                        env.sphere_center, env.sphere_radius, env.friction, self.ground,
                        self.thickness],
                outputs=[xo, vo], device=self.device,
            )
            return
        chunk = chunk_size(self.device, self.springs.shape[0])
        wp.launch(
            cloth_spring_forces, dim=(batch, chunk_count(self.springs.shape[0], chunk)),
            inputs=[xf, vf, self.springs, self.spring_rest, self.kappa, env.stiffness,
                    env.damping, nodes, chunk], outputs=[ff], device=self.device,
        )
        if self.air_drag > 0.0:
            chunk = chunk_size(self.device, self.quads.shape[0])
            wp.launch(
                cloth_drag_forces, dim=(batch, chunk_count(self.quads.shape[0], chunk)),
                inputs=[xf, vf, self.quads, env.wind, self.air_drag, nodes, chunk],
                outputs=[ff], device=self.device,
            )
        chunk = chunk_size(self.device, nodes)
        threads = chunk_count(nodes, chunk)
        if self.bend_stiffness > 0.0:
            wp.launch(cloth_curvature, dim=(batch, threads),
                      inputs=[xf, self.topology.resolution, chunk], outputs=[cf],
                      device=self.device)
        wp.launch(
            cloth_integrate, dim=(batch, threads),
            inputs=[xf, vf, ff, cf, free, env.mass, 1.0 / nodes, self.topology.resolution,
                    self.bend_stiffness, int(clear_forces), self.gravity, self.dt,
                    env.sphere_center, env.sphere_radius, env.friction, self.ground,
                    self.thickness, chunk],
            outputs=[xo, vo], device=self.device,
        )

    def frame_graph(
        self, x: list[wp.array], v: list[wp.array], f: wp.array, curvature: wp.array,
        env: ClothEnvParams, substeps: int,
    ) -> Any:
        """Capture ``substeps`` substeps from ``(x[0], v[0])`` back into ``(x[0], v[0])`` as a
        Warp graph (CPU and CUDA): replaying it runs exactly the same kernels on the same
        buffers without Python launch overhead. Capturing records the launches without
        running them (kernels are loaded on the way). The caller keeps the buffers alive."""
        with wp.ScopedCapture(device=self.device) as capture:
            cur = 0
            for _ in range(substeps):
                self.substep(x[cur], v[cur], f, env, x[1 - cur], v[1 - cur], clear_forces=True,
                             curvature=curvature)
                cur = 1 - cur
            if cur:
                wp.copy(x[0], x[1])
                wp.copy(v[0], v[1])
        return capture.graph

    def _frame(self, batch: int, env: ClothEnvParams, substeps: int) -> _ClothFrame:
        """The state buffers and captured frame graph for this batch, environment and
        substep count, captured once and reused by later rollouts (the graph reads ``env``'s
        arrays, so another `ClothEnvParams` object, or one given other arrays, is captured
        anew; new values assigned into the same arrays are simply read)."""
        key = (batch, substeps, id(env),
               *(getattr(env, field.name).ptr for field in dataclasses.fields(env)))
        cached = self._frame_cache
        if cached is None or cached.key != key:
            nodes = self.topology.num_nodes
            x = [wp.zeros((batch, nodes), dtype=wp.vec3, device=self.device) for _ in range(2)]
            v = [wp.zeros((batch, nodes), dtype=wp.vec3, device=self.device) for _ in range(2)]
            f = wp.zeros_like(x[0])
            curvature = wp.zeros((batch, 2 * nodes), dtype=wp.vec3, device=self.device)
            cached = _ClothFrame(key=key, env=env, x=x, v=v, f=f, curvature=curvature,
                                 graph=self.frame_graph(x, v, f, curvature, env, substeps))
            self._frame_cache = cached
        return cached

    def rollout(
        self, x0: np.ndarray, v0: np.ndarray, env: ClothEnvParams, num_frames: int,
        substeps: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities [B,T,N,3] at every stored frame.

        Every frame replays one captured Warp graph of the frame's substeps (bit-identical
        to launching the kernels one by one), captured once per batch size, environment
        and substep count and reused by later calls."""
        batch, nodes = x0.shape[:2]
        frame_state = self._frame(batch, env, substeps)
        x, v = frame_state.x[0], frame_state.v[0]
        x.assign(np.ascontiguousarray(x0, np.float32))
        v.assign(np.ascontiguousarray(v0, np.float32))
        frame_state.f.zero_()  # zero between substeps; cleared here after a failed call
        xs = np.empty((batch, num_frames, nodes, 3), np.float32)
        vs = np.empty_like(xs)
        xs[:, 0], vs[:, 0] = x0, v0
        for frame in range(1, num_frames):
            wp.capture_launch(frame_state.graph)
            xs[:, frame] = x.numpy()
            vs[:, frame] = v.numpy()
        return xs, vs

    def render(
        self, xs: np.ndarray, env: ClothEnvParams, camera: Camera
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ray-cast frames uint8 [B,T,H,W,3] and masks [B,T,H,W] (1 = cloth) of positions."""
        batch, frames, nodes = xs.shape[:3]
        size, height = camera.width, camera.height
        indices = wp.array(self.topology.faces.ravel(), dtype=wp.int32, device=self.device)
        points = [wp.array(xs[b, 0], dtype=wp.vec3, device=self.device) for b in range(batch)]
        meshes = [wp.Mesh(points=p, indices=indices) for p in points]
        ids = wp.array([m.id for m in meshes], dtype=wp.uint64, device=self.device)
        rotation = np.asarray(camera.extrinsics)[:3, :3]
        eye = -rotation.T @ np.asarray(camera.extrinsics)[:3, 3]
        rgb = wp.zeros((batch, height, size), dtype=wp.vec3, device=self.device)
        mask = wp.zeros((batch, height, size), dtype=wp.int32, device=self.device)
        out_rgb = np.empty((batch, frames, height, size, 3), np.uint8)
        out_mask = np.empty((batch, frames, height, size), np.int32)
        for t in range(frames):
            for b in range(batch):
                points[b].assign(xs[b, t])
                meshes[b].refit()
            wp.launch(
                cloth_render, dim=(batch, height, size),
                inputs=[ids, env.sphere_center, env.sphere_radius, wp.vec3(*eye),
                        wp.mat33(*rotation.T.ravel()), float(camera.intrinsics[0, 0]), size,
                        height, self.ground],
                outputs=[rgb, mask], device=self.device,
            )
            out_rgb[:, t] = np.clip(rgb.numpy() * 255.0 + 0.5, 0, 255).astype(np.uint8)
            out_mask[:, t] = mask.numpy()
        return out_rgb, out_mask


def cloth_substep_numpy(
    x: np.ndarray, v: np.ndarray, topology: ClothTopology, *, stiffness: np.ndarray,
    damping: np.ndarray, mass: np.ndarray, wind: np.ndarray, friction: np.ndarray,
    sphere_center: np.ndarray, sphere_radius: np.ndarray, free: np.ndarray, dt: float,
    gravity: np.ndarray = GRAVITY, air_drag: float = 1.0, bending: float = 0.0,
    ground: float = 0.0, thickness: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """The same symplectic-Euler substep as the Warp kernels, vectorised in NumPy.

    ``x, v [B,N,3]``; per-environment parameters ``[B]`` (``wind``, ``sphere_center``
    ``[B,3]``; ``free [B,N]``). Keeps the dtype of ``x`` when every input shares it. Used by
    the speed benchmark and a consistency test.
    """
    batch, nodes = x.shape[:2]
    springs, quads = topology.springs, topology.quads
    i, j = springs[:, 0], springs[:, 1]
    d = x[:, j] - x[:, i]
    length = np.linalg.norm(d, axis=-1, keepdims=True)
    direction = d / length
    rel = np.sum((v[:, j] - v[:, i]) * direction, axis=-1, keepdims=True)
    kappa = topology.kappa[None, :, None]
    magnitude = kappa * (stiffness[:, None, None] * (length - topology.spring_rest[None, :, None])
                         + damping[:, None, None] * rel)
    force = magnitude * direction
    offsets = (np.arange(batch) * nodes)[:, None]
    f = np.zeros((batch * nodes, 3))
    flat_i, flat_j = (offsets + i).ravel(), (offsets + j).ravel()
    force = force.reshape(-1, 3)
    for axis in range(3):
        f[:, axis] += np.bincount(flat_i, force[:, axis], minlength=batch * nodes)
        f[:, axis] -= np.bincount(flat_j, force[:, axis], minlength=batch * nodes)
    if air_drag > 0.0:
        a, b, c, e = quads[:, 0], quads[:, 1], quads[:, 2], quads[:, 3]
        cross = np.cross(x[:, e] - x[:, a], x[:, c] - x[:, b])
        rel_v = wind[:, None, :] - 0.25 * (v[:, a] + v[:, b] + v[:, c] + v[:, e])
        scale = air_drag * np.sum(cross * rel_v, -1) / (8.0 * np.linalg.norm(cross, axis=-1))
        drag = (cross * scale[..., None]).reshape(-1, 3)
        for corner in (a, b, c, e):
            flat = (offsets + corner).ravel()
            for axis in range(3):
                f[:, axis] += np.bincount(flat, drag[:, axis], minlength=batch * nodes)
    f += bending_forces_numpy(x, topology, bend_stiffness(topology, bending)).reshape(-1, 3)
    f = f.reshape(batch, nodes, 3).astype(x.dtype)  # bincount sums in float64
    node_mass = (mass / nodes)[:, None, None]
    vel = v + dt * (f / node_mass + gravity)
    pos = x + dt * vel
    radius = sphere_radius[:, None]
    offset = pos - sphere_center[:, None, :]
    dist = np.linalg.norm(offset, axis=-1)
    hit = (radius > 0) & (dist < radius + thickness)
    normal = offset / np.maximum(dist, 1e-12)[..., None]
    pos = np.where(hit[..., None], sphere_center[:, None] + normal * (radius + thickness)[
        ..., None], pos)
    vel = np.where(hit[..., None], _contact_velocity_numpy(vel, normal, friction), vel)
    below = pos[..., 2] < ground + thickness
    pos[..., 2] = np.where(below, ground + thickness, pos[..., 2])
    up = np.broadcast_to(np.array([0.0, 0.0, 1.0], dtype=vel.dtype), vel.shape)
    vel = np.where(below[..., None], _contact_velocity_numpy(vel, up, friction), vel)
    pinned = free[..., None] == 0
    return np.where(pinned, x, pos), np.where(pinned, 0.0, vel)


def bend_stiffness(topology: ClothTopology, bending: float) -> float:
    """Per-stencil bending constant ``kb = D / h^2`` (N/m) of a bending rigidity ``D`` (N m)."""
    return float(bending) / topology.spacing**2


def _grid_curvature(x: np.ndarray, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Second differences along columns and rows of ``x [...,N,3]`` on the grid, zero-padded
    to [...,res,res,3] (zero where the stencil leaves the sheet)."""
    grid = x.reshape(*x.shape[:-2], res, res, 3)
    along_u = np.zeros_like(grid)
    along_v = np.zeros_like(grid)
    along_u[..., :, 1:-1, :] = (grid[..., :, :-2, :] - 2 * grid[..., :, 1:-1, :]
                                + grid[..., :, 2:, :])
    along_v[..., 1:-1, :, :] = (grid[..., :-2, :, :] - 2 * grid[..., 1:-1, :, :]
                                + grid[..., 2:, :, :])

    return along_u, along_v


def bending_forces_numpy(x: np.ndarray, topology: ClothTopology, kb: float) -> np.ndarray:
    """Bending forces ``-dE/dx`` [...,N,3] of ``E = kb/2 sum |second difference|^2``."""
    res = topology.resolution
    along_u, along_v = _grid_curvature(x, res)
    lap = np.zeros_like(along_u)
    lap[..., :, 1:, :] += along_u[..., :, :-1, :]
    lap[..., :, :-1, :] += along_u[..., :, 1:, :]
    lap -= 2 * along_u
    lap[..., 1:, :, :] += along_v[..., :-1, :, :]
    lap[..., :-1, :, :] += along_v[..., 1:, :, :]
    lap -= 2 * along_v
    return (-kb * lap).reshape(x.shape)


def bending_energy(x: np.ndarray, topology: ClothTopology, kb: float) -> np.ndarray:
    """Bending energy (J) ``kb/2 sum |second difference|^2`` per leading index of x [...,N,3]."""
    along_u, along_v = _grid_curvature(x, topology.resolution)
    axes = (-3, -2, -1)
    return 0.5 * kb * (np.sum(along_u**2, axis=axes) + np.sum(along_v**2, axis=axes))


def _contact_velocity_numpy(vel: np.ndarray, normal: np.ndarray, mu: np.ndarray) -> np.ndarray:
    vn = np.sum(vel * normal, -1, keepdims=True)
    vt = vel - vn * normal
    speed = np.linalg.norm(vt, axis=-1, keepdims=True)
    scale = np.maximum(0.0, 1.0 - mu[:, None, None] * (-vn) / np.maximum(speed, 1e-9))
    scale = np.where(speed > 1e-9, scale, 0.0)
    return np.where(vn < 0, vt * scale, vel)


# ----------------------------------------------------------------------------- torch


def _tile(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Per-scene values [E, ...] broadcast to the batch, as a contiguous float32 copy."""
    return np.ascontiguousarray(np.broadcast_to(values, shape), dtype=np.float32)


@functools.cache
def _cloth_autograd_function() -> Any:
    """The `torch.autograd.Function` over the Warp substeps (built once, torch imported late)."""
    import torch

    class _ClothStep(torch.autograd.Function):
        @staticmethod
        def forward(ctx, stepper, x, v, stiffness, damping, mass, wind):  # type: ignore[override]
            sim: SimulatorWarpCloth = stepper.simulator
            device = sim.device

            def to_wp(t: Any, dtype: Any) -> wp.array:
                return torch_to_warp(t, dtype, device, requires_grad=True)

            batch, nodes = x.shape[:2]
            xw, vw = to_wp(x, wp.vec3), to_wp(v, wp.vec3)
            env = ClothEnvParams(
                stiffness=to_wp(stiffness, wp.float32), damping=to_wp(damping, wp.float32),
                mass=to_wp(mass, wp.float32), wind=to_wp(wind, wp.vec3),
                friction=wp.array(_tile(stepper.friction, (batch,)), device=device),
                sphere_center=wp.array(_tile(stepper.sphere_center, (batch, 3)),
                                       dtype=wp.vec3, device=device),
                sphere_radius=wp.array(_tile(stepper.sphere_radius, (batch,)), device=device),
                free=wp.array(_tile(stepper.free, (batch, nodes)), device=device),
            )
            tape = wp.Tape()
            xs, vs = [xw], [vw]
            with tape:
                for _ in range(stepper.substeps):
                    f = wp.zeros_like(xw)
                    x_next, v_next = wp.empty_like(xw), wp.empty_like(vw)
                    sim.substep(xs[-1], vs[-1], f, env, x_next, v_next)
                    xs.append(x_next)
                    vs.append(v_next)
            ctx.tape, ctx.env, ctx.inputs, ctx.outputs = tape, env, (xw, vw), (xs[-1], vs[-1])
            ctx.like = (x, v, stiffness, damping, mass, wind)
            return warp_to_torch(xs[-1].numpy(), x), warp_to_torch(vs[-1].numpy(), v)

        @staticmethod
        def backward(ctx, grad_x, grad_v):  # type: ignore[override]
            x_out, v_out = ctx.outputs
            ctx.tape.backward(grads={
                x_out: torch_to_warp(grad_x, x_out.dtype, x_out.device),
                v_out: torch_to_warp(grad_v, v_out.dtype, v_out.device),
            })
            env = ctx.env
            wp_inputs = (*ctx.inputs, env.stiffness, env.damping, env.mass, env.wind)
            grads = [warp_to_torch(a.grad.numpy(), like)
                     for a, like in zip(wp_inputs, ctx.like, strict=True)]
            ctx.tape.zero()
            return (None, *grads)

    return _ClothStep


class ClothTorchStep:
    """Differentiable one-frame cloth step for torch: ``(x, v) -> (x', v')`` over Warp.

    Runs ``substeps`` symplectic-Euler substeps of length ``dt / substeps`` under `wp.Tape`;
    the backward pass replays the tape, giving exact gradients of the discrete map with
    respect to the state and to the physical parameters. Build it from a rollout
    (`from_rollout`) or from a rollout's ``static`` dict, then call::

        step = ClothTorchStep.from_rollout(rollout)
        x1, v1 = step(x, v, stiffness, damping, mass, wind)

    Shapes: ``x, v [B,N,3]`` (m, m/s); ``stiffness, damping, mass [B]`` (N/m, N s/m, kg
    total cloth mass); ``wind [B,3]`` (m/s). Any float dtype and torch device; outputs match
    the inputs. Computation is float32 on the stepper's Warp device (``cpu`` or ``cuda:0``).
    Pins, sphere and friction come from the static dict(s): one scene for the whole batch
    (`from_rollout`) or one per batch element (`from_rollouts`).
    """

    SHARED: ClassVar[tuple[str, ...]] = (
        "resolution", "size", "shear_ratio", "bending_rigidity", "gravity", "air_drag",
        "ground_height", "thickness",
    )

    def __init__(
        self, static: dict[str, Any] | Sequence[dict[str, Any]], *, dt: float, substeps: int,
        device: str = "cpu",
    ) -> None:
        statics = [static] if isinstance(static, dict) else list(static)
        if not statics:
            raise ValidationError("cloth step: no static dict given")
        first = statics[0]
        for index, other in enumerate(statics[1:], start=1):
            for key in self.SHARED:
                if not np.array_equal(np.asarray(other[key]), np.asarray(first[key])):
                    raise ValidationError(
                        f"cloth step: static['{key}'] of batch element {index} differs from "
                        "element 0; one stepper needs one mesh, gravity, drag and offset")
        topo = cloth_topology(int(first["resolution"]), float(first["size"]),
                              float(first["shear_ratio"]))
        self.substeps = int(substeps)
        self.simulator = SimulatorWarpCloth(
            topo, device=warp_device_of(device), dt=dt / substeps,
            gravity=np.asarray(first["gravity"]), air_drag=float(first["air_drag"]),
            bending=float(first["bending_rigidity"]),
            ground=float(first["ground_height"]), thickness=float(first["thickness"]),
        )
        # Per-environment scene: [E, ...] with E = 1 (broadcast) or the batch size.
        self.free = np.stack([~np.asarray(s["pinned"], dtype=bool) for s in statics]).astype(
            np.float32)
        self.friction = np.array([float(s["friction"]) for s in statics], np.float32)
        self.sphere_center = np.stack([np.asarray(s["sphere_center"], np.float32)
                                       for s in statics])
        self.sphere_radius = np.array([float(s["sphere_radius"]) for s in statics], np.float32)

    @classmethod
    def from_rollout(cls, rollout: Rollout, device: str = "cpu") -> ClothTorchStep:
        """Stepper for batches that share this rollout's pins, sphere and friction."""
        return cls(rollout.static, dt=rollout.dt, substeps=int(rollout.meta["substeps"]),
                   device=device)

    @classmethod
    def from_rollouts(cls, rollouts: Sequence[Rollout], device: str = "cpu") -> ClothTorchStep:
        """Stepper for a batch whose element ``b`` has the scene of ``rollouts[b]``."""
        dts = {(r.dt, int(r.meta["substeps"])) for r in rollouts}
        if len(dts) != 1:
            raise ValidationError(f"cloth step: rollouts disagree on (dt, substeps): {dts}")
        dt, substeps = dts.pop()
        return cls([r.static for r in rollouts], dt=dt, substeps=substeps, device=device)

    def __call__(self, x: Any, v: Any, stiffness: Any, damping: Any, mass: Any,
                 wind: Any) -> tuple[Any, Any]:
        if x.ndim != 3 or x.shape[-1] != 3 or v.shape != x.shape:
            raise ValidationError(f"cloth step: x {list(x.shape)} and v {list(v.shape)} must "
                                  "both be [B,N,3]")
        if x.shape[1] != self.simulator.topology.num_nodes:
            raise ValidationError(f"cloth step: x has {x.shape[1]} nodes, the mesh has "
                                  f"{self.simulator.topology.num_nodes}")
        batch = x.shape[0]
        if len(self.free) not in (1, batch):
            raise ValidationError(f"cloth step: batch of {batch} states for a stepper built "
                                  f"from {len(self.free)} scenes")
        for name, value, shape in (("stiffness", stiffness, (batch,)),
                                   ("damping", damping, (batch,)), ("mass", mass, (batch,)),
                                   ("wind", wind, (batch, 3))):
            if tuple(value.shape) != shape:
                raise ValidationError(f"cloth step: {name} has shape {list(value.shape)}, "
                                      f"expected {list(shape)}")
        return _cloth_autograd_function().apply(self, x, v, stiffness, damping, mass, wind)


def cloth_step_torch(
    x: Any, v: Any, stiffness: Any, damping: Any, mass: Any, wind: Any, *,
    static: dict[str, Any], dt: float, substeps: int, device: str = "cpu",
) -> tuple[Any, Any]:
    """Functional form of `ClothTorchStep` (builds the stepper; cache it in loops)."""
    return ClothTorchStep(static, dt=dt, substeps=substeps, device=device)(
        x, v, stiffness, damping, mass, wind
    )


# ----------------------------------------------------------------------------- scenarios


@dataclass(frozen=True, kw_only=True)
class ClothConfig(WarpConfig):
    """Cloth settings: mesh resolution, spring ratios, drag, contact offset, default friction.

    80 substeps of 1/2400 s keep the explicit spring stiffness stable over the train and OOD
    ranges (omega_max dt < 1); the reference discretization halves the substep.
    """

    num_frames: int = 48
    substeps: int = 80
    resolution: int = 12
    size: float = 1.0  # m, side of the square sheet
    shear_ratio: float = 0.5  # diagonal / axis spring constant (sets Poisson's ratio)
    bending: float = 3e-3  # N m, bending rigidity D: keeps the flat hanging sheet stable
    air_drag: float = 1.0  # N s / m^3
    thickness: float = 0.01  # m, collision offset
    friction: float = 0.4  # Coulomb coefficient where the scenario has no friction parameter

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.resolution < 3:
            raise ValidationError(f"resolution = {self.resolution}, expected >= 3")
        for name in ("size", "thickness"):
            if not getattr(self, name) > 0:
                raise ValidationError(f"{name} = {getattr(self, name)}, expected > 0 m")
        for name in ("shear_ratio", "bending", "air_drag", "friction"):
            if getattr(self, name) < 0:
                raise ValidationError(f"{name} = {getattr(self, name)}, expected >= 0")


COMMON_PARAMS = (
    Param("stiffness", "N/m", 10.0, 5000.0,
          "membrane (2D Young's) stiffness: uniaxial tension per unit width over strain"),
    Param("mass", "kg", 0.01, 5.0, "total mass of the sheet"),
    Param("damping", "N s/m", 0.0, 0.5,
          "spring damping per unit membrane stiffness weight (c_s = damping * kappa_s)"),
)
COMMON_TRAIN = {
    "stiffness": Uniform(300.0, 800.0),
    "mass": Uniform(0.2, 0.4),
    "damping": Uniform(0.02, 0.08),
}


class ScenarioWarpCloth(Scenario):
    """Base of cloth scenarios: subclasses place the sheet, pins, sphere, wind and camera."""

    simulator: ClassVar[str] = "warp"
    # 3 (above the base 2): membrane stiffness = `stiffness`, true bending, symmetric
    # drag, recorded wind.
    version: ClassVar[str] = "3"
    config_type: ClassVar[type[ScenarioConfig]] = ClothConfig
    config: ClothConfig
    state_names: ClassVar[tuple[str, ...]] = ("x", "v")
    reference_overrides: ClassVar[dict[str, Any]] = {"substeps": 160}
    # Observation: the mesh, its pins and the colliders are seen; the material (masses,
    # spring constants, friction, drag), the wind and gravity must be inferred.
    given_static: ClassVar[frozenset[str]] = frozenset({
        "faces", "edges", "rest_length", "pinned", "springs", "spring_rest_length",
        "sphere_center", "sphere_radius", "ground_height", "thickness", "resolution", "size"})
    latent_static: ClassVar[frozenset[str]] = frozenset({
        "mass", "spring_stiffness", "spring_damping", "shear_ratio", "bending_rigidity",
        "bend_stiffness", "friction",
        "air_drag", "wind", "gravity"})
    camera_eye: ClassVar[tuple[float, float, float]]
    camera_target: ClassVar[tuple[float, float, float]]

    @abc.abstractmethod
    def place(self, params: dict[str, float], seed: int, topo: ClothTopology) -> tuple[
        np.ndarray, np.ndarray
    ]:
        """Initial positions and velocities [N,3] of one rollout."""

    def pinned(self, params: dict[str, float], topo: ClothTopology) -> np.ndarray:
        """Pinned nodes [N] bool (default: none)."""
        return np.zeros(topo.num_nodes, dtype=bool)

    def sphere(self, params: dict[str, float], seed: int) -> tuple[np.ndarray, float]:
        """Sphere centre [3] (m) and radius (m); radius 0 means no sphere."""
        return np.array([0.0, 0.0, -10.0]), 0.0

    def wind(self, params: dict[str, float], seed: int) -> np.ndarray:
        """Wind velocity [3] (m/s)."""
        return np.zeros(3)

    def camera(self) -> Camera:
        return look_at_camera(np.array(self.camera_eye), np.array(self.camera_target),
                              np.array([0.0, 0.0, 1.0]), 50.0, self.config.frame_width,
                              self.config.frame_height)

    def topology(self) -> ClothTopology:
        cfg = self.config
        return cloth_topology(cfg.resolution, cfg.size, cfg.shear_ratio)

    def simulate(
        self, params: Sequence[dict[str, float]], seeds: Sequence[int], split: str
    ) -> list[Rollout]:
        check_batch(params, seeds, self.name)
        cfg = self.config
        params = [self.param_space.validate(p, where=f"{self.name}: ") for p in params]
        device = warp_device_of(cfg.device)
        topo = self.topology()
        placed = [self.place(p, s, topo) for p, s in zip(params, seeds, strict=True)]
        x0 = np.stack([a for a, _ in placed]).astype(np.float32)
        v0 = np.stack([b for _, b in placed]).astype(np.float32)
        spheres = [self.sphere(p, s) for p, s in zip(params, seeds, strict=True)]
        pinned = np.stack([self.pinned(p, topo) for p in params])
        winds = np.stack([self.wind(p, s) for p, s in zip(params, seeds, strict=True)])
        friction = np.array([p.get("friction", cfg.friction) for p in params])
        env = ClothEnvParams.from_numpy(
            device,
            stiffness=np.array([p["stiffness"] for p in params]),
            damping=np.array([p["damping"] for p in params]),
            mass=np.array([p["mass"] for p in params]),
            wind=winds, friction=friction,
            sphere_center=np.stack([c for c, _ in spheres]),
            sphere_radius=np.array([r for _, r in spheres]),
            free=(~pinned).astype(np.float32),
        )
        sim = SimulatorWarpCloth(topo, device=device, dt=cfg.dt / cfg.substeps,
                                 air_drag=cfg.air_drag, bending=cfg.bending,
                                 thickness=cfg.thickness)
        xs, vs = sim.rollout(x0, v0, env, cfg.num_frames, cfg.substeps)
        frames = masks = None
        camera = self.camera()
        if cfg.render:
            frames, masks = sim.render(xs, env, camera)
        rollouts = []
        for b, (p, seed) in enumerate(zip(params, seeds, strict=True)):
            if not (np.isfinite(xs[b]).all() and np.isfinite(vs[b]).all()):
                raise SimulationError(f"{self.name} seed {seed}: cloth state became NaN or Inf")
            static = {
                "faces": topo.faces, "edges": topo.edges, "rest_length": topo.edge_rest,
                "mass": np.full(topo.num_nodes, p["mass"] / topo.num_nodes),
                "pinned": pinned[b], "sphere_center": spheres[b][0].astype(np.float64),
                "sphere_radius": np.float64(spheres[b][1]), "gravity": GRAVITY.copy(),
                "ground_height": np.float64(0.0), "springs": topo.springs,
                "spring_rest_length": topo.spring_rest,
                "spring_stiffness": p["stiffness"] * topo.kappa,
                "spring_damping": p["damping"] * topo.kappa, "wind": winds[b].astype(np.float64),
                "friction": np.float64(friction[b]), "air_drag": np.float64(cfg.air_drag),
                "thickness": np.float64(cfg.thickness), "resolution": np.int64(cfg.resolution),
                "size": np.float64(cfg.size), "shear_ratio": np.float64(cfg.shear_ratio),
                "bending_rigidity": np.float64(cfg.bending),
                "bend_stiffness": np.float64(sim.bend_stiffness),
            }
            x64, v64 = xs[b].astype(np.float64), vs[b].astype(np.float64)
            rollouts.append(Rollout(
                scenario=self.name, split=split, seed=int(seed), params=dict(p), dt=cfg.dt,
                states={"x": x64, "v": v64}, static=static,
                frames=None if frames is None else frames[b],
                masks=None if masks is None else masks[b], camera=camera,
                meta=warp_meta("semi-implicit Euler mass-spring", cfg.substeps, device,
                               energy=cloth_energy(x64, v64, static).tolist()),
            ))
        return rollouts

    def check(self, rollout: Rollout) -> str | None:
        """Blow-up: edge strain above 50 %, speeds above 50 m/s or energy explosion."""
        strain = edge_strain(rollout.states["x"], rollout.static)
        if np.abs(strain).max() > 0.5:
            return f"edge strain reached {np.abs(strain).max():.2f} (blow-up)"
        speed = np.linalg.norm(rollout.states["v"], axis=-1).max()
        if speed > 50.0:
            return f"node speed reached {speed:.1f} m/s (blow-up)"
        if "energy_nonincreasing" in self.laws:
            energy = np.asarray(rollout.meta["energy"])
            scale = max(abs(energy[0]), 1.0)
            if energy.max() > energy[0] + 0.05 * scale:
                return f"energy grew from {energy[0]:.3f} J to {energy.max():.3f} J"
        return None


def edge_strain(x: np.ndarray, static: dict[str, Any]) -> np.ndarray:
    """Engineering strain (|e| - L) / L of every mesh edge, [T,E]."""
    edges = np.asarray(static["edges"])
    length = np.linalg.norm(x[:, edges[:, 1]] - x[:, edges[:, 0]], axis=-1)
    return length / np.asarray(static["rest_length"]) - 1.0


def cloth_energy(x: np.ndarray, v: np.ndarray, static: dict[str, Any]) -> np.ndarray:
    """Kinetic + gravitational + spring + bending energy (J) per frame, [T]."""
    mass = np.asarray(static["mass"]) * ~np.asarray(static["pinned"], dtype=bool)
    kinetic = 0.5 * np.einsum("n,tnc->t", mass, v * v)
    potential = -np.einsum("n,tnc,c->t", np.asarray(static["mass"]), x, static["gravity"])
    springs = np.asarray(static["springs"])
    length = np.linalg.norm(x[:, springs[:, 1]] - x[:, springs[:, 0]], axis=-1)
    elastic = 0.5 * np.sum(static["spring_stiffness"] * (length - static["spring_rest_length"])
                           ** 2, axis=-1)
    bending = 0.0
    if "bend_stiffness" in static:
        topo = cloth_topology(int(static["resolution"]), float(static["size"]),
                              float(static["shear_ratio"]))
        bending = bending_energy(x, topo, float(static["bend_stiffness"]))
    return kinetic + potential + elastic + bending


def pin_layout(params: dict[str, float]) -> int:
    """The integer pin layout of ``params`` (0, 1 or 2); fractional values are rejected."""
    value = params["pin_layout"]
    if value != round(value):
        raise ValidationError(f"parameter 'pin_layout' = {value:g}, expected 0, 1 or 2")
    return int(round(value))


def _pin_mask(layout: int, topo: ClothTopology, edge_v: float) -> np.ndarray:
    """Nodes on the edge ``v = edge_v``: 0 two corners, 1 whole edge, 2 one corner."""
    uv = topo.uv
    on_edge = np.isclose(uv[:, 1], edge_v)
    corner_a = on_edge & np.isclose(uv[:, 0], 0.0)
    corner_b = on_edge & np.isclose(uv[:, 0], 1.0)
    if layout == 0:
        return corner_a | corner_b
    if layout == 1:
        return on_edge
    if layout == 2:
        return corner_a
    raise ValidationError(f"pin_layout = {layout}, expected 0 (corners), 1 (edge) or 2 (corner)")


PIN_PARAM = Param("pin_layout", "1", 0.0, 2.0,
                  "0: two corners pinned, 1: whole edge pinned, 2: one corner pinned")


class ScenarioClothHanging(ScenarioWarpCloth):
    """Horizontal sheet released at rest, pinned on one edge: swings down and comes to rest."""

    name: ClassVar[str] = "cloth/hanging"
    take_perturbation: ClassVar[dict[str, float]] = {
        "stiffness": 5.0, "mass": 0.002, "damping": 0.001}
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        (*COMMON_PARAMS, PIN_PARAM),
        {**COMMON_TRAIN, "pin_layout": Choice((0.0, 1.0))},
        # Stiffer and heavier sheets, hung by a single corner.
        {"stiffness": Uniform(1100.0, 1500.0), "mass": Uniform(0.5, 0.7),
         "pin_layout": Choice((2.0,))},
    )
    laws: ClassVar[frozenset[str]] = frozenset(
        {"inextensible", "energy_nonincreasing", "non_penetration", "object_permanence"}
    )
    given_params: ClassVar[frozenset[str]] = frozenset({"pin_layout"})  # pins are seen
    camera_eye = (1.7, -1.7, 1.7)
    camera_target = (0.0, 0.1, 0.8)
    height: ClassVar[float] = 1.3

    def place(self, params: dict[str, float], seed: int, topo: ClothTopology) -> tuple[
        np.ndarray, np.ndarray
    ]:
        rng = np.random.default_rng(seed)
        uv = topo.uv
        x = np.stack([(uv[:, 0] - 0.5) * topo.size, (uv[:, 1] - 0.5) * topo.size,
                      np.full(len(uv), self.height)], axis=1)
        tilt = rng.uniform(-0.15, 0.15)  # rad, small random roll about the pinned edge's axis
        x[:, 2] += np.sin(tilt) * (uv[:, 0] - 0.5) * topo.size
        v = np.zeros_like(x)
        v[:, 2] = rng.normal(0.0, 0.05, len(uv)) * (1.0 - uv[:, 1])
        pinned = self.pinned(params, topo)
        v[pinned] = 0.0
        return x, v

    def pinned(self, params: dict[str, float], topo: ClothTopology) -> np.ndarray:
        return _pin_mask(pin_layout(params), topo, 1.0)


class ScenarioClothDrape(ScenarioWarpCloth):
    """Free sheet dropped onto a sphere resting on the ground: drapes with friction."""

    name: ClassVar[str] = "cloth/drape"
    take_perturbation: ClassVar[dict[str, float]] = {
        "stiffness": 5.0, "mass": 0.002, "sphere_radius": 0.001}
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        (*COMMON_PARAMS, Param("friction", "1", 0.0, 2.0, "Coulomb friction coefficient"),
         Param("sphere_radius", "m", 0.05, 1.0, "radius of the sphere")),
        {**COMMON_TRAIN, "friction": Uniform(0.2, 0.6), "sphere_radius": Uniform(0.25, 0.32)},
        # Larger sphere, softer and lighter sheet.
        {"sphere_radius": Uniform(0.36, 0.42), "stiffness": Uniform(150.0, 250.0),
         "mass": Uniform(0.1, 0.16)},
    )
    laws: ClassVar[frozenset[str]] = frozenset(
        {"inextensible", "energy_nonincreasing", "non_penetration", "object_permanence"}
    )
    given_params: ClassVar[frozenset[str]] = frozenset({"sphere_radius"})  # the sphere is seen
    camera_eye = (1.4, -1.4, 1.2)
    camera_target = (0.0, 0.0, 0.35)

    def sphere(self, params: dict[str, float], seed: int) -> tuple[np.ndarray, float]:
        rng = np.random.default_rng([seed, 1])
        radius = params["sphere_radius"]
        return np.array([*rng.uniform(-0.1, 0.1, 2), radius]), radius

    def place(self, params: dict[str, float], seed: int, topo: ClothTopology) -> tuple[
        np.ndarray, np.ndarray
    ]:
        rng = np.random.default_rng(seed)
        uv = topo.uv
        angle = rng.uniform(-math.pi / 8, math.pi / 8)  # random yaw of the sheet
        local = (uv - 0.5) * topo.size
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        height = 2 * params["sphere_radius"] + 0.15
        x = np.concatenate([local @ rot.T, np.full((len(uv), 1), height)], axis=1)
        return x, np.zeros_like(x)


class ScenarioClothFlag(ScenarioWarpCloth):
    """Vertical sheet pinned to a pole along one edge, blown by a steady wind."""

    name: ClassVar[str] = "cloth/flag"
    take_perturbation: ClassVar[dict[str, float]] = {
        "stiffness": 5.0, "mass": 0.002, "wind_speed": 0.05, "wind_yaw": 0.005}
    param_space: ClassVar[ParamSpace] = ParamSpace.from_train(
        (*COMMON_PARAMS, PIN_PARAM, Param("wind_speed", "m/s", 0.0, 30.0, "wind speed"),
         Param("wind_yaw", "rad", -1.5, 1.5, "wind direction from +x towards +y")),
        {**COMMON_TRAIN, "pin_layout": Choice((0.0, 1.0)), "wind_speed": Uniform(2.0, 5.0),
         "wind_yaw": Uniform(0.3, 0.7)},
        # Storm: stronger wind from a wider angle.
        {"wind_speed": Uniform(7.0, 9.0), "wind_yaw": Uniform(0.8, 1.0)},
    )
    laws: ClassVar[frozenset[str]] = frozenset(
        {"inextensible", "non_penetration", "object_permanence"}
    )
    given_params: ClassVar[frozenset[str]] = frozenset({"pin_layout"})  # pins are seen
    camera_eye = (0.4, -2.2, 1.5)
    camera_target = (0.5, 0.3, 1.35)
    bottom: ClassVar[float] = 0.9

    def place(self, params: dict[str, float], seed: int, topo: ClothTopology) -> tuple[
        np.ndarray, np.ndarray
    ]:
        rng = np.random.default_rng(seed)
        uv = topo.uv
        x = np.stack([uv[:, 0] * topo.size, rng.normal(0.0, 1e-3, len(uv)) * uv[:, 0],
                      self.bottom + uv[:, 1] * topo.size], axis=1)
        return x, np.zeros_like(x)

    def pinned(self, params: dict[str, float], topo: ClothTopology) -> np.ndarray:
        # The pole is the edge u = 0; reuse the edge layouts with u and v swapped.
        swapped = dataclasses.replace(topo, uv=topo.uv[:, ::-1])
        layout = pin_layout(params)
        mask = _pin_mask(layout, swapped, 0.0)
        if layout == 2:  # single pin: the top of the pole
            mask = np.isclose(topo.uv[:, 0], 0.0) & np.isclose(topo.uv[:, 1], 1.0)
        return mask

    def wind(self, params: dict[str, float], seed: int) -> np.ndarray:
        """Exactly the recorded ``wind_speed`` and ``wind_yaw``: nothing unrecorded is added."""
        yaw = params["wind_yaw"]
        return params["wind_speed"] * np.array([math.cos(yaw), math.sin(yaw), 0.0])
