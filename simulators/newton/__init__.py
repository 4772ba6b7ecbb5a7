"""Newton (NVIDIA's Warp-based engine) scenarios: granular, viscous and elastoplastic
materials through its implicit MPM solver (shared machinery in `mpm.py`). Optional: install
with ``pip install "physground[newton]"``. z up.

* ``granular/column_collapse`` (`granular.py`): a quasi-2D sand column collapsing along a
  channel;
* ``granular/obstacle`` (`obstacle.py`): the column collapsing onto a box across the channel;
* ``fluid/viscous_dam_break`` (`viscous.py`): a column of viscous fluid released in a tank;
* ``softbody/drop`` (`softbody.py`): an elastoplastic block dropped on the ground.

The scenarios are registered only when ``newton`` is importable (checked without importing
it); `require_newton` raises a one-line error naming the extra otherwise.
"""

import importlib.util

from physground.scenario import SCENARIOS

_MODULE = "physground.simulators.newton"
# name -> (module:attr, family tag)
_NEWTON = {
    "granular/column_collapse": (f"{_MODULE}.granular:ScenarioColumnCollapse", "granular"),
    "granular/obstacle": (f"{_MODULE}.obstacle:ScenarioGranularObstacle", "granular"),
    "fluid/viscous_dam_break": (f"{_MODULE}.viscous:ScenarioViscousDamBreak", "fluid"),
    "softbody/drop": (f"{_MODULE}.softbody:ScenarioSoftbodyDrop", "softbody"),
}
INSTALLED = importlib.util.find_spec("newton") is not None
MISSING = ('Newton scenarios need the optional extra: pip install "physground[newton]" '
           "(newton is not importable)")

if INSTALLED:
    for _name, (_target, _family) in _NEWTON.items():
        SCENARIOS.register(_name, _target, tags=[_family, "newton", "mpm", "benchmark"])
