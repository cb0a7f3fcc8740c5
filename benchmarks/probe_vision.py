"""What a tiny Qwen2.5-VL checkpoint's vision tower passes on: a linear probe of each shape's colour and kind
read from the vision tokens after every vision block and after the patch merger, and how often the model
names a colour (a lone shape's, and the one shape of a kind in a scene of 2-4).

    python benchmarks/probe_vision.py [CHECKPOINT] [--scenes 200]

Why: the quickstart's wrong-object errors are colour-only distinctions (two shapes of one kind). A probe
tells whether colour is lost in the picture's tokens (then no amount of box loss binds "red") or in the
language model. Scenes are fresh draws of the pretraining stream's generator at another seed, so neither the
probe nor the naming questions were seen in training. Each probe: logistic regression on standardised
features, 70% of the labelled tokens to fit and 30% to score; a token is labelled with the shape covering
most of it (at least 60% of a patch, 30% of a merged token).
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

from mmreason.train.token_heads import MIN_COVER, cover


def _label(items, cell, least):
    covers = [cover(cell, it.box) for it in items]
    k = int(np.argmax(covers))
    return items[k] if covers[k] >= least else None


def _probe(features: list[np.ndarray], labels: list[str]) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = np.stack(features), np.array(labels)
    cut = int(len(x) * 0.7)
    scale = StandardScaler().fit(x[:cut])
    fit = LogisticRegression(max_iter=3000).fit(scale.transform(x[:cut]), y[:cut])
    return float(fit.score(scale.transform(x[cut:]), y[cut:]))


def probe(checkpoint: str, scenes: int) -> dict:
    import torch

    import mmreason.train.pretrain_tiny as pt
    from mmreason.models import load
    from mmreason.modalities.collate import Collator

    torch.set_num_threads(1)
    model, processor = load(checkpoint)
    model.eval()
    collate = Collator(processor, "qwen2_5_vl", mode="generate", return_meta=False)
    vision = model.model.visual
    taps: dict[str, list] = collections.defaultdict(list)

    def tap(name):
        return lambda module, args, out: taps[name].append((out[0] if isinstance(out, tuple) else out).detach())

    for j, block in enumerate(vision.blocks):
        block.register_forward_hook(tap(f"block {j}"))
    vision.merger.register_forward_hook(tap("merger"))
    rng = np.random.default_rng(5)
    feats: dict[str, dict[str, list]] = collections.defaultdict(lambda: {"x": [], "colour": [], "shape": []})
    merge = vision.spatial_merge_size
    for _ in range(scenes):
        qa = pt._scene(rng, (1, 3), 112)
        batch = collate([{"id": "probe", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Look."}, {"type": "image", "image": qa.image}]}]}])
        taps.clear()
        with torch.no_grad():
            vision(batch["pixel_values"], grid_thw=batch["image_grid_thw"])
        _, gh, gw = (int(v) for v in batch["image_grid_thw"][0])
        side = qa.image.size[0] / gw  # pixels per patch
        for name, (out,) in taps.items():
            out = out.reshape(-1, out.shape[-1]).numpy()
            merged = out.shape[0] != gh * gw
            for k, row in enumerate(out):
                if merged:  # merged tokens in raster order over the merged grid
                    r, c = divmod(k, gw // merge)
                    cell = (c * merge * side, r * merge * side, (c + 1) * merge * side, (r + 1) * merge * side)
                else:  # patches in merge-window order: each run of merge*merge is one 2x2 window
                    window, inner = divmod(k, merge * merge)
                    wr, wc = divmod(window, gw // merge)
                    r, c = wr * merge + inner // merge, wc * merge + inner % merge
                    cell = (c * side, r * side, (c + 1) * side, (r + 1) * side)
                item = _label(qa.items, cell, MIN_COVER if merged else 0.6)
                if item is not None:
                    feats[name]["x"].append(row)
                    feats[name]["colour"].append(item.color)
                    feats[name]["shape"].append(item.name)
    layers = {name: {"tokens": len(f["x"]), "colour": round(_probe(f["x"], f["colour"]), 3),
                     "shape": round(_probe(f["x"], f["shape"]), 3)} for name, f in feats.items()}
    return {"checkpoint": checkpoint, "scenes": scenes, "probe": layers,
            "naming": _naming(model, processor, collate, rng, scenes)}


def _naming(model, processor, collate, rng, n: int) -> dict:
    import torch

    import mmreason.train.pretrain_tiny as pt

    asked = {"lone colour": [0, 0], "colour in a scene": [0, 0]}
    for k in range(n):
        if k % 2:
            qa = pt._scene(rng, (1, 1), 112)
            kind, turn = "lone colour", ("What colour is the shape?", qa.items[0].color)
        else:
            turn = None
            while turn is None or not turn[0].startswith("What colour"):
                qa = pt._scene(rng, (2, 4), 112)
                turn = pt.scene_naming_turn(rng, qa.items)
            kind = "colour in a scene"
        batch = collate([{"id": "name", "messages": [{"role": "user", "content": [
            {"type": "text", "text": turn[0]}, {"type": "image", "image": qa.image}]}]}])
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=4, do_sample=False)
        said = processor.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)[0].strip()
        asked[kind][0] += said == turn[1]
        asked[kind][1] += 1
    return {kind: round(right / total, 3) for kind, (right, total) in asked.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", nargs="?", default="models/tiny_base/qwen2_5_vl")
    p.add_argument("--scenes", type=int, default=200, help="scenes probed, and naming questions asked")
    args = p.parse_args()
    if not (Path(args.checkpoint) / "config.json").is_file():
        raise SystemExit(f"probe_vision: {args.checkpoint}: no checkpoint there (config.json missing)")
    from mmreason.train.pretrain_tiny import COLORS

    print(json.dumps(probe(args.checkpoint, args.scenes), indent=2))
    print(f"(colour chance: {1 / len(COLORS):.3f})")


if __name__ == "__main__":
    main()
