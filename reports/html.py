"""The self-contained HTML report: one file, every figure and animation inlined as a
base64 data URI, no scripts and no network access, so it can be mailed or archived."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

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

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; }
header { background: #17324d; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; opacity: 0.85; }
main { padding: 8px 32px 40px; max-width: 1400px; }
nav { margin: 12px 0; }
nav a { margin-right: 14px; color: #17324d; }
h2 { border-bottom: 2px solid #17324d; padding-bottom: 4px; margin-top: 32px; }
h3 { margin-top: 22px; }
table { border-collapse: collapse; margin: 8px 0 16px; background: white; }
th, td { border: 1px solid #d0d4d9; padding: 4px 8px; text-align: left; font-size: 13px; }
th { background: #e8edf2; }
tr:nth-child(even) td { background: #f6f8fa; }
td.num { font-variant-numeric: tabular-nums; }
.facts td:first-child { font-weight: 600; }
.note { color: #555; max-width: 1000px; }
img { max-width: 100%; border: 1px solid #d0d4d9; background: white; }
img.strip { image-rendering: pixelated; }
.labels { font-size: 12px; color: #333; }
details { margin: 6px 0 12px; }
summary { cursor: pointer; margin-bottom: 4px; }
.family { display: inline-block; padding: 1px 8px; border-radius: 9px; background: #dde8f3;
          font-size: 12px; margin-left: 8px; vertical-align: middle; }
"""


def _esc(text: object) -> str:
    return html.escape(str(text))


def table(rows: Sequence[dict[str, str]], cls: str = "") -> str:
    """An HTML table from formatted rows (keys of the first row are the header)."""
    if not rows:
        return "<p class='note'>(nothing to show)</p>"
    header = list(rows[0])
    out = [f"<table class='{cls}'><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header)
           + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td class='num'>{_esc(row.get(h, ''))}</td>"
                                    for h in header) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image(data: bytes, mime: str, alt: str, cls: str = "", width: int | None = None) -> str:
    size = f" width='{width}'" if width else ""
    return f"<img class='{cls}' alt='{_esc(alt)}' src='{data_uri(data, mime)}'{size}>"


def render(content: ReportContent) -> str:
    """The full HTML document of a run report."""
    run = content.run
    families = sorted({s.family for s in content.sections})
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>physground report: {_esc(content.suite)}</title><style>{CSS}</style></head>",
        "<body><header>",
        f"<h1>physground report: suite <code>{_esc(content.suite)}</code>"
        f"{_esc(content.track_note)}</h1>",
        f"<p>{_esc(run['suite'].get('description', ''))} · families: "
        f"{_esc(', '.join(families))} · models: {_esc(', '.join(content.models))}</p>",
        f"<p>{_esc(content.tracks_note)}</p>" if content.tracks_note else "",
        "</header><main>",
        "<nav><a href='#leaderboard'>Leaderboard</a>"
        + "".join(f"<a href='#{_anchor(s.name)}'>{_esc(s.name)}</a>" for s in content.sections)
        + "<a href='#paired'>Paired comparisons</a><a href='#run'>Run</a>"
        "<a href='#validation'>Ground-truth validation</a></nav>",
        "<h2 id='leaderboard'>Leaderboard</h2>",
    ]
    parts += leaderboard_html(content)
    if not content.physics_iq.empty:
        parts.append("<h2 id='physics-iq'>Physics-IQ score</h2>")
        parts.append(f"<p class='note'>{_esc(PHYSICS_IQ_NOTE)}</p>")
        parts.append(table(physics_iq_rows(content.physics_iq)))
    for section in content.sections:
        parts.append(f"<h2 id='{_anchor(section.name)}'>{_esc(section.name)}"
                     f"<span class='family'>{_esc(section.family)}</span></h2>")
        scores = score_table(section)
        if scores:
            parts.append("<p class='note'>Bounded scores (100 = second-take noise floor, "
                         "0 = uninformative) per model, in-distribution (<code>test_id"
                         "</code>) against out-of-distribution (<code>test_ood</code>) "
                         "parameters; <i>floor</i> is the median noise floor of each metric "
                         "in its unit.</p>")
            parts.append(table(scores))
        parts.append("<details><summary>Metric values: mean over rollouts (per rollout the "
                     "mean over steps, or the last step for FDE, ADE and running metrics) "
                     "with 95% bootstrap CIs, test_id against test_ood</summary>")
        parts.append(table(split_table(section).to_dict("records")))
        parts.append("</details>")
        if section.horizon_png:
            parts.append("<h3>Error against horizon</h3>")
            parts.append(image(section.horizon_png, "image/png",
                               f"{section.name} error against horizon"))
        if section.conservation_png:
            parts.append("<h3>Conserved quantities over time (rollout 0)</h3>")
            for split, png in section.conservation_png.items():
                parts.append(image(png, "image/png", f"{section.name} {split} conservation"))
        if section.strips:
            parts.append("<h3>Side by side (rollout 0): top truth | models, bottom error "
                         "heat maps</h3>")
            for split, (gif, labels) in section.strips.items():
                parts.append(f"<p class='labels'><b>{_esc(split)}</b>: "
                             f"{_esc(' | '.join(labels))}</p>")
                parts.append(image(gif, "image/gif", f"{section.name} {split} strip",
                                   cls="strip"))
    parts.append("<h2 id='paired'>Paired comparisons</h2>")
    parts.append("<p class='note'>Wilcoxon signed-rank tests on the same rollouts (per-rollout "
                 "values reduced as each metric declares; a failed rollout takes the worst "
                 "value any model reached on it). <i>better</i> names the winner at a "
                 "Holm-corrected p &lt; 0.05 over the whole table. Pairs: "
                 f"{_esc(', '.join(f'{a} vs {b}' for a, b in content.pairs) or 'none')}.</p>")
    for a, b in content.pairs:
        pair = content.comparisons[(content.comparisons["a"] == a)
                                   & (content.comparisons["b"] == b)]
        wins = {m: int((pair["better"] == m).sum()) for m in (a, b)}
        parts.append(f"<details open><summary><b>{_esc(a)} vs {_esc(b)}</b>: {_esc(a)} "
                     f"better on {wins[a]}, {_esc(b)} better on {wins[b]} of {len(pair)} "
                     "(scenario, split, metric) cells at p &lt; 0.05</summary>")
        parts.append(table(comparison_rows(pair)))
        parts.append("</details>")
    parts.append("<h2 id='run'>Run</h2>")
    parts.append(table([{"": k, "value": v} for k, v in run_facts(run)], cls="facts"))
    parts.append(validation_html(content.run_dir))
    parts.append("</main></body></html>")
    return "\n".join(parts)


def leaderboard_html(content: ReportContent) -> list[str]:
    if content.leaderboard is None:
        return ["<p class='note'>No scores: the run lacks the <code>truth</code> and "
                "<code>shuffled</code> anchors. See the per-scenario tables.</p>"]
    return [
        f"<p class='note'>{_esc(SCORE_NOTE)}</p>",
        table(leaderboard_rows(content.leaderboard)),
    ]


def validation_html(run_dir: Path) -> str:
    """The section linking the ground-truth validation page of this runs root (written by
    ``physground validate-physics``), or saying how to produce it."""
    from physground.benchmarks.validation.runner import find_validation_page, relative_link

    head = "<h2 id='validation'>Ground-truth validation</h2>"
    page = find_validation_page(run_dir)
    if page is None:
        return (head + "<p class='note'>No validation page found beside this run: "
                "<code>physground validate-physics --root ROOT</code> writes it to "
                "<code>ROOT/validation/index.html</code>, which this report then links.</p>")
    link = relative_link(page, Path(run_dir) / "report")
    return (head + f"<p>The simulators' ground truth was checked against experiments and "
            f"closed forms: <a href='{_esc(link)}'>validation page</a> "
            f"(<code>{_esc(str(page))}</code>).</p>")


def _anchor(name: str) -> str:
    return "s-" + name.replace("/", "-")


def write(content: ReportContent, path: Path) -> Path:
    from physground.atomic import write_text_atomic

    write_text_atomic(path, render(content))
    return path
