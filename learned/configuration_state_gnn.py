"""Configuration of the `state-gnn` world model (see `modeling_state_gnn`)."""

from __future__ import annotations

from dataclasses import dataclass

from physground.errors import ValidationError


@dataclass(frozen=True, kw_only=True)
class StateGNNConfig:
    """Encode-process-decode graph network over entities (bodies, cloth nodes, particles).

    ``history``: velocity frames seen per step; ``hidden``/``layers``: latent width and
    message-passing steps; ``connect_radius``: proximity-edge cutoff in m (0: automatic,
    the SPH smoothing length for SPH particles, all pairs for up to ``all_pairs_max`` bodies
    without a mesh, ``PARTICLE_REACH`` radii for more sized particles without a mesh such as
    grains, none otherwise); ``clearance_clip``: ground clearance feature is
    clipped at this height (m); ``gravity_frames``: the last frames the gravity feature is
    inferred from (median acceleration of the free entities, `infer_gravity`: gravity is
    latent, never read from the statics). ``node_in``/``edge_in``/``dim`` are inferred
    from data when the model is first prepared (0 until then) and stored in checkpoints.
    ``undirected_mesh``: each mesh spring is one edge (features from its first node to its
    second), whose latent reaches its receiver as it is and its sender with the sign of
    the last half of its channels flipped (equal and opposite, as a spring's force): half
    the edge work of the default, one directed edge each way. ``compile_rollout``:
    predictions (no gradients) step through ``torch.compile`` (`compiled_rollout_step`;
    the same function fused, faster on small graphs after a compile of seconds per input
    shape; needs a C++ compiler on CPU).
    """

    history: int = 3
    hidden: int = 64
    layers: int = 2
    connect_radius: float = 0.0
    all_pairs_max: int = 32
    clearance_clip: float = 2.0
    gravity_frames: int = 6
    undirected_mesh: bool = False
    compile_rollout: bool = False
    node_in: int = 0
    edge_in: int = 0
    dim: int = 0

    def __post_init__(self) -> None:
        if self.history < 1:
            raise ValidationError(f"state-gnn history = {self.history}, expected >= 1 frames")
        if self.hidden < 1 or self.layers < 0:
            raise ValidationError(
                f"state-gnn hidden = {self.hidden}, layers = {self.layers}: expected "
                "hidden >= 1 and layers >= 0"
            )
        if self.gravity_frames < 2:
            raise ValidationError(f"state-gnn gravity_frames = {self.gravity_frames}, "
                                  "expected >= 2 (an acceleration needs two frames)")
        if self.connect_radius < 0 or self.clearance_clip <= 0:
            raise ValidationError(
                f"state-gnn connect_radius = {self.connect_radius} m must be >= 0 and "
                f"clearance_clip = {self.clearance_clip} m > 0"
            )
