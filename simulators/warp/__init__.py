"""NVIDIA Warp cloth and fluid scenarios (registered lazily; Warp loads on first use).

Cloth (`cloth.py`): semi-implicit mass-spring sheets (hanging, drape, flag). Fluids:
2D Eulerian smoke (`smoke.py`) and 2D SPH dam break (`sph.py`). Each module also exposes a
torch-facing differentiable step (`ClothTorchStep`, `SmokeTorchStep`, `SPHTorchStep`).
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
