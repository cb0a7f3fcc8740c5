"""`mmreason plot`: training curves of one or more runs as a grid of line plots, eval scores as bars, one PNG.

    mmreason plot outputs/grpo
    mmreason plot outputs/sft outputs/grpo --labels sft,rl --out compare.png
    mmreason plot outputs/grpo --metrics 'reward,rewards/*,kl' --smooth 10

Each RUN_DIR is a training ``output_dir``: its ``metrics.jsonl`` (written by `RunLogger`) gives one panel
per metric with one line per run, so an SFT run and an RL run, or a resumed and an uninterrupted run,
overlay. ``--smooth N`` draws the trailing N-point mean over a faint raw line. Every ``results.json``
(written by ``mmreason eval``) in RUN_DIR or up to two folders below adds one bar panel per task
(`mmreason.eval.plots`): each metric's mean, one bar per run.

A torn or corrupt line in a log is skipped with a warning naming the file and line; a step logged twice
(a resumed run whose log was not truncated) keeps its last value.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from mmreason.errors import MMReasonError
from mmreason.eval.plots import RESULTS_FILE, as_number, draw_score_bars, load_results
from mmreason.train.logging import METRICS_FILE

# What a run is judged by, in panel order; names from grpo_step (RL), scoring (rewards/<component>) and the
# transformers Trainer (SFT: learning_rate, mean_token_accuracy). Only those some run logged are drawn.
DEFAULT_METRICS = (
    "reward", "rewards/*", "advantages/mean", "advantages/std", "zero_variance_frac", "kl", "clip_fraction",
    "entropy", "completion_length", "tool_calls_per_trajectory", "loss", "mean_token_accuracy", "grad_norm",
    "lr", "learning_rate", "throughput/tokens_per_s",
)
PANEL = (450, 320)  # pixels per panel
DPI = 100
COLUMNS = 3

Series = dict[str, list[tuple[int, float]]]


@dataclass(frozen=True)
class Run:
    """One run: its label, metric series, and the eval results found in its folder ({task: metrics})."""

    path: Path
    label: str
    series: Series
    results: Mapping[str, Mapping[str, float | None]]


# ------------------------------------------------------------------------------------------ reading
def load_series(run_dir: str | Path) -> Series:
    """``{metric: [(step, value), ...]}`` sorted by step, from a run's metrics.jsonl (or that file itself).

    A line that is not a JSON object with an integer ``step`` is skipped with a warning naming the file and
    line; a metric absent from a record simply has no point at that step.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> rows = '{"step": 2, "loss": 0.5}\\n{"step": 1, "loss": 0.9, "kl": 0.1}\\n'
    >>> _ = (d / "metrics.jsonl").write_text(rows)
    >>> load_series(d)
    {'loss': [(1, 0.9), (2, 0.5)], 'kl': [(1, 0.1)]}
    """
    path = Path(run_dir)
    path = path / METRICS_FILE if path.is_dir() else path
    by_step: dict[str, dict[int, float]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                warnings.warn(f"{path} line {n}: not valid JSON ({exc.msg}), skipped", stacklevel=2)
                continue
            step = record.get("step") if isinstance(record, dict) else None
            if isinstance(step, bool) or not isinstance(step, int):
                warnings.warn(f"{path} line {n}: not a record with an integer 'step', skipped", stacklevel=2)
                continue
            for key, value in record.items():
                number = as_number(value)
                if key != "step" and number is not None:
                    by_step.setdefault(key, {})[step] = number
    return {k: sorted(points.items()) for k, points in by_step.items()}


def load_run(path: str | Path, label: str) -> Run:
    """A run folder (or a metrics.jsonl file); an error naming the path when there is nothing to plot."""
    path = Path(path)
    if not path.exists():
        raise MMReasonError(f"{path}: no such run directory")
    folder = path.parent if path.is_file() else path
    log = path if path.is_file() else path / METRICS_FILE
    series = load_series(log) if log.is_file() else {}
    results = {} if path.is_file() else load_results(path)
    if not series and not results:
        found = f"{log} holds no metric records" if log.is_file() else f"no {METRICS_FILE} (a training log)"
        raise MMReasonError(f"{path}: nothing to plot: {found} and no {RESULTS_FILE} (an eval) in it")
    return Run(folder, label, series, results)


def run_labels(paths: Sequence[str | Path]) -> list[str]:
    """Short distinct labels: the folder names, or more of each path where those clash.

    >>> run_labels(["out/a/grpo", "out/b/grpo", "out/sft"])
    ['a/grpo', 'b/grpo', 'sft']
    """
    parts = [Path(p).resolve().parts for p in paths]
    depth = [1] * len(parts)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        clashes = {i for i, lab in enumerate(labels) if labels.count(lab) > 1 and depth[i] < len(parts[i])}
        if not clashes:
            return labels
        for i in clashes:
            depth[i] += 1


def select_metrics(available: Iterable[str], patterns: Sequence[str] | None = None) -> list[str]:
    """The metrics to draw, in pattern order: names or globs (``rewards/*``); `DEFAULT_METRICS` when none
    are given (their ``/applicable`` shares left out; every metric when no default one was logged).

    >>> select_metrics(["kl", "reward", "rewards/iou", "rewards/iou/applicable", "epoch"])
    ['reward', 'rewards/iou', 'kl']
    >>> select_metrics(["kl", "rewards/iou", "rewards/iou/applicable"], ["rewards/*"])
    ['rewards/iou', 'rewards/iou/applicable']
    """
    names = sorted(set(available))
    chosen: list[str] = []
    for pattern in patterns or DEFAULT_METRICS:
        for name in fnmatch.filter(names, pattern):
            if name not in chosen and (patterns or not name.endswith("/applicable")):
                chosen.append(name)
    if not chosen and not patterns:
        return [n for n in names if n != "epoch"] or names
    return chosen


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average over `window` points (fewer at the start, so the curve starts with the data).

    >>> smooth([1.0, 3.0, 5.0, 7.0], 2)
    [1.0, 2.0, 4.0, 6.0]
    """
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


# ------------------------------------------------------------------------------------------ drawing
def _grid(n_lines: int, n_tasks: int) -> tuple[int, int, int]:
    """(columns, rows of line panels, rows of eval panels); each section starts on its own row."""
    cols = max(1, min(COLUMNS, max(n_lines, n_tasks)))
    return cols, -(-n_lines // cols), -(-n_tasks // cols)


def figure_pixels(n_lines: int, n_tasks: int = 0) -> tuple[int, int]:
    """The PNG's (width, height) for that many line panels and eval tasks."""
    cols, line_rows, eval_rows = _grid(n_lines, n_tasks)
    return cols * PANEL[0], (line_rows + eval_rows) * PANEL[1]


def draw(runs: Sequence[Run], metrics: Sequence[str], *, window: int = 1):
    """A matplotlib Figure (Agg, no pyplot state): a line panel per metric, then a bar panel per eval task."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    tasks = list(dict.fromkeys(t for run in runs for t in run.results))
    cols, line_rows, eval_rows = _grid(len(metrics), len(tasks))
    rows = line_rows + eval_rows
    width, height = figure_pixels(len(metrics), len(tasks))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, i + 1)
        for k, run in enumerate(runs):
            points = run.series.get(metric)
            if not points:
                continue
            steps, values = [s for s, _ in points], [v for _, v in points]
            style = {"color": f"C{k % 10}", "marker": "o" if len(points) == 1 else None}
            if window > 1:  # raw faint underneath, its label hidden from the legend
                ax.plot(steps, values, alpha=0.25, linewidth=0.8, label=f"_{run.label} raw", **style)
                values = smooth(values, window)
            ax.plot(steps, values, linewidth=1.5, label=run.label, **style)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for j, task in enumerate(tasks):
        ax = fig.add_subplot(rows, cols, line_rows * cols + j + 1)
        draw_score_bars(ax, task, [(run.label, run.results) for run in runs])
    handles = [Line2D([], [], color=f"C{k % 10}", label=run.label) for k, run in enumerate(runs)]
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(runs), 4), fontsize=9)
    return fig


# --------------------------------------------------------------------------------------------- CLI
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmreason plot", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="training output folders (metrics.jsonl, results.json)")
    p.add_argument("--out", type=Path,
                   help="PNG to write (default RUN_DIR/plot.png, or ./plot.png for several runs)")
    p.add_argument("--metrics", help="comma-separated names or globs, e.g. 'reward,rewards/*,kl' "
                   "(default: reward, its components, advantages, KL, clip fraction, entropy, lengths, ...)")
    p.add_argument("--smooth", type=int, default=1, metavar="N",
                   help="trailing N-point moving average over a faint raw line (default 1: raw only)")
    p.add_argument("--labels", help="comma-separated legend names, one per RUN_DIR (default: folder names)")
    return p


def plot(args: argparse.Namespace) -> tuple[Path, list[str], list[str]]:
    """Load, draw and save; returns (the PNG path, the metrics drawn, the eval tasks drawn)."""
    labels = args.labels.split(",") if args.labels else run_labels(args.runs)
    if len(labels) != len(args.runs):
        raise MMReasonError(f"--labels has {len(labels)} names for {len(args.runs)} runs")
    runs = [load_run(path, label) for path, label in zip(args.runs, labels)]
    available = {m for run in runs for m in run.series}
    patterns = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    for pattern in patterns or ():
        if not fnmatch.filter(available, pattern):
            raise MMReasonError(f"--metrics: {pattern!r} matches no metric the runs logged "
                                f"(they have: {', '.join(sorted(available)) or 'none'})")
    metrics = select_metrics(available, patterns)
    out = args.out or (Path(args.runs[0]) / "plot.png" if len(runs) == 1 and runs[0].path.is_dir()
                       else Path("plot.png"))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = draw(runs, metrics, window=args.smooth)
    fig.savefig(out, format="png")
    return out, metrics, list(dict.fromkeys(t for run in runs for t in run.results))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.smooth < 1:
        print("mmreason plot: --smooth must be >= 1", file=sys.stderr)
        return 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out, metrics, tasks = plot(args)
        except (MMReasonError, OSError) as exc:
            error: Exception | None = exc
        else:
            error = None
    for w in caught:  # torn lines and the like: shown plainly, not as Python warnings
        print(f"mmreason plot: warning: {w.message}", file=sys.stderr)
    if error is not None:
        print(f"mmreason plot: error: {error}", file=sys.stderr)
        return 2
    evals = f" and {len(tasks)} eval task(s)" if tasks else ""
    print(f"wrote {out}: {len(metrics)} metric(s){evals}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
