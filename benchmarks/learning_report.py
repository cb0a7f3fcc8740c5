"""The numbers, curves and LEARNING.md section of one `benchmarks/learning.py` experiment, recomputed from
the files its stages wrote: ``eval/<model>/<evaluation>/samples.jsonl`` (one record per held-out sample, with
its scores), the held-out rows (for ViRL's rationale regions) and each run's ``metrics.jsonl``.
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Any, Mapping, Sequence

import markdown_sections
from learning_methods import Method

from mmreason.train.logging import read_jsonl

TOOL_TASKS = ("vstar", "video_com")  # eval tasks whose rollouts run tools
MARK = "<!-- learning.py:{method}:seed{seed} -->"
END = "<!-- /learning.py:{method}:seed{seed} -->"


def mean(values: Sequence[float | None]) -> float | None:
    """Mean of the values that exist (a metric that does not apply to a sample is None there).

    >>> mean([1.0, None, 0.0]), mean([None])
    (0.5, None)
    """
    kept = [float(v) for v in values if v is not None]
    return round(statistics.fmean(kept), 4) if kept else None


def zoom_labels(samples: Sequence[Mapping], rows: Mapping[str, Mapping]) -> dict[str, float | None]:
    """ViRL's own step labels on the eval outputs: every zoom classified against the held-out row's rationale
    regions (`mmreason.rewards.virl.virl_step_scores`, original pixels). ``correct_zoom_share``: correct
    zooms among all zooms; ``correct_zoom_rate``: samples whose zooms include a correct one."""
    from mmreason.rewards.virl import virl_step_scores

    labels, hit = [], []
    for s in samples:
        row = rows[s["id"]]
        steps = [st for st in virl_step_scores(s.get("output") or "", row["rationale_regions"],
                                               coord_frame="pixel", image_frames=s.get("image_frames"))
                 if st.kind == "zoom"]
        labels += [st.label for st in steps]
        hit.append(float(any(st.label == "correct" for st in steps)))
    return {"zooms_per_sample": round(len(labels) / len(samples), 4) if samples else None,
            "correct_zoom_share": mean([float(lab == "correct") for lab in labels]),
            "redundant_zoom_share": mean([float(lab == "redundant") for lab in labels]),
            "correct_zoom_rate": mean(hit)}


def eval_row(samples: Sequence[Mapping], rows: Mapping[str, Mapping] | None, tools: bool) -> dict[str, Any]:
    """One (model, evaluation) cell: n, every task metric's mean over the samples, the share of samples with
    an answer, the share cut at the token budget; for a tool task the share that called a tool; with ``rows`` (ViRL), its zoom labels."""
    metrics = sorted({k for s in samples for k in s.get("scores", {})})
    out: dict[str, Any] = {"n": len(samples)}
    out.update({k: mean([s["scores"].get(k) for s in samples]) for k in metrics})
    out["answered"] = mean([float(s.get("answer") is not None) for s in samples])
    # cut at the token budget: a share near 1 means the budget, not the model, set the scores
    out["cut"] = mean([float(s.get("stop_reason") == "max_tokens") for s in samples])
    if tools:
        out["tool_call_rate"] = mean([float((s.get("num_tool_calls") or 0) > 0) for s in samples])
    if rows is not None:
        out.update(zoom_labels(samples, rows))
    return out


def tables(out: Path, method: Method, models: Sequence[str]) -> dict[str, dict[str, dict]]:
    """{model: {evaluation: eval_row}} for every evaluation that has its samples."""
    rows = None
    if method.name == "virl":
        from mmreason.schema import load_rows

        rows = {r["id"]: r for r in load_rows(out / "data" / "heldout")}
    result: dict[str, dict[str, dict]] = {}
    for model in models:
        for name, evaluation in method.evaluations.items():
            path = out / "eval" / model / name / "samples.jsonl"
            if path.exists():
                result.setdefault(model, {})[name] = eval_row(read_jsonl(path), rows,
                                                              tools=evaluation.task in TOOL_TASKS)
    return result


def _se(p: float | None, n: int) -> float:
    """Standard error of a rate (or of a mean in [0, 1], as an upper bound) over n samples."""
    return math.sqrt(max(p or 0.0, 1e-9) * max(1 - (p or 0.0), 1e-9) / max(n, 1))


def code(text: str) -> str:
    """`text` as a Markdown code span, fenced by more backticks than it holds in a row.

    >>> code("a")
    '`a`'
    >>> code("say `x`")
    '`` say `x` ``'
    """
    import re

    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence}{text}{fence}" if not longest else f"{fence} {text} {fence}"


def compare(label: str, metric: str, a: Mapping, b: Mapping) -> str:
    """One reading line: the difference a - b of `metric` and whether it is beyond two standard errors.

    >>> compare("x", "accuracy", {"n": 100, "accuracy": 0.5}, {"n": 100, "accuracy": 0.2})
    'x, accuracy: 0.500 vs 0.200 (+0.300, beyond two standard errors: yes)'
    """
    va, vb = a.get(metric), b.get(metric)
    if va is None or vb is None:
        return f"{label}, {metric}: no value (no sample had one, e.g. no zoom was made)"
    se = math.sqrt(_se(va, a["n"]) ** 2 + _se(vb, b["n"]) ** 2)
    beyond = "yes" if abs(va - vb) > 2 * se else "no"
    return f"{label}, {metric}: {va:.3f} vs {vb:.3f} ({va - vb:+.3f}, beyond two standard errors: {beyond})"


PRIMARY = {"deepeyes": ("accuracy", "tool_call_rate"), "virl": ("accuracy", "correct_zoom_share"),
           "grit": ("accuracy", "grounding_iou", "format"), "infigui_r1": ("step_success", "type", "grounding"),
           "video_com": ("accuracy", "manipulations"), "gs_reasoner": ("miou", "acc@0.25", "format")}


def readings(method: Method, table: Mapping[str, Mapping[str, Mapping]]) -> list[str]:
    """The comparisons the claim rests on, each with its difference and noise check."""
    lines = []
    arms = [a for a in method.arms if a in table]
    for evaluation in method.evaluations:
        for arm in arms:
            if "sft" in table and evaluation in table[arm] and evaluation in table["sft"]:
                for metric in PRIMARY[method.name]:
                    lines.append(compare(f"{arm} vs SFT ({evaluation})", metric, table[arm][evaluation],
                                         table["sft"][evaluation]))
    if method.name == "deepeyes":
        for model in ("sft", *arms):
            cells = table.get(model, {})
            if "tools" in cells and "no_tools" in cells:
                lines.append(compare(f"{model}: zoom tool vs tools disabled", "accuracy", cells["tools"],
                                     cells["no_tools"]))
    if method.name == "virl" and {"step_credit", "sequence_credit"} <= set(table):
        for metric in ("accuracy", "correct_zoom_share", "correct_zoom_rate"):
            lines.append(compare("step-level vs sequence-level credit", metric, table["step_credit"]["tools"],
                                 table["sequence_credit"]["tools"]))
    return lines


def training_lines(out: Path, method: Method) -> list[str]:
    """What the runs' own logs say: SFT loss at its first and last logged step; for each RL arm, each curve's
    mean over the first and the last third of the steps (the DeepEyes claim "tool calls rise during RL" is
    read here)."""
    from mmreason.train.plots import load_series

    def thirds(points):
        k = max(1, len(points) // 3)
        return statistics.fmean(v for _, v in points[:k]), statistics.fmean(v for _, v in points[-k:])

    lines = []
    loss = load_series(out / "sft" / "metrics.jsonl").get("loss", []) if (out / "sft" / "metrics.jsonl").exists() else []
    if loss:
        lines.append(f"SFT loss {loss[0][1]:.2f} at step {loss[0][0]} -> {loss[-1][1]:.2f} at step {loss[-1][0]}")
    for arm in method.arms:
        path = out / arm / "metrics.jsonl"
        series = load_series(path) if path.exists() else {}
        # zero_variance_frac: groups whose completions all scored the same carry no GRPO/RLOO gradient
        parts = [f"{key} {a:.3f} -> {b:.3f}" for key in (*method.rl_curves, "zero_variance_frac")
                 if series.get(key) for a, b in [thirds(series[key])]]
        if parts:
            steps = max(p[0] for v in series.values() for p in v)
            lines.append(f"RL `{arm}` ({steps} steps), mean of the first third -> the last third: " + ", ".join(parts))
    return lines


def example_outputs(out: Path, method: Method, models: Sequence[str], width: int = 160) -> list[str]:
    """The first held-out output of each model under the first evaluation, cut to `width` characters: what
    the numbers are made of."""
    import json

    name = next(iter(method.evaluations))
    lines = []
    for model in models:
        path = out / "eval" / model / name / "samples.jsonl"
        if path.exists():
            first = read_jsonl(path)[:1]
            if first:
                text = (first[0].get("output") or "").replace("\n", " ")
                lines.append(f"{model} ({name}, gold `{first[0].get('gt')}`): "
                             f"{json.dumps(text[:width] + ('...' if len(text) > width else ''))}")
    return lines


def markdown_table(table: Mapping[str, Mapping[str, Mapping]]) -> str:
    columns: list[str] = []
    for cells in table.values():
        for cell in cells.values():
            columns += [k for k in cell if k not in columns]
    head = "| model | evaluation | " + " | ".join(columns) + " |"
    lines = [head, "|" + "---|" * (len(columns) + 2)]
    for model, cells in table.items():
        for name, cell in cells.items():
            values = [("-" if cell.get(c) is None else f"{cell[c]:.3f}" if isinstance(cell[c], float)
                       else str(cell[c])) for c in columns]
            lines.append(f"| {model} | {name} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def curves(out: Path, method: Method, path: Path) -> Path:
    """SFT loss and the RL curves of every arm, one panel a metric; a small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmreason.train.plots import load_series

    panels = [("sft", "loss")] + [("rl", key) for key in method.rl_curves]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 2.6))
    for ax, (kind, key) in zip(axes, panels):
        runs = ["sft"] if kind == "sft" else list(method.arms)
        for run in runs:
            metrics = out / run / "metrics.jsonl"
            points = load_series(metrics).get(key, []) if metrics.exists() else []
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], label=run, lw=1,
                        marker="." if len(points) < 30 else None)
        ax.set_title(f"{'SFT' if kind == 'sft' else 'RL'} {key}", fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if kind == "rl" and len(runs) > 1:
            ax.legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


def section(out: Path, method: Method, seed: int, command: str, settings: Mapping, record: Mapping,
            table: Mapping, figure: Path, markdown: Path) -> str:
    stages = record.get("stages", {})
    times = ", ".join(f"{name} {entry['seconds']:.0f} s ({entry.get('cpu_seconds', 0):.0f} s CPU)"
                      for name, entry in stages.items())
    peak = max((entry.get("peak_rss_mb", 0) for entry in stages.values()), default=0)
    lines = [MARK.format(method=method.name, seed=seed),
             f"## {method.title} (seed {seed})", "",
             f"Claim: {method.claim}.", "",
             f"Command: `{command}`. Machine: {settings['machine']}; every stage on one math thread.", "",
             f"Data: `mmreason build {method.builder}` with {', '.join(f'`{o}`' for o in method.options)}; "
             f"{settings['n_train']} training samples (builder seed 0), {settings['n_heldout']} held-out (seed 1). "
             f"Start: `{method.sft_recipe}` on the tiny base with {code(' '.join(settings['sft']))}; RL: "
             f"`{method.rl_recipe}` from the SFT checkpoint with {code(' '.join(settings['rl']))}"
             + "".join(f"; arm `{arm}`: `{' '.join(extra)}`" for arm, extra in method.arms.items() if extra)
             + ". Evaluations: " + "; ".join(f"`{name}` = `mmreason eval --task {e.task} {' '.join(e.args)}`"
                                              + (f" ({e.note})" if e.note else "")
                                              for name, e in method.evaluations.items()) + ".",
             "", f"Stage wall times on the shared machine (CPU time of the stage's processes): {times}; peak RSS "
             f"{peak} MB.", "",
             "Held-out, greedy; every figure recomputed from the saved eval samples:", "",
             markdown_table(table), "", *[f"- {line}" for line in training_lines(out, method)], "",
             "The first held-out output of each model, as written:", "",
             *[f"- {line}" for line in example_outputs(out, method, list(table))], "",
             "Readings (difference, and whether it exceeds two standard errors):", ""]
    lines += [f"- {line}" for line in readings(method, table)]
    lines += ["", f"![{method.name} seed {seed} curves]({os.path.relpath(figure, markdown.parent)})", "",
              END.format(method=method.name, seed=seed)]
    return "\n".join(lines) + "\n"


def write_section(markdown: Path, method: str, seed: int, text: str) -> None:
    """Replace this experiment's section of the file (between its markers), or append it at the end."""
    markdown_sections.write_section(markdown, text, MARK.format(method=method, seed=seed),
                                    END.format(method=method, seed=seed))
