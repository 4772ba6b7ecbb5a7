"""Physics-plausibility metrics: physical quantities (torch, differentiable), trajectory,
field and pixel metrics, normalized scores and statistics.

Importing this package registers every built-in metric lazily (``"module:attr"``) with
tags from which suites select (``state``, ``pixels``, ``rigid``, ``cloth``, ``fluid``,
``sph``, ``accuracy``, ``plausibility``); torch loads on first use.
"""

from physground.metrics.registry import METRICS, Metric, get_metric

_M = "physground.metrics"

# name -> (module:attr, tags)
_BUILTIN: dict[str, tuple[str, tuple[str, ...]]] = {
    "position_rmse": (f"{_M}.trajectory:position_rmse",
                      ("state", "accuracy", "rigid", "cloth", "sph")),
    "position_ade": (f"{_M}.trajectory:position_ade",
                     ("state", "accuracy", "rigid", "cloth", "sph")),
    "position_fde": (f"{_M}.trajectory:position_fde",
                     ("state", "accuracy", "rigid", "cloth", "sph")),
    "energy_drift": (f"{_M}.plausibility:energy_drift", ("state", "plausibility", "rigid")),
}
for _name, (_target, _tags) in _BUILTIN.items():
    METRICS.register(_name, _target, tags=_tags)

__all__ = ["METRICS", "Metric", "get_metric"]
