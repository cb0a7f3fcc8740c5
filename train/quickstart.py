"""`mmreason quickstart`: one grounded answer, end to end, on CPU, with nothing downloaded.

1. build (or reuse) a tiny random Qwen2.5-VL under `outputs/quickstart/`;
2. draw synthetic images, each with a red square at a known box;
3. ask the random model where the square is (it cannot answer: random weights emit noise);
4. fine-tune it on answers in Qwen2.5-VL's own format, `{"bbox_2d": [x1, y1, x2, y2]}` in pixels of the
   *resized* image (the frame that family outputs);
5. ask again on held-out images, parse each answer with `mmreason.traces`, map the box back to original
   pixels with `mmreason.geometry`, and score it against the ground truth (IoU).

The square sits at one of 3x3 places, so a 2-layer, 64-wide model can learn the task in under a
minute of CPU; next to its IoU the summary prints what always answering the centre place would score,
so the number means something. Every number printed is measured.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mmreason.geometry import Box, ImageFrame, box_from_model, box_to_model, iou
from mmreason.models import build_tiny, load
from mmreason.models.tiny import is_tiny_build

FAMILY = "qwen2_5_vl"
QUESTION = "Where is the red square? Answer with its bounding box as JSON."
IMAGE_SIZE = (150, 120)  # width, height; not multiples of 28, so the resized frame differs from the original
GRID = 3  # the square's top-left corner takes one of GRID x GRID places
BATCH = 8
LEARNING_RATE = 5e-3
HELD_OUT = 8


@dataclass(frozen=True)
class Example:
    image: Image.Image
    box: Box  # ground truth, original pixels


def draw_example(rng: random.Random) -> Example:
    """Grey noise with a red square half the image's size at one of GRID x GRID places."""
    w, h = IMAGE_SIZE
    noise = np.random.default_rng(rng.getrandbits(64)).integers(90, 160, size=(h, w, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    sw, sh = w // 2, h // 2
    x = round(rng.randrange(GRID) * (w - sw) / (GRID - 1))
    y = round(rng.randrange(GRID) * (h - sh) / (GRID - 1))
    ImageDraw.Draw(image).rectangle((x, y, x + sw - 1, y + sh - 1), fill=(220, 30, 30))
    return Example(image, (float(x), float(y), float(x + sw), float(y + sh)))


def image_frame(processor, image: Image.Image) -> ImageFrame:
    """The frame the processor will produce for `image`, from the processor's own pixel budget."""
    size = processor.image_processor.size
    return ImageFrame.for_family(image.width, image.height, FAMILY,
                                 min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"])


def answer_for(example: Example, frame: ImageFrame) -> str:
    """The target text: the box in the family's output frame (resized pixels for Qwen2.5-VL)."""
    return json.dumps({"bbox_2d": [round(v) for v in box_to_model(example.box, FAMILY, frame)]})


def chat(answer: str | None = None) -> list[dict]:
    turns = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    if answer is not None:
        turns.append({"role": "assistant", "content": answer})
    return turns


def training_batch(processor, examples: list[Example]):
    """Processor inputs plus labels that train only the answer and its end-of-turn token."""
    images = [e.image for e in examples]
    texts = [processor.apply_chat_template(chat(answer_for(e, image_frame(processor, e.image)))) for e in examples]
    batch = processor(text=texts, images=images, padding=True, return_tensors="pt")
    prompt = processor.apply_chat_template(chat(), add_generation_prompt=True)
    # every prompt is the same length: same question, same image size, hence the same number of image tokens
    prompt_len = processor(text=[prompt], images=images[:1], return_tensors="pt")["input_ids"].shape[1]
    labels = batch["input_ids"].clone()
    labels[:, :prompt_len] = -100
    labels[batch["attention_mask"] == 0] = -100
    batch["labels"] = labels
    return batch


def finetune(model, processor, steps: int, seed: int) -> list[float]:
    """Plain AdamW at a constant rate on fresh synthetic batches; returns the loss of every step."""
    import torch

    rng = random.Random(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**training_batch(processor, [draw_example(rng) for _ in range(BATCH)])).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    return losses


def ask(model, processor, image: Image.Image, max_new_tokens: int = 24) -> str:
    import torch

    inputs = processor(text=[processor.apply_chat_template(chat(), add_generation_prompt=True)], images=[image],
                       return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def score(raw: str, example: Example, frame: ImageFrame) -> dict:
    """Parse the answer, map its first box to original pixels, compare with the ground truth."""
    from mmreason.traces import parse

    boxes = [m.box for m in parse(raw).boxes]
    pred = box_from_model(boxes[0], FAMILY, frame) if boxes else None
    return {"raw": raw, "boxes": boxes, "box_pixels": pred, "gt_pixels": example.box,
            "iou": iou(pred, example.box) if pred else 0.0}


def evaluate(model, processor, examples: list[Example]) -> list[dict]:
    return [score(ask(model, processor, e.image), e, image_frame(processor, e.image)) for e in examples]


def centre_guess_iou(examples: list[Example]) -> float:
    """Mean IoU of a blind answer: always the centre place. A model must beat this to be looking."""
    w, h = IMAGE_SIZE
    centre = ((w - w // 2) / 2, (h - h // 2) / 2, (w - w // 2) / 2 + w // 2, (h - h // 2) / 2 + h // 2)
    return statistics.mean(iou(centre, e.box) for e in examples)


def _fmt(box) -> str:
    return "(" + ", ".join(f"{v:g}" for v in (round(float(x), 1) for x in box)) + ")"


def show(title: str, result: dict, frame: ImageFrame) -> None:
    print(f"\n[{title}]")
    print(f"  raw output   : {result['raw']!r}")
    parsed = ", ".join(_fmt(b) for b in result["boxes"]) or "none"
    print(f"  parsed boxes : {parsed}   (resized {frame.resized_width}x{frame.resized_height} frame)")
    if result["box_pixels"]:
        print(f"  in original  : {_fmt(result['box_pixels'])}   ({frame.width}x{frame.height} pixels)")
    print(f"  ground truth : {_fmt(result['gt_pixels'])}")
    print(f"  IoU          : {result['iou']:.3f}")


def save_picture(example: Example, result: dict, path: Path) -> None:
    picture = example.image.copy()
    draw = ImageDraw.Draw(picture)
    draw.rectangle(example.box, outline=(0, 200, 0), width=2)
    if result["box_pixels"]:
        draw.rectangle(result["box_pixels"], outline=(255, 255, 0), width=2)
    picture.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mmreason quickstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/quickstart"), help="where files go")
    parser.add_argument("--steps", type=int, default=80, help="fine-tuning steps (default 80)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the model, the training data and the test images")
    parser.add_argument("--held-out", type=int, default=HELD_OUT, help=f"test images to score (default {HELD_OUT})")
    args = parser.parse_args(argv)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices this small run fastest on one thread; extra threads only contend
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args) -> int:
    start = time.perf_counter()
    model_dir = args.out / f"tiny-{FAMILY}"
    reused = is_tiny_build(model_dir, family=FAMILY, seed=args.seed)
    if not reused:
        build_tiny(FAMILY, model_dir, seed=args.seed)
    model, processor = load(model_dir)
    print(f"model        : tiny {FAMILY}, {sum(p.numel() for p in model.parameters()):,} random parameters "
          f"({'reused' if reused else 'built'} {model_dir})")

    test_rng = random.Random(f"held-out-{args.seed}")
    held_out = [draw_example(test_rng) for _ in range(max(1, args.held_out))]
    frame = image_frame(processor, held_out[0].image)
    print(f"task         : find a red square in a {frame.width}x{frame.height} image "
          f"(the processor resizes it to {frame.resized_width}x{frame.resized_height})")
    print(f"prompt       : {processor.apply_chat_template(chat(), add_generation_prompt=True)!r}")

    before = evaluate(model, processor, held_out[:1])
    show("random model", before[0], frame)

    t0 = time.perf_counter()
    losses = finetune(model, processor, args.steps, args.seed)
    if losses:
        print(f"\nfine-tuned   : {args.steps} steps x {BATCH} synthetic images in {time.perf_counter() - t0:.1f}s, "
              f"loss {losses[0]:.2f} -> {losses[-1]:.2f}")

    after = evaluate(model, processor, held_out)
    show("fine-tuned model, held-out image 1", after[0], frame)

    finetuned_dir = args.out / "finetuned"
    model.save_pretrained(finetuned_dir)
    processor.save_pretrained(finetuned_dir)
    save_picture(held_out[0], after[0], args.out / "held_out.png")
    mean_iou = statistics.mean(r["iou"] for r in after)
    hits = sum(r["iou"] >= 0.5 for r in after)
    summary = {"family": FAMILY, "steps": args.steps, "seed": args.seed, "losses": losses,
               "before": before, "after": after, "mean_iou": mean_iou, "hits_at_0.5": hits,
               "centre_guess_iou": centre_guess_iou(held_out), "seconds": round(time.perf_counter() - start, 1)}
    (args.out / "result.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    print(f"\nsummary      : {len(after)} held-out images, mean IoU {mean_iou:.3f}, {hits} with IoU >= 0.5 "
          f"(always answering the centre would score {summary['centre_guess_iou']:.3f}); "
          f"{summary['seconds']}s in all")
    print(f"files        : {finetuned_dir}/ (fine-tuned checkpoint), {args.out / 'held_out.png'} "
          f"(green = truth, yellow = answer), {args.out / 'result.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
