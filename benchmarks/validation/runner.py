"""Run validation studies and write the validation page (HTML and Markdown).

``run_studies`` runs the selected studies into ``out_dir`` and writes ``index.html``,
``validation.md``, one CSV table per study under ``tables/``, the figures under
``figures/`` and ``validation.json`` (settings, versions, pass/fail per study). A study
that raises is recorded as failed with its error, so the page still says what passed.
"""

from __future__ import annotations

import html
import json
import os
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from physground.atomic import write_text_atomic
from physground.benchmarks.validation.base import STUDIES, StudyResult

PAGE = "index.html"
MARKDOWN = "validation.md"


def select_studies(names: Iterable[str] = (), tags: Iterable[str] = ()) -> list[str]:
    """Study names: the given ones (patterns allowed), else all, filtered by every tag."""
    names, tags = list(names), list(tags)
    chosen = STUDIES.select(names) if names else STUDIES.names()
    return [n for n in chosen if all(t in STUDIES.tags(n) for t in tags)]


def run_studies(
    out_dir: Path, *, quick: bool = False, names: Iterable[str] = (), tags: Iterable[str] = (),
    progress: bool = True,
) -> list[StudyResult]:
    """Run the studies into ``out_dir`` and write the page; returns their results."""
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    results: list[StudyResult] = []
    timings: dict[str, float] = {}
    bar = tqdm(select_studies(names, tags), desc="validation studies", unit="study",
               disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        start = time.perf_counter()
        try:
            result = STUDIES.get(name)(quick, out_dir / "figures")
        except Exception as err:  # recorded as a failed study, with its traceback
            result = StudyResult(
                name=name, title=name, reference="", tolerance="", passed=False,
                table=pd.DataFrame(), summary=f"error: {type(err).__name__}: {err}",
                settings={"traceback": traceback.format_exc()},
            )
        timings[name] = time.perf_counter() - start
        result.table.to_csv(out_dir / "tables" / f"{name}.csv", index=False)
        results.append(result)
    write_page(results, out_dir, quick=quick, timings=timings)
    return results


def _record(results: list[StudyResult], quick: bool, timings: dict[str, float]) -> dict:
    from physground.provenance import library_versions

    return {
        "quick": quick,
        "passed": all(r.passed for r in results),
        "versions": library_versions(),
        "studies": [{"name": r.name, "title": r.title, "passed": r.passed,
                     "reference": r.reference, "tolerance": r.tolerance,
                     "summary": r.summary, "seconds": round(timings.get(r.name, 0.0), 2),
                     "settings": {k: v for k, v in r.settings.items()},
                     "figures": [p.name for p in r.figures]} for r in results],
    }


def write_page(results: list[StudyResult], out_dir: Path, *, quick: bool,
               timings: dict[str, float]) -> Path:
    """Write ``index.html``, ``validation.md`` and ``validation.json``; returns the HTML."""
    record = _record(results, quick, timings)
    write_text_atomic(out_dir / "validation.json",
                      json.dumps(record, indent=2, default=str) + "\n")
    write_text_atomic(out_dir / MARKDOWN, render_markdown(results, record))
    write_text_atomic(out_dir / PAGE, render_html(results, record))
    return out_dir / PAGE


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "pass" if value else "FAIL"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def render_markdown(results: list[StudyResult], record: dict) -> str:
    """The validation page in Markdown: summary table, then per study its table and figure."""
    lines = ["# Ground-truth validation", "",
             f"{'Quick' if record['quick'] else 'Full'} run; "
             f"{sum(r.passed for r in results)} of {len(results)} studies pass.", "",
             "| study | result | tolerance | summary |", "| --- | --- | --- | --- |"]
    lines += [f"| [{r.title}](#{r.name}) | {_verdict(r.passed)} | {r.tolerance} | "
              f"{r.summary} |" for r in results]
    for r in results:
        lines += ["", f"## {r.title} {{#{r.name}}}", "",
                  f"**{_verdict(r.passed)}** · reference: {r.reference} · tolerance: "
                  f"{r.tolerance}", "", r.summary, ""]
        if len(r.table):
            cols = list(r.table.columns)
            lines += ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
            lines += ["| " + " | ".join(_fmt(v) for v in row) + " |"
                      for row in r.table.itertuples(index=False)]
        lines += [f"![{r.title}](figures/{p.name})" for p in r.figures]
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items())
    lines += ["", f"Versions: {versions}", ""]
    return "\n".join(lines)


CSS = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}td,th{border:1px solid #ccc;
padding:.2rem .5rem;text-align:right}th{background:#f3f3f3}.pass{color:#1a7f37}
.fail{color:#cf222e;font-weight:bold}img{max-width:36rem;display:block}code{font-size:.85rem}"""


def _table_html(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(results: list[StudyResult], record: dict) -> str:
    """The validation page in HTML; figures are linked from ``figures/``."""
    esc = html.escape
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>physground: ground-truth validation</title><style>{CSS}</style></head>",
             "<body><h1>Ground-truth validation</h1>",
             f"<p>{'Quick' if record['quick'] else 'Full'} run: "
             f"{sum(r.passed for r in results)} of {len(results)} studies pass. Each study "
             "compares physground's ground truth with an experiment or a closed form "
             "(<code>physground validate-physics</code>).</p>",
             "<table><tr><th>study</th><th>result</th><th>tolerance</th><th>summary</th></tr>"]
    for r in results:
        cls = "pass" if r.passed else "fail"
        parts.append(f"<tr><td><a href='#{esc(r.name)}'>{esc(r.title)}</a></td>"
                     f"<td class='{cls}'>{_verdict(r.passed)}</td><td>{esc(r.tolerance)}</td>"
                     f"<td>{esc(r.summary)}</td></tr>")
    parts.append("</table>")
    for r in results:
        cls = "pass" if r.passed else "fail"
        parts += [f"<h2 id='{esc(r.name)}'>{esc(r.title)} "
                  f"<span class='{cls}'>{_verdict(r.passed)}</span></h2>",
                  f"<p>Reference: {esc(r.reference)}<br>Tolerance: {esc(r.tolerance)}<br>"
                  f"{esc(r.summary)}</p>"]
        if len(r.table):
            parts.append(_table_html(r.table))
        parts += [f"<img src='figures/{esc(p.name)}' alt='{esc(r.title)}'>" for p in r.figures]
        if "traceback" in r.settings:
            parts.append(f"<pre>{esc(str(r.settings['traceback']))}</pre>")
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items())
    parts.append(f"<p><small>Versions: {esc(versions)}</small></p></body></html>\n")
    return "".join(parts)


def find_validation_page(start: Path) -> Path | None:
    """The validation page of the runs root holding ``start`` (a run directory): the
    nearest ``validation/index.html`` in ``start`` or its ancestors (up to 3 levels)."""
    start = Path(start).resolve()
    for folder in [start, *start.parents][:4]:
        page = folder / "validation" / PAGE
        if page.is_file():
            return page
    return None


def relative_link(page: Path, from_dir: Path) -> str:
    """``page`` as a link relative to ``from_dir`` (POSIX separators)."""
    return Path(os.path.relpath(Path(page).resolve(), Path(from_dir).resolve())).as_posix()
