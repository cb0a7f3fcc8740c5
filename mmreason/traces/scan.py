"""Find the coordinates a reasoning trace mentions: 2D boxes, 3D boxes, points, Video-CoM steps.

The scanners behind `mmreason.traces.parsing.parse`; its `Trace` holds the records defined here. Each
looser format skips the spans a stricter one already read (keyed JSON before GRIT's bare integers,
boxes before bare ``[x, y]`` pairs), so one number is never reported twice. Every scanner appends
``(position, message)`` issues instead of raising, and stays linear on junk input.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from dataclasses import dataclass

__all__ = [
    "NUM", "POINT_KEYS", "Box3DMention", "BoxMention", "Manipulation", "PointMention", "Spans", "find_boxes",
    "find_boxes_3d", "find_points", "scan_mentions",
]

POINT_KEYS = (
    "point_2d", "point", "position", "coordinate", "coordinate2", "start_coordinate", "end_coordinate",
)
NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?i:nan|inf(?:inity)?)"
_NUM_RE = re.compile(rf"\s*({NUM})\s*")
_INT_RE = re.compile(r"[-+]?\d{1,18}")
_LIST_RE = re.compile(r"\[\s*\[?([^\[\]]*)\]\]?")
_KEYED_BOX_RE = re.compile(r"""["'](bbox_2d|bbox)["']\s*:\s*(?=\[)""")
_KEYED_POINT_RE = re.compile(r"""["'](""" + "|".join(POINT_KEYS) + r""")["']\s*:\s*(?=\[)""")
# GRIT's box regex; the look-arounds keep the fraction of a decimal from starting or ending a box
_INTS_RE = re.compile(r"(?<!\.)\b\d+,\s*\d+,\s*\d+,\s*\d+\b(?!\.\d)")
_BOX_TOKEN_RE = re.compile(
    r"<\|object_ref_start\|>([^<]*)<\|object_ref_end\|>|<\|box_start\|>([^<]*)<\|box_end\|>"
)
_BOX_BODY_RE = re.compile(rf"\s*\(\s*({NUM})\s*,\s*({NUM})\s*\)\s*,\s*\(\s*({NUM})\s*,\s*({NUM})\s*\)\s*")
_PAIR_RE = re.compile(rf"\[\s*({NUM})\s*,\s*({NUM})\s*\]")
_BBOX3D_RE = re.compile(r"<bbox>\s*\(([^()<>]*)\)\s*</bbox>")
# GS-Reasoner's `name count` before a run of <bbox>; matched on the reversed text so it stays linear
_NAME_COUNT_REV_RE = re.compile(r"\s*(\d{1,9})\s+(\w+)")
_LABEL_KEY_RE = re.compile(r"""["']label["']\s*:\s*""")
_LABEL_VALUE_RE = re.compile(r""""((?:[^"\\\n]|\\.){0,500})"|'([^'\n]{0,500})'""")
_MANIP_KEY_RE = re.compile(r"\b(FIND_SEGMENT|FIND_FRAME|SPATIAL_ZOOM)\s*\(")
_MANIP_RE = re.compile(r"\((.{0,500}?)\)\s*=\s*\[([^\[\]\n]*)\]")


# --------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class BoxMention:
    box: tuple[float, float, float, float]
    label: str | None
    fmt: str  # "bbox_2d" | "ints" | "box_tokens"
    start: int
    end: int


@dataclass(frozen=True)
class Box3DMention:
    box: tuple[float, float, float, float, float, float]
    name: str | None
    count: int | None
    start: int
    end: int


@dataclass(frozen=True)
class PointMention:
    point: tuple[float, float]
    label: str | None
    fmt: str  # the JSON key it came from ("point_2d", "coordinate", ...) or "pair" for a bare [x, y]
    start: int
    end: int


@dataclass(frozen=True)
class Manipulation:
    """A Video-CoM step: kind is FIND_SEGMENT, FIND_FRAME or SPATIAL_ZOOM."""

    kind: str
    query: str
    values: tuple[float, ...]
    start: int
    end: int


# --------------------------------------------------------------------------------------- helpers
def _number(token: str) -> float | int:
    return int(token) if _INT_RE.fullmatch(token) else float(token)


def _numbers(body: str) -> list | None:
    """'1, 2.5, 3' -> [1, 2.5, 3]; None if any item is not a number."""
    if not body.strip():
        return []
    out = []
    for item in body.split(","):
        m = _NUM_RE.fullmatch(item)
        if m is None:
            return None
        out.append(_number(m.group(1)))
    return out


def _finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


class Spans:
    """Sorted, merged [start, end) spans with an overlap test in O(log n) (the scanners' and the block
    parser's record of text already read)."""

    def __init__(self, spans):
        merged: list[list[int]] = []
        for s, e in sorted(spans):
            if merged and s < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self.starts, end) - 1
        return i >= 0 and self.ends[i] > start


def _label_near(text: str, key_start: int, value_end: int) -> str | None:
    """The "label" of the JSON object holding a key: its key is looked for between the object's
    braces (a bounded window, so dense JSON stays linear); its value may run past them."""
    lo = text.rfind("{", max(0, key_start - 600), key_start)
    lo = key_start if lo == -1 else lo
    closed = text.rfind("}", lo, key_start)
    lo = closed + 1 if closed != -1 else lo
    hi = text.find("}", value_end, value_end + 600)
    hi = min(len(text), value_end + 600) if hi == -1 else hi
    nxt = text.find("{", value_end, hi)
    key = _LABEL_KEY_RE.search(text, lo, nxt if nxt != -1 else hi)
    m = key and _LABEL_VALUE_RE.match(text, key.end())
    if not m:
        return None
    if m.group(2) is not None:
        return m.group(2)
    try:
        return json.loads('"' + m.group(1) + '"')
    except ValueError:
        return m.group(1)


def _keyed(text: str, key_re: re.Pattern, size: int, what: str, issues: list) -> tuple[list, list]:
    """(key, values, label, start, end) for every `"key": [n, ...]` with `size` finite numbers, and
    the spans of all such lists, good or bad, so the looser formats do not re-read them."""
    found, spans = [], []
    for k in key_re.finditer(text):
        m = _LIST_RE.match(text, k.end())
        if m is None:
            continue
        spans.append((k.start(), m.end()))
        values = _numbers(m.group(1))
        if values is None:
            issues.append((k.start(), f"{what} at {k.start()}: non-numeric values"))
        elif len(values) != size:
            issues.append((k.start(), f"{what} at {k.start()}: {len(values)} values, expected {size}"))
        elif not _finite(values):
            issues.append((k.start(), f"{what} at {k.start()}: non-finite number, dropped"))
        else:
            label = _label_near(text, k.start(), m.end())
            found.append((k.group(1), tuple(values), label, k.start(), m.end()))
    return found, spans


# -------------------------------------------------------------------------------------- scanners
def _scan_boxes_3d(text: str, issues: list) -> tuple[list[Box3DMention], list]:
    found, spans = [], []
    run_end, name, count = -1, None, None
    for m in _BBOX3D_RE.finditer(text):
        spans.append((m.start(), m.end()))
        if run_end < 0 or text[run_end : m.start()].strip():  # a new `name count <bbox>..` group
            nc = _NAME_COUNT_REV_RE.match(text[max(0, m.start() - 200) : m.start()][::-1])
            name, count = (nc.group(2)[::-1], int(nc.group(1)[::-1])) if nc else (None, None)
        run_end = m.end()
        values = _numbers(m.group(1))
        if values is None or len(values) != 6:
            issues.append((m.start(), f"<bbox> at {m.start()}: expected 6 numbers"))
        elif not _finite(values):
            issues.append((m.start(), f"<bbox> at {m.start()}: non-finite number, dropped"))
        else:
            found.append(Box3DMention(tuple(float(v) for v in values), name, count, m.start(), m.end()))
    bad = text.count("<bbox>") - len(spans)
    if bad > 0:
        issues.append((len(text), f"{bad} <bbox> not of the form <bbox>(x1, y1, z1, x2, y2, z2)</bbox>"))
    return found, spans


def _scan_boxes(text: str, spans_3d: list, issues: list) -> tuple[list[BoxMention], list]:
    keyed, spans = _keyed(text, _KEYED_BOX_RE, 4, "bbox_2d", issues)
    found = [BoxMention(tuple(map(float, v)), label, "bbox_2d", s, e) for _, v, label, s, e in keyed]
    label, label_end, n_tokens = None, -1, 0
    for m in _BOX_TOKEN_RE.finditer(text):
        n_tokens += m.group(2) is not None
        if m.group(1) is not None:
            label, label_end = m.group(1).strip(), m.end()
            continue
        body = _BOX_BODY_RE.fullmatch(m.group(2))
        if body is None:
            issues.append((m.start(), f"<|box_start|> at {m.start()}: expected (x1,y1),(x2,y2)"))
            continue
        values = tuple(float(body.group(i)) for i in range(1, 5))
        own = label if label_end >= 0 and not text[label_end : m.start()].strip() else None
        label, label_end = own, (m.end() if own is not None else -1)  # one ref labels a run of boxes
        if _finite(values):
            found.append(BoxMention(values, own, "box_tokens", m.start(), m.end()))
        else:
            issues.append((m.start(), f"<|box_start|> at {m.start()}: non-finite number, dropped"))
    if text.count("<|box_start|>") > n_tokens:
        issues.append((len(text), "<|box_start|> without <|box_end|>"))
    taken = Spans(spans + spans_3d)
    for m in _INTS_RE.finditer(text):
        if not taken.overlaps(m.start(), m.end()):
            values = tuple(float(v) for v in m.group(0).split(","))
            if _finite(values):
                found.append(BoxMention(values, None, "ints", m.start(), m.end()))
            else:
                issues.append((m.start(), f"box at {m.start()}: non-finite number, dropped"))
    found.sort(key=lambda b: b.start)
    for b in found:  # kept for the rewards to score, but a cut-off or swapped box must not pass unnoticed
        _flag_inverted(b.box, b.start, "box", issues)
    return found, spans + spans_3d


def _flag_inverted(box: tuple, start: int, what: str, issues: list) -> None:
    """An issue when a 2D box's second corner comes before its first on an axis (x2 < x1 or y2 < y1)."""
    axes = [a for a, lo, hi in zip("xy", box[:2], box[2:]) if hi < lo]
    if axes:
        which = ", ".join(f"{a}2 < {a}1" for a in axes)
        issues.append((start, f"{what} at {start}: inverted ({which}): corners swapped or the box cut off"))


def _scan_points(text: str, taken_spans: list, issues: list) -> list[PointMention]:
    keyed, spans = _keyed(text, _KEYED_POINT_RE, 2, "point", issues)
    found = [PointMention(tuple(map(float, v)), label, key, s, e) for key, v, label, s, e in keyed]
    taken = Spans(spans + taken_spans)
    for m in _PAIR_RE.finditer(text):
        if taken.overlaps(m.start(), m.end()):
            continue
        values = (float(m.group(1)), float(m.group(2)))
        if _finite(values):
            found.append(PointMention(values, None, "pair", m.start(), m.end()))
        else:
            issues.append((m.start(), f"[x, y] at {m.start()}: non-finite number, dropped"))
    found.sort(key=lambda p: p.start)
    return found


def _scan_manipulations(text: str, issues: list) -> list[Manipulation]:
    found = []
    for k in _MANIP_KEY_RE.finditer(text):
        kind = k.group(1)
        m = _MANIP_RE.match(text, k.end() - 1)
        values = _numbers(m.group(2)) if m else None
        if values is None:
            issues.append((k.start(), f"{kind} at {k.start()}: expected {kind}(query) = [numbers]"))
        elif not _finite(values):
            issues.append((k.start(), f"{kind} at {k.start()}: non-finite number, dropped"))
        else:
            if kind == "SPATIAL_ZOOM" and len(values) != 4:
                issues.append((k.start(), f"SPATIAL_ZOOM at {k.start()}: {len(values)} values, expected 4"))
            found.append(Manipulation(kind, m.group(1).strip(), tuple(values), k.start(), m.end()))
    return found


def scan_mentions(text: str, issues: list) -> tuple[list, list, list, list]:
    """Boxes, 3D boxes, points and Video-CoM steps; each looser format skips what a stricter one read.
    Problems are appended to `issues` as ``(position, message)``."""
    boxes_3d, spans_3d = _scan_boxes_3d(text, issues)
    boxes, box_spans = _scan_boxes(text, spans_3d, issues)
    manipulations = _scan_manipulations(text, issues)
    taken = box_spans + [(m.start, m.end) for m in manipulations]  # segment ids are not points
    return boxes, boxes_3d, _scan_points(text, taken, issues), manipulations


# ------------------------------------------------------------------------------------ public API
def find_boxes(text: str) -> list[BoxMention]:
    return scan_mentions(text, [])[0] if isinstance(text, str) else []


def find_boxes_3d(text: str) -> list[Box3DMention]:
    return _scan_boxes_3d(text, [])[0] if isinstance(text, str) else []


def find_points(text: str) -> list[PointMention]:
    return scan_mentions(text, [])[2] if isinstance(text, str) else []

