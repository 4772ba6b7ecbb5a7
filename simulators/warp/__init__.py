"""NVIDIA Warp cloth and fluid scenarios (registered lazily; Warp loads on first use).

* ``cloth/hanging``, ``cloth/drape``, ``cloth/flag`` (`cloth.py`): semi-implicit
  mass-spring sheets with pins, wind drag, sphere and ground contact; z up.
* ``fluid/smoke`` (`smoke.py`): 2D MAC-grid Boussinesq smoke in a closed box; y up, row 0
  of the fields at the bottom.
* ``fluid/dam_break`` (`sph.py`): 2D weakly compressible SPH; y up.

Every scenario simulates its whole batch in one set of Warp launches, on ``cpu`` by
default or ``cuda``. Each module also exposes a differentiable torch step over `wp.Tape`
(`ClothTorchStep`, `SmokeTorchStep`, `SPHTorchStep`), buildable from a stored rollout.
"""

from physground.scenario import SCENARIOS

_MODULE = "physground.simulators.warp"
# name -> (module:attr, family tag)
_WARP = {
    "cloth/hanging": (f"{_MODULE}.cloth:ScenarioClothHanging", "cloth"),
    "cloth/drape": (f"{_MODULE}.cloth:ScenarioClothDrape", "cloth"),
    "cloth/flag": (f"{_MODULE}.cloth:ScenarioClothFlag", "cloth"),
    "fluid/smoke": (f"{_MODULE}.smoke:ScenarioSmoke", "fluid"),
    "fluid/dam_break": (f"{_MODULE}.sph:ScenarioDamBreak", "fluid"),
}
for _name, (_target, _family) in _WARP.items():
    SCENARIOS.register(_name, _target, tags=[_family, "warp", "benchmark"])
