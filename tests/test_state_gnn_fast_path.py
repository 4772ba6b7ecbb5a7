"""`StateGNN.forward`'s restructured message passing is the plain encode-process-decode form:
the same accelerations, rollouts and weight gradients as a literal reference written here
(`graph`'s features normalized through the edge encoder, ``edge_update(cat[e, n_s, n_r])``,
messages summed by ``index_add``), on mesh edges (both ways, or each spring once reaching
both ends), mesh plus proximity edges, the complete graph of a few bodies and a graph
without edges."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_learned_fixtures import ballistic_rollout, one_torch_thread, sheet_rollout  # noqa: F401

from physground.learned.entities import entity_states, entity_static
from physground.learned.modeling_state_gnn import StateGNN, _history, pair_signs, unroll
from physground.learned.training import TrainConfig, train
from physground.rollout import Rollout


def _reference(net: StateGNN, x: torch.Tensor, vhist: torch.Tensor, static) -> torch.Tensor:
    B, N, d = x.shape
    nodes = net.node_encoder(net.node_norm(net.node_features(x, vhist, static)))
    nodes = nodes.reshape(B * N, -1)
    send, recv, efeat = net.graph(x, vhist[:, -1], static)
    edges = net.edge_encoder(net.edge_norm(efeat))
    for edge_update, node_update in zip(net.edge_updates, net.node_updates, strict=True):
        edges = edges + edge_update(torch.cat([edges, nodes[send], nodes[recv]], dim=-1))
        agg = torch.zeros_like(nodes).index_add_(0, recv, edges)
        if net.config.undirected_mesh and static.edges is not None:  # springs: both ends
            springs = len(static.edges) * B
            signs = pair_signs(edges.shape[-1], dtype=edges.dtype)
            agg = agg.index_add(0, send[:springs], edges[:springs] * signs)
        nodes = nodes + node_update(torch.cat([nodes, agg], dim=-1))
    accel = net.accel_norm.inverse(net.decoder(nodes)).reshape(B, N, d)
    return torch.where(static.pinned[..., None], torch.zeros_like(accel), accel)


def _reference_unroll(net, x, vhist, static, dt, horizon):
    xs = []
    for _ in range(horizon):
        v = vhist[:, -1]
        v_next = v + _reference(net, x, vhist, static) * dt
        x = x + 0.5 * (v + v_next) * dt
        xs.append(x)
        vhist = torch.cat([vhist[:, 1:], v_next[:, None]], dim=1)
    return torch.stack(xs, dim=1)


def _balls(seed: int) -> Rollout:
    """Three balls in free flight (one system, the complete graph of 3 bodies)."""
    parts = [ballistic_rollout(3 * seed + k) for k in range(3)]
    first = parts[0]
    states = {k: np.concatenate([p.states[k] for p in parts], axis=1) for k in first.states}
    static = {**first.static, "mass": np.array([1.0, 2.0, 0.5]),
              "radius": np.array([0.15, 0.2, 0.1])}
    return replace(first, states=states, static=static, seed=seed)


CASES = {
    "mesh": ([sheet_rollout(s) for s in range(3)], {}),
    "mesh+proximity": ([sheet_rollout(s) for s in range(3)], {"connect_radius": 0.4}),
    "undirected mesh": ([sheet_rollout(s) for s in range(3)], {"undirected_mesh": True}),
    "undirected mesh+proximity": ([sheet_rollout(s) for s in range(3)],
                                  {"undirected_mesh": True, "connect_radius": 0.4}),
    "complete graph": ([_balls(s) for s in range(3)], {}),
    "no edges": ([ballistic_rollout(s) for s in range(3)], {}),
}


def _net_and_inputs(case: str, dtype: torch.dtype):
    rollouts, extra = CASES[case]
    model = train(TrainConfig(steps=1, progress=False,
                              model_config={"hidden": 16, "layers": 2, **extra}), rollouts)
    net = model.net.to(dtype)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # normalizers off their fitted values: every fold is exercised
        for norm in (net.node_norm, net.edge_norm, net.accel_norm):
            norm.mean.add_(torch.randn(norm.mean.shape, generator=gen, dtype=dtype))
            norm.std.mul_(0.5 + torch.rand(norm.std.shape, generator=gen, dtype=dtype))
    states = [entity_states(r) for r in rollouts]
    x0 = torch.stack([x[2] for x, _ in states]).to(dtype)
    vhist = torch.stack([_history(v, 2, net.config.history) for _, v in states]).to(dtype)
    static = entity_static(rollouts)
    static = replace(static, **{k: getattr(static, k).to(dtype) for k in
                                ("mass", "radius", "gravity", "ground_height")})
    if static.rest_length is not None:
        static = replace(static, rest_length=static.rest_length.to(dtype))
    return net, x0, vhist, static, rollouts[0].dt


@pytest.mark.parametrize("case", list(CASES))
def test_fast_forward_equals_the_plain_form(case):
    net, x0, vhist, static, dt = _net_and_inputs(case, torch.float64)
    with torch.no_grad():
        fast = net(x0, vhist, static)
        ref = _reference(net, x0, vhist, static)
        assert float(ref.abs().max()) > 1e-3  # not a trivially zero output
        torch.testing.assert_close(fast, ref, rtol=0, atol=1e-10)
        xs, _ = unroll(net, x0, vhist, static, dt, 6)
        torch.testing.assert_close(xs, _reference_unroll(net, x0, vhist, static, dt, 6),
                                   rtol=0, atol=1e-10)
    # and the weights get the same gradients (training runs the fast form)
    grads = []
    for f in (net, lambda *a: _reference(net, *a)):
        net.zero_grad()
        f(x0, vhist, static).square().sum().backward()
        grads.append([p.grad.clone() if p.grad is not None else torch.zeros_like(p)
                      for p in net.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_fast_forward_equals_the_plain_form_in_float32():
    """In float32 the folds round differently: equal to 1e-6 relative to the scale."""
    net, x0, vhist, static, dt = _net_and_inputs("mesh", torch.float32)
    with torch.no_grad():
        fast, ref = net(x0, vhist, static), _reference(net, x0, vhist, static)
        scale = float(ref.abs().max())
        assert float((fast - ref).abs().max()) <= 1e-6 * scale


def test_pair_signs_split_channels_into_alike_and_opposite():
    assert pair_signs(5).tolist() == [1.0, 1.0, 1.0, -1.0, -1.0]
    assert pair_signs(1).tolist() == [1.0]


def test_undirected_mesh_model_learns_the_sheet():
    """With each spring one edge the model still fits: the data loss on 2 falling, spinning
    sheets falls by at least 10x in 150 steps (as the default model's does)."""
    rollouts = [sheet_rollout(s) for s in range(2)]
    model = train(TrainConfig(steps=150, lr=3e-3, lr_final=3e-3, batch_size=8, unroll=2,
                              progress=False, log_every=1,
                              model_config={"hidden": 32, "layers": 1,
                                            "undirected_mesh": True}), rollouts)
    system = model.net.prepare_static(entity_static(rollouts))
    assert len(system.fixed[0]) == len(rollouts) * len(rollouts[0].static["edges"])  # once each
    first = np.mean([h["data"] for h in model.history[:5]])
    last = np.mean([h["data"] for h in model.history[-5:]])
    assert last < first / 10, (first, last)


@pytest.mark.slow  # compiles two graphs: tens of seconds on 2 cores
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile's CPU backend needs a C++ compiler")
def test_compiled_rollout_equals_the_eager_one_and_reads_current_weights():
    """`unroll(compiled=True)` (each step through torch.compile) is the eager rollout up to
    float32 reassociation, on a mesh (undirected springs) and on the complete graph of
    three bodies; it reads the weights as they are at the call (a changed decoder bias
    moves the compiled rollout as it moves the eager one, nothing was baked in), and a
    system searching proximity edges each step falls back to eager stepping exactly."""
    for case in ("undirected mesh", "complete graph"):
        net, x0, vhist, static, dt = _net_and_inputs(case, torch.float32)
        with torch.inference_mode():
            eager, _ = unroll(net, x0, vhist, static, dt, 5)
            fused, _ = unroll(net, x0, vhist, static, dt, 5, compiled=True)
            scale = float((eager - x0[:, None]).abs().max())
            assert scale > 1e-3  # the systems move
            assert float((fused - eager).abs().max()) <= 1e-5 * max(scale, 1.0)
        with torch.no_grad():
            net.decoder[2].bias.add_(1.0)
        with torch.inference_mode():
            moved, _ = unroll(net, x0, vhist, static, dt, 5)
            fused_moved, _ = unroll(net, x0, vhist, static, dt, 5, compiled=True)
            assert float((moved - eager).abs().max()) > 1e-3
            assert float((fused_moved - moved).abs().max()) <= 1e-5 * max(scale, 1.0)
    net, x0, vhist, static, dt = _net_and_inputs("mesh+proximity", torch.float32)
    with torch.inference_mode():
        torch.testing.assert_close(unroll(net, x0, vhist, static, dt, 3, compiled=True)[0],
                                   unroll(net, x0, vhist, static, dt, 3)[0], rtol=0, atol=0)


def test_compile_rollout_config_is_used_by_predictions_only(monkeypatch):
    """``compile_rollout`` steps predictions (no gradients) through the compiled step and
    leaves training's rollouts eager (their gradients come from the eager graph)."""
    from physground.learned import modeling_state_gnn as m

    rollouts, _ = CASES["undirected mesh"]
    model = train(TrainConfig(steps=1, progress=False, model_config={
        "hidden": 8, "layers": 1, "undirected_mesh": True, "compile_rollout": True}),
        rollouts)
    calls, eager = [], m.unroll

    def spy(*args, compiled=False, **kwargs):  # records the routing, steps eagerly
        calls.append(compiled)
        return eager(*args, **kwargs)

    monkeypatch.setattr(m, "unroll", spy)
    states = [entity_states(r) for r in rollouts]
    x0 = torch.stack([x[2] for x, _ in states])
    vhist = torch.stack([_history(v, 2, 3) for _, v in states])
    static, rows = entity_static(rollouts), torch.arange(len(rollouts))
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            model.rollout(x0, vhist, static, rollouts[0].dt, 2, rows=rows, sources=rollouts)
    assert calls == [False, True]
