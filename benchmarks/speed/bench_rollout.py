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
Targets: >= 10x on cloth and dam break, >= 1x on rigid.

Run: ``python -m physground.benchmarks.speed.bench_rollout [--batch 8] [--horizon 24]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from physground.learned.entities import entity_states, entity_static
from physground.learned.modeling_state_gnn import _history, unroll
from physground.learned.training import TrainConfig, train
from physground.scenario import get_scenario

# the cloth model: each spring one edge (`undirected_mesh`), width 16, one message pass
CLOTH = {"hidden": 16, "layers": 1, "undirected_mesh": True}
SCENARIOS = (("rigid/projectile", {}, 1.0), ("rigid/bounce", {}, 1.0),
             ("cloth/hanging", CLOTH, 10.0), ("fluid/dam_break", {"hidden": 32}, 10.0))


def measure(name: str, model_config: dict, *, batch: int, horizon: int, repeats: int,
            train_steps: int) -> tuple[float, float, float, float]:
    """(median simulator seconds, median learned seconds, learned position RMSE in m, RMSE
    of holding the first positions in m: the accuracy of predicting no motion) for
    batch x horizon frames."""
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
    sim, learned = [], []
    with torch.inference_mode():
        xs, _ = unroll(model.net, x0, vhist, static, dt, horizon)  # warm-up, and accuracy
        truth = torch.stack([x[1:] for x, _ in states])
        rmse = float((xs - truth).square().sum(-1).mean().sqrt())
        hold = float((x0[:, None] - truth).square().sum(-1).mean().sqrt())
        for _ in range(repeats):
            start = time.perf_counter()
            scenario.simulate(params, seeds, "test_id")
            sim.append(time.perf_counter() - start)
            start = time.perf_counter()
            unroll(model.net, x0, vhist, static, dt, horizon)
            learned.append(time.perf_counter() - start)
    return statistics.median(sim), statistics.median(learned), rmse, hold


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
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
    parser.add_argument("--scenario", action="append", default=None,
                        help="only these scenarios (repeatable; default: all four)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{'scenario':18s} {'simulator s':>11s} {'learned s':>10s} {'ratio':>7s}  target"
          f"        {'learned RMSE m':>14s} {'hold-still RMSE m':>17s}")
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
        s, q, rmse, hold = measure(name, model_config, batch=args.batch, horizon=args.horizon,
                             repeats=args.repeats, train_steps=args.train_steps)
        verdict = "ok" if s / q >= target else "MISS"
        print(f"{name:18s} {s:11.4f} {q:10.4f} {s / q:6.2f}x  >= {target:g}x {verdict:4s}"
              f"  {rmse:14.4g} {hold:17.4g}", flush=True)


if __name__ == "__main__":
    main()
