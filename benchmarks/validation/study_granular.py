"""Granular study: run-out of a collapsing sand column against the quasi-2D law.

* ``column_runout``: final run-out ``(L_f - L) / L`` of `granular/column_collapse` for
  several aspect ratios ``a = H / L`` against Lube et al. (2005), who collapsed columns of
  sand, rice and sugar in a narrow channel: ``1.2 a`` for ``a < 2.3`` and ``1.9 a^(2/3)``
  above. Registered only when the optional ``newton`` extra is installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from physground.benchmarks.validation.base import STUDIES, StudyResult
from physground.benchmarks.validation.figures import save_figure
from physground.simulators.newton import INSTALLED

TOLERANCE = 0.20  # relative; the scatter between materials and channels in the experiments
TRANSITION = 2.3  # aspect ratio where the law changes from linear to a^(2/3)


def lube_runout(aspect: np.ndarray | float) -> np.ndarray:
    """Normalised run-out (L_f - L) / L of a quasi-2D column of aspect ratio ``a``."""
    a = np.asarray(aspect, dtype=np.float64)
    return np.where(a < TRANSITION, 1.2 * a, 1.9 * a ** (2.0 / 3.0))


def column_runout(quick: bool, out_dir: Path) -> StudyResult:
    """Run-out at each aspect ratio (friction angle 30 deg, 1500 kg/m^3) against the law."""
    from physground.scenario import get_scenario

    aspects = (1.0, 3.0) if quick else (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
    rows, profiles = [], {}
    for a in aspects:
        scenario = get_scenario("granular/column_collapse", render=False, num_frames=60)
        (r,) = scenario.generate(
            [{"friction_angle": 30.0, "density": 1500.0, "aspect_ratio": a}], [0], "train")
        length = float(r.static["column"][0])
        x = r.states["x"]
        front = x[:, :, 0].max(axis=1)
        creep = abs(front[-1] - front[-6]) / length  # over the last 5 frames
        settled = creep <= 0.01
        broken = scenario.check(r)  # grains through the ground or a wall
        measured = (front[-1] - length) / length
        expected = float(lube_runout(a))
        rel = measured / expected - 1.0
        rows.append({"aspect_ratio": a, "runout_mpm": measured, "runout_lube": expected,
                     "rel_error": rel, "creep_last5_over_L": creep, "settled": bool(settled),
                     "contained": broken is None,
                     "passed": bool(settled and broken is None and abs(rel) <= TOLERANCE)})
        profiles[a] = x[-1]
    table = pd.DataFrame(rows)

    import matplotlib.pyplot as plt

    fig, (law, shape) = plt.subplots(1, 2, figsize=(9.0, 3.6))
    grid = np.linspace(0.3, 4.2, 200)
    law.plot(grid, lube_runout(grid), "k-", label="Lube et al. (2005)")
    law.fill_between(grid, (1 - TOLERANCE) * lube_runout(grid),
                     (1 + TOLERANCE) * lube_runout(grid), color="0.85", label="tolerance")
    law.plot(table["aspect_ratio"], table["runout_mpm"], "o", label="Newton MPM")
    law.set_xlabel("aspect ratio a = H / L (1)")
    law.set_ylabel("run-out (L_f - L) / L (1)")
    law.legend(fontsize=8)
    for a, final in profiles.items():
        shape.plot(final[:, 0], final[:, 2], ".", ms=2, label=f"a = {a:g}")
    shape.set_xlabel("x along the channel (m)")
    shape.set_ylabel("z height (m)")
    shape.set_aspect("equal")
    shape.legend(fontsize=8)
    figure = save_figure(fig, out_dir / "column_runout.png")
    worst = table.loc[table["rel_error"].abs().idxmax()]
    return StudyResult(
        name="column_runout",
        title="Granular column collapse: run-out against Lube et al. (2005)",
        reference="Lube, G., Huppert, H. E., Sparks, R. S. J. & Freundt, A. (2005), "
                  "Collapses of two-dimensional granular columns, Phys. Rev. E 72, 041301, "
                  "doi:10.1103/PhysRevE.72.041301",
        tolerance=f"|run-out / law - 1| <= {TOLERANCE:.0%} at every aspect ratio, and the "
                  "front settled (moved < 1 % of L over the last 5 frames) and no grain passed "
                  "through a wall or the ground",
        passed=bool(table["passed"].all()), table=table, figures=(figure,),
        summary=f"worst {100 * worst['rel_error']:+.1f} % at a = {worst['aspect_ratio']:g}",
        settings={"column": "L = 0.1 m, W = 0.04 m, H = a L", "friction_angle_deg": 30.0,
                  "density": 1500.0, "voxel_m": 0.02, "particles_per_cell": 2,
                  "walls": "frictionless back and side walls, ground mu = tan 30 deg",
                  "front": "largest particle x after 2 s"},
    )


if INSTALLED:
    STUDIES.register("column_runout", f"{__name__}:column_runout", tags=("granular", "slow"))
