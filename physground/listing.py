"""Rows of the listing commands (``physground scenarios|metrics|models``), as plain dicts
so that the same data is printed as a table or as ``--json``."""

from __future__ import annotations

from typing import Any

from physground.registry import Registry


def tagged(registry: Registry[Any], tag: str | None) -> list[str]:
    """Names carrying ``tag`` (all without one); an unknown tag is an error."""
    if tag is not None:
        registry.check_tag(tag)
    return registry.names(tag)


def scenario_rows(tag: str | None = None) -> list[dict[str, Any]]:
    """One row per scenario: tags, laws, version, states and parameters per split."""
    from physground.scenario import SCENARIOS

    rows = []
    for name in tagged(SCENARIOS, tag):
        scenario = SCENARIOS.get(name)
        ood = scenario.param_space.ood_params()
        rows.append({
            "name": name, "tags": sorted(SCENARIOS.tags(name)),
            "laws": sorted(scenario.laws), "version": str(scenario.version),
            "states": list(scenario.state_names),
            "params": [{**row, "ood": row["param"] in ood}
                       for row in scenario.param_space.describe()],
        })
    return rows


def metric_rows(tag: str | None = None) -> list[dict[str, Any]]:
    """One row per metric: direction, unit, modality, tags, laws, scenarios it applies to."""
    from physground.metrics import METRICS
    from physground.metrics.evaluate import metric_table

    names = set(tagged(METRICS, tag))
    table = metric_table()
    rows = []
    for record in table.to_dict("records"):
        if record["metric"] not in names:
            continue
        metric = METRICS.get(record["metric"])
        rows.append({
            "name": record["metric"], "higher_is_better": bool(record["higher_is_better"]),
            "unit": record["unit"], "modality": record["modality"],
            "tags": sorted(METRICS.tags(record["metric"])),
            "requires_laws": sorted(metric.requires_laws),
            "laws_mode": metric.laws_mode,
            "scenarios": [s for s in record["scenarios"].split(",") if s],
            "description": record["description"],
        })
    return rows


def model_rows(tag: str | None = None) -> list[dict[str, Any]]:
    """One row per model: tags, output modalities, whether it trains, a description."""
    from physground.world_model import MODELS

    rows = []
    for name in tagged(MODELS, tag):
        model = MODELS.get(name)
        doc = (getattr(model, "__doc__", None) or "").strip().splitlines()
        rows.append({
            "name": name, "tags": sorted(MODELS.tags(name)),
            "modalities": sorted(getattr(model, "modalities", ("state", "pixels"))),
            "trainable": hasattr(model, "load"),
            "description": doc[0] if doc else "",
        })
    return rows
