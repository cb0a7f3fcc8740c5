"""Move the boxes inside a row's reasoning targets into the coordinate frame a model family emits.

Builders write every box and point (GUI action ``coordinate``/``coordinate2``, ``point_2d``) in an assistant
turn in ORIGINAL pixels of the picture it is about (image 0,
or a video frame), and say so with ``meta["coord_frame"] = "pixel"`` and ``meta["image_size"] = [w, h]``.
Training a family whose outputs use another frame (Qwen2.5-VL: pixels of the smart-resized input;
Qwen2-VL / Qwen3-VL: 0-1000) needs the targets rewritten for the pixel budget actually used, e.g. GRIT
trains Qwen2.5-VL at ``max_pixels=256*28*28``. Doing it here, at load time, keeps one dataset valid for
every family and budget; GT columns (``boxes`` ...) are never touched, since rewards convert those
themselves through `mmreason.geometry`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Mapping

from mmreason import schema
import re

from mmreason.geometry import ImageFrame, box_to_model, model_frame, point_to_model
from mmreason.traces import parse

# GUI agent prompts state the coordinate extent ("The screen's resolution is 1080x2400"); it must name
# the frame the model answers in, or a Qwen2.5-VL policy is told one size and shown another.
_RESOLUTION = re.compile(r"(resolution is )(\d+)x(\d+)")
# Edges a trace reasons with in prose, e.g. GRIT's rethink: "the blue cross ends at x=248": the same frame as
# its boxes, or the reasoning contradicts them.
_EDGE = re.compile(r"\b([xy])=(\d+)\b")


def _reformat(text: str, frame: ImageFrame, family: str, tool_frame: str | None = None) -> str:
    trace = parse(text)
    # FIND_SEGMENT / FIND_FRAME lists hold ids, not coordinates, even when there happen to be four.
    ids = [(m.start, m.end) for m in trace.manipulations if m.kind != "SPATIAL_ZOOM"]
    if tool_frame == "pixel":  # tools that read original pixels (DeepEyes, Video-CoM): calls stay as written
        ids += [(c.start, c.end) for c in trace.tool_calls]
        ids += [(m.start, m.end) for m in trace.manipulations if m.kind == "SPATIAL_ZOOM"]
    edits = []
    for b in trace.boxes:
        if any(s <= b.start < e for s, e in ids):
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in box_to_model(b.box, family, frame))
        if b.fmt == "bbox_2d":
            new = f'"bbox_2d": [{x1}, {y1}, {x2}, {y2}]'
        elif b.fmt == "ints":
            new = f"{x1}, {y1}, {x2}, {y2}"
        else:
            new = f"<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>"
        edits.append((b.start, b.end, new))
    for p in trace.points:
        if any(s <= p.start < e for s, e in ids):
            continue
        x, y = (int(round(v)) for v in point_to_model(p.point, family, frame))
        new = f"[{x},{y}]" if p.fmt == "pair" else f'"{p.fmt}": [{x}, {y}]'
        edits.append((p.start, p.end, new))
    for m in _EDGE.finditer(text):
        if any(s <= m.start() < e for s, e in ids):
            continue
        v = int(m.group(2))
        moved = point_to_model((v, v), family, frame)[0 if m.group(1) == "x" else 1]
        edits.append((m.start(), m.end(), f"{m.group(1)}={int(round(moved))}"))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def render_for_family(row: Mapping, family: str, *, root: str | Path | None = None, min_pixels: int | None = None,
                      max_pixels: int | None = None, tool_frame: str | None = None) -> dict:
    """A copy of `row` whose assistant turns give every box in `family`'s output frame.

    The picture size comes from ``meta["image_size"]``, else from the first image file (under `root`).
    A GUI row's user turn (its step history) moves too. Rows already in another frame, or without boxes,
    come back unchanged (as a copy). With `tool_frame` "pixel" (``tools.coord_frame``: tools that crop the
    original picture), the boxes inside tool calls and ``SPATIAL_ZOOM`` manipulations keep their pixels.

    >>> row = {"id": "a", "messages": [{"role": "assistant", "content": [{"type": "text",
    ...        "text": '<think>{"bbox_2d": [100, 50, 300, 250]}</think>'}]}],
    ...        "meta": {"coord_frame": "pixel", "image_size": [1000, 500]}}
    >>> render_for_family(row, "qwen3_vl")["messages"][0]["content"][0]["text"]
    '<think>{"bbox_2d": [100, 100, 300, 500]}</think>'
    """
    out = copy.deepcopy(dict(row))
    meta = out.get("meta") or {}
    if meta.get("coord_frame", "pixel") != "pixel":
        return out
    size = meta.get("image_size")
    if size is None:
        images = schema.images_of(out)
        if not images:
            return out
        from PIL import Image

        with Image.open(Path(root or ".") / images[0]) as im:
            size = im.size
    frame = ImageFrame.for_family(int(size[0]), int(size[1]), family, min_pixels=min_pixels,
                                  max_pixels=max_pixels)
    extent = (frame.resized_width, frame.resized_height) if model_frame(family) == "resized" else (1000, 1000)
    for msg in out["messages"]:
        for part in msg["content"]:
            if part.get("type") != "text" or not part.get("text"):
                continue
            if msg["role"] == "assistant":
                part["text"] = _reformat(part["text"], frame, family, tool_frame)
                continue
            part["text"] = _RESOLUTION.sub(lambda m: f"{m.group(1)}{extent[0]}x{extent[1]}", part["text"])
            if msg["role"] == "user" and out.get("gui"):  # an agent step's history: the actions taken so far
                part["text"] = _reformat(part["text"], frame, family, tool_frame)
    out["meta"] = {**meta, "coord_frame": model_frame(family), "coord_family": family,
                   "coord_resized": [frame.resized_width, frame.resized_height]}
    return out
