"""Explicit simulators and their scenarios.

Each family subpackage registers its scenarios lazily (``"module:attr"`` strings) when
imported, so listing scenarios does not load MuJoCo or Warp until one is used.
"""

from physground.simulators import mujoco as _mujoco  # noqa: F401  (registers rigid/*)
from physground.simulators import newton as _newton  # noqa: F401  (granular/* if installed)
from physground.simulators import warp as _warp  # noqa: F401  (registers cloth/*, fluid/*)
