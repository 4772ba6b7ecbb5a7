"""The Markdown summary of a run: leaderboard, per-scenario tables with links to figures
(written beside it under ``figures/`` and ``media/``), paired comparisons and run facts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from physground.atomic import atomic_path, write_text_atomic
from physground.reports.content import (
    PHYSICS_IQ_NOTE,
    SCORE_NOTE,
    ReportContent,
    comparison_rows,
    leaderboard_rows,
    physics_iq_rows,
    run_facts,
    score_table,
    split_table,
)


def md_table(rows: Sequence[dict[str, str]]) -> list[str]:
    if not rows:
        return ["(nothing to show)", ""]
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(h, "")).replace("|", "\\|")
                                       for h in header) + " |")
    return [*lines, ""]


def _write_bytes(path: Path, data: bytes) -> str:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path.name


def render(content: ReportContent, out_dir: Path) -> str:
    """Markdown text; figures are written under ``out_dir/figures`` and ``out_dir/media``."""
    figures, media = out_dir / "figures", out_dir / "media"
    lines = [f"# physground report: suite `{content.suite}`{content.track_note}", ""]
    if content.tracks_note:
        lines += [content.tracks_note, ""]
    lines += ["## Leaderboard", ""]
    if content.leaderboard is None:
        lines += ["No scores: the run lacks the `truth` and `shuffled` anchors.", ""]
    else:
        lines += [SCORE_NOTE, ""]
        lines += md_table(leaderboard_rows(content.leaderboard))
    if not content.physics_iq.empty:
        lines += ["## Physics-IQ score", "", PHYSICS_IQ_NOTE, ""]
        lines += md_table(physics_iq_rows(content.physics_iq))
    for section in content.sections:
        stem = section.name.replace("/", "__")
        lines += [f"## {section.name}", ""]
        scores = score_table(section)
        if scores:
            lines += ["Bounded scores (100 = second-take noise floor, 0 = uninformative); "
                      "floor: median noise floor of each metric in its unit:", ""]
            lines += md_table(scores)
        lines += ["Metric values (per rollout: mean over steps, or the last step for FDE, "
                  "ADE and running metrics; mean over rollouts, 95% bootstrap CI):", ""]
        lines += md_table(split_table(section).to_dict("records"))
        if section.horizon_png:
            name = _write_bytes(figures / f"{stem}__horizon.png", section.horizon_png)
            lines += [f"![{section.name} error against horizon](figures/{name})", ""]
        for split, png in section.conservation_png.items():
            name = _write_bytes(figures / f"{stem}__{split}__conservation.png", png)
            lines += [f"![{section.name} {split} conserved quantities](figures/{name})", ""]
        for split, (gif, labels) in section.strips.items():
            name = _write_bytes(media / f"{stem}__{split}__strip.gif", gif)
            lines += [f"{split}: {' | '.join(labels)} (bottom: error heat maps)", "",
                      f"![{section.name} {split} side by side](media/{name})", ""]
    lines += ["## Paired comparisons", ""]
    lines += md_table(comparison_rows(content.comparisons))
    lines += ["## Run", ""]
    lines += md_table([{"": k, "value": v} for k, v in run_facts(content.run)])
    return "\n".join(lines)


def write(content: ReportContent, path: Path) -> Path:
    write_text_atomic(path, render(content, path.parent))
    return path
