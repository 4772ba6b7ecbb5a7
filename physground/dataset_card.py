"""The dataset card: a ``README.md`` in every dataset directory, for people and for hubs.

It says what a dataset is without opening it: scenario and its version, the physical laws
that hold, parameter ranges per split (the split this dataset was drawn from marked),
counts (stored and rejected), the arrays with shape, dtype and SI unit, library versions,
the config hash, how to load it, and how to cite physground. The YAML front matter is the
Hugging Face dataset-card header, so the same file serves an upload unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py

from physground.atomic import write_text_atomic
from physground.scenario import Scenario

CITATION = """@software{physground,
  title  = {physground: physics-grounded benchmark and training suite for learned world models},
  note   = {Ground truth from MuJoCo and NVIDIA Warp simulations},
}"""


def array_table(shard: Path) -> list[dict[str, str]]:
    """Name, group, shape, dtype and unit of every array of the first rollout of a shard."""
    rows: list[dict[str, str]] = []
    with h5py.File(shard, "r") as fh:
        names = sorted(fh)
        if not names:
            return rows
        rollout = fh[names[0]]

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                rows.append({
                    "array": name, "shape": "[" + ",".join(map(str, obj.shape)) + "]",
                    "dtype": str(obj.dtype), "unit": str(obj.attrs.get("units", "")),
                })

        rollout.visititems(visit)
    return rows


def render_card(manifest: Mapping[str, Any], scenario: Scenario,
                arrays: list[dict[str, str]]) -> str:
    """The card's Markdown text (deterministic: no dates, sorted tables)."""
    split = str(manifest["split"])
    doc = (type(scenario).__doc__ or "").strip().splitlines()
    summary = doc[0] if doc else scenario.name
    lines = [
        "---",
        "license: apache-2.0",
        f"pretty_name: physground {scenario.name} ({split})",
        "tags: [physics, simulation, world-models, physground]",
        "---",
        "",
        f"# physground dataset: `{scenario.name}`, split `{split}`",
        "",
        summary,
        "",
        f"- scenario version: `{scenario.version}`; simulator: `{scenario.simulator}`",
        f"- physical laws that hold: {', '.join(sorted(scenario.laws)) or 'none declared'}",
        f"- rollouts: {manifest.get('stored', manifest.get('count'))} stored of "
        f"{manifest['count']} requested ({manifest.get('rejected', 0)} rejected as "
        "simulator blow-ups, never stored); dataset seed "
        f"{manifest['seed']}",
        f"- frames per rollout: {scenario.config.num_frames}, dt = {scenario.config.dt:g} s",
        f"- config hash: `{manifest['config_hash']}`",
        "",
        "## Parameters per split",
        "",
        "This dataset was drawn from the split marked with *. Ranges are closed intervals "
        "(uniform) or sets (discrete choice).",
        "",
        "| parameter | unit | physical range | " + " | ".join(
            f"{s}{'*' if s == split else ''}" for s in ("train", "test_id", "test_ood")) + " |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in scenario.param_space.describe():
        lines.append(f"| {row['param']} | {row['unit']} | {row['valid']} | {row['train']} | "
                     f"{row['test_id']} | {row['test_ood']} |")
    lines += ["", "## Arrays (per rollout)", "",
              "| array | shape | dtype | unit |", "| --- | --- | --- | --- |"]
    lines += [f"| {a['array']} | {a['shape']} | {a['dtype']} | {a['unit']} |" for a in arrays]
    lines += [
        "", "Shapes are those of the first rollout; counts of bodies or particles may vary.",
        "", "## Library versions", "",
    ]
    lines += [f"- {name}: {version}" for name, version in
              sorted(dict(manifest.get("versions", {})).items())]
    lines += [
        "", "## Loading", "",
        "```python",
        "from physground.storage import Dataset",
        "rollouts = Dataset(\"<this directory>\").rollouts()",
        "```",
        "",
        "`physground export --format the-well|hf <this directory> --out DIR` writes copies "
        "that The Well's and Hugging Face `datasets`' readers open.",
        "", "## Citation", "", "```bibtex", CITATION, "```", "",
    ]
    return "\n".join(lines)


def write_dataset_card(path: Path, manifest: Mapping[str, Any], scenario: Scenario) -> Path:
    """Write ``README.md`` into the dataset directory ``path`` atomically."""
    shards = [s["file"] for s in manifest.get("shards", []) if s.get("count")]
    arrays = array_table(Path(path) / shards[0]) if shards else []
    card = Path(path) / "README.md"
    write_text_atomic(card, render_card(manifest, scenario, arrays))
    return card
