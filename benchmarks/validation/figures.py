"""Figure output shared by the validation studies (headless Agg backend, atomic write)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` as a 150-dpi PNG at ``path`` (via a temp file, then rename); close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=150, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path
