"""The quickstart's pictures: training curves, IoU histograms per stage, held-out predictions drawn.

Each function reads the files the stages wrote and saves one PNG; `draw_all` returns {name: path}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mmreason.quickstart import EVAL_STAGES
from mmreason.quickstart.results import read_jsonl
from mmreason.train.plots import load_series

COLORS = {"random": "#999999", "base": "#4c72b0", "sft": "#dd8452", "grpo": "#55a868"}
GRID_SAMPLES = 8


def _series(path: Path, key: str) -> tuple[list[int], list[float]]:
    """One metric of a run's metrics.jsonl as (steps, values), as `mmreason plot` reads it."""
    points = load_series(path).get(key, []) if path.exists() else []
    return [p[0] for p in points], [p[1] for p in points]


def training_curves(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    panels = ((out / "sft" / "metrics.jsonl", "loss", "SFT loss"),
              (out / "grpo" / "metrics.jsonl", "reward", "GRPO reward (mean of the groups)"),
              (out / "grpo" / "metrics.jsonl", "zero_variance_frac", "GRPO groups with one reward"))
    for ax, (path, key, title) in zip(axes, panels):
        steps, values = _series(path, key)
        ax.plot(steps, values, marker="." if len(steps) < 40 else None)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def iou_histograms(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in EVAL_STAGES if (out / "eval" / n / "samples.jsonl").exists()]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(3.2 * max(1, len(names)), 3), sharey=True)
    for ax, name in zip(axes if len(names) > 1 else [axes], names):
        ious = [r["scores"].get("miou") or 0.0 for r in read_jsonl(out / "eval" / name / "samples.jsonl")]
        ax.hist(ious, bins=[i / 10 for i in range(11)], color=COLORS[name])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("IoU with the named shape")
    fig.tight_layout()
    path = out / "iou_hist.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def drawable(box, scale: float) -> list[float]:
    """A model's box as PIL draws it: corners sorted (a model may write x2 < x1), scaled.

    >>> drawable([30, 5, 10, 20], 2)
    [20, 10, 60, 40]
    """
    x1, y1, x2, y2 = box
    return [min(x1, x2) * scale, min(y1, y2) * scale, max(x1, x2) * scale, max(y1, y2) * scale]


def prediction_grid(out: Path) -> Path:
    """The first held-out scenes, one row each: the truth (green) and each stage's box, one column a stage."""
    from PIL import Image, ImageDraw

    from mmreason.schema import load_rows

    root = out / "data" / "heldout"
    rows = list(load_rows(root))[:GRID_SAMPLES]
    names = [n for n in EVAL_STAGES if (out / "eval" / n / "samples.jsonl").exists()]
    preds = {n: {r["id"]: r for r in read_jsonl(out / "eval" / n / "samples.jsonl")} for n in names}
    scale, cell, pad = 2, 224, 4
    sheet = Image.new("RGB", ((cell + pad) * len(names) + pad, (cell + 18 + pad) * len(rows) + 18), "white")
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(names):
        draw.text((pad + j * (cell + pad), 2), name, fill="black")
    for i, row in enumerate(rows):
        image_part = next(p for m in row["messages"] for p in m["content"] if p["type"] == "image")
        with Image.open(root / image_part["image"]) as im:
            picture = im.convert("RGB").resize((im.width * scale, im.height * scale), Image.NEAREST)
        question = next(p["text"] for p in row["messages"][0]["content"] if p["type"] == "text")
        y = 18 + i * (cell + 18 + pad)
        for j, name in enumerate(names):
            tile = picture.copy()
            d = ImageDraw.Draw(tile)
            d.rectangle([v * scale for v in row["boxes"][0]["box"]], outline=(0, 170, 0), width=2)
            rec = preds[name].get(row["id"])
            if rec and rec.get("boxes_pixel"):
                d.rectangle(drawable(rec["boxes_pixel"][0], scale), outline=COLORS[name], width=2)
            sheet.paste(tile.crop((0, 0, cell, cell)), (pad + j * (cell + pad), y))
        draw.text((pad, y + cell + 2), question, fill="black")
    path = out / "predictions.png"
    sheet.save(path)
    return path


def draw_all(out: Path, rows: Mapping[str, Any]) -> dict[str, Path]:
    return {"training curves": training_curves(out), "IoU per stage": iou_histograms(out),
            "held-out predictions (green: truth)": prediction_grid(out)}
