"""Rollout speed of the learned state model vs the explicit simulator, side by side.

For each scenario, ``batch`` systems are rolled out for ``horizon`` frames twice: by the
scenario's simulator (one batched `simulate` call, no rendering, kernels warmed up) and by
a `state-gnn` briefly trained on those rollouts (one batched `unroll` under
`torch.inference_mode`, from the same first states). The two alternate ``repeats`` times
so machine load hits both alike; the ratio of median times is printed (simulator / learned,
> 1: the learned model is faster), with the learned rollout's position RMSE against the
simulator's (m, over all frames and entities: a fast rollout is only worth its accuracy;
the bench's briefly trained model is no scored model; for scale, the RMSE of holding the
first positions, predicting no motion, is printed beside it). Both sides run on the same device
with the same torch threads (Warp's CPU kernels are single-threaded). The simulator side is
the scenario's own `simulate` (model build, every substep, the rollout records); the learned
side is `unroll`, one network evaluation per frame (graph of fixed edges and the folded
weights built once per rollout, proximity edges from a hash grid every frame). The cloth
model is 16 wide with one message pass and each spring one edge (``undirected_mesh``);
``--hidden``/``--layers``/``--directed-mesh`` change the cloth and fluid models to show
the speed/accuracy trade-off (``--train-steps`` for a better trained one).
The learned rollout is timed twice, eagerly and with each step through ``torch.compile``
(`compiled_rollout_step`, the same function; its one-off compile time is printed, not
timed; systems searching proximity edges every step, dam break, step eagerly and show
none), so both ratios come from one run. ``--batch`` takes several sizes: the learned
model's fixed cost per step (tens of small torch ops) weighs most at small batches, so
the default prints batch 8 and 32. Targets: >= 10x on cloth and dam break, >= 1x on rigid.

Run: ``python -m physground.benchmarks.speed.bench_rollout [--batch 8 32 64] [--horizon 24]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass

import torch

from physground.learned.entities import entity_states, entity_static
from physground.learned.modeling_state_gnn import _history, unroll
from physground.learned.training import TrainConfig, train
from physground.scenario import get_scenario

# the cloth model: each spring one edge (`undirected_mesh`), width 16, one message pass
CLOTH = {"hidden": 16, "layers": 1, "undirected_mesh": True}
SCENARIOS = (("rigid/projectile", {}, 1.0), ("rigid/bounce", {}, 1.0),
             ("cloth/hanging", CLOTH, 10.0), ("fluid/dam_break", {"hidden": 32}, 10.0))


@dataclass(frozen=True)
class Timing:
    """Median seconds of batch x horizon frames: the simulator, the eager learned rollout,
    the compiled one (NaN when not timed), its one-off compile seconds and its largest
    position difference from the eager rollout; the learned
    position RMSE and that of holding the first positions (m: predicting no motion)."""

    simulator: float
    eager: float
    compiled: float
    compile_s: float
    deviation: float  # max |compiled - eager| position over the rollout, m
    rmse: float
    hold: float


def measure(name: str, model_config: dict, *, batch: int, horizon: int, repeats: int,
            train_steps: int, compiled: bool = True) -> Timing:
    """`Timing` of one scenario: simulator, eager and compiled learned rollouts alternate
    ``repeats`` times so machine load hits them alike."""
    scenario = get_scenario(name, render=False, num_frames=horizon + 1)
    seeds = list(range(batch))
    params = [scenario.sample_params("test_id", s) for s in seeds]
    rollouts = scenario.simulate(params, seeds, "test_id")  # also warms the kernels up
    model = train(TrainConfig(model_config=model_config, steps=train_steps, progress=False),
                  rollouts)
    states = [entity_states(r) for r in rollouts]
    x0 = torch.stack([x[0] for x, _ in states])
    vhist = torch.stack([_history(v, 0, model.config.history) for _, v in states])
    static, dt = entity_static(rollouts), rollouts[0].dt
    sim, eager, fused = [], [], []
    compile_s = deviation = float("nan")
    with torch.inference_mode():
        xs, _ = unroll(model.net, x0, vhist, static, dt, horizon)  # warm-up, and accuracy
        truth = torch.stack([x[1:] for x, _ in states])
        rmse = float((xs - truth).square().sum(-1).mean().sqrt())
        hold = float((x0[:, None] - truth).square().sum(-1).mean().sqrt())
        compiled = compiled and model.net.prepare_static(static).compilable
        if compiled:  # (a per-step hash-grid search steps eagerly: nothing to compare)
            start = time.perf_counter()
            xc, _ = unroll(model.net, x0, vhist, static, dt, horizon, compiled=True)
            compile_s = time.perf_counter() - start
            deviation = float((xc - xs).abs().max())
        for _ in range(repeats):
            start = time.perf_counter()
            scenario.simulate(params, seeds, "test_id")
            sim.append(time.perf_counter() - start)
            start = time.perf_counter()
            unroll(model.net, x0, vhist, static, dt, horizon)
            eager.append(time.perf_counter() - start)
            if compiled:
                start = time.perf_counter()
                unroll(model.net, x0, vhist, static, dt, horizon, compiled=True)
                fused.append(time.perf_counter() - start)
    median = statistics.median
    return Timing(median(sim), median(eager), median(fused) if fused else float("nan"),
                  compile_s, deviation, rmse, hold)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32],
                        help="systems per rollout call (several: one line each)")
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--hidden", type=int, default=0,
                        help="cloth/fluid width (0: cloth 16, fluid 32)")
    parser.add_argument("--layers", type=int, default=0,
                        help="cloth/fluid layers (0: cloth 1, fluid 2)")
    parser.add_argument("--directed-mesh", action="store_true",
                        help="cloth springs as two directed edges (state-gnn's default)")
    parser.add_argument("--no-compile", action="store_true",
                        help="time the eager learned rollout only")
    parser.add_argument("--scenario", action="append", default=None,
                        help="only these scenarios (repeatable; default: all four)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{'scenario':18s} {'batch':>5s} {'simulator s':>11s} {'learned s':>10s}"
          f" {'ratio':>7s}  {'compiled s':>10s} {'ratio':>7s}  target        "
          f"{'learned RMSE m':>14s} {'hold-still RMSE m':>17s} {'compile s':>9s}"
          f" {'max |c-e| m':>11s}")
    known = [name for name, _, _ in SCENARIOS]
    unknown = sorted(set(args.scenario or ()) - set(known))
    if unknown:
        parser.error(f"--scenario {unknown[0]}: expected one of {known}")
    for name, model_config, target in SCENARIOS:
        if args.scenario and name not in args.scenario:
            continue
        if target > 1:  # the cloth and fluid models
            model_config = {**model_config, **({"hidden": args.hidden} if args.hidden else {}),
                            **({"layers": args.layers} if args.layers else {})}
        if args.directed_mesh:
            model_config = {k: v for k, v in model_config.items() if k != "undirected_mesh"}
        for batch in args.batch:
            t = measure(name, model_config, batch=batch, horizon=args.horizon,
                        repeats=args.repeats, train_steps=args.train_steps,
                        compiled=not args.no_compile)
            eager, fused = t.simulator / t.eager, t.simulator / t.compiled
            best = eager if math.isnan(fused) else max(eager, fused)
            verdict = "ok" if best >= target else "MISS"
            print(f"{name:18s} {batch:5d} {t.simulator:11.4f} {t.eager:10.4f} {eager:6.2f}x"
                  f"  {t.compiled:10.4f} {fused:6.2f}x  >= {target:g}x {verdict:4s}"
                  f"  {t.rmse:14.4g} {t.hold:17.4g} {t.compile_s:9.1f} {t.deviation:11.2g}",
                  flush=True)


if __name__ == "__main__":
    main()
