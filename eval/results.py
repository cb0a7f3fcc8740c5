"""An eval run's results record (scores, prompt, pixel budget, generation settings, model, dataset
fingerprint: what ``results.json`` holds) and the table `mmreason eval` prints from it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Mapping

from mmreason import __version__
from mmreason.eval.benchmarks import find_task
from mmreason.eval.run_setup import Setup
from mmreason.eval.tasks import rendered_prompt


def results_record(task_name: str, setup: Setup, model: dict | None, data: dict, summary: dict, n: int,
                   counts: dict, seconds: float, resumed: int = 0) -> dict:
    task = find_task(task_name)
    metrics = summary["metrics"]
    return {
        "task": task_name, "description": task.description, "reference": task.reference,
        "metrics": metrics, "headline": next(iter(metrics)), "samples": n,
        "breakdown": summary["breakdown"], "paper": {k: dict(v) for k, v in task.paper.items()},
        "coord_readings": summary.get("coord_readings"), "stop_reasons": summary.get("stop_reasons") or {},
        "layout": None if task.layout is None else {"loader": task.layout.loader,
                                                     "options": _plain(task.layout.options)},
        "prompt": rendered_prompt(task), "media": {k: dict(v) for k, v in setup.media.items()},
        "image_budget": {"min_pixels": setup.image_budget[0], "max_pixels": setup.image_budget[1]},
        "generation": asdict(setup.generation), "judge": _public_judge(setup.judge),
        "segment_seconds": setup.segment_seconds,
        "metric_specs": {k: {"fn": m.fn, "options": dict(m.options)} for k, m in task.metrics.items()},
        "model": model, "dataset": {**data, **counts}, "mmreason_version": __version__,
        "seconds": round(seconds, 1), "resumed": resumed, **dict(setup.extra),
    }


def _plain(value: Any) -> Any:
    """Mappings and tuples of a layout's options as JSON values."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _public_judge(judge: Mapping[str, Any] | None) -> dict | None:
    return None if judge is None else {k: v for k, v in judge.items() if k != "api_key_env"}


def print_table(results: Mapping[str, Any]) -> None:
    """The scores, the method papers' reported numbers beside them, then each breakdown."""
    from rich.console import Console
    from rich.table import Table

    model = results["model"].get("spec") or results["model"]["family"]
    paper = results.get("paper") or {}
    table = Table(title=results["task"], title_justify="left")
    for col in ("metric", "score", "n", *paper):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, m in results["metrics"].items():
        reported = [paper[src].get(name) for src in paper]
        table.add_row(name, _cell(m["mean"]), str(m["n"]), *(_cell(v) for v in reported))
    console = Console()
    header = f"{results['samples']} samples of {results['dataset']['path']}, model {model}"
    if results.get("resumed"):
        header += f" ({results['resumed']} read back from an interrupted run)"
    console.print(header, markup=False, highlight=False)
    console.print(table)
    readings = results.get("coord_readings")
    if readings:
        by, declared, won = readings["by"], readings["declared"], readings["won"]
        cells = "; ".join(f"as {f}{' (declared)' if f == declared else ''}: {by} {_cell(m[by]['mean'])}"
                          for f, m in readings["scored"].items())
        advice = "" if won == declared else f" (pass --coord-frame {won} to score in it)"
        console.print(f"coordinates read {cells} -> {won} won{advice}", markup=False, highlight=False,
                      soft_wrap=True)
    cut = cut_warning(results)
    if cut:
        console.print(cut, markup=False, highlight=False, soft_wrap=True)
    headline = results.get("headline")
    for key, groups in (results.get("breakdown") or {}).items():
        cells = ", ".join(f"{g} {_cell(v.get(headline, {}).get('mean'))} (n={v.get(headline, {}).get('n', 0)})"
                          for g, v in groups.items())
        console.print(f"  {headline} by {key}: {cells}", markup=False, highlight=False)


CUT_SHARE = 0.2  # from this share of outputs cut at the token budget, the scores mostly read cut answers


def cut_warning(results: Mapping[str, Any]) -> str | None:
    """A warning when at least `CUT_SHARE` of the outputs stopped at the token budget before they ended:
    their answers were cut, so a low score may be the budget's, not the model's.

    >>> print(cut_warning({"samples": 10, "stop_reasons": {"max_tokens": 4, "answer": 6},
    ...                    "generation": {"max_new_tokens": 64}}))
    warning: 4 of 10 outputs stopped at the budget of 64 new tokens before they ended (scored as cut); \
pass a larger --max-new-tokens
    """
    cut, n = (results.get("stop_reasons") or {}).get("max_tokens", 0), results.get("samples") or 0
    if not n or cut / n < CUT_SHARE:
        return None
    budget = (results.get("generation") or {}).get("max_new_tokens")
    return (f"warning: {cut} of {n} outputs stopped at the budget of {budget} new tokens before they ended "
            "(scored as cut); pass a larger --max-new-tokens")


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
