"""`state-gnn` on systems whose entity count varies (`rigid/collision`: 2-6 spheres): padded
entities carry no information into real ones, and batches of mixed counts train."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_learned_fixtures import one_torch_thread  # noqa: F401

from physground.learned import losses as L
from physground.learned.entities import entity_static
from physground.learned.modeling_state_gnn import unroll
from physground.learned.training import TrainConfig, train
from physground.scenario import get_scenario


@pytest.fixture(scope="module")
def collision_rollouts():
    """Six 14-frame rigid/collision rollouts of 2, 3 and 4 spheres."""
    scenario = get_scenario("rigid/collision", render=False, num_frames=14)
    seeds = list(range(6))
    rollouts = scenario.simulate([scenario.sample_params("train", s) for s in seeds], seeds,
                                 "train")
    assert len({r.states["pos"].shape[1] for r in rollouts}) > 1  # counts really vary
    return rollouts


def _config(steps: int) -> TrainConfig:
    return TrainConfig(steps=steps, lr=3e-3, lr_final=3e-3, batch_size=8, unroll=2,
                       progress=False, log_every=1, model_config={"hidden": 32, "layers": 2})


def test_entity_static_pads_to_the_largest_system(collision_rollouts):
    counts = [r.states["pos"].shape[1] for r in collision_rollouts]
    static = entity_static(collision_rollouts)
    assert static.mass.shape == (len(counts), max(counts))
    expected = torch.arange(max(counts))[None] < torch.tensor(counts)[:, None]
    assert torch.equal(static.present, expected)
    assert bool(static.pinned[~expected].all()) and float(static.mass[~expected].abs().sum()) == 0
    # systems of one count need no mask
    same = [r for r in collision_rollouts if r.states["pos"].shape[1] == counts[0]]
    assert entity_static(same).present is None


def test_padded_entities_do_not_influence_real_ones(collision_rollouts):
    """Changing everything about a padded entity (position, velocity, mass, radius) leaves
    the real entities' predicted rollout bit-identical, and a padded system predicts what
    it predicts alone."""
    model = train(_config(steps=2), collision_rollouts)
    windows = model.windows(collision_rollouts, unroll=1)
    padded = ~windows.static.real()[windows.rows]
    index = torch.nonzero(padded.any(-1)).reshape(-1)[:4]
    batch = windows.batch(index)
    static = batch["static"].with_gravity(batch["gravity"])
    real = static.real()
    x0, vh, dt = batch["x"], batch["vhist"], batch["dt"]
    with torch.no_grad():
        xs, vs = unroll(model.net, x0, vh, static, dt, 5)
        junk = ~real
        x1 = x0.clone()
        x1[junk] = torch.tensor([0.05, -0.02, 0.15])  # on top of a real sphere
        vh1 = vh.clone()
        vh1[junk[:, None].expand(vh.shape[:3])] = 7.0
        other = replace(static, mass=torch.where(real, static.mass, 5.0),
                        radius=torch.where(real, static.radius, 0.3))
        xs1, vs1 = unroll(model.net, x1, vh1, other, dt, 5)
    mask = real[:, None, :, None].expand_as(xs)
    assert torch.equal(xs[mask], xs1[mask]) and torch.equal(vs[mask], vs1[mask])
    # padded entities are pinned (zero acceleration): at rest, as padded, they stay put
    assert float(xs[~mask].abs().max()) == 0.0 and float(vs[~mask].abs().max()) == 0.0
    # the first padded system alone, without padding, predicts the same
    n = int(real[0].sum())
    alone = static.index([0])
    alone = replace(alone, **{k: getattr(alone, k)[:, :n] for k in ("mass", "radius", "pinned")},
                    present=None)
    with torch.no_grad():
        xa, va = unroll(model.net, x0[:1, :n], vh[:1, :, :n], alone, dt, 5)
    torch.testing.assert_close(xa, xs[:1, :, :n], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(va, vs[:1, :, :n], rtol=1e-5, atol=1e-6)


def test_batch_of_mixed_counts_trains_and_predicts_more_spheres(collision_rollouts):
    model = train(_config(steps=60), collision_rollouts)
    first = np.mean([h["data"] for h in model.history[:5]])
    last = np.mean([h["data"] for h in model.history[-5:]])
    assert last < first / 3, (first, last)
    # physics terms on padded batches: finite, and zero for padded-only changes
    windows = model.windows(collision_rollouts, unroll=3)
    batch = windows.batch(torch.arange(len(windows)))
    batch["laws"] = frozenset({"momentum_conserved", "energy_conserved"})
    values = model.losses(batch, unroll_mode="unrolled", options={},
                          terms=["momentum", "energy", "penetration"])
    assert all(bool(torch.isfinite(v)) for v in values.values()), values
    # trained on 2-4 spheres, predicts 6 (the OOD split)
    scenario = get_scenario("rigid/collision", render=False, num_frames=14)
    params = scenario.sample_params("test_ood", 3)
    params["num_spheres"] = 6.0
    truth = scenario.simulate([params], [3], "test_ood")[0]
    pred = model.predict(truth.context(6), 8)
    assert pred.check_against(truth.target(6, 8)) is None
    assert pred.states["pos"].shape == (8, 6, 3)
    assert np.isfinite(pred.states["pos"]).all()


def test_penetration_ignores_padded_entities(collision_rollouts):
    static = entity_static(collision_rollouts[:4])
    B, N = static.mass.shape
    x = torch.zeros(B, 2, N, 3)
    x[..., 2] = 1.0  # far above the ground
    x[..., 0] = torch.arange(N, dtype=torch.float32) * 1.0  # 1 m apart: no overlap
    state = L.EntityRollout(x=x[:, 1:], v=torch.zeros_like(x[:, 1:]), x0=x[:, 0],
                            v0=torch.zeros_like(x[:, 0]), static=static, dt=0.01)
    base = float(L.entity_physics_loss("penetration", state, laws=frozenset()))
    assert base == 0.0
    x2 = x.clone()
    x2[~static.real()[:, None].expand(B, 2, N)] = x[0, 0, 0]  # padded on a real sphere
    state.x, state.x0 = x2[:, 1:], x2[:, 0]
    assert float(L.entity_physics_loss("penetration", state, laws=frozenset())) == 0.0

