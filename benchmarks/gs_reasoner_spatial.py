"""GS-Reasoner's spatial path against the plain frames path on 3D grounding, same data, same budget.

Both arms fine-tune the project's tiny base (``base:qwen2_5_vl``) with `mmreason.train.sft` on the same
builder rooms (``scenes_3d``, ``grounding_3d`` questions, posed RGB-D frames as image parts), the same steps,
batch and learning rate. The spatial arm carries the adapter (`mmreason.models.spatial`: dual-path pooling of
the frames' back-projected points + a 3D position embedding, added to the patch tokens); the plain arm
sees only the frames' pixels. Each is then asked, greedily, to box the named object in held-out rooms; the
score is the 3D IoU of the first box it writes with the ground truth (0 when none parses). Two trivial
references give the scale: the mean training box of the object's category, and the mean of all boxes.

    python benchmarks/gs_reasoner_spatial.py [--steps 300] [--train 128] [--eval 32] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def rooms(n: int, seed: int, views: int, size: list[int]) -> str:
    return (f"builder:scenes_3d?n={n}&seed={seed}&qtypes=[grounding_3d]&rgbd=true&views={views}"
            f"&num_points=12000&view_size=[{size[0]},{size[1]}]")


def train_arm(model_path: Path, data: str, out: Path, args) -> float:
    from mmreason.train import sft

    lr_by_module = f"{{spatial: {args.adapter_lr}}}" if args.adapter_lr and "spatial" in out.name else "{}"
    t = time.time()
    code = sft.main(["debug/tiny_sft", f"model.path={model_path}", "model.family=qwen2_5_vl",
                     "model.lora.enabled=false", f"data.train=[\"{data}\"]", "data.prompt=gs_reasoner",
                     f"sft.max_steps={args.steps}", f"sft.batch_size={args.batch}", f"sft.lr={args.lr}",
                     f"sft.lr_by_module={lr_by_module}", "sft.scheduler=cosine",
                     f"sft.save_steps={args.steps}", "sft.logging_steps=25", f"output_dir={out}",
                     f"seed={args.seed}"])
    if code != 0:
        raise SystemExit(f"training {out.name} failed ({code})")
    return time.time() - t


def evaluate(model_dir: Path, rows: list[dict]) -> dict:
    import torch

    from mmreason.geometry import iou_3d
    from mmreason.modalities.collate import Collator
    from mmreason.models import load
    from mmreason.models.spatial import with_spatial_inputs
    from mmreason.prompts import apply_prompt, prompt_style
    from mmreason.traces import parse

    model, processor = load(model_dir)
    model.eval()
    plain = Collator(processor, "qwen2_5_vl", mode="generate", return_meta=False)
    collate = with_spatial_inputs(model, plain)  # the plain arm's checkpoint has no adapter: `plain` itself
    style = prompt_style("gs_reasoner")
    ious, parsed = [], 0
    for row in rows:
        batch = collate([apply_prompt(row, style)])
        with torch.no_grad():
            ids = model.generate(**batch, max_new_tokens=96, do_sample=False)
        text = processor.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)[0]
        boxes = parse(text).boxes_3d
        parsed += bool(boxes)
        ious.append(iou_3d(boxes[0].box, row["boxes_3d"][0]["box"]) if boxes else 0.0)
    return {"iou": float(np.mean(ious)), "acc25": float(np.mean([v >= 0.25 for v in ious])),
            "box_written": parsed / len(rows)}


def references(train_rows: list[dict], eval_rows: list[dict]) -> dict:
    from mmreason.geometry import iou_3d

    by_label: dict[str, list] = {}
    for r in train_rows:
        by_label.setdefault(r["boxes_3d"][0]["label"], []).append(r["boxes_3d"][0]["box"])
    everything = np.mean([b for bs in by_label.values() for b in bs], axis=0)
    cat = [iou_3d(np.mean(by_label.get(r["boxes_3d"][0]["label"], [everything]), axis=0),
                  r["boxes_3d"][0]["box"]) for r in eval_rows]
    mean = [iou_3d(everything, r["boxes_3d"][0]["box"]) for r in eval_rows]
    return {"category_mean_box": float(np.mean(cat)), "mean_box": float(np.mean(mean))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--adapter-lr", type=float, default=1e-3)
    p.add_argument("--train", type=int, default=128, help="training rooms")
    p.add_argument("--eval", type=int, default=32, help="held-out rooms")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--size", type=int, nargs=2, default=[112, 84])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    from mmreason.data_builders.scenes_3d import build
    from mmreason.models import resolve_checkpoint
    from mmreason.models.spatial.qwen import init_checkpoint
    from mmreason.schema import dataset_root, load_rows, resolve_media

    out = args.out or Path(tempfile.mkdtemp(prefix="gs-spatial-"))
    base = resolve_checkpoint("base:qwen2_5_vl")
    spatial = init_checkpoint(base, out / "spatial-init", width=64, heads=4, points_per_patch=8,
                              scene_points=512)
    train_spec = rooms(args.train, 0, args.views, args.size)
    held = build(out / "held-out", n=args.eval, seed=1000, qtypes=["grounding_3d"], rgbd=True,
                 views=args.views, num_points=12000, view_size=args.size, trace="none", progress=False)
    eval_rows = [resolve_media(r, dataset_root(held)) for r in load_rows(held)]
    import torch

    results = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s)",
               "args": {k: str(v) for k, v in vars(args).items()}}
    for arm, start in (("plain", base), ("spatial", spatial)):
        seconds = train_arm(start, train_spec, out / arm, args)
        results[arm] = {**evaluate(out / arm / "final", eval_rows), "train_seconds": round(seconds)}
        print(arm, results[arm], flush=True)
    train_dir = next((out / "plain" / "data").iterdir())
    results["references"] = references(list(load_rows(train_dir)), eval_rows)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
