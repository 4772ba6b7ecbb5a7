"""Speed of MuJoCo ground-truth generation against raw `mujoco.rollout`, side by side.

For each scenario, one run times (interleaved, best of ``--repeats``):

- ``physground``: `Scenario.simulate` with ``render=False`` — parameter validation, MJCF
  compilation, initial states, the batched `mujoco.rollout` call and state extraction;
- ``raw``: `mujoco.rollout.rollout` alone on the very same compiled models, initial
  states, batch, thread count and number of steps;

and prints physics steps per second of both (best run) and their ratio (target >= 0.85):
``ratio`` is the median over adjacent (physground, raw) pairs run in alternating order, which
resists other processes' load better than ``best``, the ratio of the best times. It then
times rendering (frames and masks through the shared tiled renderer) as frames per second,
and prints the double pendulum's divergence horizon (two rollouts whose first angle differs
by 1e-6 rad, until their lower bobs are 0.1 m apart).

Run: ``python -m physground.benchmarks.speed.bench_mujoco [--batch 64] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import Any

import numpy as np

from physground.scenario import get_scenario

# (scenario, fixed parameter overrides so that one batch shares one model size)
CASES: tuple[tuple[str, dict[str, float]], ...] = (
    ("rigid/projectile", {}),
    ("rigid/bounce", {}),
    ("rigid/collision", {"num_spheres": 4}),
    ("rigid/pendulum", {}),
    ("rigid/double_pendulum", {}),
    ("rigid/incline", {}),
    ("rigid/stack", {"num_boxes": 4}),
    ("rigid/dominoes", {"num_dominoes": 4}),
)


def _batch(scenario: Any, fixed: dict[str, float], batch: int) -> tuple[list, list[int]]:
    seeds = list(range(batch))
    return [{**scenario.sample_params("train", s), **fixed} for s in seeds], seeds


def bench_states(name: str, fixed: dict[str, float], batch: int, repeats: int,
                 threads: int) -> dict[str, float]:
    """Best-of-``repeats`` steps/s of physground's state-only generation and raw rollout."""
    from mujoco import MjData
    from mujoco import rollout as mj_rollout

    scenario = get_scenario(name, render=False, threads=threads)
    params, seeds = _batch(scenario, fixed, batch)
    cfg = scenario.config
    nstep = (cfg.num_frames - 1) * cfg.substeps + 1
    models = [scenario.build_model(p) for p in params]
    initial = np.stack([scenario._initial_full_state(m, p, s)
                        for m, p, s in zip(models, params, seeds, strict=True)])
    scenario.simulate(params, seeds, "train")  # warm-up (imports, tables)

    def time_ours() -> float:
        start = time.perf_counter()
        scenario.simulate(params, seeds, "train")
        return time.perf_counter() - start

    def time_raw() -> float:
        start = time.perf_counter()
        datas = [MjData(models[0]) for _ in range(min(threads, batch))]
        mj_rollout.rollout(models, datas, initial, nstep=nstep)
        return time.perf_counter() - start

    ours, raw, pairs = [], [], []
    for i in range(repeats):  # adjacent pairs, alternating order, share the machine's load
        if i % 2:
            r, o = time_raw(), time_ours()
        else:
            o, r = time_ours(), time_raw()
        ours.append(o)
        raw.append(r)
        pairs.append(r / o)
    steps = batch * nstep
    return {"steps": steps, "ours": steps / min(ours), "raw": steps / min(raw),
            "ratio": float(np.median(pairs)), "best_ratio": min(raw) / min(ours)}


def bench_render(name: str, fixed: dict[str, float], batch: int, repeats: int,
                 threads: int) -> dict[str, float]:
    """Frames/s of rendering alone (render=True minus render=False) and end to end."""
    on = get_scenario(name, render=True, threads=threads)
    off = get_scenario(name, render=False, threads=threads)
    params, seeds = _batch(on, fixed, batch)
    on.simulate(params[:1], seeds[:1], "train")  # warm-up: GL context
    with_frames, without = math.inf, math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        on.simulate(params, seeds, "train")
        with_frames = min(with_frames, time.perf_counter() - start)
        start = time.perf_counter()
        off.simulate(params, seeds, "train")
        without = min(without, time.perf_counter() - start)
    frames = batch * on.config.num_frames
    return {"frames": frames, "render_fps": frames / max(with_frames - without, 1e-9),
            "end_to_end_fps": frames / with_frames}


def divergence_horizons() -> list[tuple[dict[str, float], float]]:
    from physground.simulators.mujoco.pendulum import divergence_horizon

    scenario = get_scenario("rigid/double_pendulum", render=False, num_frames=451,
                            dt=1 / 30, substeps=32)
    out = []
    for split in ("train", "test_ood"):
        for seed in range(3):
            p = scenario.sample_params(split, seed)
            out.append(({"split": split, **p}, divergence_horizon(scenario, p)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--render-batch", type=int, default=8)
    args = parser.parse_args()
    print(f"mujoco rollout, batch {args.batch}, {args.threads} threads, 60 frames x 32 "
          f"substeps, {args.repeats} repeats")
    print(f"{'scenario':28s} {'steps':>8s} {'physground/s':>13s} {'raw/s':>13s} "
          f"{'ratio':>6s} {'best':>6s}")
    ratios = []
    for name, fixed in CASES:
        r = bench_states(name, fixed, args.batch, args.repeats, args.threads)
        ratios.append(r["ratio"])
        print(f"{name:28s} {r['steps']:8.0f} {r['ours']:13.4g} {r['raw']:13.4g} "
              f"{r['ratio']:6.3f} {r['best_ratio']:6.3f}")
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"{'geometric mean ratio':28s} {'':8s} {'':13s} {'':13s} {geo:6.3f}  (target >= 0.85)")
    print(f"\nrendering 64x64 RGB + masks, batch {args.render_batch} x 60 frames")
    print(f"{'scenario':28s} {'render fps':>11s} {'end-to-end fps':>15s}")
    for name, fixed in CASES:
        r = bench_render(name, fixed, args.render_batch, max(1, args.repeats // 2),
                         args.threads)
        print(f"{name:28s} {r['render_fps']:11.0f} {r['end_to_end_fps']:15.0f}")
    print("\ndouble pendulum divergence horizon (delta angle1 = 1e-6 rad, 0.1 m apart, 15 s)")
    for p, horizon in divergence_horizons():
        angles = f"angle1 {p['angle1']:.2f} angle2 {p['angle2']:.2f}"
        print(f"  {p['split']:8s} {angles}  horizon {horizon:.2f} s")


if __name__ == "__main__":
    main()
