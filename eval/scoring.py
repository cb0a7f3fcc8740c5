"""Eval scoring: each output parsed once and scored by the task's metrics (bound with the options the
harness fills in), per-sample records, and their means by metric, breakdown key and coordinate reading."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mmreason import traces
from mmreason.families import get_family
from mmreason.eval.coord_readings import coordinate_metrics
from mmreason.eval.metrics import breakdown, derive, summarize
from mmreason.eval.run_setup import Setup
from mmreason.eval.tasks import Task

AUTO_OPTIONS = ("family", "min_pixels", "max_pixels", "judge")


def declared_frame(setup: Setup) -> str:
    """The reading the headline scores use: --coord-frame, else the family's output frame."""
    return setup.coord_frame or get_family(setup.family).box_frame


def bound_metrics(task: Task, setup: Setup, frame: str | None = None) -> dict[str, Any]:
    """Each metric bound with its task options plus the options the harness fills in (`AUTO_OPTIONS`, and
    --coord-frame for coordinate metrics). With `frame`, only the coordinate metrics, reading in `frame`."""
    from mmreason.rewards import bind_reward, resolve_reward, reward_options

    auto = {"family": setup.family, "min_pixels": setup.image_budget[0], "max_pixels": setup.image_budget[1],
            "judge": dict(setup.judge) if setup.judge else None, "coord_frame": frame or setup.coord_frame}
    wanted = coordinate_metrics(task) if frame else list(task.metrics)
    out = {}
    for name in wanted:
        metric = task.metrics[name]
        fn = resolve_reward(metric.fn)
        known = reward_options(fn)
        options = {k: v for k, v in auto.items() if k in known and k not in metric.options and v is not None}
        out[name] = bind_reward(fn, **options, **metric.options)
    return out


def score(task: Task, setup: Setup, rows: Sequence[Mapping[str, Any]], outputs: Sequence[Mapping[str, Any]],
          prompts: Mapping[str, str] | None = None) -> list[dict]:
    """Per-sample records: the prompt text, the output, the parsed answer, boxes in original pixels (first
    image, the family's frame), and every metric. Each output is parsed once: the metrics read the parsed
    traces from the ``traces`` column, as rewards do in training."""
    from mmreason.geometry import ImageFrame, box_from_model
    from mmreason.rewards._common import TRACES, columns_of

    by_id = {r["id"]: r for r in rows}
    rollout_columns = ("image_frames", "num_tool_calls", "stop_reason")
    joined = [{**by_id[o["id"]], **{k: o[k] for k in rollout_columns if k in o}} for o in outputs]
    completions = [o["output"] for o in outputs]
    parsed = [traces.parse(c) for c in completions]
    columns = {**columns_of(joined), TRACES: parsed}
    values = {name: fn(completions, **columns) for name, fn in bound_metrics(task, setup).items()}
    readings = {frame: {name: fn(completions, **columns) for name, fn in bound_metrics(task, setup, frame).items()}
                for frame in setup.readings}
    records = []
    for i, (o, row, trace) in enumerate(zip(outputs, joined, parsed)):
        frames = row.get("image_frames") or []
        boxes = []
        if frames:
            f = frames[0]
            frame = ImageFrame(f["width"], f["height"], f["resized_width"], f["resized_height"])
            boxes = [[round(v, 1) for v in box_from_model(b.box, setup.family, frame)] for b in trace.boxes]
        records.append({
            "id": o["id"], "task": row["task"], "prompt": (prompts or {}).get(o["id"]), "output": o["output"],
            "answer": traces.extract_answer(o["output"]), "gt": row.get("answer"),
            "scores": {name: values[name][i] for name in values}, "boxes_pixel": boxes,
            "stop_reason": o.get("stop_reason"), "num_tool_calls": o.get("num_tool_calls"),
            "image_frames": frames, "issues": list(trace.issues[:5]),
            **({"readings": {f: {n: v[i] for n, v in scored.items()} for f, scored in readings.items()}}
               if readings else {}),
        })
    return records


def prompt_texts(prompts: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The text of each prompt's last user turn, as sent (what samples.jsonl records)."""
    from mmreason.schema import text_of

    return {p["id"]: text_of([m for m in p["messages"] if m["role"] == "user"][-1]) for p in prompts}


def summary_of(task: Task, records: Sequence[Mapping[str, Any]], metas: Sequence[Mapping[str, Any]],
               setup: Setup | None = None) -> dict:
    """Metric means (and derived numbers) over the records, the same by each breakdown key, and the
    coordinate readings compared (`readings_summary`)."""
    scores = [r["scores"] for r in records]
    metrics = summarize(scores, list(task.metrics))
    metrics.update(derive(metrics, task.derived))
    return {"metrics": metrics,
            "breakdown": breakdown(scores, metas, task.breakdown, list(task.metrics), task.derived),
            "coord_readings": readings_summary(task, setup, metrics, records) if setup else None,
            "stop_reasons": stop_reasons(records)}


def stop_reasons(records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many outputs ended for each reason (`mmreason.rollout.loop.STOP_REASONS`; none for predictions
    scored without a model), most common first.

    >>> stop_reasons([{"stop_reason": "answer"}, {"stop_reason": "max_tokens"}, {"stop_reason": "answer"}, {}])
    {'answer': 2, 'max_tokens': 1}
    """
    from collections import Counter

    return dict(Counter(r["stop_reason"] for r in records if r.get("stop_reason")).most_common())


def readings_summary(task: Task, setup: Setup, metrics: Mapping[str, Mapping[str, Any]],
                     records: Sequence[Mapping[str, Any]]) -> dict | None:
    """Each coordinate reading's metric means, and the one that won on the first coordinate metric (a tie
    keeps the declared reading); None when only one reading was scored."""
    if not setup.readings:
        return None
    names = coordinate_metrics(task)
    declared = declared_frame(setup)
    scored = {declared: {n: dict(metrics[n]) for n in names}}
    for frame in setup.readings:
        scored[frame] = summarize([(r.get("readings") or {}).get(frame, {}) for r in records], names)
    by = names[0]
    won = max(scored, key=lambda f: (scored[f][by]["mean"] or 0.0, f == declared))
    return {"declared": declared, "scored": scored, "by": by, "won": won}
