"""The quickstart's report: ``report.md`` with the per-stage table (`results.stage_table`), the stage costs
(``stages.json``: time, peak memory, command), the plots, and how to open the demo on the result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from mmreason.quickstart import BASE, GRPO_RECIPE, SFT_RECIPE
from mmreason.quickstart.plots import draw_all
from mmreason.quickstart.results import COLUMNS, tables

LABELS = {"random": "random init", "base": "pretrained base", "sft": "after SFT", "grpo": "after GRPO"}


def _fmt(v: Any) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def markdown_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    head = "| model | " + " | ".join(COLUMNS) + " |\n|---|" + "---:|" * len(COLUMNS) + "\n"
    return head + "".join(f"| {LABELS.get(k, k)} | " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |\n"
                          for k, r in rows.items())


def base_card(out: Path) -> str:
    """One line on the base the quickstart started from: its size and every pretraining stage, with CPU time."""
    from mmreason.models import resolve_checkpoint

    path = resolve_checkpoint(BASE)
    meta = json.loads((path / "pretrain.json").read_text()) if (path / "pretrain.json").exists() else {}
    if not meta:
        return f"`{BASE}`"
    runs = [*meta.get("history", []), meta]
    stages = ", ".join(f"{r.get('stage', 'base')} {r.get('stopped_after', r.get('steps', '?'))} steps of "
                       f"{r.get('batch_size', '?')}" for r in runs)
    cpu = sum(r.get("cpu_seconds") or 0 for r in runs)
    return (f"`{BASE}` ({meta.get('parameters', '?'):,} parameters; pretrained by `mmreason pretrain-tiny` in "
            f"{len(runs)} stage(s): {stages}; {cpu:,} s of CPU in all; its card: "
            f"`models/tiny_base/qwen2_5_vl/README.md`)")


def write_report(out: Path, record: Mapping[str, Any]) -> Path:
    rows = tables(out)
    (out / "tables.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    plots = draw_all(out, rows)
    stages = record.get("stages", {})
    s = record.get("settings", {})
    cost = "".join(f"| {k} | {v['seconds']} | {v['peak_rss_mb']} | `{v['command']}` |\n" for k, v in stages.items())
    total = sum(v["seconds"] for v in stages.values())
    demo = f"mmreason demo grounded_chat --model {out / 'grpo' / 'final'} --question-first --no-tools --max-new-tokens 32"
    text = f"""# Quickstart report

Task: in a 112-px scene of 1-4 shapes (no two of the same colour *and* shape), box the shape the question
names -- "Where is the red circle?" -> `{{"bbox_2d": [x1, y1, x2, y2]}}` in Qwen2.5-VL's frame (pixels of
the resized image, here the image as drawn). {s.get('n_train')} training scenes (builder seed 0), {s.get('n_heldout')}
held-out scenes (seed 1) that no stage trains on. Seed of SFT and GRPO: {s.get('seed')}.

Start: {base_card(out)}; SFT recipe `{SFT_RECIPE}`, GRPO recipe `{GRPO_RECIPE}` (reward `referring_iou`:
IoU with the named shape minus the best IoU with any other shape).

## Held-out results

{markdown_table(rows)}
- `format`: share of outputs with a box that parses; `iou_one` / `iou_multi`: mean IoU with the named shape on
  one-shape / multi-shape scenes (no box = 0); `wrong_object`: on multi-shape scenes, share of boxed answers that
  overlap another shape more than the named one (chance with two shapes: 0.5); `acc@0.5`: IoU >= 0.5;
  `reward`: mean `referring_iou` (no box = 0).
- Recomputed from `eval/<model>/samples.jsonl`; `tables.json` holds the same numbers.

## Plots

{"".join(f"![{name}]({path.name})" + chr(10) for name, path in plots.items())}
## Stages

| stage | seconds | peak RSS (MB) | command |
|---|---:|---:|---|
{cost}
Total: {total:.0f} s.

## Try it

`{demo}`

then upload a scene from `{out / 'data' / 'heldout' / 'media'}` and ask the bare question, e.g. "Where is the red
circle?": the prompt the model was trained with (the question before the picture, no instruction around it, no
tools).
"""
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    return path
