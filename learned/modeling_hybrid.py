"""`hybrid-cloth`: the explicit differentiable Warp cloth step plus a learned correction
(solver-in-the-loop, Um et al. 2020).

Each frame runs the scenario's own mass-spring simulator with a coarse timestep
(``coarse_substeps`` substeps per frame instead of the ground truth's finer ones), through
`ClothTorchStep` (a torch.autograd.Function over `wp.Tape`), then a graph network that sees
the state and the simulator's proposed acceleration a_sim = (v_sim - v)/dt adds a
correction acceleration c:

    (x_s, v_s) = S_coarse(x_t, v_t),   v_{t+1} = v_s + c dt,   x_{t+1} = x_s + c dt^2 / 2

so the model is trained to close the gap between the coarse and the fine discretization.
The model sees only the `Observation` (mesh, pins, sphere, ground; no parameters), so the
simulator runs with the training set's *nominal* physics (mean stiffness, damping, mass,
wind, gravity, friction, drag: `nominal_cloth_physics`, fitted once in ``prepare`` and
stored in the config and checkpoint), in training and prediction alike, and the correction
also learns the gap between the nominal and each scene's own (latent) physics.
Gradients of a multi-step loss flow through the Warp tape into earlier corrections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import torch

from physground.errors import ValidationError
from physground.learned.configuration_hybrid import HybridConfig
from physground.learned.configuration_state_gnn import StateGNNConfig
from physground.learned.entities import EntityStatic
from physground.learned.modeling_state_gnn import ModelStateGNN, StateGNN
from physground.rollout import Rollout
from physground.world_model import Modality


class ModelHybridCloth(ModelStateGNN):
    """Coarse Warp cloth simulator corrected by a graph network (`hybrid-cloth`)."""

    name: ClassVar[str] = "hybrid-cloth"
    modalities: ClassVar[frozenset[Modality]] = frozenset({"state"})
    config_type: ClassVar[type] = HybridConfig
    config: HybridConfig  # type: ignore[assignment]

    def gnn_config(self) -> StateGNNConfig:
        return self.config.gnn()

    def _simulator(self, sources: Sequence[Any]) -> Any:
        """Coarse differentiable cloth stepper with the nominal physics for ``sources``
        (training rollouts, cached per list; or one observation, built per prediction)."""
        from physground.learned.teacher import TeacherWarpCloth

        if not sources[0].scenario.startswith("cloth/"):
            raise ValidationError(f"hybrid-cloth needs cloth rollouts, got "
                                  f"'{sources[0].scenario}'")
        if not self.config.nominal:
            raise ValidationError("hybrid-cloth has no nominal physics: prepare it on "
                                  "training rollouts or load a checkpoint")

        def build() -> Any:
            return TeacherWarpCloth(sources, device=self.device,
                                    substeps=self.config.coarse_substeps,
                                    nominal=self.config.nominal)

        if len(sources) == 1:
            return build()
        cache = self.__dict__.setdefault("_sims", {})
        key = (id(sources), len(sources))
        if key not in cache:
            if len(cache) > 8:
                cache.clear()
            cache[key] = build()
        return cache[key]

    def _step(self, net: StateGNN, sim: Any, x: torch.Tensor, vhist: torch.Tensor,
              static: EntityStatic, dt: float, rows: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        v = vhist[:, -1]
        xs, vs = sim(x, v, rows)
        a_sim = (vs - v) / dt
        correction = net(x, vhist, static, extra=a_sim)
        return xs + 0.5 * correction * dt * dt, vs + correction * dt

    def rollout(self, x: torch.Tensor, vhist: torch.Tensor, static: EntityStatic, dt: float,
                horizon: int, *, rows: torch.Tensor, sources: Sequence[Rollout],
                detach_inputs: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        net, sim = self.net, self._simulator(sources)
        xs, vs = [], []
        for _ in range(horizon):
            if detach_inputs:
                x, vhist = x.detach(), vhist.detach()
            x, v = self._step(net, sim, x, vhist, static, dt, rows)
            xs.append(x)
            vs.append(v)
            vhist = torch.cat([vhist[:, 1:], v[:, None]], dim=1)
        return torch.stack(xs, dim=1), torch.stack(vs, dim=1)

    def prepare(self, rollouts: Sequence[Rollout]) -> None:
        if self.module is not None:
            return
        from physground.learned.teacher import nominal_cloth_physics

        if not rollouts or not rollouts[0].scenario.startswith("cloth/"):
            raise ValidationError("hybrid-cloth needs cloth training rollouts")
        self.config = replace(self.config, nominal=nominal_cloth_physics(rollouts))
        windows = self._windows(rollouts, unroll=1, fitted=False)
        x, vhist, static = windows.tensors["x"], windows.tensors["vhist"], windows.static
        d = x.shape[-1]
        rows = windows.rows
        sub = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))[:64]
        st = static.index(rows[sub]).with_gravity(windows.tensors["gravity"][sub])
        sim = self._simulator(windows.info["rollouts"])
        with torch.no_grad():
            xs, vs = sim(x[sub], vhist[sub][:, -1], rows[sub])
        a_sim = (vs - vhist[sub][:, -1]) / windows.dt
        probe = StateGNN(replace(self.config.gnn(), node_in=1, edge_in=1, dim=d))
        node = probe.node_features(x[sub], vhist[sub], st, a_sim)
        self.config = replace(self.config, node_in=node.shape[-1],
                              edge_in=StateGNN.edge_size(d), dim=d)
        net = StateGNN(self.config.gnn()).to(self.device)
        last = net.decoder[-1]
        assert isinstance(last, torch.nn.Linear)
        torch.nn.init.zeros_(last.weight)  # start as the coarse simulator: zero correction
        torch.nn.init.zeros_(last.bias)
        _, _, efeat = net.graph(x[sub], vhist[sub][:, -1], st)
        net.node_norm.fit(node)
        if len(efeat):
            net.edge_norm.fit(efeat)
        moving = ~st.pinned
        residual = (windows.tensors["v_target"][sub, 0] - vs) / windows.dt
        net.accel_norm.fit(residual[moving], isotropic=True)
        net.accel_norm.mean.zero_()  # a correction: zero on average by construction
        full = (windows.tensors["v_target"][:, 0] - vhist[:, -1]) / windows.dt
        net.loss_scale.copy_(full[~static.index(rows).pinned].square().mean().sqrt()
                             .clamp_min(1e-3).expand(d))
        self.module = net
