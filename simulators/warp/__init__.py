"""NVIDIA Warp cloth and fluid scenarios (registered lazily; Warp loads on first use)."""

from physground.scenario import SCENARIOS  # noqa: F401
