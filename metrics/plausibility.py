"""Physical plausibility: quantities computed on the prediction itself, compared with the
same quantity computed on the truth.

Each metric evaluates one shared physical quantity (`physground.metrics.quantities`) on
both sides by the identical method, so discretization bias cancels, and reports their
difference per horizon step. Scalar estimates over the whole window (gravity fit,
restitution, first-contact time) are repeated at every step.
"""

from __future__ import annotations

import torch
from physground.metrics import quantities as q
from physground.metrics.batch import Batch, MissingInputError
from physground.metrics.registry import batched_metric

Tensor = torch.Tensor

ENERGY_LAWS = frozenset({"energy_conserved", "energy_nonincreasing"})
ENERGY_EPS = 1e-9  # J, floor of the energy scale


def _mass(batch: Batch) -> Tensor:
    return batch.require_static("mass", "particle_mass")


def _gravity(batch: Batch) -> Tensor:
    return batch.require_static("gravity")


def energies(batch: Batch) -> tuple[Tensor, Tensor]:
    """Mechanical energy ``K (+ K_rot) + U`` of (truth [R, C+H], pred [R, H]) in J.

    Rotational energy is included when both sides predict ``angvel`` and ``quat`` and the
    truth has static ``inertia``; otherwise both sides use translational energy only.
    """
    name = batch.position_name()
    x_truth, x_pred = batch.truth[name], batch.pred_positions()
    v_truth, v_pred = batch.velocities()
    mass = batch.static_like(_mass(batch), 3)
    gravity = batch.static_like(_gravity(batch), 4)
    e_truth = q.total_energy(x_truth, v_truth, mass, gravity)
    e_pred = q.total_energy(x_pred, v_pred, mass, gravity)
    rotational = ("angvel" in batch.pred and "quat" in batch.pred and "angvel" in batch.truth
                  and "quat" in batch.truth and "inertia" in batch.static)
    if rotational:
        inertia = batch.static_like(batch.static["inertia"], 4)
        e_truth = e_truth + q.rotational_energy(batch.truth["angvel"], batch.truth["quat"],
                                                inertia)
        e_pred = e_pred + q.rotational_energy(batch.pred["angvel"], batch.pred["quat"], inertia)
    return e_truth, e_pred


def energy_drift_batch(batch: Batch) -> Tensor:
    """``|E_pred(t) - E_true(t)| / max(|E_true(C-1)|, eps)``: relative energy error [R, H]."""
    e_truth, e_pred = energies(batch)
    scale = e_truth[:, batch.context - 1].abs().clamp_min(ENERGY_EPS)
    return (e_pred - e_truth[:, batch.context:]).abs() / scale.unsqueeze(1)


energy_drift = batched_metric(
    "energy_drift", energy_drift_batch, higher_is_better=False,
    requires_states=("pos|x",), requires_laws=ENERGY_LAWS, unit="1",
    derivable_from_pixels=True,
    description="|E_pred - E_true| / |E_true at the last context frame|, E = K + U (+ K_rot)",
)


__all__ = ["MissingInputError", "energies", "energy_drift"]
