"""Newton (NVIDIA's Warp-based engine) scenarios: granular materials through its implicit MPM
solver. Optional: install with ``pip install "physground[newton]"``.

* ``granular/column_collapse`` (`granular.py`): a quasi-2D sand column collapsing along a
  channel; z up.

The scenarios are registered only when ``newton`` is importable (checked without importing
it); `require_newton` raises a one-line error naming the extra otherwise.
"""

import importlib.util

from physground.scenario import SCENARIOS

_MODULE = "physground.simulators.newton"
# name -> (module:attr, family tag)
_NEWTON = {
    "granular/column_collapse": (f"{_MODULE}.granular:ScenarioColumnCollapse", "granular"),
}
INSTALLED = importlib.util.find_spec("newton") is not None
MISSING = ('Newton scenarios need the optional extra: pip install "physground[newton]" '
           "(newton is not importable)")

if INSTALLED:
    for _name, (_target, _family) in _NEWTON.items():
        SCENARIOS.register(_name, _target, tags=[_family, "newton", "benchmark"])
