"""Per-metric scores of codec round trips of the truth, frozen video and copy-last.

``python -m physground.benchmarks.validity.codec_table [--suite quick] [--rollouts 4]``
prints one row per (scenario, metric): the bounded score of an H.264 CRF 23 round trip,
a half-size downscale, H.264 CRF 23 at 3/2 the size, a GIF round trip, the fully frozen
video (``frozen-video@1``, frames only) and the copy-last baseline, each the mean over
rollouts and splits of `normalized_scores` (codecs with their delivered anchors)
(``--column value``: the metric values instead).
"""

from __future__ import annotations

import argparse

import pandas as pd

COLUMNS = {"h264_crf23@1": "h264", "downscale_half@1": "half",
           "h264_crf23_large@1": "h264 3/2", "gif@1": "gif",
           "frozen-video@1": "frozen", "copy-last": "copy-last"}


def codec_table(suite: str = "quick", rollouts: int = 4, seed: int = 0,
                column: str = "score") -> pd.DataFrame:
    from physground.benchmarks.validity.suite import scenario_scores, suite_entries
    from physground.suite import load_suite

    parts = []
    for name, config, context, horizon in suite_entries(load_suite(suite)):
        table = scenario_scores(name, config, context, horizon, rollouts, seed,
                                ["h264_crf23", "downscale_half", "h264_crf23_large",
                                 "gif", "frozen"],
                                videos=("frozen",))
        parts.append(table[table["model"].isin(COLUMNS)])
    scores = pd.concat(parts, ignore_index=True)
    grid = scores.pivot_table(index=["scenario", "metric"], columns="model", values=column,
                              aggfunc="mean")
    return grid[[c for c in COLUMNS if c in grid.columns]].rename(columns=COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="quick")
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--column", default="score",
                        help="score (default), value (the metric, reduced), floor, ...")
    args = parser.parse_args()
    table = codec_table(args.suite, args.rollouts, column=args.column)
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table.round(1 if args.column == "score" else 4).to_string())


if __name__ == "__main__":
    main()
