"""Headline experiment: does fine-tuning with physics-consistency losses make a learned
state model more physically plausible out of distribution, at little cost in accuracy?

For each scenario (rigid, cloth, fluid) and each seed:

1. train `state-gnn` on the ``train`` split with the data loss only (``base_steps``);
2. from that checkpoint, continue ``finetune_steps`` more steps two ways with the same
   optimizer settings and batches: **plain** (data loss only: the equal-compute control)
   and **physics** (data loss plus the scenario's physics losses); both fine-tune with a
   longer pushforward unroll, so the losses act on the model's own drifted states;
3. roll both out from ``context`` frames of every ``test_id`` and ``test_ood`` rollout and
   score them with the shared metrics (`physground.metrics.evaluate_batch`).

Reported per scenario, split and metric: the mean over rollouts and seeds of the metric
averaged over the horizon, a 95 % bootstrap CI over rollouts (seeds pooled), the relative
change physics vs plain, and a paired Wilcoxon p-value. Targets: plausibility metrics
improve by >= 30 % on ``test_ood``; ``test_id`` position RMSE worsens by <= 5 %.

Also reported: the rollout time of the learned state model vs the explicit simulator for
the same horizon (wall clock on this machine, same rollouts).

Run: ``python -m physground.benchmarks.headline [--out DIR] [--quick]`` (about 22 min on
2 loaded CPU cores); writes ``headline.md``, ``headline.csv``, ``headline.json`` and the
per-rollout ``raw-*.csv`` to the results directory (default ``runs/headline``, ignored by
git).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from physground.learned.training import TrainConfig, finetune, train
from physground.storage import DatasetSpec, generate_dataset


@dataclass(frozen=True, kw_only=True)
class HeadlineScenario:
    """One scenario of the experiment: data sizes, physics loss weights, metrics."""

    scenario: str
    physics_weights: dict[str, float]
    plausibility: tuple[str, ...]
    loss_options: dict[str, float] = field(default_factory=dict)
    scenario_config: dict[str, Any] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)
    context: int = 4
    horizon: int = 20
    unroll: int = 3
    # Fine-tuning (both variants) unrolls longer with pushforward, so that the losses see
    # the model's own drifted states as in a long test rollout.
    finetune_unroll: int = 16
    finetune_mode: str = "pushforward"


SCENARIOS = (
    HeadlineScenario(
        scenario="rigid/projectile",
        physics_weights={"ballistic": 1.0, "penetration": 100.0, "energy": 1.0},
        plausibility=("energy_drift", "penetration_depth", "gravity_error"),
        scenario_config={"num_frames": 40},
        horizon=30,
    ),
    HeadlineScenario(
        scenario="cloth/hanging",
        physics_weights={"strain": 300.0, "energy": 10.0, "penetration": 10.0},
        plausibility=("edge_strain", "energy_drift"),
        scenario_config={"num_frames": 30},
        model_config={"hidden": 32},
        horizon=24,
    ),
    HeadlineScenario(
        scenario="fluid/dam_break",
        physics_weights={"density": 100.0, "penetration": 10.0},
        plausibility=("density_deviation",),
        loss_options={"density_tol": 0.02},
        scenario_config={"num_frames": 30},
        model_config={"hidden": 32},
        horizon=24,
    ),
)


@dataclass(frozen=True, kw_only=True)
class HeadlineConfig:
    """Sizes of the experiment (``quick`` shrinks every one of them)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    train_count: int = 16
    test_count: int = 10
    base_steps: int = 600
    finetune_steps: int = 300
    batch_size: int = 8
    lr: float = 1e-3
    scenarios: tuple[str, ...] = tuple(s.scenario for s in SCENARIOS)

    @classmethod
    def quick(cls) -> HeadlineConfig:
        return cls(seeds=(0, 1), train_count=8, test_count=6, base_steps=60,
                   finetune_steps=30)


def _datasets(spec: HeadlineScenario, config: HeadlineConfig, root: Path) -> dict[str, Any]:
    common = {"render": False, **spec.scenario_config}
    counts = {"train": config.train_count, "test_id": config.test_count,
              "test_ood": config.test_count}
    return {split: generate_dataset(DatasetSpec(scenario=spec.scenario, split=split,
                                                count=n, seed=0, config=common),
                                    root, progress=False).rollouts()
            for split, n in counts.items()}


def _evaluate(model: Any, rollouts: list, spec: HeadlineScenario, metrics: list[str]
              ) -> tuple[pd.DataFrame, float]:
    """Per-rollout metric means (over the horizon) and the mean predict time per rollout."""
    from physground.metrics.evaluate import evaluate_batch

    preds, start = [], time.perf_counter()
    for r in rollouts:
        preds.append(model.predict(r.context(spec.context), spec.horizon)
                     .bind(r, context=spec.context, horizon=spec.horizon))
    seconds = (time.perf_counter() - start) / len(rollouts)
    truths = [r.time_slice(0, spec.context + spec.horizon) for r in rollouts]
    table = evaluate_batch(truths, preds, metrics)
    per = table.groupby(["rollout", "metric"])["value"].mean().unstack("metric")
    return per, seconds


def _simulator_seconds(spec: HeadlineScenario, rollouts: list) -> float:
    """Mean wall time per rollout of the explicit simulator for context + horizon frames
    (one batched call, as in data generation; no rendering)."""
    from physground.scenario import get_scenario

    scenario = get_scenario(spec.scenario, render=False,
                            num_frames=spec.context + spec.horizon)
    params = [r.params for r in rollouts]
    seeds = [r.seed for r in rollouts]
    scenario.simulate(params[:1], seeds[:1], "test_id")  # warm-up (kernel compilation)
    start = time.perf_counter()
    scenario.simulate(params, seeds, "test_id")
    return (time.perf_counter() - start) / len(rollouts)


def run_scenario(spec: HeadlineScenario, config: HeadlineConfig, out: Path,
                 log: Any = print) -> tuple[pd.DataFrame, dict[str, Any]]:
    data = _datasets(spec, config, out / "data")
    metrics = ["position_rmse", *spec.plausibility]
    rows, timing = [], {"model_s": [], "sim_s": None, "train_s": {}}
    for seed in config.seeds:
        base_cfg = TrainConfig(
            model="state-gnn", model_config=spec.model_config, steps=config.base_steps,
            lr=config.lr, lr_final=config.lr, batch_size=config.batch_size,
            unroll=spec.unroll, seed=seed, progress=False, log_every=50,
            loss_options={"input_noise": 0.0, **spec.loss_options},
            checkpoint_dir=str(out / "ckpt" / spec.scenario / f"base-s{seed}"),
        )
        t0 = time.perf_counter()
        train(base_cfg, data["train"])
        timing["train_s"][f"base-s{seed}"] = time.perf_counter() - t0
        tune = replace(base_cfg, steps=config.finetune_steps, lr_final=config.lr / 10,
                       checkpoint_dir=None, unroll=spec.finetune_unroll,
                       unroll_mode=spec.finetune_mode)
        variants = {
            "plain": replace(tune, loss_weights={"data": 1.0}),
            "physics": replace(tune, loss_weights={"data": 1.0, **spec.physics_weights}),
        }
        for variant, cfg in variants.items():
            t0 = time.perf_counter()
            model = finetune(cfg, base_cfg.checkpoint_dir, data["train"])
            timing["train_s"][f"{variant}-s{seed}"] = time.perf_counter() - t0
            for split in ("test_id", "test_ood"):
                per, seconds = _evaluate(model, data[split], spec, metrics)
                timing["model_s"].append(seconds)
                for rollout, values in per.iterrows():
                    for metric, value in values.items():
                        rows.append({"scenario": spec.scenario, "seed": seed,
                                     "variant": variant, "split": split,
                                     "rollout": int(rollout), "metric": metric,
                                     "value": float(value)})
            log(f"{spec.scenario} seed {seed} {variant}: trained in "
                f"{timing['train_s'][f'{variant}-s{seed}']:.0f} s (base "
                f"{timing['train_s'][f'base-s{seed}']:.0f} s)", flush=True)
    timing["sim_s"] = _simulator_seconds(spec, data["test_id"])
    timing["model_s"] = float(np.mean(timing["model_s"]))
    return pd.DataFrame(rows), timing


def summarize(raw: pd.DataFrame, specs: dict[str, HeadlineScenario]) -> pd.DataFrame:
    """One row per (scenario, split, metric): plain/physics mean, CI, change, p-value."""
    from physground.metrics.stats import bootstrap_ci, paired_test

    out = []
    for (scenario, split, metric), group in raw.groupby(["scenario", "split", "metric"]):
        wide = group.pivot_table(index=["seed", "rollout"], columns="variant", values="value")
        wide = wide.dropna()
        row: dict[str, Any] = {"scenario": scenario, "split": split, "metric": metric,
                               "n": len(wide)}
        for variant in ("plain", "physics"):
            values = wide[variant].to_numpy()
            ci = bootstrap_ci(values) if len(values) > 1 else None
            row[f"{variant}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{variant}_ci"] = (ci.low, ci.high) if ci else (math.nan, math.nan)
            row[f"{variant}_seed_means"] = [float(wide.loc[s, variant].mean())
                                            for s in sorted(set(wide.index.get_level_values(0)))]
        row["change"] = row["physics_mean"] / row["plain_mean"] - 1 if row["plain_mean"] else \
            math.nan
        row["p_value"] = paired_test(wide["physics"], wide["plain"]).pvalue \
            if len(wide) > 1 else math.nan
        plaus = metric in specs[scenario].plausibility
        if plaus and split == "test_ood":
            row["target"] = "improve >= 30%"
            row["met"] = bool(row["change"] <= -0.30)
        elif metric == "position_rmse" and split == "test_id":
            row["target"] = "worsen <= 5%"
            row["met"] = bool(row["change"] <= 0.05)
        else:
            row["target"], row["met"] = "", None
        out.append(row)
    return pd.DataFrame(out)


def _met(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "no")


def _markdown(summary: pd.DataFrame, timings: dict[str, Any], config: HeadlineConfig,
              seconds: float) -> str:
    lines = [
        "# Headline: physics-loss fine-tuning vs plain data-loss training", "",
        f"Seeds {list(config.seeds)}, {config.train_count} train / {config.test_count} test "
        f"rollouts per split, {config.base_steps} base + {config.finetune_steps} fine-tune "
        f"steps (plain = data loss only for the same steps). Mean over rollouts and seeds of "
        f"the horizon-averaged metric; 95 % bootstrap CI over rollouts (seeds pooled); "
        f"paired Wilcoxon p. Total wall time {seconds / 60:.1f} min.", "",
        "| scenario | split | metric | plain | physics | change | p | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        lines.append(
            f"| {r.scenario} | {r.split} | {r.metric} | {r.plain_mean:.4g} "
            f"[{r.plain_ci[0]:.3g}, {r.plain_ci[1]:.3g}] | {r.physics_mean:.4g} "
            f"[{r.physics_ci[0]:.3g}, {r.physics_ci[1]:.3g}] | {100 * r.change:+.1f}% | "
            f"{r.p_value:.2g} | {r.target} | {_met(r.met)} |"
        )
    lines += ["", "## Learned vs explicit rollout time (same horizon, this machine)", "",
              "| scenario | state-gnn s/rollout | simulator s/rollout | simulator / model |",
              "|---|---|---|---|"]
    for scenario, t in timings.items():
        lines.append(f"| {scenario} | {t['model_s']:.4f} | {t['sim_s']:.4f} | "
                     f"{t['sim_s'] / t['model_s']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/headline", help="results directory")
    parser.add_argument("--quick", action="store_true", help="small sizes (minutes)")
    parser.add_argument("--scenarios", nargs="*", help="subset of scenarios")
    parser.add_argument("--seeds", type=int, nargs="*", help="override the seeds")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch "
                        "default; 1 is much faster on a loaded 2-core machine)")
    parser.add_argument("--base-steps", type=int, help="override base training steps")
    parser.add_argument("--finetune-steps", type=int, help="override fine-tuning steps")
    parser.add_argument("--finetune-unroll", type=int, help="override every scenario's "
                        "fine-tuning unroll")
    args = parser.parse_args(argv)
    config = HeadlineConfig.quick() if args.quick else HeadlineConfig()
    if args.scenarios:
        config = replace(config, scenarios=tuple(args.scenarios))
    if args.seeds:
        config = replace(config, seeds=tuple(args.seeds))
    if args.base_steps:
        config = replace(config, base_steps=args.base_steps)
    if args.finetune_steps:
        config = replace(config, finetune_steps=args.finetune_steps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    specs = {s.scenario: s for s in SCENARIOS if s.scenario in config.scenarios}
    if args.finetune_unroll:
        specs = {k: replace(v, finetune_unroll=args.finetune_unroll) for k, v in specs.items()}
    start = time.perf_counter()
    raws, timings = [], {}
    for name, spec in specs.items():
        raw, timing = run_scenario(spec, config, out)
        raws.append(raw)
        timings[name] = timing
        raw.to_csv(out / f"raw-{name.replace('/', '_')}.csv", index=False)
    raw = pd.concat(raws)
    summary = summarize(raw, specs)
    seconds = time.perf_counter() - start
    summary.to_csv(out / "headline.csv", index=False)
    (out / "headline.md").write_text(_markdown(summary, timings, config, seconds))
    (out / "headline.json").write_text(json.dumps({
        "config": asdict(config), "scenarios": {k: asdict(v) for k, v in specs.items()},
        "timings": timings, "seconds": seconds, "torch": torch.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "threads": torch.get_num_threads(),
    }, indent=2, default=str))
    print((out / "headline.md").read_text())


if __name__ == "__main__":
    main()
