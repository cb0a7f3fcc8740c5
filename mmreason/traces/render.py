"""Write reasoning traces: the inverse of `mmreason.traces.parse`, so parse(render(x)) gives x back.

Data builders write SFT targets with these, so each method's format has one writer and one reader.
The tag vocabulary is `mmreason.traces.tags`, shared with the parser. Bad input (an unknown tag, a
non-finite number, a name the grammar cannot hold) raises ValueError naming what was wrong: a builder
should stop rather than write data no parser reads back.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from mmreason.traces.tags import BLOCK_TAGS, INLINE_TAGS

BOX_FORMATS = ("bbox_2d", "ints", "box_tokens")

# A tag or special token inside a JSON string would be read as structure; JSON may spell "<" as \u003c.
_UNSAFE_LT_RE = re.compile(r"<(?=\||/?(?:" + "|".join(BLOCK_TAGS + INLINE_TAGS) + r")>)")
_WORD_RE = re.compile(r"\w+")


def _floats(values: Any, n: int, what: str) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} must be {n} numbers, got {values!r}") from e
    if len(out) != n:
        raise ValueError(f"{what} must be {n} numbers, got {len(out)}: {values!r}")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} has a non-finite number: {values!r}")
    return out


def _num(v: float) -> str:
    """Integral values print as ints (what Qwen writes); others in full precision, so they round-trip."""
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _json(value: Any, what: str) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} is not JSON-serialisable: {e}") from e
    return _UNSAFE_LT_RE.sub(r"\\u003c", text)


def render_block(tag: str, text: str) -> str:
    """
    >>> render_block("think", "the cup is left of the plate")
    '<think>the cup is left of the plate</think>'
    """
    if tag not in BLOCK_TAGS:
        raise ValueError(f"unknown tag {tag!r}; known: {', '.join(BLOCK_TAGS)}")
    if not isinstance(text, str):
        raise ValueError(f"<{tag}> content must be a string, got {type(text).__name__}")
    if f"<{tag}>" in text or f"</{tag}>" in text:
        raise ValueError(f"<{tag}> content contains its own tag: {text[:80]!r}")
    return f"<{tag}>{text}</{tag}>"


def render_tool_call(name: str, arguments: dict) -> str:
    """Qwen's layout: the JSON on its own line between the tags.

    >>> print(render_tool_call("image_zoom_in_tool", {"bbox_2d": [10, 20, 200, 240]}))
    <tool_call>
    {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 200, 240]}}
    </tool_call>
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"tool name must be a non-empty string, got {name!r}")
    if not isinstance(arguments, dict):
        raise ValueError(f"tool {name!r}: arguments must be a dict, got {type(arguments).__name__}")
    payload = _json({"name": name, "arguments": arguments}, f"tool {name!r} arguments")
    return f"<tool_call>\n{payload}\n</tool_call>"


def render_box(box: Sequence[float], fmt: str = "bbox_2d", label: str | None = None) -> str:
    """One 2D box in a model's output format. "ints" and "box_tokens" round to integers.

    "ints" (GRIT) has no place for a label: it is written as plain text before the box.

    >>> render_box([10, 20, 50.5, 60], label="cup")
    '{"bbox_2d": [10, 20, 50.5, 60], "label": "cup"}'
    >>> render_box([10, 20, 50, 60], "ints"), render_box([10, 20, 50, 60], "box_tokens", "cup")
    ('(10, 20, 50, 60)', '<|object_ref_start|>cup<|object_ref_end|><|box_start|>(10,20),(50,60)<|box_end|>')
    """
    v = _floats(box, 4, "box")
    if label is not None and not isinstance(label, str):
        raise ValueError(f"box label must be a string, got {type(label).__name__}")
    if fmt == "bbox_2d":
        label_part = "" if label is None else f', "label": {_json(label, "box label")}'
        return f'{{"bbox_2d": [{", ".join(map(_num, v))}]{label_part}}}'
    if fmt not in BOX_FORMATS:
        raise ValueError(f"unknown box format {fmt!r}; known: {', '.join(BOX_FORMATS)}")
    x1, y1, x2, y2 = (round(c) for c in v)
    if fmt == "ints":
        if min(x1, y1, x2, y2) < 0:
            raise ValueError(f"the 'ints' format holds no sign, got {box!r}")
        return f"{label + ' ' if label else ''}({x1}, {y1}, {x2}, {y2})"
    if label is not None and "<" in label:
        raise ValueError(f"a box_tokens label cannot contain '<': {label!r}")
    ref = "" if label is None else f"<|object_ref_start|>{label}<|object_ref_end|>"
    return f"{ref}<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>"


def render_box_3d(box: Sequence[float], decimals: int = 4) -> str:
    """GS-Reasoner's axis-aligned box, min corner then max corner, fixed decimals.

    >>> render_box_3d([0.1, 0.2, 0, 1, 1.5, 0.75])
    '<bbox>(0.1000, 0.2000, 0.0000, 1.0000, 1.5000, 0.7500)</bbox>'
    """
    v = _floats(box, 6, "3D box")
    if not isinstance(decimals, int) or not 0 <= decimals <= 12:
        raise ValueError(f"decimals must be an int in 0..12, got {decimals!r}")
    return "<bbox>(" + ", ".join(f"{c:.{decimals}f}" for c in v) + ")</bbox>"


def render_gcot_objects(objects: Iterable[tuple[str, Sequence[Sequence[float]]]], decimals: int = 4) -> str:
    """GS-Reasoner's grounded-CoT object list: ``name count <bbox>(..)</bbox>.., name2 ..``.

    >>> render_gcot_objects([("chair", [[0, 0, 0, 1, 1, 1]])], decimals=1)
    'chair 1 <bbox>(0.0, 0.0, 0.0, 1.0, 1.0, 1.0)</bbox>'
    """
    parts = []
    for item in objects:
        try:
            name, boxes = item
            boxes = list(boxes)
        except (TypeError, ValueError) as e:
            raise ValueError(f"each object must be (name, [box6, ...]), got {item!r}") from e
        if not isinstance(name, str) or not _WORD_RE.fullmatch(name):
            raise ValueError(f"object name {name!r} must be one \\w+ word, as GS-Reasoner reads it")
        if not boxes:
            raise ValueError(f"object {name!r} has no boxes")
        parts.append(f"{name} {len(boxes)} " + "".join(render_box_3d(b, decimals) for b in boxes))
    return ", ".join(parts)


def render_point(point: Sequence[float], label: str | None = None) -> str:
    """
    >>> render_point([120, 48.5], "send button")
    '{"point_2d": [120, 48.5], "label": "send button"}'
    """
    x, y = _floats(point, 2, "point")
    if label is not None and not isinstance(label, str):
        raise ValueError(f"point label must be a string, got {type(label).__name__}")
    label_part = "" if label is None else f', "label": {_json(label, "point label")}'
    return f'{{"point_2d": [{_num(x)}, {_num(y)}]{label_part}}}'


def render_action(action: dict, name: str = "mobile_use") -> str:
    """A GUI action as a function call (Qwen2.5-VL ``mobile_use``/``computer_use``, UI-Ins ``grounding``).

    >>> print(render_action({"action": "click", "coordinate": [540, 1200]}))
    <tool_call>
    {"name": "mobile_use", "arguments": {"action": "click", "coordinate": [540, 1200]}}
    </tool_call>
    """
    if not isinstance(action, dict) or not isinstance(action.get("action"), str):
        raise ValueError(f"a GUI action is a dict with a string 'action', got {action!r}")
    return render_tool_call(name, action)
