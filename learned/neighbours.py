"""O(N) radius neighbour search for proximity edges, on Warp's `HashGrid`.

`radius_edges` returns every ordered pair (i, j), i != j, of entities of one system closer
than a cutoff radius, for a batch of systems at once: the B systems share one hash grid and
are kept apart by its groups (the system index), as in the SPH simulator. Work is linear in
the number of entities (each query visits the 3^d cells around a point), where an all-pairs
distance matrix is quadratic. Two passes: count each receiver's neighbours, then write them
at offsets given by the running sum, so the edge list is exact and needs no size guess.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import warp as wp


@wp.kernel
def _count_neighbours(grid: wp.uint64, x: wp.array(dtype=wp.vec3), env: wp.array(dtype=wp.int32),
                      radius: float, count: wp.array(dtype=wp.int32)):
    i = wp.tid()
    xi = x[i]
    query = wp.hash_grid_query(grid, xi, radius, env[i])
    j = wp.int32(0)
    n = wp.int32(0)
    while wp.hash_grid_query_next(query, j):
        d = x[j] - xi
        if j != i and wp.dot(d, d) < radius * radius:
            n += 1
    count[i] = n


@wp.kernel
def _write_neighbours(grid: wp.uint64, x: wp.array(dtype=wp.vec3), env: wp.array(dtype=wp.int32),
                      radius: float, offset: wp.array(dtype=wp.int32),
                      count: wp.array(dtype=wp.int32), senders: wp.array(dtype=wp.int32)):
    i = wp.tid()
    xi = x[i]
    query = wp.hash_grid_query(grid, xi, radius, env[i])
    j = wp.int32(0)
    k = offset[i]
    end = k + count[i]
    while wp.hash_grid_query_next(query, j):
        d = x[j] - xi
        if j != i and wp.dot(d, d) < radius * radius and k < end:
            senders[k] = j
            k += 1


@functools.cache
def _warp_device(device: str) -> str:
    from physground.simulators.warp.common import warp_device_of

    return warp_device_of(device)


def radius_edges(x: torch.Tensor, radius: float, present: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """Directed edges [E,3] as (system, sender, receiver) between entities of positions
    x [B,N,d] (d <= 3, m) closer than ``radius`` (m); ``present [B,N]`` (bool) drops padded
    entities. Edges are grouped by receiver in flat order b*N + i; senders within a group
    come in hash-grid order (deterministic for a given input)."""
    B, N, d = x.shape
    if d > 3:
        raise ValueError(f"radius_edges: positions have {d} components, expected <= 3")
    if B * N == 0 or radius <= 0:
        return torch.zeros((0, 3), dtype=torch.long, device=x.device)
    device = _warp_device(str(x.device))
    pts = torch.zeros(B * N, 3, dtype=torch.float32)
    pts[:, :d] = x.detach().reshape(B * N, d).float().cpu()
    env = np.repeat(np.arange(B, dtype=np.int32), N)
    if present is not None:  # padded entities go to a group of their own, queried by nobody
        env = np.where(present.reshape(-1).cpu().numpy(), env, B).astype(np.int32)
    lo, hi = pts.min(0).values, pts.max(0).values
    cells = [max(1, min(128, int((float(hi[c] - lo[c])) / radius) + 1)) if c < d else 1
             for c in range(3)]
    grid = wp.HashGrid(*cells, device=device)
    wx = wp.array(pts.numpy(), dtype=wp.vec3, device=device)
    wenv = wp.array(env, dtype=wp.int32, device=device)
    grid.build(wx, radius, groups=wenv)
    count = wp.zeros(B * N, dtype=wp.int32, device=device)
    wp.launch(_count_neighbours, dim=B * N, inputs=[grid.id, wx, wenv, float(radius)],
              outputs=[count], device=device)
    counts = count.numpy().astype(np.int64)
    if present is not None:
        counts[env == B] = 0  # padded receivers write nothing
    offset = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
    total = int(counts.sum())
    if total == 0:
        return torch.zeros((0, 3), dtype=torch.long, device=x.device)
    senders = wp.zeros(total, dtype=wp.int32, device=device)
    wp.launch(_write_neighbours, dim=B * N,
              inputs=[grid.id, wx, wenv, float(radius),
                      wp.array(offset, dtype=wp.int32, device=device),
                      wp.array(counts.astype(np.int32), dtype=wp.int32, device=device)],
              outputs=[senders], device=device)
    recv_flat = np.repeat(np.arange(B * N), counts)
    send_local = senders.numpy().astype(np.int64)
    out = np.stack([recv_flat // N, send_local % N, recv_flat % N], axis=-1)
    return torch.as_tensor(out, dtype=torch.long, device=x.device)
