"""Physics-plausibility metrics: physical quantities (torch, differentiable), trajectory,
field and pixel metrics, normalized scores and statistics.

Modules: `quantities` (energies, momentum, penetration, strain, divergence, SPH density,
soft-mask moments; shared with the physics-consistency losses), `trajectory` (position
RMSE/ADE/FDE), `plausibility` (energy and momentum drift, penetration, gravity fit,
restitution, contact time, edge strain, density deviation, divergence), `fields` (nRMSE,
VRMSE, Fourier bands, correlation time), `pixels` (PSNR, SSIM, Physics-IQ motion masks,
object permanence, positions from frames), `physics_iq` (Physics-IQ parity mode,
``piq_*``), `evaluate` (tidy rows, failures, batching,
applicability), `scores` (baseline 0 / reference 100), `stats` (bootstrap, paired tests).

Every metric maps (full truth Rollout, Prediction) to one float64 value per horizon step.
A prediction that cannot be scored gets NaN rows with the reason (never dropped); rows
whose metric is undefined for the truth itself start with ``"undefined: "``.

Each metric is registered once, where it is defined (`registry.batched_metric`), with the
tags from which suites select (``state``, ``pixels``, ``rigid``, ``cloth``, ``fluid``,
``smoke``, ``sph``, ``accuracy``, ``plausibility``); the defining modules (and torch) load on
the first registry lookup. The scenarios each metric applies to follow from its required
states and laws (`physground.metrics.evaluate.metric_table`).
"""

from physground.metrics.registry import METRICS, Metric, get_metric

PHYSICS_IQ_TAG = "physics-iq"  # `physics_iq` metrics: only with --pixel-metrics physics-iq

__all__ = ["METRICS", "PHYSICS_IQ_TAG", "Metric", "get_metric"]
