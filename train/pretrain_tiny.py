"""`mmreason pretrain-tiny`: pretrain the project's tiny base model on its own scenes, so fine-tuning
examples start from a model that can already look, as users' fine-tuning starts from a pretrained VLM.

    mmreason pretrain-tiny --out base --steps 9000 --batch-size 8 --lr 1e-3
    mmreason pretrain-tiny --out bind --stage bind --init-from base --steps 7000 --batch-size 16 --vision-lr-scale 5
    mmreason pretrain-tiny --out contrast --stage contrast --init-from bind --steps 6500 --batch-size 16 --lr 2e-3
    mmreason pretrain-tiny --out pairs --stage pairs --init-from contrast --steps 16000 --batch-size 16 --lr 2e-3
    mmreason pretrain-tiny --out models/tiny_base/qwen2_5_vl --stage pairs --init-from pairs --steps 10000 \
        --batch-size 16 --lr 1e-3 --token-heads 1

A base-size tiny Qwen2.5-VL (`models.tiny_configs.SIZES["base"]`, random init, seed 0) is trained on
shape scenes streamed from the `image_scenes` builder's generator (`scene_questions.q_refer`, fresh scenes
every step, nothing written to disk), in stages, each continuing the last:

- "base" (`_questions`): first a lone shape boxed ("Locate the red circle and give its bounding box." ->
  ``[x1, y1, x2, y2]``, original pixels = the family's frame for 112-px canvases) until the model reads
  positions; then scenes of 1-2, then 1-4 shapes, each one conversation: naming turns about one shape, then
  every shape boxed;
- "bind" (`bind_row`): a lone shape's colour or shape named, then 2-4 shapes boxed by name, with the vision
  tower at a higher learning rate: the first stage leaves a tower that hardly carries colour;
- "contrast" (`contrast_rows`): every shape of one scene boxed by its name in the same batch, in varied
  phrasings, answered in the family's grounding JSON; this is the stage where the words start to pick the
  shape (measurements in each function's docstring and in benchmarks/LEARNING.md);
- "pairs" (`pairs_rows`): the contrast stage's rows, with scenes that differ only in colour or only in shape,
  so each word must be read on its own (the contrast stage taught shape names far better than colour names);
  run once more with `--token-heads` (`token_heads.TokenHeads`): linear heads that read each merged vision
  token's colour and kind keep colour in the tokens the language model sees, which the box losses had let the
  merger drop -- with it, the colour words bind.

No phrasing of any stage is the quickstart's ("Where is the red circle?"), and the scene stream uses its own
seeds, so the base has never seen the quickstart's held-out scenes. The question comes before the image, so
each vision token can attend to the words naming its object.

The loop is plain AdamW on the toolkit's `Collator` batches (assistant tokens only), with the output
layer applied to the labelled positions alone: with a 4k vocabulary and 70-200-token samples, projecting
every position would cost more than the rest of the model. The result is a normal checkpoint folder
(safetensors + processor) with a ``README.md`` card listing every stage's command, data, cost and loss.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from mmreason.data_builders.scene_questions import q_refer
from mmreason.train.token_heads import HEAD_LR_SCALE, TokenHeads

FAMILY = "qwen2_5_vl"
COLORS = ("red", "green", "blue", "yellow", "orange", "purple")
PRETRAIN_SHAPES = ("circle", "square", "triangle", "diamond")
COUNT_SHARE = 0.3  # scenes that also get a counting turn
STREAM_SEED = 1_000_003  # scene stream; the quickstart builds its splits from seeds 0 and 1


LOCATE_ONLY = 0.45  # share of the run spent boxing a lone shape before anything else
NAMING_SHARE = 0.35  # "bind" stage: rows that name a lone shape's colour or shape (keeps the tower seeing colour)
NAMING_FIRST = 0.15  # "bind" stage: share of its schedule spent on naming alone, before any box
STAGES = ("base", "bind", "contrast", "pairs")
CONTRAST_PHASES = ((0.4, (2, 2)), (0.7, (2, 3)), (1.0, (2, 4)))  # "contrast" stage: shapes per scene over its schedule
PAIRS_PHASES = ((0.3, (2, 2)), (0.6, (2, 3)), (1.0, (2, 4)))  # "pairs" stage: shapes per scene over its schedule
# "pairs" stage: scenes where one word alone tells the shapes apart -- one shape in several colours, one colour
# in several shapes -- and scenes where both words are needed (the contrast stage's), in these shares
PAIR_KINDS = (("colour", 0.4), ("shape", 0.3), ("both", 0.3))


def scene_count(frac: float) -> tuple[int, int]:
    """Shapes per scene at a point of the run: one shape until `LOCATE_ONLY`, up to two for the next tenth,
    then 1-4."""
    if frac < LOCATE_ONLY:
        return (1, 1)
    if frac < LOCATE_ONLY + 0.1:
        return (1, 2)
    return (1, 4)


def region_of(box, side: int) -> str:
    """Where a box's centre lies in a 3x3 split of the canvas, in words.

    >>> region_of((0, 0, 10, 10), 112), region_of((50, 50, 60, 60), 112), region_of((100, 0, 112, 10), 112)
    ('top left', 'centre', 'top right')
    """
    col = min(2, int(3 * (box[0] + box[2]) / 2 / side))
    row = min(2, int(3 * (box[1] + box[3]) / 2 / side))
    if (row, col) == (1, 1):
        return "centre"
    return " ".join(w for w in (("top", "", "bottom")[row], ("left", "", "right")[col]) if w)


BOX_PHRASINGS = (  # the "contrast" stage's requests; never the quickstart's "Where is the ...?"
    "Locate the {} and give its bounding box.", "Find the {}.", "Give the bounding box of the {}.",
    "Box the {}.", "Draw a box around the {}.", "Point out the {} with a bounding box.",
    "The {}: its bounding box?", "Output the box of the {} in the picture.",
    "Which region holds the {}? Reply with a box.", "There is one {} in the image. Give its box.",
)
# the "pairs" stage's requests: the name always last, right before the image, as in most users' grounding
# prompts ("Find the red circle."); still never the quickstart's "Where is the ...?"
NAME_LAST_PHRASINGS = (
    "Find the {}.", "Box the {}.", "Locate the {}.", "Give the bounding box of the {}.", "Output the box of the {}.",
    "Point out the {}.", "Show me the {}.", "Which region holds the {}?", "Draw a box around the {}.", "Mark the {}.",
)


def _box(item, native: bool = False, rng: np.random.Generator | None = None,
         phrasings: tuple[str, ...] = BOX_PHRASINGS) -> tuple[str, str]:
    """A box request and its answer: a plain ``[x1, y1, x2, y2]``, or with `native` the family's own
    grounding JSON, ``{"bbox_2d": [x1, y1, x2, y2]}``, as released Qwen2.5-VL checkpoints answer (its
    report, arXiv 2502.13923, grounding with absolute coordinates), so a fine-tune starts from a model that
    already speaks its family's box format. With `rng`, the request is one of `phrasings` (`BOX_PHRASINGS`: the
    name sits at a different place in each, so reading it must go by what the words are, not where they stand)."""
    box = "[" + ", ".join(str(v) for v in item.box) + "]"
    phrasing = phrasings[int(rng.integers(len(phrasings)))] if rng is not None else phrasings[0]
    return phrasing.format(item.label), '{"bbox_2d": ' + box + "}" if native else box


def _questions(rng: np.random.Generator, items, target, frac: float, side: int) -> list[tuple[str, str]]:
    """(question, answer) turns about one scene.

    Until `LOCATE_ONLY` of the run: the lone shape boxed, nothing else. Reading a position into box digits
    is the slow part: measured on this architecture, a lone shape's box IoU sat near 0.06 for ~2,000 steps
    of 8, then rose to 0.58 by step 4,000; mixing other turns in from the start only stretched that plateau.
    After it: naming turns about the target (its colour when its shape is unique in the scene, its shape when
    its colour is, the part of the picture it is in, sometimes the count), then every shape boxed, the target
    first -- asking about every shape of one picture is what makes the words matter.
    """
    if frac < LOCATE_ONLY:
        return [_box(target)]
    turns = []
    if sum(it.name == target.name for it in items) == 1:
        turns.append((f"What colour is the {target.name}?", target.color))
    if sum(it.color == target.color for it in items) == 1:
        turns.append((f"What shape is the {target.color} object?", target.name))
    turns.append((f"In which part of the image is the {target.label}?", region_of(target.box, side)))
    if rng.random() < COUNT_SHARE:
        turns.append(("How many shapes are there?", str(len(items))))
    turns = [turns[j] for j in rng.permutation(len(turns))]
    order = [target] + [items[j] for j in rng.permutation(len(items)) if items[j] is not target]
    return turns + [_box(it) for it in order]


def _naming_row(rng: np.random.Generator, side: int) -> dict:
    qa = _scene(rng, (1, 1), side)
    shape = qa.items[0]
    question, answer = (("What colour is the shape?", shape.color), ("What shape is it?", shape.name))[
        int(rng.integers(2))]
    return _row(rng, [(question, answer)], qa.image, qa.items)


def _scene_naming_row(rng: np.random.Generator, side: int) -> dict:
    """A scene of 2-4 shapes and one question that names an attribute of one shape picked by the other:
    "What colour is the circle?" (the only circle) or "What shape is the red one?" (the only red shape).

    Why: a linear probe on the merged vision tokens read a shape's colour 0.29 of the time after the pairs
    stage (chance 0.22; shape 0.75), while the tower's own patches still held it (0.96): the merger had
    dropped colour, so no amount of box loss could bind "red". A lone shape's colour can be read from the
    whole picture's average; in a scene it has to be read at the shape the (already bound) shape word picks."""
    for _ in range(50):
        qa = _scene(rng, (2, 4), side)
        turn = scene_naming_turn(rng, qa.items)
        if turn is not None:
            return _row(rng, [turn], qa.image, qa.items)
    raise RuntimeError("no scene with a shape unique in colour or kind in 50 draws")


def scene_naming_turn(rng: np.random.Generator, items) -> tuple[str, str] | None:
    """(question, answer) about one of `items` picked at random, named by the word that is unique to it in the
    scene; None when the picked shape shares both its colour and its kind with others."""
    target = items[int(rng.integers(len(items)))]
    options = []
    if sum(it.name == target.name for it in items) == 1:
        options.append((f"What colour is the {target.name}?", target.color))
    if sum(it.color == target.color for it in items) == 1:
        options.append((f"What shape is the {target.color} one?", target.name))
    return options[int(rng.integers(len(options)))] if options else None


def bind_row(rng: np.random.Generator, frac: float, side: int = 112) -> dict:
    """One row of the "bind" stage at a point `frac` of its schedule: until `NAMING_FIRST`, a lone shape's
    colour or shape named; then that for `NAMING_SHARE` of the rows, else one of 2-4 shapes boxed by its
    name. Single-turn rows, so nothing but the words tells which shape.

    Why naming first: the base's first phase (boxes alone) leaves a vision tower that all but drops colour
    (a linear probe reads a shape's colour from its vision tokens 0.58 of the time, 0.80 at random init),
    and a tower that cannot see colour cannot bind "red" to anything."""
    if frac < NAMING_FIRST or rng.random() < NAMING_SHARE:
        return _naming_row(rng, side)
    qa = _scene(rng, (2, 4), side)
    return _row(rng, [_box(qa.items[int(rng.integers(len(qa.items)))])], qa.image, qa.items)


def contrast_rows(rng: np.random.Generator, frac: float, side: int = 112) -> list[dict]:
    """Rows of the "contrast" stage: one fresh scene, and every shape in it boxed by its name, one single-turn
    row each, all in the same batch, answered in the family's grounding JSON (`_box`). The picture is the same and only the words differ, so the one way to
    lower the loss on all of them is to read the words; a model that boxes the most salient shape is wrong on
    the others. Two shapes of different colours for the first 40% of the schedule, then 2-3, then 2-4 shapes
    (`CONTRAST_PHASES`), where a colour or a shape may repeat and both words are needed.

    Why: after the "bind" stage, named boxing stayed near chance (the named shape's box was the likeliest of
    the scene's boxes 0.43 of the time; chance 0.37), while 1,000 steps of these grouped rows on two-colour
    scenes raised that to 0.78 (chance 0.5) in a first try."""
    count = next(c for end, c in CONTRAST_PHASES if frac < end)
    for _ in range(50):
        qa = _scene(rng, count, side)
        if count != (2, 2) or len({it.color for it in qa.items}) == 2:
            break
    return [_row(rng, [_box(it, native=True, rng=rng)], qa.image, qa.items) for it in qa.items]


def pairs_rows(rng: np.random.Generator, frac: float, side: int = 112) -> list[dict]:
    """Rows of the "pairs" stage: one fresh scene, every shape in it boxed by its name in the same batch, as
    in the contrast stage, but 40% of the scenes show one shape in 2-4 colours (only the colour word tells
    them apart) and 30% one colour in 2-4 shapes (only the shape word does); the rest are the contrast
    stage's scenes, where both words are needed. 2 shapes per scene for the first 30% of the schedule, then
    2-3, then 2-4 (`PAIRS_PHASES`).

    Why: after the contrast stage, the quickstart's held-out answers showed the words half bound. On two
    shapes of one colour the box landed on the wrong shape 0.08 of the time; on two shapes of one kind in
    different colours, 0.62-0.69 -- no better than chance. The contrast stage's first phase (two colours)
    let the shape word alone decide three times in four, so the model learned to read shape names and not
    colour names; scenes that differ only in colour leave no other way to lower the loss. The requests put
    the name last (`NAME_LAST_PHRASINGS`): a first run with the contrast stage's phrasings, whose names sit
    anywhere, still chose the wrong one of two shapes 0.45 of the time after 4,000 steps, on its own
    phrasings; with a single phrasing, two-shape scenes had been learned in 1,500 (LEARNING.md)."""
    count = next(c for end, c in PAIRS_PHASES if frac < end)
    kind = PAIR_KINDS[int(rng.choice(len(PAIR_KINDS), p=[w for _, w in PAIR_KINDS]))][0]
    colors, shapes = COLORS, PRETRAIN_SHAPES
    if kind == "colour":
        shapes = (PRETRAIN_SHAPES[int(rng.integers(len(PRETRAIN_SHAPES)))],)
    elif kind == "shape":
        colors = (COLORS[int(rng.integers(len(COLORS)))],)
    qa = _scene(rng, count, side, colors=colors, shapes=shapes)
    return [_row(rng, [_box(it, native=True, rng=rng, phrasings=NAME_LAST_PHRASINGS)], qa.image, qa.items)
            for it in qa.items]


def _scene(rng: np.random.Generator, count: tuple[int, int], side: int, *, colors=COLORS, shapes=PRETRAIN_SHAPES):
    for _ in range(50):
        try:
            return q_refer(rng, side=(side, side), count=count, colors=colors, shapes=shapes)
        except Exception:  # placement ran out of room: draw another scene
            continue
    raise RuntimeError(f"no scene of {count} shapes fits a {side}-px canvas in 50 draws")


def _row(rng: np.random.Generator, turns: list[tuple[str, str]], image, items=()) -> dict:
    """A canonical row; ``meta`` records what the picture shows (`items`), for the token heads."""
    messages = []
    for k, (question, answer) in enumerate(turns):
        content = [{"type": "text", "text": question}]
        if k == 0:
            content.append({"type": "image", "image": image})
        messages += [{"role": "user", "content": content},
                     {"role": "assistant", "content": [{"type": "text", "text": answer}]}]
    shapes = [{"box": [float(v) for v in it.box], "color": it.color, "kind": it.name} for it in items]
    return {"id": f"pretrain-{int(rng.integers(1 << 62))}", "messages": messages,
            "meta": {"shapes": shapes, "size": list(image.size)}}


def make_row(rng: np.random.Generator, frac: float, side: int = 112) -> dict:
    """One in-memory canonical row of the "base" stage: a fresh scene and a conversation about it
    (`_questions`); the first question comes before the image, later ones follow the answers."""
    qa = _scene(rng, scene_count(frac), side)
    return _row(rng, _questions(rng, qa.items, qa.targets[0], frac, side), qa.image, qa.items)


def _batch_rows(rng: np.random.Generator, stage: str, frac: float, batch_size: int,
                naming_share: float = 0.0, naming_kind: str = "lone") -> list[dict]:
    if stage == "base":
        return [make_row(rng, frac) for _ in range(batch_size)]
    if stage == "bind":
        return [bind_row(rng, frac) for _ in range(batch_size)]
    scene_rows = pairs_rows if stage == "pairs" else contrast_rows
    # naming rows keep the vision tower seeing colour while the scenes teach which shape a name picks
    naming = _scene_naming_row if naming_kind == "scene" else _naming_row
    rows = [naming(rng, 112) for _ in range(round(batch_size * naming_share))]
    while len(rows) < batch_size:  # whole scenes; the last one may be cut to fit the batch
        rows += scene_rows(rng, frac)
    return rows[:batch_size]


def labelled_loss(model, batch):
    """Cross-entropy on the labelled (assistant) tokens only, projecting just those positions."""
    import torch

    labels = batch.pop("labels")
    hidden = model.model(**batch).last_hidden_state
    keep = labels[:, 1:] != -100
    logits = model.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), labels[:, 1:][keep])


def learning_rate(step: int, steps: int, peak: float, warmup: int = 100) -> float:
    """Linear warm-up, then cosine to a tenth of the peak.

    >>> round(learning_rate(0, 1000, 1e-3), 6), round(learning_rate(999, 1000, 1e-3), 6)
    (1e-05, 0.0001)
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup - 1)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def pretrain(out: Path, *, steps: int, batch_size: int, lr: float, seed: int, save_every: int = 1000,
             stop_after: int | None = None, rope_theta: float | None = None, progress: bool = True,
             stage: str = "base", init_from: Path | None = None, vision_lr_scale: float = 1.0,
             naming_share: float = 0.0, naming_kind: str = "lone", token_heads: float = 0.0) -> dict:
    """Train a base-size model and save it in `out` (also every `save_every` steps, so a stopped run keeps
    its progress); returns the run's record. Stage "base" starts from random weights built in `out`;
    stage "bind" continues `init_from` on `bind_row`s, "contrast" on `contrast_rows`. The vision tower
    trains at `vision_lr_scale` x the learning rate. With `token_heads` > 0, linear heads read each merged vision
    token's colour and kind beside the box loss, at that weight (`token_heads.TokenHeads`)."""
    import torch
    from tqdm.auto import tqdm

    from mmreason.modalities.collate import Collator
    from mmreason.models import build_tiny, load
    from mmreason.train.model_setup import parameter_groups

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
    history = []
    if init_from is not None:
        earlier = Path(init_from) / "pretrain.json"
        if earlier.is_file():
            done = json.loads(earlier.read_text(encoding="utf-8"))
            history = done.get("history", []) + [{k: v for k, v in done.items() if k not in ("losses", "history")}]
    else:
        build_tiny(FAMILY, out, seed=seed, size="base")
    if rope_theta is not None:  # an ablation of the base's rope_theta (see models.tiny_configs.SIZES)
        config = json.loads((out / "config.json").read_text())
        config["text_config"]["rope_parameters"]["rope_theta"] = rope_theta
        (out / "config.json").write_text(json.dumps(config, indent=2))
    model, processor = load({"path": str(init_from or out), "dtype": "float32"})
    model.train()
    collator = Collator(processor, FAMILY, mode="train", return_meta=False)
    groups = parameter_groups(model, lr, {"visual": lr * vision_lr_scale} if vision_lr_scale != 1 else {},
                              section="pretrain-tiny")
    for group in groups:
        group["scale"] = group["lr"] / lr
    heads = None
    if token_heads:
        heads = TokenHeads(model, COLORS, PRETRAIN_SHAPES)
        groups.append({"params": list(heads.parameters()), "lr": lr * HEAD_LR_SCALE, "scale": HEAD_LR_SCALE})
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    rng = np.random.default_rng([STREAM_SEED, seed] + ([STAGES.index(stage)] if stage != "base" else []))
    torch.manual_seed(seed)
    losses, colour_read, start, cpu0 = [], [], time.perf_counter(), time.process_time()
    run_steps = min(steps, stop_after or steps)  # the schedule spans `steps`; a run may stop before its end
    bar = tqdm(range(run_steps), desc="pretrain-tiny", disable=not progress, unit="step")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = group["scale"] * learning_rate(step, steps, lr)
        rows = _batch_rows(rng, stage, step / steps, batch_size, naming_share, naming_kind)
        batch = collator(rows)
        loss = labelled_loss(model, batch)
        total = loss
        if heads is not None:
            aux, accuracy = heads.loss(rows, batch["image_grid_thw"])
            total = loss + token_heads * aux
            colour_read.append(round(accuracy.get("color", float("nan")), 4))
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 4))
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}",
                            **({"colour_read": f"{np.nanmean(colour_read[-50:]):.2f}"} if colour_read else {}))
        if (step + 1) % save_every == 0 and step + 1 < run_steps:
            model.save_pretrained(out)
            processor.save_pretrained(out)  # a mid-run save is a checkpoint a user can evaluate or probe
            (out / "pretrain.json").write_text(json.dumps({"steps_done": step + 1, "stage": stage,
                                                                 "history": history, "losses": losses}) + "\n")
    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    record = {"family": FAMILY, "size": "base", "out": Path(out).as_posix(), "stage": stage, "init_from": init_from and Path(init_from).as_posix(),
              "seed": seed, "steps": steps, "stopped_after": run_steps,
              "batch_size": batch_size, "lr": lr, "vision_lr_scale": vision_lr_scale, "naming_share": naming_share,
              "naming_kind": naming_kind, "token_heads": token_heads,
              "rope_theta": model.config.text_config.rope_parameters["rope_theta"],
              "parameters": sum(p.numel() for p in model.parameters()),
              "wall_seconds": round(time.perf_counter() - start), "cpu_seconds": round(time.process_time() - cpu0),
              "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
              "loss_first_100": round(float(np.mean(losses[:100])), 4),
              "loss_last_100": round(float(np.mean(losses[-100:])), 4)}
    if colour_read:  # how well the colour head reads the merged tokens at the end: the point of the heads
        record["colour_read_last_100"] = round(float(np.nanmean(colour_read[-100:])), 4)
    (out / "pretrain.json").write_text(json.dumps({**record, "history": history, "losses": losses}) + "\n",
                                       encoding="utf-8")
    write_card(out, history + [record])
    return record


STAGE_DATA = {
    "base": f"""a lone shape boxed ("Locate the red circle and give its bounding box." -> `[x1, y1, x2, y2]`)
     for the first {LOCATE_ONLY:.0%} of the schedule; then 1-2, then 1-4 shapes, one conversation per
     scene: name the target's colour, its shape, the part of the picture it is in, sometimes count, then
     box every shape""",
    "bind": f"""single-turn rows: a lone shape's colour or shape named ("What colour is the shape?") for the
     first {NAMING_FIRST:.0%} of the schedule, then for {NAMING_SHARE:.0%} of the rows; the rest box one of 2-4
     shapes by its name ("Locate the red circle and give its bounding box.")""",
    "contrast": f"""single-turn rows, every shape of one scene boxed by its name in the same batch, asked in one
     of {len(BOX_PHRASINGS)} phrasings ("Find the red circle.", "Box the red circle.", ...) and answered in the
     family's grounding JSON (`{{"bbox_2d": [x1, y1, x2, y2]}}`): 2 shapes of different colours for the first
     40% of the schedule, then 2-3, then 2-4 shapes""",
    "pairs": f"""as the contrast stage (every shape of one scene boxed by its name in the same batch, answered
     in the family's JSON), asked in one of {len(NAME_LAST_PHRASINGS)} phrasings with the name last ("Find the red
     circle.", "Mark the red circle.", ...), and {PAIR_KINDS[0][1]:.0%} of the scenes show one shape in several colours and
     {PAIR_KINDS[1][1]:.0%} one colour in several shapes, so one word alone must pick the shape; 2 shapes for the
     first 30% of the schedule, then 2-3, then 2-4""",
}


def _command(out: Path, r: dict) -> str:
    parts = [f"mmreason pretrain-tiny --out {r.get('out') or out.as_posix()}"]
    if r.get("stage", "base") != "base":
        parts.append(f"--stage {r['stage']} --init-from {r['init_from']}")
    parts.append(f"--steps {r['steps']}")
    if r.get("stopped_after") not in (None, r["steps"]):
        parts.append(f"--stop-after {r['stopped_after']}")
    parts.append(f"--batch-size {r['batch_size']} --lr {r['lr']} --seed {r['seed']}")
    if r.get("vision_lr_scale", 1.0) != 1.0:
        parts.append(f"--vision-lr-scale {r['vision_lr_scale']:g}")
    if r.get("token_heads"):
        parts.append(f"--token-heads {r['token_heads']:g}")
    if r.get("naming_share"):
        parts.append(f"--naming-share {r['naming_share']:g}")
        if r.get("naming_kind", "lone") != "lone":
            parts.append(f"--naming-kind {r['naming_kind']}")
    return " ".join(parts)


def _naming_data(r: dict) -> str:
    if not r.get("naming_share"):
        return ""
    if r.get("naming_kind") == "scene":
        return (f"; {r['naming_share']:.0%} of each batch names one shape of a scene of 2-4 by the other word "
                '("What colour is the circle?", "What shape is the red one?")')
    return f"; {r['naming_share']:.0%} of each batch names a lone shape's colour or shape"


def _heads_data(r: dict) -> str:
    if not r.get("token_heads"):
        return ""
    read = (f"; the colour head read {r['colour_read_last_100']:.2f} of the labelled tokens over the last 100 steps"
            if "colour_read_last_100" in r else "")
    return (f"; beside the box loss, linear heads read each merged vision token's colour and kind (weight "
            f"{r['token_heads']:g}{read}), discarded after training")


def write_card(out: Path, records: list[dict], notes: str = "") -> None:
    """The checkpoint's README.md: every stage's command, data, cost and loss, in order."""
    last = records[-1]
    stages = []
    for k, r in enumerate(records, 1):
        cpu = f"{r['cpu_seconds']} s CPU" if r.get("cpu_seconds") is not None else "CPU not measured"
        stages.append(f"""{k}. `{_command(out, r)}`
   - data: {STAGE_DATA[r.get('stage', 'base')]}{_naming_data(r)}{_heads_data(r)}
   - cost: {r['stopped_after']} steps of {r['batch_size']} in {r['wall_seconds']} s wall / {cpu} on
     {r['torch_threads']} thread(s) ({r['machine']})
   - loss (assistant tokens): {r['loss_first_100']} over the first 100 steps -> {r['loss_last_100']} over the last 100""")
    body = "\n".join(stages)
    native = ("; boxes come out in the family's grounding JSON, as released Qwen2.5-VL writes them and as the "
              "quickstart asks" if any(r.get("stage") in ("contrast", "pairs") for r in records) else
              ", nor its answer format")
    text = f"""# mmreason tiny base: {last['family']}, size "base"

A {last['parameters']:,}-parameter Qwen2.5-VL-architecture model (rope_theta {last['rope_theta']}) pretrained
by mmreason itself, offline, so examples fine-tune a pretrained model, as users do, rather than random
weights. Scenes: fresh 112-px canvases ({', '.join(COLORS)} x {', '.join(PRETRAIN_SHAPES)}) streamed from
the image_scenes builder's generator (stream seed {STREAM_SEED}); nothing is written to disk.

Made by, in order:

{body}

- never seen: the quickstart's phrasing ("Where is the red circle?") and its scenes (seeds 0 and 1 of the
  builder){native}
- files: `model.safetensors` + config, the processor and tokenizer (locally trained), `pretrain.json`
  (the settings of every stage and the last stage's per-step loss)
{notes}"""
    (out / "README.md").write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mmreason pretrain-tiny", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("models/tiny_base") / FAMILY, help="checkpoint folder")
    p.add_argument("--steps", type=int, default=9000, help="optimizer steps of the schedule (default 9000)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rope-theta", type=float, help="override the base size's rope_theta (an ablation)")
    p.add_argument("--save-every", type=int, default=1000, help="save the weights every N steps too")
    p.add_argument("--stage", choices=STAGES, default="base",
                   help="base: from random weights (the default); bind: continue --init-from on named-shape rows; "
                   "contrast: continue --init-from with every shape of a scene boxed by name in one batch; "
                   "pairs: the same with scenes that differ only in colour or only in shape")
    p.add_argument("--init-from", type=Path, help="checkpoint a later stage continues (e.g. the base itself)")
    p.add_argument("--vision-lr-scale", type=float, default=1.0,
                   help="the vision tower's learning rate as a multiple of --lr (default 1)")
    p.add_argument("--naming-share", type=float, default=0.0,
                   help="contrast and pairs stages: share of each batch that names a lone shape's colour or shape")
    p.add_argument("--naming-kind", choices=("lone", "scene"), default="lone",
                   help="what the naming rows show: a lone shape (its colour or shape), or a scene of 2-4 "
                   "shapes where one is named by the other word (\"What colour is the circle?\")")
    p.add_argument("--token-heads", type=float, default=0.0, metavar="WEIGHT",
                   help="train linear heads that read each merged vision token's colour and kind, at this loss "
                   "weight beside the box loss (keeps colour in the tokens the language model sees; default 0: off)")
    p.add_argument("--stop-after", type=int, help="stop after N steps of the --steps schedule (learning rate "
                   "not yet decayed to its floor)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.lr <= 0:
        p.error("--steps and --batch-size must be >= 1 and --lr > 0")
    if (args.stage != "base") != (args.init_from is not None):
        p.error(f"--stage {args.stage}: " + ("it continues a checkpoint: give --init-from" if args.stage != "base"
                                               else "--init-from goes with a later stage (bind, contrast, pairs)"))
    if args.init_from is not None and not (args.init_from / "config.json").is_file():
        p.error(f"--init-from {args.init_from}: no checkpoint there (config.json missing)")
    if args.rope_theta is not None and args.init_from is not None:
        p.error("--rope-theta builds a fresh model: it does not combine with --init-from")
    if not args.vision_lr_scale > 0:
        p.error("--vision-lr-scale must be > 0")
    if not 0 <= args.naming_share < 1 or (args.naming_share and args.stage not in ("contrast", "pairs")):
        p.error("--naming-share must be in [0, 1) and goes with --stage contrast or pairs")
    if not args.token_heads >= 0:
        p.error("--token-heads must be >= 0 (0 turns the heads off)")
    if args.naming_kind != "lone" and not args.naming_share:
        p.error("--naming-kind scene sets what the naming rows show: give --naming-share too")
    import torch

    torch.set_num_threads(1)  # matrices this small run fastest on one thread
    record = pretrain(args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      save_every=args.save_every, stop_after=args.stop_after, rope_theta=args.rope_theta,
                      stage=args.stage, init_from=args.init_from, vision_lr_scale=args.vision_lr_scale,
                      naming_share=args.naming_share, naming_kind=args.naming_kind, token_heads=args.token_heads)
    print(json.dumps(record, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
