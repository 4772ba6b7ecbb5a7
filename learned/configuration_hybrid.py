"""Configuration of the `hybrid-cloth` world model (see `modeling_hybrid`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from physground.errors import ValidationError
from physground.learned.configuration_state_gnn import StateGNNConfig


@dataclass(frozen=True, kw_only=True)
class HybridConfig:
    """Coarse differentiable Warp cloth step plus a graph-network correction.

    ``coarse_substeps``: substeps per frame of the explicit step (the ground truth uses more,
    e.g. 80); the remaining fields configure the correction network as in `StateGNNConfig`
    (``node_in``/``edge_in``/``dim`` are inferred from data). ``nominal``: the training
    set's mean cloth physics the coarse step runs with (fitted in ``prepare``; the model
    never sees a scene's own parameters).
    """

    coarse_substeps: int = 40
    history: int = 1
    hidden: int = 64
    layers: int = 2
    connect_radius: float = 0.0
    all_pairs_max: int = 32
    clearance_clip: float = 2.0
    gravity_frames: int = 6
    node_in: int = 0
    edge_in: int = 0
    dim: int = 0
    nominal: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.coarse_substeps < 1:
            raise ValidationError(f"hybrid coarse_substeps = {self.coarse_substeps}, "
                                  "expected >= 1")
        self.gnn()  # validates the network fields

    def gnn(self) -> StateGNNConfig:
        """The correction network's config."""
        return StateGNNConfig(
            history=self.history, hidden=self.hidden, layers=self.layers,
            connect_radius=self.connect_radius, all_pairs_max=self.all_pairs_max,
            clearance_clip=self.clearance_clip, gravity_frames=self.gravity_frames,
            node_in=self.node_in, edge_in=self.edge_in,
            dim=self.dim,
        )
