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

Importing this package registers every built-in metric lazily (``"module:attr"``) with
tags from which suites select (``state``, ``pixels``, ``rigid``, ``cloth``, ``fluid``,
``smoke``, ``sph``, ``accuracy``, ``plausibility``); torch loads on first use. The scenarios
each metric applies to follow from its required states and laws
(`physground.metrics.evaluate.metric_table`).
"""

from physground.metrics.registry import METRICS, Metric, get_metric

_M = "physground.metrics"
PHYSICS_IQ_TAG = "physics-iq"  # `physics_iq` metrics: only with --pixel-metrics physics-iq

# name -> (module:attr, tags)
_BUILTIN: dict[str, tuple[str, tuple[str, ...]]] = {
    "position_rmse": (f"{_M}.trajectory:position_rmse",
                      ("state", "accuracy", "rigid", "cloth", "sph")),
    "position_ade": (f"{_M}.trajectory:position_ade",
                     ("state", "accuracy", "rigid", "cloth", "sph")),
    "position_fde": (f"{_M}.trajectory:position_fde",
                     ("state", "accuracy", "rigid", "cloth", "sph")),
    "energy_drift": (f"{_M}.plausibility:energy_drift",
                     ("state", "plausibility", "rigid", "cloth")),
    "momentum_drift": (f"{_M}.plausibility:momentum_drift",
                       ("state", "plausibility", "rigid", "cloth", "sph")),
    "penetration_depth": (f"{_M}.plausibility:penetration_depth",
                          ("state", "plausibility", "rigid")),
    "penetration_frequency": (f"{_M}.plausibility:penetration_frequency",
                              ("state", "plausibility", "rigid")),
    "gravity_error": (f"{_M}.plausibility:gravity_error", ("state", "plausibility", "rigid")),
    "restitution_error": (f"{_M}.plausibility:restitution_error",
                          ("state", "plausibility", "rigid")),
    "contact_time_error": (f"{_M}.plausibility:contact_time_error",
                           ("state", "plausibility", "rigid")),
    "edge_strain": (f"{_M}.plausibility:edge_strain", ("state", "plausibility", "cloth")),
    "density_deviation": (f"{_M}.plausibility:density_deviation",
                          ("state", "plausibility", "fluid", "sph")),
    "divergence_norm": (f"{_M}.plausibility:divergence_norm",
                        ("state", "plausibility", "fluid", "smoke")),
}
_PIXELS = {"psnr": "psnr", "ssim": "ssim_metric", "pixel_mse": "pixel_mse",
           # running: the value at step t covers steps 1..t (Physics-IQ's at t = H)
           "spatial_iou_running": "spatial_iou",
           "spatiotemporal_iou_running": "spatiotemporal_iou",
           "weighted_spatial_iou_running": "weighted_spatial_iou"}
for _name, _attr in _PIXELS.items():
    _BUILTIN[_name] = (f"{_M}.pixels:{_attr}", ("pixels", "accuracy"))
for _name in ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse"):
    _BUILTIN[f"piq_{_name}"] = (f"{_M}.physics_iq:piq_{_name}",
                                ("pixels", "accuracy", PHYSICS_IQ_TAG))
_BUILTIN["object_permanence"] = (f"{_M}.pixels:object_permanence", ("pixels", "plausibility"))
for _field in ("density", "velocity"):
    for _kind in ("nrmse", "vrmse", "spectral_low", "spectral_mid", "spectral_high",
                  "correlation_time"):
        _BUILTIN[f"{_field}_{_kind}"] = (f"{_M}.fields:{_field}_{_kind}",
                                         ("state", "accuracy", "fluid", "smoke"))
for _name, (_target, _tags) in _BUILTIN.items():
    METRICS.register(_name, _target, tags=_tags)

__all__ = ["METRICS", "PHYSICS_IQ_TAG", "Metric", "get_metric"]
