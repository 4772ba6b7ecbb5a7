"""Speed of the Warp simulators, measured side by side in one run.

1. Cloth: our Warp mass-spring substep on the CPU against `cloth_substep_numpy`, the same
   symplectic-Euler integrator vectorised in NumPy, on the same mesh, batch and number of
   substeps (target: Warp >= 5x NumPy). The two trajectories are also compared, so the
   timing is of equal work.
2. Smoke and SPH: stored frames per second and substeps per second at the scenarios'
   default sizes (batch of 8 environments, rendering off).
3. The same Warp figures on CUDA when a GPU is present.

Run: ``python -m physground.benchmarks.speed.bench_warp [--resolution 32 --batch 8]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable

import numpy as np
import warp as wp

from physground.scenario import get_scenario
from physground.simulators.warp.cloth import (
    GRAVITY,
    ClothEnvParams,
    SimulatorWarpCloth,
    cloth_substep_numpy,
    cloth_topology,
)
from physground.simulators.warp.common import start_warp


def _timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls (s)."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def cloth_inputs(resolution: int, batch: int) -> tuple[object, np.ndarray, np.ndarray, dict]:
    rng = np.random.default_rng(0)
    topo = cloth_topology(resolution, 1.0)
    nodes = topo.num_nodes
    flat = np.concatenate([topo.uv - 0.5, np.full((nodes, 1), 1.0)], axis=1)
    x0 = np.broadcast_to(flat, (batch, nodes, 3)) + rng.normal(0, 1e-3, (batch, nodes, 3))
    free = np.ones((batch, nodes))
    free[:, nodes - resolution:] = 0.0  # top edge pinned
    env = dict(
        stiffness=rng.uniform(300, 800, batch), damping=rng.uniform(0.02, 0.08, batch),
        mass=rng.uniform(0.2, 0.4, batch), wind=rng.normal(0, 2, (batch, 3)),
        friction=np.full(batch, 0.4), sphere_center=np.tile([0.0, 0.0, 0.5], (batch, 1)),
        sphere_radius=np.full(batch, 0.3), free=free,
    )
    return topo, x0, np.zeros_like(x0), env


def bench_cloth(resolution: int, batch: int, steps: int, device: str) -> tuple[float, np.ndarray]:
    """Warp substeps per second (each over the whole batch) and the final positions."""
    topo, x0, v0, env = cloth_inputs(resolution, batch)
    sim = SimulatorWarpCloth(topo, device=device, dt=1 / 2400)
    wenv = ClothEnvParams.from_numpy(device, **env)
    x = [wp.array(x0, dtype=wp.vec3, device=device) for _ in range(2)]
    v = [wp.array(v0, dtype=wp.vec3, device=device) for _ in range(2)]
    f = wp.zeros_like(x[0])

    def run() -> None:
        wp.copy(x[0], wp.array(x0, dtype=wp.vec3, device=device))
        v[0].zero_()
        for k in range(steps):
            f.zero_()
            sim.substep(x[k % 2], v[k % 2], f, wenv, x[1 - k % 2], v[1 - k % 2])
        wp.synchronize_device(device)

    run()  # compile and warm up
    seconds = _timed(run)
    return steps / seconds, x[steps % 2].numpy()


def bench_cloth_numpy(resolution: int, batch: int, steps: int) -> tuple[float, np.ndarray]:
    """NumPy substeps per second, in float32 like Warp (so neither side does more work)."""
    topo, x0, v0, env = cloth_inputs(resolution, batch)
    topo = dataclasses.replace(topo, spring_rest=topo.spring_rest.astype(np.float32),
                               kappa=topo.kappa.astype(np.float32))
    env32 = {k: np.asarray(a, np.float32) for k, a in env.items()}
    gravity = GRAVITY.astype(np.float32)
    out: list[np.ndarray] = []

    def run() -> None:
        x, v = x0.astype(np.float32), v0.astype(np.float32)
        for _ in range(steps):
            x, v = cloth_substep_numpy(x, v, topo, dt=1 / 2400, gravity=gravity, **env32)
        out[:] = [x]

    seconds = _timed(run, repeat=2)
    return steps / seconds, out[0]


def bench_scenario(name: str, batch: int, device: str, frames: int) -> tuple[float, float]:
    """(stored frames per second, substeps per second) of a batched rollout, no rendering."""
    scenario = get_scenario(name, render=False, device=device, num_frames=frames)
    params = [scenario.sample_params("train", s) for s in range(batch)]
    scenario.simulate(params[:1], [0], "train")  # compile
    seconds = _timed(lambda: scenario.simulate(params, list(range(batch)), "train"), repeat=2)
    steps = frames - 1
    return steps / seconds, steps * scenario.config.substeps / seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=32, help="cloth nodes per side")
    parser.add_argument("--batch", type=int, default=8, help="environments per launch")
    parser.add_argument("--steps", type=int, default=200, help="cloth substeps timed")
    parser.add_argument("--frames", type=int, default=21, help="fluid frames timed")
    args = parser.parse_args(argv)
    start_warp()
    devices = ["cpu"] + (["cuda:0"] if wp.is_cuda_available() else [])

    topo = cloth_topology(args.resolution)
    print(f"cloth: {args.resolution}x{args.resolution} nodes, {len(topo.springs)} springs, "
          f"{len(topo.faces)} triangles, batch {args.batch}, {args.steps} substeps")
    numpy_rate, x_numpy = bench_cloth_numpy(args.resolution, args.batch, args.steps)
    print(f"  numpy   cpu     {numpy_rate:10.1f} substeps/s")
    for device in devices:
        rate, x_warp = bench_cloth(args.resolution, args.batch, args.steps, device)
        err = np.abs(x_warp - x_numpy).max()
        print(f"  warp    {device:7s} {rate:10.1f} substeps/s   {rate / numpy_rate:6.1f}x numpy"
              f"   (max |x_warp - x_numpy| = {err:.1e} m)")

    for name in ("fluid/smoke", "fluid/dam_break", "cloth/hanging"):
        for device in devices:
            frames, substeps = bench_scenario(name, args.batch, device, args.frames)
            print(f"{name:16s} {device:7s} batch {args.batch}: {frames:8.1f} frames/s "
                  f"{substeps:10.1f} substeps/s  (x{args.batch} environments)")


if __name__ == "__main__":
    main()
