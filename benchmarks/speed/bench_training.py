"""Cost of a physics-loss training step vs the plain (data-loss) step, side by side.

For each scenario, one `state-gnn` model and one fixed set of batches; a *step* is the
loss evaluation, backward pass and Adam update. Plain steps use the data loss; physics
steps add the headline experiment's physics terms for that scenario (see
`physground.benchmarks.headline.SCENARIOS`). Plain and physics steps alternate (so machine
load affects both alike) and the median step time of each is reported with the ratio.
Target: physics step <= 1.5x plain step.

Run: ``python -m physground.benchmarks.speed.bench_training [--steps N] [--device cpu]
[--threads 1]`` (on a loaded 2-core machine one thread avoids oversubscription noise).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from physground.benchmarks.headline import SCENARIOS, HeadlineScenario
from physground.learned.training import TrainConfig, train
from physground.scenario import get_scenario


def step_times(spec: HeadlineScenario, *, steps: int, batch_size: int, device: str,
               terms_override: dict[str, float] | None = None) -> dict[str, Any]:
    """Median seconds per plain and per physics training step for one scenario."""
    config = {"render": False, **spec.scenario_config}
    scenario = get_scenario(spec.scenario, **config)
    seeds = list(range(4))
    rollouts = scenario.generate([scenario.sample_params("train", s) for s in seeds], seeds,
                                 "train")
    model = train(TrainConfig(model_config=spec.model_config, steps=0, progress=False,
                              device=device), rollouts)
    windows = model.windows(rollouts, spec.unroll)
    gen = torch.Generator().manual_seed(0)
    batches = [windows.batch(torch.randint(len(windows), (batch_size,), generator=gen))
               for _ in range(steps)]
    weights = terms_override or spec.physics_weights
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    options = dict(spec.loss_options)

    def one(batch: dict[str, Any], terms: dict[str, float]) -> float:
        start = time.perf_counter()
        values = model.losses(batch, unroll_mode="unrolled", terms=list(terms),
                              options=options)
        total = values["data"] + sum(w * values[k] for k, w in terms.items())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    one(batches[0], {})  # warm-up (imports, kernel compilation, teacher set-up)
    one(batches[0], weights)
    plain, physics = [], []
    for batch in batches:
        plain.append(one(batch, {}))
        physics.append(one(batch, weights))
    p, q = statistics.median(plain), statistics.median(physics)
    return {"scenario": spec.scenario, "terms": sorted(weights), "plain_s": p,
            "physics_s": q, "ratio": q / p}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each kind")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scenarios", nargs="*", help="subset of scenarios")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for spec in SCENARIOS:
        if args.scenarios and spec.scenario not in args.scenarios:
            continue
        variants: list[dict[str, float] | None] = [None]
        if "teacher" in spec.physics_weights:  # also without the (CPU MuJoCo) teacher
            variants.append({k: w for k, w in spec.physics_weights.items() if k != "teacher"})
        for terms in variants:
            rows.append(step_times(spec, steps=args.steps, batch_size=args.batch_size,
                                   device=args.device, terms_override=terms))
    print(f"{'scenario':18s} {'physics terms':45s} {'plain s':>9s} {'physics s':>9s} "
          f"{'ratio':>6s}  target <= 1.5x")
    for r in rows:
        print(f"{r['scenario']:18s} {','.join(r['terms']):45s} {r['plain_s']:9.4f} "
              f"{r['physics_s']:9.4f} {r['ratio']:6.2f}  {'ok' if r['ratio'] <= 1.5 else 'OVER'}")


if __name__ == "__main__":
    main()
