"""The `state-gnn` model and the training loop: overfitting, checkpoints, resume, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_learned_fixtures import ballistic_rollout, one_torch_thread, sheet_rollout  # noqa: F401

from physground.errors import ValidationError
from physground.learned.modeling_state_gnn import ModelStateGNN
from physground.learned.training import TrainConfig, finetune, load_model, train
from physground.world_model import MODELS, WorldModel

SMALL = {"hidden": 32, "layers": 1}


def _config(**kw) -> TrainConfig:
    base = dict(steps=60, lr=3e-3, lr_final=3e-3, batch_size=8, unroll=2, progress=False,
                log_every=1, model_config=SMALL)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("make", [ballistic_rollout, sheet_rollout])
def test_state_gnn_overfits_tiny_dataset(make):
    """The data loss on 2 rollouts falls by at least 10x in 150 steps."""
    rollouts = [make(s) for s in range(2)]
    model = train(_config(steps=150), rollouts)
    first = np.mean([h["data"] for h in model.history[:5]])
    last = np.mean([h["data"] for h in model.history[-5:]])
    assert last < first / 10, (first, last)


def test_registered_and_predicts_valid_prediction():
    assert MODELS.get("state-gnn") is ModelStateGNN
    rollouts = [ballistic_rollout(s) for s in range(2)]
    model = train(_config(steps=2), rollouts)
    assert isinstance(model, WorldModel)
    truth = ballistic_rollout(5)
    pred = model.predict(truth.context(5), 10)
    assert pred.check_against(truth.target(5, 10)) is None
    assert set(pred.states) == set(truth.states)
    # no angular velocity: orientation stays the identity
    np.testing.assert_allclose(pred.states["quat"], truth.states["quat"][5:15])


def test_checkpoint_round_trip_reproduces_predictions_exactly(tmp_path):
    rollouts = [sheet_rollout(s) for s in range(2)]
    model = train(_config(steps=3), rollouts)
    model.save(tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert isinstance(loaded, ModelStateGNN) and loaded.config == model.config
    context = sheet_rollout(7).context(4)
    a, b = model.predict(context, 6), loaded.predict(context, 6)
    for key in a.states:
        np.testing.assert_array_equal(a.states[key], b.states[key])


def test_resume_continues_bit_exactly(tmp_path):
    rollouts = [ballistic_rollout(s) for s in range(3)]
    straight = train(_config(steps=8), rollouts)
    cfg = _config(steps=4, checkpoint_dir=str(tmp_path / "run"))
    train(cfg, rollouts)
    resumed = train(_config(steps=8, checkpoint_dir=str(tmp_path / "run"), resume=True),
                    rollouts)
    assert resumed.trained_steps == 8
    for (name, p), q in zip(straight.net.state_dict().items(),
                            resumed.net.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
    assert (tmp_path / "run" / "log.jsonl").read_text().count("\n") == 8


def test_finetune_adds_physics_terms_and_logs_each(tmp_path):
    rollouts = [ballistic_rollout(s) for s in range(2)]
    train(_config(steps=2, checkpoint_dir=str(tmp_path / "base")), rollouts)
    tuned = finetune(_config(steps=3, loss_weights={"data": 1.0, "ballistic": 0.5,
                                                    "energy": 0.1}),
                     tmp_path / "base", rollouts)
    assert tuned.trained_steps == 5
    assert {"data", "ballistic", "energy", "loss"} <= set(tuned.history[-1])


def test_pushforward_and_unrolled_training_run():
    rollouts = [ballistic_rollout(s) for s in range(2)]
    for mode in ("pushforward", "unrolled"):
        model = train(_config(steps=3, unroll=3, unroll_mode=mode), rollouts)
        assert np.isfinite(model.history[-1]["data"])


def test_same_seed_same_weights():
    rollouts = [ballistic_rollout(s) for s in range(2)]
    a, b = (train(_config(steps=5, seed=3), rollouts) for _ in range(2))
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValidationError, match="unroll_mode"):
        TrainConfig(unroll_mode="teacher-forcing")
    with pytest.raises(ValidationError, match="several scenarios"):
        train(_config(steps=1), [ballistic_rollout(0), sheet_rollout(0)])
    with pytest.raises(ValidationError, match="untrained"):
        ModelStateGNN().predict(ballistic_rollout(0).context(3), 2)
    with pytest.raises(ValidationError, match="resume"):
        TrainConfig(resume=True)


def test_gravity_is_inferred_from_the_context_motion():
    """The latent gravity is fitted from free-flight accelerations (exact for a ballistic
    body) and stays right when a minority of bodies rests on the ground (a = 0)."""
    from physground.learned.entities import infer_gravity

    truth = ballistic_rollout(0, gravity=17.3)
    obs = truth.context(6)
    assert "gravity" not in obs.static
    v = torch.as_tensor(np.array(obs.states["vel"]), dtype=torch.float64)
    g = infer_gravity(v, obs.dt, torch.zeros(1, dtype=torch.bool), frames=6)
    np.testing.assert_allclose(g.numpy(), [0.0, 0.0, -17.3], atol=1e-9)
    flying = [torch.as_tensor(ballistic_rollout(s, gravity=17.3).states["vel"][:6])
              for s in range(3)]
    resting = torch.zeros(6, 1, 3, dtype=torch.float64)
    many = torch.cat([*flying, resting], dim=1)
    np.testing.assert_allclose(infer_gravity(many, obs.dt, torch.zeros(4, dtype=torch.bool),
                                             frames=6).numpy(), [0, 0, -17.3], atol=1e-9)
    # pinned entities (held still) are left out; one frame gives no acceleration
    pinned = torch.tensor([False, False, False, True])
    np.testing.assert_allclose(infer_gravity(torch.cat([*flying, resting], 1), obs.dt,
                                             pinned, frames=6).numpy(), [0, 0, -17.3],
                               atol=1e-9)
    assert infer_gravity(many[:1], obs.dt, pinned, frames=6).abs().sum() == 0


def test_state_gnn_gravity_feature_comes_from_motion_not_statics():
    """Training windows carry the inferred gravity, equal to the truth's once two frames
    are seen, although the observed statics hold none."""
    model = ModelStateGNN()
    windows = model.windows([ballistic_rollout(0, gravity=12.0)], unroll=1)
    g = windows.tensors["gravity"]
    np.testing.assert_allclose(g[1:].numpy(), np.tile([0.0, 0.0, -12.0], (len(g) - 1, 1)),
                               atol=1e-4)
    assert float(windows.static.gravity.abs().sum()) == 0.0  # nothing read from statics
    assert float(windows.loss_static.gravity[0, 2]) == pytest.approx(-12.0)  # losses: truth
