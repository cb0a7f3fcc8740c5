"""`mmreason eval compare RUN_A RUN_B`: two (or more) runs' eval scores side by side, as a table and a bar chart.

    mmreason eval compare outputs/eval/base outputs/eval/grpo --out compare.png

A run is a folder holding ``results.json`` files (itself or up to two folders below: a ``--tasks`` run's
``<out>/<task>/``), read by `plots.load_results`. The table lists each task's metrics, each run's mean and
the change from the first run; the chart draws one bar panel per task (`plots.draw_score_bars`).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Mapping, Sequence

from mmreason.eval.plots import draw_score_bars, load_results

Results = Mapping[str, Mapping[str, float | None]]


def comparison_rows(runs: Sequence[tuple[str, Results]]) -> list[list[str]]:
    """[task, metric, score per run..., change of the last run from the first] for every metric any run has.

    >>> comparison_rows([("a", {"t": {"acc": 0.5}}), ("b", {"t": {"acc": 0.75, "f": 1.0}})])
    [['t', 'acc', '0.5000', '0.7500', '+0.2500'], ['t', 'f', '-', '1.0000', '-']]
    """
    tasks = list(dict.fromkeys(t for _, results in runs for t in results))
    rows = []
    for task in tasks:
        metrics = list(dict.fromkeys(m for _, results in runs for m in results.get(task, {})))
        for metric in metrics:
            values = [results.get(task, {}).get(metric) for _, results in runs]
            first, last = values[0], values[-1]
            change = "-" if first is None or last is None else f"{last - first:+.4f}"
            rows.append([task, metric, *("-" if v is None else f"{v:.4f}" for v in values), change])
    return rows


def draw_comparison(runs: Sequence[tuple[str, Results]], path: Path) -> Path:
    """One bar panel per task, a bar per run and metric, saved as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(t for _, results in runs for t in results))
    cols = min(3, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        draw_score_bars(ax, task, runs)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mmreason eval compare", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN", help="eval output folders (two or more)")
    p.add_argument("--labels", help="comma-separated names of the runs (default: the folder names)")
    p.add_argument("--out", default="compare.png", help="the bar chart PNG (default compare.png)")
    args = p.parse_args(argv)
    if len(args.runs) < 2:
        p.error("give at least two runs to compare")
    labels = args.labels.split(",") if args.labels else [Path(r).name or r for r in args.runs]
    if len(labels) != len(args.runs):
        p.error(f"--labels names {len(labels)} runs, but {len(args.runs)} are given")
    runs = []
    for label, folder in zip(labels, args.runs):
        if not Path(folder).is_dir():
            print(f"mmreason eval compare: {folder} is not a folder", file=sys.stderr)
            return 2
        results = load_results(folder)
        if not results:
            print(f"mmreason eval compare: no results.json in {folder} or two folders below it (a run that "
                  "has not finished writes none)", file=sys.stderr)
            return 2
        runs.append((label, results))
    from rich.console import Console
    from rich.table import Table

    table = Table(title="eval compare", title_justify="left")
    for col in ("task", "metric", *labels, f"{labels[-1]} - {labels[0]}"):
        table.add_column(col, justify="left" if col in ("task", "metric") else "right")
    for row in comparison_rows(runs):
        table.add_row(*row)
    Console().print(table)
    print(f"wrote {draw_comparison(runs, Path(args.out))}")
    return 0


__all__ = ["comparison_rows", "draw_comparison", "main"]
