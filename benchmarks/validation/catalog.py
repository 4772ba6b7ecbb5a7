"""The built-in validation studies, registered lazily with their tags.

Studies tagged ``slow`` take more than ~10 s (their tests are marked slow); every other
study runs in the default test suite. Other ``study_*`` modules of this package are
imported here, so that they can register their own studies on import.
"""

from __future__ import annotations

import importlib
import pkgutil

from physground.benchmarks.validation.base import STUDIES

_PACKAGE = "physground.benchmarks.validation"
_BUILT_IN = {
    "bounce_restitution": ("study_rigid", ("rigid", "slow")),
    "pendulum_period": ("study_rigid", ("rigid",)),
    "incline_law": ("study_rigid", ("rigid",)),
    "elastic_collision": ("study_rigid", ("rigid",)),
    "dam_break_front": ("study_fluid", ("fluid", "slow")),
    "hydrostatic_density": ("study_fluid", ("fluid", "slow")),
}

for _name, (_module, _tags) in _BUILT_IN.items():
    STUDIES.register(_name, f"{_PACKAGE}.{_module}:{_name}", tags=_tags)

_OWN = {module for module, _ in _BUILT_IN.values()}
for _info in pkgutil.iter_modules(importlib.import_module(_PACKAGE).__path__):
    if _info.name.startswith("study_") and _info.name not in _OWN:
        importlib.import_module(f"{_PACKAGE}.{_info.name}")
