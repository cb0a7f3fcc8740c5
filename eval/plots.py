"""Eval scores as bars: the ``results.json`` files `mmreason eval` writes, read back; a bar panel per task.

`mmreason plot` (`mmreason.train.plots`) draws these panels below the training curves of the same runs,
so a run folder that holds both a training log and its evaluations shows both in one picture.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

RESULTS_FILE = "results.json"
RESULTS_GLOBS = (RESULTS_FILE, f"*/{RESULTS_FILE}", f"*/*/{RESULTS_FILE}")

Scores = Mapping[str, float | None]  # metric -> mean


def as_number(value: Any) -> float | None:
    """A finite int or float as a float; anything else (bool, NaN, text, None) as None.

    >>> as_number(3), as_number(True), as_number(float("nan"))
    (3.0, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def load_results(run_dir: str | Path) -> dict[str, dict[str, float | None]]:
    """``{task: {metric: mean}}`` from every results.json in `run_dir` or up to two folders below it.

    A file that cannot be read as an eval result is skipped with a warning naming it.
    """
    out: dict[str, dict[str, float | None]] = {}
    root = Path(run_dir)
    for path in sorted({p for pattern in RESULTS_GLOBS for p in root.glob(pattern)}):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            task, metrics = data["task"], data["metrics"]
            means = {str(name): as_number(m.get("mean")) for name, m in metrics.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            warnings.warn(f"{path}: not an eval result ({type(exc).__name__}: {exc}), skipped", stacklevel=2)
            continue
        key = task if task not in out else f"{task} ({path.parent.name})"
        out[key] = means
    return out


def draw_score_bars(ax: Any, task: str, runs: Sequence[tuple[str, Mapping[str, Scores]]]) -> None:
    """One bar per run and metric of `task` on the matplotlib axes `ax`; `runs` are (label, results) in
    legend order (run k drawn in colour ``Ck``). A metric with no mean has no bar."""
    names = list(dict.fromkeys(m for _, results in runs for m in results.get(task, {})))
    width = 0.8 / len(runs)
    for k, (label, results) in enumerate(runs):
        scores = results.get(task)
        if scores is None:
            continue
        xs = [i - 0.4 + width * (k + 0.5) for i, n in enumerate(names) if scores.get(n) is not None]
        ys = [scores[n] for n in names if scores.get(n) is not None]
        bars = ax.bar(xs, ys, width, color=f"C{k % 10}", label=label)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 3 else 0, ha="right"
                  if len(names) > 3 else "center", fontsize=8)
    ax.set_title(f"eval: {task}", fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="y", alpha=0.3)
