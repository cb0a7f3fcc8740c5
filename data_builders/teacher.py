"""Teacher rationales: rewrite a dataset's template rationales with a teacher VLM; keep only what verifies.

For each row of a canonical dataset (``src``, e.g. built by ``image_scenes`` with GRIT traces), the teacher
sees the picture, the question, the answer and the template rationale, and is asked for a natural
rewrite that keeps the boxes and the tag layout. A rewrite is kept only if

- it parses (`mmreason.traces`) with a ``<think>`` and an ``<answer>`` and no malformed parts;
- its answer matches the ground truth (case, spacing and final punctuation aside; numbers by value);
- its boxes, moved from the teacher's frame (``teacher_frame``: ``pixel``, ``norm1000``, or ``resized`` for
  ``teacher_family`` at ``teacher_max_pixels``) to original pixels, match the evidence: every rationale
  region (else every GT box) of image 0 has a box with IoU >= ``iou``, and every box matches a region.

Each row gets up to ``k`` tries (rejection sampling: try t uses seed (seed, index, t) at ``temperature``).
The kept text is stored with its boxes in original pixels. Rows with no verified rewrite are dropped
(``on_reject=drop``) or keep the template (``keep_template``). Counts of kept, rejected, and of every
rejection reason are builder counters in the dataset card.

Teachers: any OpenAI-compatible ``/v1/chat/completions`` server (``base_url``, e.g. vLLM; the picture
goes as a data URL), through the `openai` client as the judge speaks it (`mmreason.rewards.judge`), or a
local Hugging Face checkpoint (``hf_model``), run through the project's collator and ``model.generate``.
"""

from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path
from typing import Any

from PIL import Image

from mmreason import schema, traces
from mmreason.data_builders.common import DEFAULT_CHUNK_SIZE, SampleContext, build_dataset, merge_options, \
    phase, source_rows
from mmreason.data_builders.converters_base import Skip
from mmreason.data_builders.converters_base import media as link_media
from mmreason.data_builders.sharding import sample_rng
from mmreason.geometry import ImageFrame, convert_box, iou

NAME = "teacher_rationales"
DEFAULTS = {"src": None, "base_url": None, "model": "teacher", "api_key_env": None, "hf_model": None, "k": 3,
            "iou": 0.5, "temperature": 0.7, "max_tokens": 512, "teacher_frame": "pixel",
            "teacher_family": None, "teacher_max_pixels": None, "on_reject": "drop", "send_image": True,
            "media": "link", "on_missing": "error", "timeout": 120.0, "retries": 2}
SYSTEM = "You are a careful teacher. You write clear, grounded, step-by-step reasoning about images."


# ---------------------------------------------------------------------------------------- prompting
def _layout(template: str) -> str:
    tags = [t for t in ("think", "rethink", "answer") if f"<{t}>" in template]
    return " ".join(f"<{t}>...</{t}>" for t in tags) or "<think>...</think> <answer>...</answer>"


def teacher_prompt(question: str, answer: str, template: str, size: tuple[int, int]) -> str:
    """The rewrite request: question, answer, template and the rules a kept rewrite must follow."""
    w, h = size
    return (f"Question: {question}\nCorrect answer: {answer}\n\n"
            f"A correct but stiff reasoning:\n{template}\n\n"
            "Rewrite this reasoning as a person thinking out loud, in your own words. Keep every region it "
            "looks at, each written as {\"bbox_2d\": [x1, y1, x2, y2], \"label\": \"...\"} in pixel "
            f"coordinates of this {w}x{h} image; add no other boxes. Keep the layout {_layout(template)} and "
            "end with the same answer.")


def _data_url(path: Path) -> str:
    with Image.open(path) as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class HTTPTeacher:
    """An OpenAI-compatible chat endpoint, spoken through the judge's `openai` client (retries, timeouts)."""

    def __init__(self, opts: dict):
        from mmreason.rewards.judge import JudgeConfig

        JudgeConfig(base_url=opts["base_url"])  # checks the settings once, before any request
        self.config = dict(base_url=opts["base_url"], model=opts["model"], api_key_env=opts["api_key_env"],
                           max_tokens=int(opts["max_tokens"]), timeout=float(opts["timeout"]),
                           retries=int(opts["retries"]), cache_path="")

    def __call__(self, prompt: str, image: Path | None, *, seed: int, temperature: float) -> str:
        from mmreason.rewards.judge import JudgeConfig, chat_completion

        content: list[dict] = [{"type": "text", "text": prompt}]
        if image is not None:
            content.insert(0, {"type": "image_url", "image_url": {"url": _data_url(image)}})
        config = JudgeConfig(**self.config, seed=seed, temperature=temperature)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]
        return chat_completion(config, messages)


_HF: dict[str, Any] = {}


class HFTeacher:
    """A local checkpoint of any supported family: the collator builds the inputs, ``generate`` answers."""

    def __init__(self, opts: dict):
        from mmreason.models.loading import detect_family, load

        path = opts["hf_model"]
        if path not in _HF:
            model, processor = load(path)
            _HF[path] = (model.eval(), processor, detect_family(path))
        self.model, self.processor, self.family = _HF[path]
        self.max_tokens = int(opts["max_tokens"])

    def __call__(self, prompt: str, image: Path | None, *, seed: int, temperature: float) -> str:
        import torch

        from mmreason.modalities.collate import collate

        user = ([{"type": "image", "image": str(image)}] if image is not None else []) + [{"type": "text",
                                                                                          "text": prompt}]
        system = {"role": "system", "content": [{"type": "text", "text": SYSTEM}]}
        row = {"id": "teacher", "messages": [system, {"role": "user", "content": user}]}
        batch = collate([row], self.processor, self.family, mode="generate", return_meta=False)
        torch.manual_seed(seed)
        tok = self.processor.tokenizer
        with torch.inference_mode():
            out = self.model.generate(**batch, max_new_tokens=self.max_tokens, do_sample=temperature > 0,
                                      temperature=temperature if temperature > 0 else None,
                                      pad_token_id=tok.pad_token_id if tok.pad_token_id is not None
                                      else tok.eos_token_id)
        return tok.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)


def make_teacher(opts: dict):
    return HTTPTeacher(opts) if opts.get("base_url") else HFTeacher(opts)


# -------------------------------------------------------------------------------------- verification
def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", str(text).strip().lower()).rstrip(".!")


def same_answer(a: str | None, b: str | None) -> bool:
    """Answers equal up to case, spacing and final punctuation; numbers by value.

    >>> same_answer("Red.", "red"), same_answer("3.0", "3"), same_answer("2", "3")
    (True, True, False)
    """
    if a is None or b is None:
        return False
    x, y = _norm(a), _norm(b)
    try:
        return math.isclose(float(x), float(y), rel_tol=1e-6, abs_tol=1e-9)
    except ValueError:
        return x == y


def _frame(opts: dict, size: tuple[int, int]) -> ImageFrame:
    if opts["teacher_frame"] == "resized":
        if not opts["teacher_family"]:
            raise ValueError("teacher_frame=resized needs teacher_family (whose resizing the teacher saw)")
        return ImageFrame.for_family(size[0], size[1], opts["teacher_family"],
                                     max_pixels=opts["teacher_max_pixels"])
    return ImageFrame.identity(*size)


def verify(text: str, row: dict, size: tuple[int, int], opts: dict) -> tuple[str | None, list]:
    """(None, pixel boxes) when the rewrite verifies, else (reason, []). Never raises on teacher output."""
    t = traces.parse(text)
    if t.issues or t.think is None or t.answer is None:
        return "format", []
    if not same_answer(t.answer, row["answer"]):
        return "answer", []
    frame = _frame(opts, size)
    try:
        boxes = [convert_box(m.box, opts["teacher_frame"], "pixel", frame) for m in t.boxes]
    except ValueError:
        return "boxes", []
    regions = row.get("rationale_regions") or row.get("boxes") or []
    gt = [r["box"] for r in regions if r.get("image", 0) == 0]
    tau = float(opts["iou"])
    if any(not any(iou(b, g) >= tau for b in boxes) for g in gt) or any(not any(iou(b, g) >= tau for g in gt)
                                                                         for b in boxes):
        return "boxes", []
    return None, boxes


def to_pixels(text: str, boxes: list) -> str:
    """`text` with each box mention rewritten as the given (pixel) box, in the mention's own format."""
    mentions = traces.parse(text).boxes
    for m, b in sorted(zip(mentions, boxes), key=lambda mb: mb[0].start, reverse=True):
        x1, y1, x2, y2 = (int(round(v)) for v in b)
        new = {"bbox_2d": f'"bbox_2d": [{x1}, {y1}, {x2}, {y2}]', "ints": f"{x1}, {y1}, {x2}, {y2}"}.get(
            m.fmt, traces.render_box([x1, y1, x2, y2], "box_tokens", m.label))
        text = text[:m.start] + new + text[m.end:]
    return text


# ------------------------------------------------------------------------------------------- builder

def make_sample(ctx: SampleContext) -> dict | None:
    opts = ctx.options
    root = schema.dataset_root(opts["src"])
    row = dict(source_rows(opts["src"])[ctx.index])
    turns = [m for m in row["messages"] if m["role"] == "assistant"]
    if len(turns) != 1 or not schema.images_of(row) or row.get("answer") is None:
        ctx.count("skipped_not_single_turn_image_qa")
        return None
    where = f"{opts['src']} row {ctx.index}"
    try:  # media first: a missing picture fails (or skips) before any teacher call
        messages = [{**m, "content": [{**p, p["type"]: link_media(ctx, root / p[p["type"]], where)}
                                      if p["type"] in schema.MEDIA_TYPES else p for p in m["content"]]}
                    for m in row["messages"]]
    except Skip as s:
        ctx.count(s.reason)
        return None
    template = schema.text_of(turns[0])
    users = [m for m in row["messages"] if m["role"] == "user"]
    question = schema.text_of(users[0])
    image = root / schema.images_of(row)[0]
    with Image.open(image) as im:
        size = im.size
    prompt = teacher_prompt(question, row["answer"], template, size)
    teacher = make_teacher(opts)
    kept, reasons = None, []
    for t in range(int(opts["k"])):
        seed = int(sample_rng(ctx.seed, ctx.index, t).integers(2**31 - 1))
        with phase("render"):
            try:
                reply = teacher(prompt, image if opts["send_image"] else None, seed=seed,
                                temperature=float(opts["temperature"]))
            except Exception as e:  # a failing teacher is a rejected try, never a crashed build
                ctx.count("teacher_errors")
                reasons.append(f"error: {type(e).__name__}")
                continue
        ctx.count("tries")
        reason, boxes = verify(reply, row, size, opts)
        if reason is None:
            kept = to_pixels(reply.strip(), boxes)
            break
        ctx.count(f"rejected_{reason}")
        reasons.append(reason)
    ctx.count("kept" if kept is not None else "rejected")
    if kept is None and opts["on_reject"] == "drop":
        return None
    # the source's other traces point at its own crop files: keep only the two this row is about
    meta = {**(row.get("meta") or {}), "source_id": row["id"], "traces": {"template": template},
            "teacher": {"model": opts["hf_model"] or f"{opts['base_url']}#{opts['model']}",
                        "kept": kept is not None, "tries": len(reasons) + (kept is not None),
                        "rejections": reasons}}
    if kept is not None:
        i = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
        messages[i] = {"role": "assistant", "content": [{"type": "text", "text": kept}]}
        meta.update(trace="teacher", traces={"template": template, "teacher": kept}, coord_frame="pixel")
    out = {k: v for k, v in row.items() if k in schema.FIELDS}
    return {**out, "id": ctx.id, "messages": messages, "meta": meta}


def build(out_dir: str | Path, *, n: int = 0, seed: int = 0, shard: tuple[int, int] = (0, 1),
          workers: int = 1, chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True, **options) -> Path:
    """Teacher rewrites of ``src``'s rationales, kept when their boxes and answer verify (n <= 0: all)."""
    opts = merge_options("teacher_rationales", DEFAULTS, options)
    if not opts["src"]:
        raise ValueError("teacher_rationales: give the dataset to rewrite with --set src=DIR")
    if bool(opts["base_url"]) == bool(opts["hf_model"]):
        raise ValueError("teacher_rationales: set exactly one of base_url (OpenAI-compatible server) and "
                         "hf_model")
    if opts["teacher_frame"] not in ("pixel", "norm1000", "resized"):
        raise ValueError("teacher_rationales: teacher_frame must be pixel, norm1000 or resized")
    if opts["on_reject"] not in ("drop", "keep_template"):
        raise ValueError("teacher_rationales: on_reject must be drop or keep_template")
    if int(opts["k"]) < 1 or not 0 < float(opts["iou"]) <= 1:
        raise ValueError("teacher_rationales: need k >= 1 and 0 < iou <= 1")
    opts["src"] = str(Path(opts["src"]).expanduser().absolute())
    if opts["hf_model"]:
        opts["hf_model"] = str(Path(opts["hf_model"]).expanduser().absolute())
    total = len(source_rows(opts["src"]))
    count = total if n <= 0 else min(int(n), total)
    return build_dataset(out_dir, name=NAME, make_sample=make_sample, n=count, seed=seed, shard=shard,
                         options=opts, workers=workers, chunk_size=chunk_size, progress=progress)
