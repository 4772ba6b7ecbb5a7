"""`state-gnn`: an encode-process-decode graph network over entities (GNS / MeshGraphNets).

One design serves rigid bodies, cloth nodes and SPH particles. Nodes carry the last
``history`` velocities, ground clearance, mass, radius, a pinned flag and gravity (the
given statics of the `Observation`; unseen ones take neutral defaults, and gravity, which
is latent, is inferred from the context's accelerations, `infer_gravity`); edges
are the cloth mesh springs (relative position, distance, rest length, strain; both ways,
or once each with ``undirected_mesh``, its latent reaching both ends, `pair_signs`) plus
proximity edges (SPH neighbours within the smoothing length, all pairs of a few bodies).
The network predicts each entity's acceleration a [m/s^2]; one step integrates

    v_{t+1} = v_t + a dt,        x_{t+1} = x_t + (v_t + v_{t+1}) dt / 2

(trapezoidal positions: exact for constant acceleration, so ballistic flight is exact
when a = g). Pinned entities do not move. `unroll` is the single rollout function used by
``predict`` and by training (unrolled or pushforward), so they cannot drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from physground.errors import ValidationError
from physground.learned.base import LearnedModel, Normalizer, Windows, mlp
from physground.learned.configuration_state_gnn import StateGNNConfig
from physground.learned.entities import (
    EntityStatic,
    entity_states,
    entity_static,
    infer_gravity,
    pad_entities,
    quat_integrate,
    state_keys,
)
from physground.learned.neighbours import radius_edges
from physground.observation import Observation, observe
from physground.rollout import Prediction, Rollout
from physground.world_model import Modality

# Proximity cutoff of sized particles without a mesh or SPH kernel, in particle radii: 1.5
# lattice spacings, the 18 nearest neighbours of a grain on a cubic lattice.
PARTICLE_REACH = 3.0


def proximity_edges(x: torch.Tensor, static: EntityStatic, config: StateGNNConfig
                    ) -> torch.Tensor:
    """Directed proximity edges [E,3] as (batch, sender, receiver) for positions [B,N,d]."""
    B, N, _ = x.shape
    radius = config.connect_radius
    if radius <= 0:
        if static.is_sph:
            radius = float(static.smoothing_length.max())
        elif static.edges is None and config.all_pairs_max >= N:
            radius = float("inf")
        elif static.edges is None and bool((static.radius > 0).any()):
            # many sized particles (grains): neighbours up to PARTICLE_REACH radii
            radius = PARTICLE_REACH * float(static.radius.max())
        else:
            return torch.zeros((0, 3), dtype=torch.long, device=x.device)
    if N < 2:
        return torch.zeros((0, 3), dtype=torch.long, device=x.device)
    if radius == float("inf"):  # a few bodies: the complete graph (of the real ones)
        eye = torch.eye(N, dtype=torch.bool, device=x.device)
        pairs = ~eye.expand(B, N, N)
        if static.present is not None:
            pairs = pairs & static.present[:, :, None] & static.present[:, None, :]
        return pairs.nonzero()
    # O(N) hash-grid search (Warp HashGrid); padded entities get no edges
    return radius_edges(x, radius, static.present)


class StateGNN(nn.Module):
    """Graph network mapping entity states to normalized accelerations."""

    def __init__(self, config: StateGNNConfig) -> None:
        super().__init__()
        self.config = config
        H = config.hidden
        self.node_norm = Normalizer(config.node_in)
        self.edge_norm = Normalizer(config.edge_in)
        self.accel_norm = Normalizer(config.dim)
        # acceleration scale of the data (m/s^2), the unit of the data loss
        self.register_buffer("loss_scale", torch.ones(config.dim))
        self.node_encoder = mlp(config.node_in, H, H)
        self.edge_encoder = mlp(config.edge_in, H, H)
        self.edge_updates = nn.ModuleList(mlp(3 * H, H, H) for _ in range(config.layers))
        self.node_updates = nn.ModuleList(mlp(2 * H, H, H) for _ in range(config.layers))
        self.decoder = mlp(H, H, config.dim, norm=False)

    # -------------------------------------------------------------------- features

    def prepare_static(self, static: EntityStatic, dtype: torch.dtype = torch.float32
                       ) -> SystemGraph:
        """What every step of a rollout of the systems ``static`` shares (`SystemGraph`):
        built once per rollout, not once per step."""
        B, N = static.mass.shape
        d = static.gravity.shape[-1]
        device = static.mass.device
        parts = [static.mass[..., None], static.radius[..., None],
                 static.pinned[..., None].to(dtype), static.gravity[:, None].expand(B, N, d)]
        mesh = None
        if static.edges is not None:
            e = static.edges
            ways = 1 if self.config.undirected_mesh else 2  # each spring once, or both ways
            both = e if ways == 1 else torch.cat([e, e.flip(-1)], dim=0)
            offset = torch.arange(B, device=device)[:, None] * N
            send = (both[:, 0][None] + offset).reshape(-1)
            recv = (both[:, 1][None] + offset).reshape(-1)
            rest = torch.zeros(len(send), 1, dtype=dtype, device=device)
            if static.rest_length is not None:
                rest[:, 0] = torch.cat([static.rest_length] * ways, dim=1).reshape(-1)
            mesh = (send, recv, rest, torch.ones_like(rest))
        complete = (self.config.connect_radius <= 0 and not static.is_sph
                    and static.edges is None and self.config.all_pairs_max >= N)
        if complete and N >= 2:  # a few bodies: the complete graph, the same at every step
            x0 = torch.zeros(B, N, d, dtype=dtype, device=device)
            b, s, r = proximity_edges(x0, static, self.config).unbind(-1)
            zeros = torch.zeros(len(b), 1, dtype=dtype, device=device)
            mesh = (b * N + s, b * N + r, zeros, zeros)
        needs_proximity = not complete and (self.config.connect_radius > 0 or static.is_sph)
        needs_proximity = needs_proximity and N >= 2
        sized = self.config.edge_in == self.edge_size(d)  # not a probe for the feature sizes
        return SystemGraph(
            static=static, node_static=torch.cat(parts, dim=-1).to(dtype),
            up=static.up()[:, None] if static.has_ground else None,
            box=static.box if static.has_box else None, fixed=mesh,
            needs_proximity=needs_proximity,
            plan=self._plan(mesh, B * N, d, paired=self.config.undirected_mesh
                            and static.edges is not None) if mesh is not None and sized else None,
            encoder=self._folded_encoder(d) if needs_proximity and sized else None,
            weights=self._fold() if sized else None,
        )

    def _fold(self) -> FoldedWeights:
        """`FoldedWeights`: the layers as `forward` evaluates them during one rollout."""
        node_first = self.node_encoder[0]
        w_node = node_first.weight / self.node_norm.std
        products, edge_in = [], []
        for edge_update in self.edge_updates:
            first = edge_update[0]
            w_e, w_s, w_r = first.weight.split(self.config.hidden, dim=1)
            products.append((torch.cat([w_s, w_r]).t(),
                             torch.cat([first.bias, torch.zeros_like(first.bias)])))
            edge_in.append(w_e.t())
        decoder = self.decoder[2]
        std, mean = self.accel_norm.std, self.accel_norm.mean
        return FoldedWeights(
            node_in=(w_node.t(), node_first.bias),
            node_encoder=_NormTail.of(self.node_encoder),
            edge_encoder=_NormTail.of(self.edge_encoder),
            products=products, edge_in=edge_in,
            edge_updates=[_NormTail.of(m) for m in self.edge_updates],
            node_in_updates=[(m[0].weight.t(), m[0].bias) for m in self.node_updates],
            node_updates=[_NormTail.of(m) for m in self.node_updates],
            decoder_in=(self.decoder[0].weight.t(), self.decoder[0].bias),
            decoder_out=((decoder.weight * std[:, None]).t(), decoder.bias * std + mean),
        )

    def _plan(self, fixed: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
              nodes: int, d: int, *, paired: bool) -> FixedPlan:
        """`FixedPlan` of the fixed edges over ``nodes`` flat nodes (what `forward` reuses
        at every step): the edge encoder's first layer with the edge normalizer folded in and
        the per-edge constants (rest length, mesh flag, strain's 1/rest) folded into a bias
        and a distance coefficient, and the receiver-sorted order of the aggregation."""
        send, recv, rest, flag = fixed
        w_dist, w_dyn, bias = self._folded_encoder(d)
        w = self.edge_encoder[0].weight / self.edge_norm.std  # columns as `graph`'s features
        w_rest, w_strain, w_flag = (w[:, 2 * d + 1 + k] for k in range(3))
        has_rest = rest > 0
        inv_rest = torch.where(has_rest, 1.0 / rest.clamp_min(1e-9), torch.zeros_like(rest))
        # strain = dist / rest - 1 where rest > 0: linear in dist with a per-edge slope
        coef = w_dist + inv_rest * w_strain
        const = bias + rest * w_rest + flag * w_flag - has_rest.to(rest.dtype) * w_strain
        (order, offsets), by_sender = _bags(recv, nodes), None
        if paired:  # undirected springs also reach their senders (`pair_signs`)
            H = self.config.hidden
            by_sender = (*_bags(send, nodes), pair_signs(H, dtype=rest.dtype, device=rest.device))
        return FixedPlan(send=send, recv=recv, pairs=torch.stack([2 * send, 2 * recv + 1], -1),
                         coef=coef, const=const, w_dyn=w_dyn, order=order, offsets=offsets,
                         by_sender=by_sender)

    def _folded_encoder(self, d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The edge encoder's first layer on normalized features, as weights on the raw
        ones: (distance column [H], [disp, dv] columns transposed [2d,H], bias [H]) for edges of
        rest length 0 that are not mesh springs (the bias holds the mean's shift)."""
        first = self.edge_encoder[0]
        w = first.weight / self.edge_norm.std
        bias = first.bias - w @ self.edge_norm.mean
        w_dyn = torch.cat([w[:, :d], w[:, d + 1 : 2 * d + 1]], dim=1)
        return w[:, d], w_dyn.t(), bias

    def node_features(self, x: torch.Tensor, vhist: torch.Tensor, static: EntityStatic,
                      extra: torch.Tensor | None = None, *,
                      system: SystemGraph | None = None) -> torch.Tensor:
        """[B,N,F]: velocity history, ground clearance, mass, radius, pinned, gravity (and
        ``extra`` [B,N,*] model-specific features, e.g. a simulator's proposed step)."""
        system = system if system is not None else self.prepare_static(static, x.dtype)
        d = vhist.shape[-1]
        clip = self.config.clearance_clip
        parts = list(vhist.unbind(1))  # [B,N,K*d] as k*d + axis, one copy in the cat
        if system.up is not None:
            height = (x * system.up).sum(-1)
            clearance = height - static.ground_height[:, None] - static.radius
            parts.append(clearance.clamp(max=clip)[..., None])
        if system.box is not None:  # distance to each wall (open sides read as far away)
            lo, hi = system.box[:, None, :d], system.box[:, None, d:]
            walls = torch.cat([x - lo, hi - x], dim=-1)
            parts.append(torch.nan_to_num(walls, posinf=clip).clamp(max=clip))
        parts.append(system.node_static)
        if extra is not None:
            parts.append(extra)
        return torch.cat(parts, dim=-1)

    def graph(self, x: torch.Tensor, v: torch.Tensor, static: EntityStatic, *,
              system: SystemGraph | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flat (senders, receivers) over B*N nodes and edge features [E,F]: the mesh
        springs (fixed, from ``system``: both ways, or once each with ``undirected_mesh``)
        first, then this step's proximity edges."""
        system = system if system is not None else self.prepare_static(static, x.dtype)
        B, N, d = x.shape
        sends, recvs, rests, flags = [], [], [], []
        if system.fixed is not None:
            for part, value in zip((sends, recvs, rests, flags), system.fixed, strict=True):
                part.append(value)
        if system.needs_proximity:
            b, s, r = proximity_edges(x, static, self.config).unbind(-1)
            sends.append(b * N + s)
            recvs.append(b * N + r)
            rests.append(x.new_zeros(len(b), 1))
            flags.append(x.new_zeros(len(b), 1))
        if not sends:
            empty = torch.zeros(0, dtype=torch.long, device=x.device)
            return empty, empty, x.new_zeros(0, self.edge_size(d))
        send, recv = (torch.cat(a) if len(a) > 1 else a[0] for a in (sends, recvs))
        rest, is_mesh = (torch.cat(a) if len(a) > 1 else a[0] for a in (rests, flags))
        xf, vf = x.reshape(B * N, d), v.reshape(B * N, d)
        disp = xf.index_select(0, send) - xf.index_select(0, recv)
        dist = disp.norm(dim=-1, keepdim=True)
        strain = torch.where(rest > 0, dist / rest.clamp_min(1e-9) - 1.0, torch.zeros_like(dist))
        dv = vf.index_select(0, send) - vf.index_select(0, recv)
        return send, recv, torch.cat([disp, dist, dv, rest, strain, is_mesh], dim=-1)

    @staticmethod
    def edge_size(dim: int) -> int:
        return 2 * dim + 4

    # -------------------------------------------------------------------- forward

    def forward(self, x: torch.Tensor, vhist: torch.Tensor, static: EntityStatic,
                extra: torch.Tensor | None = None, *,
                system: SystemGraph | None = None) -> torch.Tensor:
        """Accelerations [B,N,d] (m/s^2) from positions [B,N,d], velocities [B,K,N,d];
        ``system`` (`prepare_static`) is what a rollout's steps share (built when None).

        The same function as the plain encode-process-decode form (`graph`'s features,
        normalized, through the edge encoder; ``edge_update(cat[e, n_s, n_r])``; messages
        summed by ``index_add``), restructured for speed: the normalizers are folded into
        the layers next to them, the fixed edges' constant features into the edge encoder's
        first layer (`FixedPlan`), the LayerNorms' centring into the layer before each
        (`_NormTail`); the sender/receiver products of the edge update are taken per node,
        gathered and summed in one ``embedding_bag``, and fixed edges are summed per
        receiver by an ``embedding_bag`` over their receiver-sorted order."""
        system = system if system is not None else self.prepare_static(static, x.dtype)
        fold = system.weights
        if fold is None:
            raise ValidationError(f"state-gnn edge_in = {self.config.edge_in}, expected "
                                  f"{self.edge_size(x.shape[-1])} edge features")
        B, N, d = x.shape
        nodes = self.node_features(x, vhist, static, extra, system=system)
        # centred before the product (not folded into the bias): a feature that is constant
        # in the data is exactly 0 here, so its weights get exactly zero gradient (a folded
        # mean leaves round-off that Adam's normalised steps turn into lr-sized moves)
        centred = nodes.reshape(B * N, -1) - self.node_norm.mean
        nodes = fold.node_encoder(torch.addmm(fold.node_in[1], centred, fold.node_in[0]))
        H = nodes.shape[-1]
        plan = system.plan
        xv = torch.cat([x, vhist[:, -1]], dim=-1).reshape(B * N, 2 * d)
        hidden, pairs, dyn_recv = [], [], None
        if plan is not None:  # fixed edges: constants folded in (`_plan`)
            dxv = xv.index_select(0, plan.send) - xv.index_select(0, plan.recv)
            dist = dxv[:, :d].norm(dim=-1, keepdim=True)
            hidden.append(torch.addmm(plan.const, dxv, plan.w_dyn).addcmul_(dist, plan.coef))
            pairs.append(plan.pairs)
        if system.needs_proximity:
            b, s, r = proximity_edges(x, static, self.config).unbind(-1)
            send, dyn_recv = b * N + s, b * N + r
            w_dist, w_dyn, bias = system.encoder
            dxv = xv.index_select(0, send) - xv.index_select(0, dyn_recv)
            dist = dxv[:, :d].norm(dim=-1, keepdim=True)
            hidden.append(torch.addmm(bias, dxv, w_dyn).addcmul_(dist, w_dist))
            pairs.append(torch.stack([2 * send, 2 * dyn_recv + 1], -1))
        n_fixed = len(plan.send) if plan is not None else 0
        if hidden:
            edges = fold.edge_encoder(torch.cat(hidden) if len(hidden) > 1 else hidden[0])
            pair = torch.cat(pairs) if len(pairs) > 1 else pairs[0]
        layers = zip(fold.products, fold.edge_in, fold.edge_updates, fold.node_in_updates,
                     fold.node_updates, strict=True)
        for (w_prod, b_prod), w_e, edge_tail, (w_n, b_n), node_tail in layers:
            if hidden:
                # sender and receiver products per node, interleaved [2BN,H]; bias on senders
                prod = torch.addmm(b_prod, nodes, w_prod).reshape(2 * B * N, H)
                gathered = F.embedding_bag(pair, prod, mode="sum")
                edges = edges + edge_tail(torch.addmm(gathered, edges, w_e))
                if plan is not None:
                    fixed = edges if dyn_recv is None else edges[:n_fixed]
                    agg = F.embedding_bag(plan.order, fixed, plan.offsets, mode="sum")
                    if plan.by_sender is not None:
                        order, offsets, signs = plan.by_sender
                        to_sender = F.embedding_bag(order, fixed, offsets, mode="sum")
                        agg = torch.addcmul(agg, to_sender, signs)
                else:
                    agg = torch.zeros_like(nodes)
                if dyn_recv is not None:
                    agg = agg.index_add(0, dyn_recv, edges[n_fixed:])
            else:  # no edges: zero messages
                agg = torch.zeros_like(nodes)
            nodes = nodes + node_tail(torch.addmm(b_n, torch.cat([nodes, agg], dim=-1), w_n))
        (w_in, b_in), (w_out, b_out) = fold.decoder_in, fold.decoder_out
        # the acceleration normalizer's inverse is folded into the last layer
        accel = torch.addmm(b_out, F.silu(torch.addmm(b_in, nodes, w_in)), w_out)
        return torch.where(static.pinned[..., None], 0.0, accel.reshape(B, N, d))


@dataclass(frozen=True)
class _NormTail:
    """The end of an `mlp` with LayerNorm, SiLU -> Linear -> LayerNorm, with the centring of
    the LayerNorm folded into the Linear (its weight rows and bias minus their means, so
    its output has zero mean exactly in exact arithmetic) and the variance a product with a
    [H,1] column of 1/H: the same function at about half the cost of `nn.LayerNorm`'s
    per-row reduction on rows as narrow as a latent."""

    weight: torch.Tensor  # [in, out]: transposed, as addmm takes it
    bias: torch.Tensor
    gamma: torch.Tensor
    beta: torch.Tensor
    mean_col: torch.Tensor
    eps: float

    @staticmethod
    def of(mlp_: nn.Sequential) -> _NormTail:
        linear, norm = mlp_[2], mlp_[3]
        assert isinstance(norm, nn.LayerNorm)
        w, b = linear.weight, linear.bias
        width = w.shape[0]
        return _NormTail(weight=(w - w.mean(0, keepdim=True)).t(), bias=b - b.mean(),
                         gamma=norm.weight, beta=norm.bias,
                         mean_col=w.new_full((width, 1), 1.0 / width), eps=norm.eps)

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        centred = torch.addmm(self.bias, F.silu(h), self.weight)
        scale = torch.rsqrt(torch.mm(centred * centred, self.mean_col) + self.eps)
        return torch.addcmul(self.beta, centred * scale, self.gamma)


@dataclass(frozen=True)
class FoldedWeights:
    """The network's layers as `forward` evaluates them during one rollout (weights fixed),
    each weight transposed [in, out] as ``addmm`` takes it: the node encoder's first layer
    with the node normalizer's 1/std folded in (weight, bias; inputs centred first), each
    `_NormTail`, the sender/receiver product weights [H,2H] and bias [2H] and the
    edge-latent weight [H,H] of each edge update, each node update's first layer, and the
    decoder's layers, the last with the acceleration normalizer folded in."""

    node_in: tuple[torch.Tensor, torch.Tensor]
    node_encoder: _NormTail
    edge_encoder: _NormTail
    products: list[tuple[torch.Tensor, torch.Tensor]]
    edge_in: list[torch.Tensor]
    edge_updates: list[_NormTail]
    node_in_updates: list[tuple[torch.Tensor, torch.Tensor]]
    node_updates: list[_NormTail]
    decoder_in: tuple[torch.Tensor, torch.Tensor]
    decoder_out: tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class FixedPlan:
    """`forward`'s precomputation over the fixed edges [E] of a rollout (`StateGNN._plan`),
    valid while the weights do not change (one rollout): flat senders and receivers, the
    (2 sender, 2 receiver + 1) rows [E,2] of the interleaved node products, the folded
    first layer of the edge encoder (distance slope ``coef`` and bias ``const`` [E,H],
    [disp, dv] weights ``w_dyn`` [2d,H]) and the receiver-sorted edge order [E] with each
    receiver's start in it ``offsets`` [B*N]."""

    send: torch.Tensor
    recv: torch.Tensor
    pairs: torch.Tensor
    coef: torch.Tensor
    const: torch.Tensor
    w_dyn: torch.Tensor
    order: torch.Tensor
    offsets: torch.Tensor
    by_sender: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None


def _bags(index: torch.Tensor, nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The edges [E] grouped by ``index`` (stable order) and each of the ``nodes`` groups'
    start in it: the (input, offsets) of an ``embedding_bag`` sum per node."""
    counts = torch.bincount(index, minlength=nodes)
    return torch.sort(index, stable=True).indices, torch.cumsum(counts, 0) - counts


def pair_signs(hidden: int, *, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> torch.Tensor:
    """[hidden] +1 then -1: how an undirected spring's latent reaches its sender (its
    receiver takes it as it is): the first ``hidden - hidden // 2`` channels alike at both
    ends, the last ``hidden // 2`` with opposite signs, as a spring's force (equal and
    opposite) is."""
    signs = torch.ones(hidden, dtype=dtype, device=device)
    signs[hidden - hidden // 2:] = -1.0
    return signs


@dataclass(frozen=True)
class SystemGraph:
    """The step-invariant part of a rollout's graph and node features (`prepare_static`):
    the static node features [B,N,F_s] (mass, radius, pinned, gravity), the up vector
    [B,1,d] (None without a ground), the container box [B,2d] (None without one), the
    edges that do not change between steps (flat senders, receivers [E], rest lengths and
    mesh flags [E,1]: the mesh springs both ways, or the complete graph of a few bodies;
    None when there are none; with ``undirected_mesh`` each spring once, its latent
    reaching both ends, `pair_signs`), whether proximity edges are searched each step, the
    fixed edges' `FixedPlan`, the folded edge encoder of proximity edges
    (`StateGNN._folded_encoder`) and the `FoldedWeights`: these hold weights, so a
    `SystemGraph` serves one rollout (None in a probe for the feature sizes)."""

    static: EntityStatic
    node_static: torch.Tensor
    up: torch.Tensor | None
    box: torch.Tensor | None
    fixed: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None
    needs_proximity: bool
    plan: FixedPlan | None = None
    encoder: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    weights: FoldedWeights | None = None

    @property
    def compilable(self) -> bool:
        """Whether `unroll(compiled=True)` compiles the steps: not when proximity edges are
        searched every step (Warp's hash grid, which ``torch.compile`` cannot trace)."""
        return not self.needs_proximity


def unroll(
    net: StateGNN, x: torch.Tensor, vhist: torch.Tensor, static: EntityStatic, dt: float,
    horizon: int, *, detach_inputs: bool = False, compiled: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Roll the network out for ``horizon`` frames from x [B,N,d], vhist [B,K,N,d].

    Returns positions and velocities [B,horizon,N,d]. ``detach_inputs`` (pushforward
    training) stops gradients between steps, so each step is trained on the model's own
    input distribution without backpropagating through the whole unroll. ``compiled``
    takes each step through `compiled_rollout_step` (the same function, fused by
    ``torch.compile``: equal up to float32 reassociation) where the graph is fixed (mesh
    springs, the complete graph of a few bodies); systems whose proximity edges are
    searched every step (SPH, Warp's hash grid, which ``torch.compile`` cannot trace) step
    eagerly.
    """
    xs, vs = [], []
    system = net.prepare_static(static, x.dtype)  # the graph's fixed part, built once
    step = compiled_rollout_step() if compiled and system.compilable else rollout_step
    for _ in range(horizon):
        if detach_inputs:
            x, vhist = x.detach(), vhist.detach()
        x, v_next, vhist = step(net, x, vhist, static, system, dt)
        xs.append(x)
        vs.append(v_next)
    return torch.stack(xs, dim=1), torch.stack(vs, dim=1)


def rollout_step(net: StateGNN, x: torch.Tensor, vhist: torch.Tensor, static: EntityStatic,
                 system: SystemGraph, dt: float
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One frame of `unroll`: (x_next [B,N,d], v_next [B,N,d], the shifted velocity history
    [B,K,N,d]) by the trapezoidal step of the module docstring."""
    accel = net(x, vhist, static, system=system)
    v = vhist[:, -1]
    v_next = torch.add(v, accel, alpha=dt)
    x_next = torch.add(x, v + v_next, alpha=0.5 * dt)
    return x_next, v_next, torch.cat([vhist[:, 1:], v_next[:, None]], dim=1)


@functools.cache
def compiled_rollout_step() -> Any:
    """`rollout_step` through ``torch.compile`` (Inductor: one fused C++ kernel per chain of
    elementwise ops instead of ~70 eager ops per step, the cost that dominates graphs as
    small as a cloth sheet). Compiled on first call per input shape (seconds, cached on
    disk by Inductor); needs a C++ compiler on CPU. For inference: the weights are read
    as they are at each call, but training through it compiles a backward too."""
    return torch.compile(rollout_step, dynamic=False)


def _history(v: torch.Tensor, end: int, k: int) -> torch.Tensor:
    """Velocities of frames end-k+1..end [k,N,d], repeating frame 0 before the start."""
    idx = torch.arange(end - k + 1, end + 1).clamp_min(0)
    return v[idx]


class ModelStateGNN(LearnedModel):
    """Learned state world model (`state-gnn`) for rigid, cloth and SPH scenarios."""

    name: ClassVar[str] = "state-gnn"
    modalities: ClassVar[frozenset[Modality]] = frozenset({"state"})
    config_type: ClassVar[type] = StateGNNConfig
    config: StateGNNConfig

    def is_built(self) -> bool:
        return self.config.node_in > 0 and self.config.dim > 0

    def gnn_config(self) -> StateGNNConfig:
        return self.config

    def build(self) -> StateGNN:
        return StateGNN(self.gnn_config())

    @property
    def net(self) -> StateGNN:
        module = self.require_module()
        assert isinstance(module, StateGNN)
        return module

    def prepare(self, rollouts: Sequence[Rollout]) -> None:
        if self.module is not None:
            return
        from dataclasses import replace

        windows = self._windows(rollouts, unroll=1, fitted=False)
        x, vhist, static = windows.tensors["x"], windows.tensors["vhist"], windows.static
        d = x.shape[-1]
        rows = windows.rows
        sub = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))[:256]
        st = static.index(rows[sub]).with_gravity(windows.tensors["gravity"][sub])
        probe = StateGNN(replace(self.config, node_in=1, edge_in=1, dim=d))
        node = probe.node_features(x[sub], vhist[sub], st)
        self.config = replace(self.config, node_in=node.shape[-1],
                              edge_in=StateGNN.edge_size(d), dim=d)
        net = StateGNN(self.config).to(self.device)
        _, _, efeat = net.graph(x[sub], vhist[sub][:, -1], st)
        net.node_norm.fit(node[st.real()])  # padded entities are not data
        if len(efeat):
            net.edge_norm.fit(efeat)
        dv = windows.tensors["v_target"][:, 0] - vhist[:, -1]
        moving = ~static.index(rows).pinned
        net.accel_norm.fit((dv / windows.dt)[moving], isotropic=True)
        net.loss_scale.copy_(net.accel_norm.std)
        self.module = net

    def rollout(self, x: torch.Tensor, vhist: torch.Tensor, static: EntityStatic, dt: float,
                horizon: int, *, rows: torch.Tensor, sources: Sequence[Rollout],
                detach_inputs: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's rollout [B,horizon,N,d] (``rows`` index ``sources``, the rollouts the
        systems come from; unused here, used by models that call a simulator)."""
        compiled = self.config.compile_rollout and not torch.is_grad_enabled()
        return unroll(self.net, x, vhist, static, dt, horizon, detach_inputs=detach_inputs,
                      compiled=compiled)

    def windows(self, rollouts: Sequence[Rollout], unroll: int) -> Windows:
        return self._windows(rollouts, unroll, fitted=True)

    def _windows(self, rollouts: Sequence[Rollout], unroll: int, *, fitted: bool) -> Windows:
        if not rollouts:
            raise ValidationError("state-gnn needs at least one training rollout")
        dts = {round(r.dt, 12) for r in rollouts}
        if len(dts) != 1:
            raise ValidationError(f"training rollouts mix frame intervals dt = {sorted(dts)} s")
        K, G = self.config.history, self.config.gravity_frames
        # the model's inputs come from the rollouts as a model observes them
        static = entity_static([observe(r, r.num_frames) for r in rollouts], self.device)
        n = static.mass.shape[1]  # systems with fewer entities are padded to n
        xs, vhs, xts, vts, gs, rows = [], [], [], [], [], []
        for i, r in enumerate(rollouts):
            x, v = (pad_entities(a, n) for a in entity_states(r, self.device))
            T = x.shape[0]
            if unroll + 1 > T:
                raise ValidationError(f"{r.scenario} rollouts have {T} frames; windows of "
                                      f"unroll {unroll} need at least {unroll + 1}")
            pinned = static.pinned[i]
            for s in range(0, T - unroll):
                xs.append(x[s])
                vhs.append(_history(v, s, K))
                gs.append(infer_gravity(v[: s + 1], float(r.dt), pinned, G))
                xts.append(x[s + 1 : s + 1 + unroll])
                vts.append(v[s + 1 : s + 1 + unroll])
                rows.append(i)
        laws = _laws(rollouts[0].scenario)
        return Windows(
            tensors={"x": torch.stack(xs), "vhist": torch.stack(vhs),
                     "gravity": torch.stack(gs),
                     "x_target": torch.stack(xts), "v_target": torch.stack(vts)},
            rows=torch.as_tensor(rows, device=self.device), static=static,
            dt=float(rollouts[0].dt),
            info={"laws": laws, "scenario": rollouts[0].scenario, "rollouts": list(rollouts)},
            loss_static=entity_static(rollouts, self.device),
        )

    def losses(self, batch: dict[str, Any], *, unroll_mode: str, terms: Sequence[str],
               options: dict[str, Any]) -> dict[str, torch.Tensor]:
        from physground.learned import losses as L

        net = self.net
        static: EntityStatic = batch["static"].with_gravity(batch["gravity"])
        horizon = batch["x_target"].shape[1]
        vhist = batch["vhist"]
        noise = float(options.get("input_noise", 0.0))
        if noise > 0:  # GNS-style noise on the input velocities for rollout stability
            vhist = vhist + noise * net.loss_scale * batch["dt"] * torch.randn_like(vhist)
        x_pred, v_pred = self.rollout(batch["x"], vhist, static, batch["dt"], horizon,
                                      rows=batch["rows"], sources=batch["rollouts"],
                                      detach_inputs=unroll_mode == "pushforward")
        out = {"data": L.entity_data_loss(x_pred, v_pred, batch["x_target"], batch["v_target"],
                                          scale=net.loss_scale, dt=batch["dt"],
                                          mask=static.present)}
        state = L.EntityRollout(x=x_pred, v=v_pred, x0=batch["x"], v0=batch["vhist"][:, -1],
                                static=batch["loss_static"], dt=batch["dt"], rows=batch["rows"],
                                teacher=self._teacher(batch) if "teacher" in terms else None)
        for term in terms:
            if term == "data":
                continue
            out[term] = L.entity_physics_loss(term, state, laws=batch["laws"],
                                              scenario=batch["scenario"], options=options)
        return out

    def _teacher(self, batch: dict[str, Any]) -> Any:
        """The simulator teacher of the training rollouts (built once per rollout list)."""
        from physground.learned.teacher import make_teacher

        key = id(batch["rollouts"])
        if getattr(self, "_teacher_key", None) != key:
            self._teacher_obj = make_teacher(batch["rollouts"], self.device)
            self._teacher_key = key
        return self._teacher_obj

    def predict(self, context: Observation, horizon: int) -> Prediction:
        net = self.net
        net.eval()
        pos_key, vel_key = state_keys(context)
        x, v = entity_states(context, self.device)
        static = entity_static([context], self.device)
        gravity = infer_gravity(v, context.dt, static.pinned[0], self.config.gravity_frames)
        static = static.with_gravity(gravity[None])
        T = x.shape[0]
        vhist = _history(v, T - 1, self.config.history)
        with torch.no_grad():
            xs, vs = self.rollout(x[-1:], vhist[None], static, context.dt, horizon,
                                  rows=torch.zeros(1, dtype=torch.long), sources=[context])
        states: dict[str, np.ndarray] = {pos_key: xs[0].double().cpu().numpy()}
        if vel_key is not None:
            states[vel_key] = vs[0].double().cpu().numpy()
        if "angvel" in context.states and "quat" in context.states:
            w = np.asarray(context.states["angvel"][-1], dtype=np.float64)
            q = np.asarray(context.states["quat"][-1], dtype=np.float64)
            states["quat"] = quat_integrate(q, w, context.dt, horizon)
            states["angvel"] = np.repeat(w[None], horizon, axis=0)
        for name, value in context.states.items():  # anything else: held at its last value
            if name not in states:
                states[name] = np.repeat(np.asarray(value)[-1:], horizon, axis=0)
        return Prediction.for_observation(context, model=self.name, horizon=horizon,
                                          states=states)


def _laws(scenario: str) -> frozenset[str]:
    """Physical laws declared by a registered scenario (empty when it is not registered)."""
    from physground.scenario import SCENARIOS

    if scenario not in SCENARIOS:
        return frozenset()
    factory = SCENARIOS.get(scenario)
    laws = getattr(factory, "laws", None)
    if laws is None:  # functools.partial variants
        laws = getattr(getattr(factory, "func", None), "laws", frozenset())
    return frozenset(laws)
