"""`mmreason pretrain-tiny`: pretrain the project's tiny base model on its own scenes, so fine-tuning
examples start from a model that can already look, as users' fine-tuning starts from a pretrained VLM.

    mmreason pretrain-tiny --out models/tiny_base/qwen2_5_vl --steps 9000 --batch-size 8 --lr 1e-3

A base-size tiny Qwen2.5-VL (`models.tiny_configs.SIZES["base"]`, random init, seed 0) is trained on
shape scenes streamed from the `image_scenes` builder's generator (`scene_questions.q_refer`, fresh scenes
every step, nothing written to disk), in two phases (`_questions`):

- first, a lone shape boxed: "Locate the red circle and give its bounding box." -> ``[x1, y1, x2, y2]``
  (original pixels; the family's frame for 112-px canvases), until the model reads positions;
- then scenes of 1-2, then 1-4 shapes, each one conversation: naming turns about one shape (its colour, its
  shape, the part of the picture it is in, sometimes the count), then every shape boxed. Asking about every
  shape of the same picture is what makes the words matter: a model that boxes the most salient shape is
  wrong on all other turns.

The phrasing and the answer format differ from the quickstart's task ("Where is the red circle?" ->
``{"bbox_2d": [...]}``), and the scene stream uses its own seeds, so the base has never seen the
quickstart's held-out scenes. The first question comes before the image, so each vision token can attend
to the words naming its object.

The loop is plain AdamW on the toolkit's `Collator` batches (assistant tokens only), with the output
layer applied to the labelled positions alone: with a 4k vocabulary and 70-200-token samples, projecting
every position would cost more than the rest of the model. The result is a normal checkpoint folder
(safetensors + processor) with a ``README.md`` card saying how it was made.
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

FAMILY = "qwen2_5_vl"
COLORS = ("red", "green", "blue", "yellow", "orange", "purple")
PRETRAIN_SHAPES = ("circle", "square", "triangle", "diamond")
COUNT_SHARE = 0.3  # scenes that also get a counting turn
STREAM_SEED = 1_000_003  # scene stream; the quickstart builds its splits from seeds 0 and 1


LOCATE_ONLY = 0.45  # share of the run spent boxing a lone shape before anything else


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


def _box(item) -> tuple[str, str]:
    return (f"Locate the {item.label} and give its bounding box.", "[" + ", ".join(str(v) for v in item.box) + "]")


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


def make_row(rng: np.random.Generator, frac: float, side: int = 112) -> dict:
    """One in-memory canonical row: a fresh scene and a conversation about it (`_questions`); the first
    question comes before the image, later ones follow the answers."""
    for _ in range(50):
        try:
            qa = q_refer(rng, side=(side, side), count=scene_count(frac), colors=COLORS, shapes=PRETRAIN_SHAPES)
            break
        except Exception:  # placement ran out of room: draw another scene
            continue
    messages = []
    for k, (question, answer) in enumerate(_questions(rng, qa.items, qa.targets[0], frac, side)):
        content = [{"type": "text", "text": question}]
        if k == 0:
            content.append({"type": "image", "image": qa.image})
        messages += [{"role": "user", "content": content},
                     {"role": "assistant", "content": [{"type": "text", "text": answer}]}]
    return {"id": f"pretrain-{int(rng.integers(1 << 62))}", "messages": messages}


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
             stop_after: int | None = None, rope_theta: float | None = None, progress: bool = True) -> dict:
    """Build the random base-size model in `out`, train it, save it there (also every `save_every` steps,
    so a stopped run keeps its progress); returns the run's record."""
    import torch
    from tqdm.auto import tqdm

    from mmreason.modalities.collate import Collator
    from mmreason.models import build_tiny, load

    build_tiny(FAMILY, out, seed=seed, size="base")
    if rope_theta is not None:  # an ablation of the base's rope_theta (see models.tiny_configs.SIZES)
        config = json.loads((out / "config.json").read_text())
        config["text_config"]["rope_parameters"]["rope_theta"] = rope_theta
        (out / "config.json").write_text(json.dumps(config, indent=2))
    model, processor = load({"path": str(out), "dtype": "float32"})
    model.train()
    collator = Collator(processor, FAMILY, mode="train", return_meta=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    rng = np.random.default_rng([STREAM_SEED, seed])
    torch.manual_seed(seed)
    losses, start, cpu0 = [], time.perf_counter(), time.process_time()
    run_steps = min(steps, stop_after or steps)  # the schedule spans `steps`; a run may stop before its end
    bar = tqdm(range(run_steps), desc="pretrain-tiny", disable=not progress, unit="step")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, lr)
        batch = collator([make_row(rng, step / steps) for _ in range(batch_size)])
        loss = labelled_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 4))
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        if (step + 1) % save_every == 0 and step + 1 < run_steps:
            model.save_pretrained(out)
            (out / "pretrain.json").write_text(json.dumps({"steps_done": step + 1, "losses": losses}) + "\n")
    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    record = {"family": FAMILY, "size": "base", "seed": seed, "steps": steps, "stopped_after": run_steps,
              "batch_size": batch_size, "lr": lr,
              "rope_theta": model.config.text_config.rope_parameters["rope_theta"],
              "parameters": sum(p.numel() for p in model.parameters()),
              "wall_seconds": round(time.perf_counter() - start), "cpu_seconds": round(time.process_time() - cpu0),
              "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
              "loss_first_100": round(float(np.mean(losses[:100])), 4),
              "loss_last_100": round(float(np.mean(losses[-100:])), 4)}
    (out / "pretrain.json").write_text(json.dumps({**record, "losses": losses}) + "\n", encoding="utf-8")
    write_card(out, record)
    return record


def write_card(out: Path, record: dict, notes: str = "") -> None:
    cpu = f"{record['cpu_seconds']} s CPU" if record.get("cpu_seconds") is not None else "CPU not measured"
    text = f"""# mmreason tiny base: {record['family']}, size "base"

A {record['parameters']:,}-parameter Qwen2.5-VL-architecture model pretrained by mmreason itself, offline,
so examples fine-tune a pretrained model, as users do, rather than random weights.

- made by: `mmreason pretrain-tiny --out {out.as_posix()} --steps {record['steps']} --stop-after {record['stopped_after']} --batch-size {record['batch_size']} --lr {record['lr']} --seed {record['seed']}` (rope_theta {record['rope_theta']})
- data: fresh 112-px scenes of 1-4 shapes ({', '.join(COLORS)} x {', '.join(PRETRAIN_SHAPES)}) streamed from
  the image_scenes builder's generator, stream seed {STREAM_SEED}; for the first {LOCATE_ONLY:.0%} of the
  schedule a lone shape boxed ("Locate the red circle and give its bounding box." -> `[x1, y1, x2, y2]`);
  then 1-2, then 1-4 shapes, one conversation per scene: name the target's colour, its shape, the part of
  the picture it is in, sometimes count, then box every shape
- never seen: the quickstart's phrasing and answer format, and its scenes (seeds 0 and 1 of the builder)
- cost: {record['stopped_after']} steps of {record['batch_size']} in {record['wall_seconds']} s wall / {cpu} on
  {record['torch_threads']} thread(s) ({record['machine']})
- loss (assistant tokens): {record['loss_first_100']} over the first 100 steps -> {record['loss_last_100']} over the last 100
- files: `model.safetensors` + config, the processor and tokenizer (locally trained), `pretrain.json`
  (the settings and every step's loss)
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
    p.add_argument("--stop-after", type=int, help="stop after N steps of the --steps schedule (learning rate "
                   "not yet decayed to its floor)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.lr <= 0:
        p.error("--steps and --batch-size must be >= 1 and --lr > 0")
    import torch

    torch.set_num_threads(1)  # matrices this small run fastest on one thread
    record = pretrain(args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      save_every=args.save_every, stop_after=args.stop_after, rope_theta=args.rope_theta)
    print(json.dumps(record, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
