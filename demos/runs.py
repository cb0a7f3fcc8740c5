"""Runs dashboard: pick training run folders and see their curves overlaid (reward and its components, KL,
completion length, tool calls, loss, eval scores) and what the policy wrote at each logged step.

The curves are `mmreason plot`'s own figure and the logs are read by the training code's readers
(`mmreason.train.plots`, `mmreason.train.logging`). Demos never import the training layer, so those
readers are handed in as a `LogReaders` by the command line (`mmreason demo runs`), the one place that
joins the two layers; a test or a notebook hands in the same.

    mmreason demo runs --runs outputs/sft --runs outputs/grpo
    mmreason demo runs --under outputs          # every run folder found below outputs/

Only the folders given at start are offered; the page picks among them, it never takes a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

METRICS_FILE = "metrics.jsonl"
MAX_TEXT = 600  # characters of a completion shown in the table (the whole text is one click away in the log)


@dataclass(frozen=True)
class LogReaders:
    """The training layer's log readers: `load_run(path, label) -> Run` (metric series and eval results),
    `run_labels(paths)`, `select_metrics(available, patterns)`, `draw(runs, metrics, window=)` (a Figure)
    and `read_jsonl(path)` for the completions log named `completions_file`."""

    load_run: Callable[..., Any]
    run_labels: Callable[..., list[str]]
    select_metrics: Callable[..., list[str]]
    draw: Callable[..., Any]
    read_jsonl: Callable[..., list[dict]]
    completions_file: str = "completions.jsonl"


def find_runs(root: str | Path) -> list[Path]:
    """Run folders at or below `root`: those holding a metrics log, sorted, nested checkpoints skipped."""
    root = Path(root)
    found = sorted({p.parent for p in root.rglob(METRICS_FILE)})
    return [p for p in found if not any(q in p.parents for q in found)]


def curves(readers: LogReaders, folders: Sequence[str], patterns: Sequence[str] = (), smooth: int = 1):
    """(the overlaid figure, the metrics drawn) of the picked run folders; `ValueError` naming a folder
    with nothing to draw."""
    from mmreason.errors import MMReasonError

    if not folders:
        raise ValueError("pick at least one run")
    labels = readers.run_labels(list(folders))
    try:
        runs = [readers.load_run(path, label) for path, label in zip(folders, labels)]
    except MMReasonError as exc:
        raise ValueError(str(exc)) from None
    metrics = readers.select_metrics({m for run in runs for m in run.series}, list(patterns) or None)
    return readers.draw(runs, metrics, window=max(1, int(smooth))), metrics


def logged_steps(readers: LogReaders, folder: str) -> list[int]:
    path = Path(folder) / readers.completions_file
    return [r["step"] for r in readers.read_jsonl(path)] if path.is_file() else []


def completions_at(readers: LogReaders, folder: str, step: int) -> list[list[Any]]:
    """Table rows of what the policy wrote at `step`: one per logged sample, its scalar fields then the
    completion text (cut at `MAX_TEXT` characters)."""
    path = Path(folder) / readers.completions_file
    if not path.is_file():
        return []
    record = next((r for r in readers.read_jsonl(path) if r.get("step") == step), None)
    rows = []
    for sample in (record or {}).get("samples") or []:
        text = str(sample.get("completion", ""))
        scalars = {k: v for k, v in sample.items() if k != "completion" and isinstance(v, (int, float, str))}
        rows.append([", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in scalars.items()), text[:MAX_TEXT]])
    return rows


def build_demo(folders: Sequence[str | Path], readers: LogReaders, *, title: str = "mmreason runs") -> Any:
    """The Gradio Blocks (not launched) over the run folders `folders`."""
    import gradio as gr

    from mmreason.demos import app_temp_dir

    app_temp_dir()  # before any component is made: Gradio stores (and later serves) files only there

    names = [str(f) for f in folders]

    def allowed(picked: Sequence[str]) -> list[str]:
        outside = [p for p in picked if p not in names]
        if outside:  # the page sends names; only the folders given at start are read
            raise gr.Error(f"not a run this dashboard was started with: {', '.join(outside)}")
        return list(picked)

    def draw(picked, patterns, smooth):
        try:
            figure, metrics = curves(readers, allowed(picked or []),
                                     [p.strip() for p in (patterns or "").split(",") if p.strip()], smooth)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        return figure, f"{len(metrics)} metrics: {', '.join(metrics)}"

    def pick_run(run):
        steps = logged_steps(readers, allowed([run])[0]) if run else []
        return gr.update(choices=steps, value=steps[-1] if steps else None)

    def table(run, step):
        if not run or step is None:
            return []
        return completions_at(readers, allowed([run])[0], int(step))

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {title}\nTraining curves of the picked runs, overlaid (the figure of `mmreason plot`), "
                    "and the completions each run logged.")
        with gr.Row():
            with gr.Column(scale=1):
                picked = gr.CheckboxGroup(names, value=names[:2], label="runs", elem_id="runs")
                patterns = gr.Textbox(label="metrics (comma-separated names or globs; empty: the usual set)",
                                      placeholder="reward, rewards/*, kl, completion_length")
                smooth = gr.Slider(1, 50, value=1, step=1, label="smoothing window (steps)")
                plot_btn = gr.Button("Plot", variant="primary")
                drawn = gr.Markdown(elem_id="drawn")
            with gr.Column(scale=3):
                figure = gr.Plot(label="curves", elem_id="curves")
        with gr.Row():
            run = gr.Dropdown(names, value=None, label="completions of run")
            step = gr.Dropdown([], allow_custom_value=True, label="logged step")
        samples = gr.Dataframe(headers=["fields", "completion"], label="logged completions", wrap=True,
                               elem_id="completions")
        plot_btn.click(draw, [picked, patterns, smooth], [figure, drawn], api_name="plot")
        run.change(pick_run, run, step)
        step.change(table, [run, step], samples, api_name="completions")
    return demo


def main(argv: Sequence[str] | None = None, readers: LogReaders | None = None) -> int:
    import argparse

    from mmreason.demos import add_serve_args, serve

    parser = argparse.ArgumentParser(prog="mmreason demo runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", action="append", default=[], metavar="DIR", help="a training output folder")
    parser.add_argument("--under", metavar="DIR", help="offer every run folder found below DIR "
                        "(default, without --runs: outputs/ when it exists)")
    add_serve_args(parser)
    args = parser.parse_args(argv)
    if readers is None:
        parser.error("the runs dashboard needs the training-log readers: start it with `mmreason demo runs`")
    for folder in args.runs:
        if not (Path(folder) / METRICS_FILE).is_file():
            parser.error(f"--runs {folder}: no {METRICS_FILE} there (not a training output folder)")
    under = args.under or ("outputs" if not args.runs and Path("outputs").is_dir() else None)
    if under and not Path(under).is_dir():
        parser.error(f"--under {under}: no such folder")
    folders = [*args.runs, *(str(p) for p in find_runs(under) if str(p) not in args.runs)] if under else args.runs
    if not folders:
        print("no run folders yet: train one (`mmreason train ...`) or pass --runs DIR", flush=True)
    return serve(build_demo(folders, readers), args)
