"""Speed of the Warp simulators against Warp's own cloth benchmark and fluid example, side
by side in one run, per element update.

1. Cloth: `SimulatorWarpCloth` (springs, per-cell drag, bending, contacts, one
   captured graph per frame) against the Warp integrator of the installed Warp's
   ``warp/examples/benchmarks/benchmark_cloth.py`` (its ``Cloth`` mesh and
   ``benchmark_cloth_warp.WpIntegrator``, driven directly: that script imports USD and runs
   at module level, so only its ``Cloth`` class is compiled from it), at 32^2, 64^2 and
   128^2 nodes, 16 substeps per 1/60 s frame. Reported: node updates per second and spring
   updates per second, and their ratios (ours / Warp's). Ours does more per node: Warp's
   mesh has 5.7-5.9 springs per node (stretch, shear and bend springs) and nothing else, ours
   3.8-4.0 springs plus per-cell drag, a bending energy and contact tests, so the spring
   ratio understates and the node ratio is the like-for-like figure per element update.
2. Smoke: `SimulatorWarpSmoke` (MUSCL density, MacCormack velocity, red-black SOR) against
   ``warp/examples/core/example_fluid.py`` (``Example.step``) on a 32^2 grid with the same
   number of pressure sweeps (one sweep updates every cell once: a red-black iteration or a
   Jacobi iteration), 2 substeps per frame. Reported: cell updates per second and ratio.

Both sides run as shipped: Warp's launch kernel by kernel from Python (its fluid example
replays a captured graph of the pressure iterations), ours replay their captured frame
graph (captured once per simulator and reused). Timings are interleaved pairs (Warp's,
then ours); rates are the best of the repeats and ratios the median over the pairs, so a
load spike on a shared machine hits both sides alike.

Run: ``python -m physground.benchmarks.speed.bench_warp [--frames 20] [--sweeps 60]``.
Warp's benchmark module clears the kernel cache on import; that call is suppressed here.
Everything is compiled once before timing.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import io
import sys
import time
import types
import unittest.mock
from collections.abc import Callable
from pathlib import Path

import numpy as np
import warp as wp


def _paired(theirs: Callable[[], object], ours: Callable[[], object],
            repeat: int) -> tuple[float, float, float]:
    """Interleaved timings of two workloads: best wall time of each (s) and the median over
    the ``repeat`` pairs of ``t_theirs / t_ours`` (each pair runs back to back, so both see
    about the same load on a shared machine)."""
    pairs = []
    for _ in range(repeat):
        times = []
        for fn in (theirs, ours):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        pairs.append(times)
    t = np.array(pairs)
    return float(t[:, 0].min()), float(t[:, 1].min()), float(np.median(t[:, 0] / t[:, 1]))


def _warp_examples() -> Path:
    return Path(wp.__file__).parent / "examples"


def warp_cloth_builder() -> type:
    """The ``Cloth`` mesh builder class of the installed Warp's ``benchmark_cloth.py``.

    That script runs its benchmark (and imports USD) at module level, so only its ``Cloth``
    class definition is compiled, from the installed file, with NumPy as its one global."""
    path = _warp_examples() / "benchmarks" / "benchmark_cloth.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Cloth")
    namespace: dict[str, object] = {"np": np}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), namespace)
    return namespace["Cloth"]  # type: ignore[return-value]


def warp_cloth_integrator() -> types.ModuleType:
    """``benchmark_cloth_warp`` (the ``WpIntegrator`` class) of the installed Warp."""
    folder = str(_warp_examples() / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    # It calls wp.clear_kernel_cache() on import: keep the (shared) kernel cache intact.
    with unittest.mock.patch.object(wp, "clear_kernel_cache", lambda: None):
        return importlib.import_module("benchmark_cloth_warp")


def bench_cloth_pair(dim: int, frames: int, repeat: int) -> dict[str, float]:
    """Rates of Warp's integrator and ours on the same ``dim x dim`` sheet."""
    from physground.simulators.warp.cloth import ClothEnvParams, SimulatorWarpCloth, cloth_topology

    cloth_type, bench_warp = warp_cloth_builder(), warp_cloth_integrator()
    substeps, frame_dt, spacing, k = 16, 1.0 / 60.0, 0.1, 1000.0
    cloth = cloth_type(lower=(0.0, 0.0, 0.0), dx=dim, dy=dim, radius=spacing,
                        stretch_stiffness=k, bend_stiffness=k, shear_stiffness=k, mass=0.1,
                        fix_corners=True)
    theirs = bench_warp.WpIntegrator(cloth, "cpu")
    theirs.simulate(frame_dt, substeps)  # compile

    def run_theirs() -> None:
        for _ in range(frames):
            theirs.simulate(frame_dt, substeps)

    topo = cloth_topology(dim, spacing * (dim - 1))
    uv = topo.uv
    x0 = np.stack([uv[:, 0] * topo.size, np.zeros(len(uv)), uv[:, 1] * topo.size], 1)[None]
    pinned = np.isclose(uv[:, 1], 0.0) & (np.isclose(uv[:, 0], 0.0) | np.isclose(uv[:, 0], 1.0))
    env = ClothEnvParams.from_numpy(
        "cpu", stiffness=np.array([k]), damping=np.array([10.0]),
        mass=np.array([0.1 * topo.num_nodes]), wind=np.array([[0.0, 1.0, 0.0]]),
        friction=np.array([0.4]), sphere_center=np.array([[0.0, 0.0, -10.0]]),
        sphere_radius=np.zeros(1), free=(~pinned)[None].astype(np.float32))
    ours = SimulatorWarpCloth(topo, device="cpu", dt=frame_dt / substeps, bending=3e-3,
                              ground=-100.0)
    x32, v32 = x0.astype(np.float32), np.zeros_like(x0, np.float32)
    ours.rollout(x32, v32, env, 3, substeps)  # compile
    t_theirs, t_ours, speed = _paired(
        run_theirs, lambda: ours.rollout(x32, v32, env, frames + 1, substeps), repeat)
    steps = frames * substeps
    return {
        "warp_nodes_per_s": cloth.num_particles * steps / t_theirs,
        "ours_nodes_per_s": topo.num_nodes * steps / t_ours,
        "warp_springs": cloth.num_springs, "ours_springs": len(topo.springs),
        "node_ratio": speed * topo.num_nodes / cloth.num_particles,
        "spring_ratio": speed * len(topo.springs) / cloth.num_springs,
    }


def bench_smoke_pair(size: int, sweeps: int, frames: int, repeat: int) -> dict[str, float]:
    """Cell updates per second of Warp's fluid example and of our smoke, equal sweeps."""
    from physground.simulators.warp.smoke import SimulatorWarpSmoke

    folder = str(_warp_examples() / "core")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    example = importlib.import_module("example_fluid")
    example.grid_width = wp.constant(size)  # read by its kernels at code generation
    example.grid_height = wp.constant(size)
    theirs = example.Example()
    theirs.iterations = sweeps
    with wp.ScopedCapture() as capture:
        theirs.pressure_iterations()
    theirs.graph = capture.graph
    quiet = contextlib.redirect_stdout(io.StringIO())  # its step() prints a timer line
    with quiet:
        theirs.step()  # compile

    def run_theirs() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            for _ in range(frames):
                theirs.step()

    substeps = theirs.sim_substeps
    ours = SimulatorWarpSmoke(size=size, dx=1.0 / size, dt=theirs.sim_dt,
                              pressure_iterations=sweeps)
    rng = np.random.default_rng(0)
    rho0 = rng.uniform(0.0, 1.0, (1, size, size)).astype(np.float32)
    ours.rollout(rho0, np.array([2.0]), 3, substeps)  # compile
    t_theirs, t_ours, speed = _paired(
        run_theirs, lambda: ours.rollout(rho0, np.array([2.0]), frames + 1, substeps), repeat)
    cells = size * size * frames * substeps
    return {"warp_cells_per_s": cells / t_theirs, "ours_cells_per_s": cells / t_ours,
            "ratio": speed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="frames timed per repeat")
    parser.add_argument("--repeat", type=int, default=5,
                        help="interleaved timing pairs; rates are the best, ratios the median")
    parser.add_argument("--sweeps", type=int, default=60, help="pressure sweeps per substep")
    parser.add_argument("--cloth-sizes", type=int, nargs="+", default=[32, 64, 128])
    args = parser.parse_args(argv)
    if True:
        from physground.simulators.warp.common import start_warp

        start_warp()
        print(f"warp {wp.config.version}, cpu; ratios are ours / Warp's, per element update")
        for dim in args.cloth_sizes:
            r = bench_cloth_pair(dim, args.frames, args.repeat)
            print(f"cloth {dim:3d}^2: warp benchmark {r['warp_nodes_per_s']:11.4g} node/s "
                  f"({r['warp_springs']} springs)  ours {r['ours_nodes_per_s']:11.4g} node/s "
                  f"({r['ours_springs']} springs + drag + bending + contacts)  "
                  f"node ratio {r['node_ratio']:5.2f}  spring ratio {r['spring_ratio']:5.2f}")
        r = bench_smoke_pair(32, args.sweeps, args.frames, args.repeat)
        print(f"smoke  32^2: warp example {r['warp_cells_per_s']:11.4g} cell/s  ours "
              f"{r['ours_cells_per_s']:11.4g} cell/s  ({args.sweeps} pressure sweeps)  "
              f"ratio {r['ratio']:5.2f}")


if __name__ == "__main__":
    main()
