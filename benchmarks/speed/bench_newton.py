"""Speed of the Newton scenarios on the CPU, measured in one run.

1. Compile time: a fresh process generating one tiny rollout of each Newton scenario with
   an empty Warp kernel cache (cold: every kernel is compiled) and then again with that
   cache filled (warm: kernels load from disk); cold - warm is the compilation itself.
2. Stored frames per second of each scenario at batch 8 (rendering off), after warm-up.

Every registered scenario tagged ``newton`` is measured (new ones join automatically).

Run: ``python -m physground.benchmarks.speed.bench_newton [--batch 8 --frames 30]``
(``--skip-cold`` leaves out the cold compile, minutes on a small CPU).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from physground.scenario import SCENARIOS, get_scenario

ONE_ROLLOUT = ("import sys; from physground.scenario import get_scenario\n"
               "s = get_scenario(sys.argv[1], render=False, num_frames=3)\n"
               "s.generate([s.sample_params('train', 0)], [0], 'train')\n")


def first_rollout_seconds(name: str, cache: str) -> float:
    """Wall time of a new process that generates one short rollout with kernel cache
    ``cache`` (Warp reads WARP_CACHE_PATH at start)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", ONE_ROLLOUT, name], text=True,
                          env={**os.environ, "WARP_CACHE_PATH": cache}, capture_output=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        sys.exit(f"error: one rollout of {name} failed (exit {done.returncode}):\n{tail}")
    return seconds


def frames_per_second(name: str, batch: int, frames: int) -> float:
    scenario = get_scenario(name, render=False, num_frames=frames)
    params = [scenario.sample_params("train", seed) for seed in range(batch)]
    scenario.generate(params[:1], [0], "train")  # warm-up (kernels loaded)
    start = time.perf_counter()
    scenario.generate(params, list(range(batch)), "train")
    return batch * frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    names = SCENARIOS.names(tag="newton")
    if not names:
        sys.exit('error: no Newton scenarios: pip install "physground[newton]"')
    for name in names:
        if not args.skip_cold:
            with tempfile.TemporaryDirectory() as cache:
                cold = first_rollout_seconds(name, cache)
                warm = first_rollout_seconds(name, cache)
            print(f"{name}: first rollout in a new process, cold cache {cold:.1f} s, "
                  f"warm cache {warm:.1f} s (compilation {cold - warm:.1f} s, "
                  f"cold / warm = {cold / warm:.1f}x)", flush=True)
        fps = frames_per_second(name, args.batch, args.frames)
        print(f"{name}: {fps:.1f} stored frames/s at batch {args.batch} on the CPU "
              f"({args.frames} frames per rollout, rendering off)", flush=True)


if __name__ == "__main__":
    main()
