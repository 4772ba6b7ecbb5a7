"""Physics-consistency losses: zero on exact physics, positive on perturbed rollouts, and
differentiable down to the model parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_learned_fixtures import DT, ballistic_rollout, blob_masks, one_torch_thread, sheet_rollout  # noqa: F401

from physground.errors import ValidationError
from physground.learned import losses as L
from physground.learned.entities import EntityStatic, entity_states, entity_static
from physground.learned.training import TrainConfig, train

RIGID_LAWS = frozenset({"ballistic", "energy_nonincreasing", "non_penetration"})


def _state(rollouts, *, perturb=None, dtype=torch.float64) -> L.EntityRollout:
    xs, vs = zip(*(entity_states(r, dtype=dtype) for r in rollouts), strict=True)
    x, v = torch.stack(xs), torch.stack(vs)
    if perturb is not None:
        x, v = perturb(x, v)
    static = entity_static(rollouts)
    static = EntityStatic(**{k: (getattr(static, k).to(dtype)
                                 if getattr(static, k) is not None
                                 and getattr(static, k).is_floating_point()
                                 else getattr(static, k))
                             for k in static.__dataclass_fields__})
    return L.EntityRollout(x=x[:, 1:], v=v[:, 1:], x0=x[:, 0], v0=v[:, 0], static=static, dt=DT)


def _noise(scale):
    gen = torch.Generator().manual_seed(0)

    def perturb(x, v):
        return (x + scale * torch.randn(x.shape, generator=gen, dtype=x.dtype),
                v + scale / DT * torch.randn(v.shape, generator=gen, dtype=v.dtype))

    return perturb


@pytest.mark.parametrize("term,laws", [
    ("energy", frozenset({"energy_conserved"})),
    ("energy", frozenset({"energy_nonincreasing"})),
    ("ballistic", RIGID_LAWS),
    ("penetration", RIGID_LAWS),
])
def test_rigid_losses_zero_on_ballistic_truth_positive_when_perturbed(term, laws):
    rollouts = [ballistic_rollout(s) for s in range(3)]
    truth = L.entity_physics_loss(term, _state(rollouts), laws=laws)
    assert float(truth) < 1e-12
    if term == "penetration":  # sink the ball 5 cm into the ground
        def perturb(x, v):
            return x - torch.tensor([0, 0, x[..., 2].max() + 0.05], dtype=x.dtype), v
    else:
        perturb = _noise(0.01)
    bad = L.entity_physics_loss(term, _state(rollouts, perturb=perturb), laws=laws)
    assert float(bad) > 1e-4


def test_momentum_zero_for_uniform_motion_positive_when_perturbed():
    rollouts = []
    for s in range(2):  # two bodies gliding without gravity: momentum constant
        r = ballistic_rollout(s, gravity=0.0)
        states = {k: np.concatenate([v, v + 1.0], axis=1) if k in ("pos",) else
                  np.concatenate([v, v], axis=1) for k, v in r.states.items()}
        static = {**r.static, "mass": np.array([1.0, 2.0]), "radius": np.array([0.1, 0.1])}
        rollouts.append(type(r)(**{**r.__dict__, "states": states, "static": static}))
    laws = frozenset({"momentum_conserved"})
    assert float(L.entity_physics_loss("momentum", _state(rollouts), laws=laws)) < 1e-20
    bad = L.entity_physics_loss("momentum", _state(rollouts, perturb=_noise(0.01)), laws=laws)
    assert float(bad) > 1e-4


def test_strain_zero_for_rigid_sheet_positive_when_stretched():
    rollouts = [sheet_rollout(s) for s in range(2)]
    laws = frozenset({"inextensible"})
    assert float(L.entity_physics_loss("strain", _state(rollouts), laws=laws)) < 1e-12

    def stretch(x, v):  # scale by 1.1 about the centre: strain 0.1 on every edge
        centre = x.mean(-2, keepdim=True)
        return centre + 1.1 * (x - centre), v

    bad = L.entity_physics_loss("strain", _state(rollouts, perturb=stretch), laws=laws)
    assert float(bad) == pytest.approx(0.01, rel=1e-6)


def test_density_zero_at_rest_density_positive_when_compressed():
    side = np.arange(6) * 0.05
    grid = np.stack(np.meshgrid(side, side), -1).reshape(-1, 2)
    x = torch.as_tensor(np.repeat(grid[None, None], 3, axis=1))  # [1,3,N,2]
    n = grid.shape[0]
    from physground.metrics.quantities import sph_density

    h = 0.05
    rho0 = float(sph_density(x[0, 0], 1.0, h).max())
    static = EntityStatic(
        mass=torch.ones(1, n, dtype=torch.float64), radius=torch.zeros(1, n, dtype=torch.float64),
        pinned=torch.zeros(1, n, dtype=torch.bool), gravity=torch.zeros(1, 2, dtype=torch.float64),
        ground_height=torch.full((1,), float("nan")), smoothing_length=torch.tensor([h]),
        rest_density=torch.tensor([rho0]), box=torch.full((1, 4), float("nan")))
    v = torch.zeros_like(x)
    state = L.EntityRollout(x=x[:, 1:], v=v[:, 1:], x0=x[:, 0], v0=v[:, 0], static=static, dt=DT)
    assert float(L.entity_physics_loss("density", state, laws=frozenset())) < 1e-12
    squeezed = L.EntityRollout(x=0.8 * x[:, 1:], v=v[:, 1:], x0=x[:, 0], v0=v[:, 0],
                               static=static, dt=DT)
    assert float(L.entity_physics_loss("density", squeezed, laws=frozenset())) > 1e-2


def test_penetration_of_sph_particles_measured_in_smoothing_lengths():
    # two point particles (radius 0) of an SPH fluid in a unit box, one 1 cm past the
    # right wall: the wall term is mean((overshoot / h)^2) over (frame, particle, axis)
    h = 0.04
    x = torch.tensor([[[[0.5, 0.5], [1.01, 0.5]]]], dtype=torch.float64)  # [1,1,2,2]
    static = EntityStatic(
        mass=torch.ones(1, 2, dtype=torch.float64), radius=torch.zeros(1, 2, dtype=torch.float64),
        pinned=torch.zeros(1, 2, dtype=torch.bool), gravity=torch.zeros(1, 2, dtype=torch.float64),
        ground_height=torch.full((1,), float("nan")), smoothing_length=torch.tensor([h]),
        rest_density=torch.tensor([1000.0]),
        box=torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64))
    inside = x.clone()
    inside[..., 1, 0] = 0.9
    v = torch.zeros_like(x)
    # the starting state (x0) lies inside, so only the predicted frame counts: T = 2
    state = L.EntityRollout(x=x, v=v, x0=inside[:, 0], v0=v[:, 0], static=static, dt=DT)
    got = float(L.entity_physics_loss("penetration", state, laws=frozenset()))
    assert got == pytest.approx((0.01 / h) ** 2 / (2 * 2 * 2), rel=1e-6)


def test_divergence_loss_zero_for_rotation_positive_for_source():
    s = torch.linspace(-1, 1, 16, dtype=torch.float64)
    yy, xx = torch.meshgrid(s, s, indexing="ij")
    rotation = torch.stack([-yy, xx], dim=-1)  # div = 0 exactly
    source = torch.stack([xx, yy], dim=-1)  # div = 2
    dx = float(s[1] - s[0])
    assert float(L.divergence_loss(rotation, dx)) < 1e-24
    assert float(L.divergence_loss(source, dx)) > 1e-3


def test_pixel_losses_zero_on_parabolic_blob_positive_when_perturbed():
    masks, _ = blob_masks(8, gravity_px=60.0)
    m = torch.as_tensor(masks)[None]
    g = torch.tensor([[0.0, 60.0]], dtype=torch.float64)
    assert float(L.pixel_physics_loss("centroid_gravity", m, gravity_px=g, dt=DT)) < 1e-5
    assert float(L.pixel_physics_loss("permanence", m)) < 1e-8
    wrong, _ = blob_masks(8, gravity_px=20.0)
    bad = L.pixel_physics_loss("centroid_gravity", torch.as_tensor(wrong)[None], gravity_px=g,
                               dt=DT)
    assert float(bad) > 0.1  # (60 - 20)^2 / 60^2 = 0.44
    shrink, _ = blob_masks(8, radius_scale=0.7)
    mixed = torch.as_tensor(np.concatenate([masks[:4], shrink[4:]]))[None]
    assert float(L.pixel_physics_loss("permanence", mixed)) > 1e-2


@pytest.mark.parametrize("name", ["rigid/projectile", "rigid/collision"])
def test_teacher_zero_on_mujoco_truth(name):
    """Free-jointed (projectile) and slide-jointed planar bodies (collision): the teacher
    stepped from the true state reproduces the next true state."""
    from physground.learned.teacher import make_teacher
    from physground.scenario import get_scenario

    scenario = get_scenario(name, render=False, num_frames=30)
    rollouts = scenario.generate([scenario.sample_params("train", s) for s in (1, 2)],
                                 [1, 2], "train")

    truth = _state([r.time_slice(0, 8) for r in rollouts])
    truth.teacher, truth.rows = make_teacher(rollouts), torch.tensor([0, 1])
    assert float(L.entity_physics_loss("teacher", truth, laws=RIGID_LAWS)) < 1e-10
    bad = _state([r.time_slice(0, 8) for r in rollouts], perturb=_noise(0.01))
    bad.teacher, bad.rows = truth.teacher, truth.rows
    assert float(L.entity_physics_loss("teacher", bad, laws=RIGID_LAWS)) > 1e-3


def test_inapplicable_and_unknown_terms_are_rejected():
    state = _state([ballistic_rollout(0)])
    with pytest.raises(ValidationError, match="momentum_conserved"):
        L.entity_physics_loss("momentum", state, laws=RIGID_LAWS, scenario="rigid/projectile")
    with pytest.raises(ValidationError, match="unknown state physics loss"):
        L.entity_physics_loss("enrgy", state, laws=RIGID_LAWS)


@pytest.mark.parametrize("term", ["energy", "ballistic", "penetration", "strain"])
def test_gradient_flows_from_each_loss_to_model_parameters(term):
    rollouts = ([sheet_rollout(s) for s in range(2)] if term == "strain"
                else [ballistic_rollout(s) for s in range(2)])
    model = train(TrainConfig(steps=0, progress=False), rollouts)
    windows = model.windows(rollouts, unroll=3)
    batch = windows.batch(torch.arange(4))
    if term == "penetration":  # start below the ground so the penetration is active
        batch["x"] = batch["x"] - torch.tensor([0.0, 0.0, 6.0])
    laws = frozenset({"energy_conserved", "ballistic", "inextensible", "non_penetration"})
    batch["laws"] = laws
    values = model.losses(batch, unroll_mode="unrolled", terms=[term], options={})
    model.net.zero_grad()
    values[term].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0


def test_teacher_sets_slide_joints_from_world_positions_and_rejects_hinges():
    """A body on x and y slide joints with a joint reference (qpos0 = 0.2) placed at world
    (1.5, -0.5, 0.3): the slide coordinates are the displacements from its qpos0 pose; a
    hinge-jointed body is refused by name."""
    import mujoco

    from physground.learned.teacher import set_body_state

    model = mujoco.MjModel.from_xml_string("""<mujoco><worldbody>
      <body name="puck" pos="1 0 0.3"><joint type="slide" axis="1 0 0" ref="0.2"/>
        <joint type="slide" axis="0 1 0"/><geom size="0.1"/></body>
      <body name="door"><joint type="hinge" axis="0 0 1"/><geom size="0.1"/></body>
    </worldbody></mujoco>""")
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    puck = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "puck")
    set_body_state(model, data, puck, np.array([1.5, -0.5, 0.3]), np.array([2.0, 3.0, 0.0]))
    np.testing.assert_allclose(data.qpos[:2], [0.7, -0.5])
    np.testing.assert_allclose(data.qvel[:2], [2.0, 3.0])
    mujoco.mj_kinematics(model, data)
    np.testing.assert_allclose(data.xpos[puck], [1.5, -0.5, 0.3], atol=1e-12)
    door = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "door")
    with pytest.raises(ValidationError, match="body door has a mjJNT_HINGE joint"):
        set_body_state(model, data, door, np.zeros(3), np.zeros(3))
