"""physground: physics-grounded benchmark and training suite for learned world models.

Explicit simulators (MuJoCo, NVIDIA Warp) produce exact ground-truth rollouts; learned
world models are scored against them and fine-tuned with physics-consistency losses.
"""

from importlib.metadata import PackageNotFoundError, version

from physground.errors import PhysgroundError
from physground.observation import Observation
from physground.rollout import Camera, Prediction, Rollout

try:
    __version__ = version("physground")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["Camera", "Observation", "PhysgroundError", "Prediction", "Rollout",
           "__version__"]
