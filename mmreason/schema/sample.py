"""The canonical sample: one row format on disk and in memory, and its validation.

A row is a plain dict::

    {"id": "refcoco-17",
     "messages": [{"role": "user", "content": [{"type": "image", "image": "img/17.jpg"},
                                               {"type": "text", "text": "Where is the dog?"}]}],
     "answer": "[12.0, 30.0, 200.0, 310.0]", "task": "grounding", "source": "refcoco",
     "boxes": [{"label": "dog", "box": [12.0, 30.0, 200.0, 310.0], "image": 0}],
     "boxes_3d": [], "points": [], "time_spans": [], "rationale_regions": [], "gui": None, "meta": {}}

Media paths are relative to the dataset root (absolute once `resolve_media` ran). 2D ground truth is
in ORIGINAL pixels of the image part it names (`image` = index among image/screenshot parts, in order
of appearance); 3D boxes are axis-aligned metres; time spans are seconds. Column names are a contract:
rewards receive them by name (TRL convention).

The on-disk form (Parquet or JSONL), its writers and loaders and the TRL export live in
`mmreason.schema.io`; readers for other formats live in `mmreason.schema.readers`.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from mmreason.errors import MediaError, SchemaError

ROLES = ("system", "user", "assistant", "tool")
MEDIA_TYPES = ("image", "video", "audio", "point_cloud", "screenshot")
CONTENT_TYPES = ("text", *MEDIA_TYPES)
IMAGE_TYPES = ("image", "screenshot")  # the parts a GT `image` index counts
GT_FIELDS = ("boxes", "boxes_3d", "points", "time_spans", "rationale_regions", "gui")
FIELDS = ("id", "messages", "answer", "task", "source", *GT_FIELDS, "meta")
GUI_PLATFORMS = ("mobile", "desktop", "web")
GUI_KEYS = ("platform", "width", "height", "elements", "action", "goal", "instruction", "history")
ELEMENT_KEYS = ("box", "role", "text", "clickable")

# Per-part options and their types; the names follow qwen-vl-utils so parts pass through unchanged.
_IMAGE_OPTIONS = {"min_pixels": int, "max_pixels": int, "resized_width": int, "resized_height": int}
PART_OPTIONS: dict[str, dict[str, type]] = {
    "text": {},
    "image": _IMAGE_OPTIONS,
    "screenshot": _IMAGE_OPTIONS,
    "video": {"fps": float, "nframes": int, "min_frames": int, "max_frames": int, "video_start": float,
              "video_end": float, "min_pixels": int, "max_pixels": int},
    "audio": {},
    "point_cloud": {"num_points": int},
}
# Every part option of any kind, with its type (the on-disk schema gives each part all of them).
OPTION_TYPES: dict[str, type] = {k: t for opts in PART_OPTIONS.values() for k, t in opts.items()}
PART_KEYS = ("type", *CONTENT_TYPES, *OPTION_TYPES)  # every key a part has on disk

# Which geometry each GT list holds: (coordinate key, number of values, carries an `image` index).
_GT_SHAPES = {"boxes": ("box", 4, True), "rationale_regions": ("box", 4, True),
              "points": ("point", 2, True), "boxes_3d": ("box", 6, False)}


# ----------------------------------------------------------------------------------------- checks
class _Row:
    """Names the row in every error: its id once known, else the caller's index."""

    def __init__(self, who: object):
        self.who = who

    def fail(self, field: str, reason: str) -> SchemaError:
        return SchemaError(reason, row=self.who, field=field)

    def number(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self.fail(field, f"expected a number, got {value!r}")
        out = float(value)
        if not math.isfinite(out):
            raise self.fail(field, f"not finite: {value!r}")
        return out

    def integer(self, value: Any, field: str, *, minimum: int | None = None) -> int:
        ok = isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not ok:
            raise self.fail(field, f"expected an integer, got {value!r}")
        if minimum is not None and int(value) < minimum:
            raise self.fail(field, f"must be >= {minimum}, got {value!r}")
        return int(value)

    def numbers(self, value: Any, n: int, field: str) -> list[float]:
        if not isinstance(value, (list, tuple)) or len(value) != n:
            raise self.fail(field, f"expected {n} numbers, got {value!r}")
        return [self.number(v, f"{field}[{i}]") for i, v in enumerate(value)]

    def text(self, value: Any, field: str, *, optional: bool = True, nonempty: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or (nonempty and not value):
            raise self.fail(field, f"expected a {'non-empty ' if nonempty else ''}string, got {value!r}")
        return value

    def mapping(self, value: Any, field: str, allowed: Iterable[str]) -> Mapping:
        if not isinstance(value, Mapping):
            raise self.fail(field, f"expected a dict, got {type(value).__name__}")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise self.fail(field, f"unknown key(s) {unknown}; allowed: {list(allowed)}")
        return value

    def items(self, value: Any, field: str) -> list:
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            raise self.fail(field, f"expected a list, got {type(value).__name__}")
        return list(value)

    def json(self, value: Any, field: str) -> Any:
        """A JSON-normal copy (tuples become lists); rejects what JSON cannot hold, NaN included."""
        try:
            return json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise self.fail(field, f"not JSON-serialisable: {e}") from None


def _check_box(c: _Row, value: Any, n: int, field: str) -> list[float]:
    box = c.numbers(value, n, field)
    half = n // 2
    for axis in range(half):
        if not box[axis] < box[axis + half]:
            name = "xyz"[axis]
            raise c.fail(field, f"{name}2 must exceed {name}1, got {box}")
    return box


def _check_part(c: _Row, part: Any, field: str) -> dict:
    if isinstance(part, str):  # a bare string is a text part; friendlier than an error
        return {"type": "text", "text": part}
    if not isinstance(part, Mapping):
        raise c.fail(field, f"a content part must be a dict, got {type(part).__name__}")
    kind = part.get("type")
    if kind not in CONTENT_TYPES:
        raise c.fail(f"{field}.type", f"unknown content type {kind!r}; known: {list(CONTENT_TYPES)}")
    options = PART_OPTIONS[kind]
    # Keys set to None are ignored: a part read back from Arrow carries every part key.
    c.mapping({k: v for k, v in part.items() if v is not None}, field, ("type", kind, *options))
    value = part.get(kind)
    if isinstance(value, Path):
        value = str(value)
    if kind == "text":
        c.text(value, f"{field}.text", optional=False)
    else:
        c.text(value, f"{field}.{kind}", optional=False, nonempty=True)
    out = {"type": kind, kind: value}
    for key, typ in options.items():
        v = part.get(key)
        if v is None:
            continue
        f = f"{field}.{key}"
        if typ is int:
            out[key] = c.integer(v, f, minimum=1)
        else:
            out[key] = c.number(v, f)
            if out[key] < 0 or (key == "fps" and out[key] == 0):
                raise c.fail(f, f"must be {'positive' if key == 'fps' else '>= 0'}, got {v!r}")
    if "fps" in out and "nframes" in out:
        raise c.fail(field, "give either fps or nframes, not both (qwen-vl-utils rule)")
    for lo, hi in (("video_start", "video_end"), ("min_pixels", "max_pixels"), ("min_frames", "max_frames")):
        if lo in out and hi in out and out[lo] > out[hi]:
            raise c.fail(f"{field}.{lo}", f"{lo}={out[lo]} exceeds {hi}={out[hi]}")
    return out


def _check_messages(c: _Row, value: Any) -> list[dict]:
    if not isinstance(value, (list, tuple)) or not value:
        raise c.fail("messages", "expected a non-empty list of messages")
    out = []
    for i, msg in enumerate(value):
        f = f"messages[{i}]"
        c.mapping(msg, f, ("role", "content"))
        if msg.get("role") not in ROLES:
            raise c.fail(f"{f}.role", f"unknown role {msg.get('role')!r}; known: {list(ROLES)}")
        content = msg.get("content")
        if isinstance(content, str):
            content = [content]
        content = c.items(content, f"{f}.content")
        parts = [_check_part(c, p, f"{f}.content[{j}]") for j, p in enumerate(content)]
        out.append({"role": msg["role"], "content": parts})
    return out


def _check_geometry(c: _Row, name: str, value: Any, n_images: int) -> list[dict]:
    key, n, indexed = _GT_SHAPES[name]
    out = []
    for i, item in enumerate(c.items(value, name)):
        f = f"{name}[{i}]"
        c.mapping(item, f, ("label", key, "image") if indexed else ("label", key))
        entry = {"label": c.text(item.get("label"), f"{f}.label")}
        entry[key] = c.numbers(item.get(key), n, f"{f}.{key}") if key == "point" else \
            _check_box(c, item.get(key), n, f"{f}.{key}")
        if indexed:
            image = c.integer(item.get("image", 0), f"{f}.image", minimum=0)
            if image >= n_images:
                raise c.fail(f"{f}.image", f"image index {image} out of range: the sample has "
                                           f"{n_images} image/screenshot part(s)")
            entry["image"] = image
        out.append(entry)
    return out


def _check_spans(c: _Row, value: Any) -> list[dict]:
    out = []
    for i, item in enumerate(c.items(value, "time_spans")):
        f = f"time_spans[{i}]"
        c.mapping(item, f, ("label", "start", "end"))
        start, end = c.number(item.get("start"), f"{f}.start"), c.number(item.get("end"), f"{f}.end")
        if not 0 <= start <= end:
            raise c.fail(f, f"need 0 <= start <= end, got start={start}, end={end}")
        out.append({"label": c.text(item.get("label"), f"{f}.label"), "start": start, "end": end})
    return out


def _check_action(c: _Row, value: Any, field: str) -> dict:
    if not isinstance(value, Mapping):
        raise c.fail(field, f"expected an action dict, got {type(value).__name__}")
    c.text(value.get("action"), f"{field}.action", optional=False, nonempty=True)
    action = c.json(dict(value), field)
    if action.get("coordinate") is not None:
        action["coordinate"] = c.numbers(action["coordinate"], 2, f"{field}.coordinate")
    return action


def _check_gui(c: _Row, value: Any) -> dict | None:
    if value is None:
        return None
    c.mapping(value, "gui", GUI_KEYS)
    platform = value.get("platform")
    if platform is not None and platform not in GUI_PLATFORMS:
        raise c.fail("gui.platform", f"unknown platform {platform!r}; known: {list(GUI_PLATFORMS)}")
    elements = []
    for i, el in enumerate(c.items(value.get("elements"), "gui.elements")):
        f = f"gui.elements[{i}]"
        c.mapping(el, f, ELEMENT_KEYS)
        clickable = el.get("clickable")
        if clickable is not None and not isinstance(clickable, bool):
            raise c.fail(f"{f}.clickable", f"expected true/false, got {clickable!r}")
        elements.append({"box": _check_box(c, el.get("box"), 4, f"{f}.box"),
                         "role": c.text(el.get("role"), f"{f}.role"),
                         "text": c.text(el.get("text"), f"{f}.text"), "clickable": clickable})
    size = {k: None if value.get(k) is None else c.integer(value[k], f"gui.{k}", minimum=1)
            for k in ("width", "height")}
    action = value.get("action")
    history = c.items(value.get("history"), "gui.history")
    return {"platform": platform, **size, "elements": elements,
            "action": None if action is None else _check_action(c, action, "gui.action"),
            "goal": c.text(value.get("goal"), "gui.goal"),
            "instruction": c.text(value.get("instruction"), "gui.instruction"),
            "history": [_check_action(c, h, f"gui.history[{i}]") for i, h in enumerate(history)]}


def validate(row: Mapping, *, index: int | str | None = None, root: str | Path | None = None,
             check_media: bool = False) -> dict:
    """Check `row` against the canonical schema and return its normalised copy.

    Missing optional fields become [] / None / {}, coordinates become floats, content given as a string
    becomes one text part, part options set to None are dropped. Errors are `SchemaError`s naming the
    row (its id, else `index`) and the field path. With `check_media`, every media file must exist
    (relative paths are joined onto `root`), else `MediaError` names the file and the sample.

    >>> r = validate({"id": "a", "task": "vqa", "source": "demo",
    ...               "messages": [{"role": "user", "content": "hi"}], "answer": "yo"})
    >>> r["messages"], r["boxes"], r["gui"], r["meta"]
    ([{'role': 'user', 'content': [{'type': 'text', 'text': 'hi'}]}], [], None, {})
    >>> validate({"id": "b", "task": "t", "source": "s", "messages": [{"role": "user", "content": "x"}],
    ...           "boxes": [{"box": [5, 0, 1, 9]}]})
    Traceback (most recent call last):
    ...
    mmreason.errors.SchemaError: row 'b', field 'boxes[0].box': x2 must exceed x1, got [5.0, 0.0, 1.0, 9.0]
    """
    c = _Row(index)
    if not isinstance(row, Mapping):
        raise c.fail("", f"a row must be a dict, got {type(row).__name__}")
    rid = row.get("id")
    if isinstance(rid, numbers.Integral) and not isinstance(rid, bool):
        rid = str(rid)
    if not isinstance(rid, str) or not rid.strip():
        raise c.fail("id", f"missing or empty id (got {rid!r})")
    c.who = rid
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise c.fail(unknown[0], f"unknown field(s) {unknown}; put extras under 'meta'")
    messages = _check_messages(c, row.get("messages"))
    n_images = sum(p["type"] in IMAGE_TYPES for m in messages for p in m["content"])
    out = {"id": rid, "messages": messages, "answer": c.text(row.get("answer"), "answer"),
           "task": c.text(row.get("task"), "task", optional=False, nonempty=True),
           "source": c.text(row.get("source"), "source", optional=False, nonempty=True)}
    for name in ("boxes", "boxes_3d", "points"):
        out[name] = _check_geometry(c, name, row.get(name), n_images)
    out["time_spans"] = _check_spans(c, row.get("time_spans"))
    out["rationale_regions"] = _check_geometry(c, "rationale_regions", row.get("rationale_regions"), n_images)
    out["gui"] = _check_gui(c, row.get("gui"))
    meta = row.get("meta")
    if meta is not None and not isinstance(meta, Mapping):
        raise c.fail("meta", f"expected a dict, got {type(meta).__name__}")
    out["meta"] = c.json(dict(meta or {}), "meta")
    if check_media:
        for kind, path in media_parts(out):
            full = Path(path) if root is None else Path(root) / path
            if not full.exists():
                raise MediaError(full, f"{kind} file not found", sample_id=rid)
    return out


# ---------------------------------------------------------------------------------------- helpers
def media_parts(row: Mapping) -> list[tuple[str, str]]:
    """(type, path) of every media part, in order of appearance.

    >>> media_parts({"messages": [{"role": "user", "content": [{"type": "video", "video": "a.mp4"},
    ...     {"type": "text", "text": "?"}, {"type": "image", "image": "b.png"}]}]})
    [('video', 'a.mp4'), ('image', 'b.png')]
    """
    parts = (p for m in row["messages"] for p in m["content"])
    return [(p["type"], p[p["type"]]) for p in parts if p["type"] in MEDIA_TYPES]


def images_of(row: Mapping) -> list[str]:
    """Paths of the image and screenshot parts, in order: the list GT `image` indices point into."""
    return [path for kind, path in media_parts(row) if kind in IMAGE_TYPES]


def _map_media(row: Mapping, fn) -> dict:
    messages = [{**m, "content": [{**p, p["type"]: fn(p[p["type"]])} if p["type"] in MEDIA_TYPES else p
                                  for p in m["content"]]} for m in row["messages"]]
    return {**row, "messages": messages}


def resolve_media(row: Mapping, root: str | Path) -> dict:
    """A copy of `row` with every media path absolute (relative ones joined onto `root`)."""
    base = Path(root).absolute()
    return _map_media(row, lambda p: p if os.path.isabs(p) else os.path.normpath(base / p))


def relativize_media(row: Mapping, root: str | Path) -> dict:
    """A copy of `row` with absolute media paths made relative to `root`; a file outside it is an error."""
    base = Path(root).absolute()

    def rel(p: str) -> str:
        if not os.path.isabs(p):
            return p
        try:
            return Path(os.path.normpath(p)).relative_to(base).as_posix()
        except ValueError:
            raise MediaError(p, f"outside the dataset root {base}", sample_id=row.get("id")) from None

    return _map_media(row, rel)


def text_of(message: Mapping) -> str:
    """The text parts of a message, concatenated (chat templates join parts without separators).

    >>> text_of({"role": "user", "content": [{"type": "image", "image": "a.png"},
    ...                                      {"type": "text", "text": "hi"}]})
    'hi'
    """
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(p.get("text") or "" for p in content if p.get("type") == "text")


EXTENSION_TYPES = {
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"), "image"),
    **dict.fromkeys((".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".flv"), "video"),
    **dict.fromkeys((".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus"), "audio"),
    **dict.fromkeys((".ply", ".pcd", ".npy", ".npz"), "point_cloud"),
}


def _media_part(item: Any) -> dict:
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, tuple):
        kind, path = item
        return {"type": kind, kind: str(path)}
    kind = EXTENSION_TYPES.get(Path(item).suffix.lower())
    if kind is None:
        raise SchemaError(f"cannot tell the media type of {str(item)!r} from its extension; "
                          "pass a (type, path) tuple", field="content")
    return {"type": kind, kind: str(item)}


def user_message(text: str, *media: Any) -> dict:
    """A user turn: media first (Qwen-VL convention), then the text. Media: a path (type from its
    extension), a (type, path) tuple, or a part dict.

    >>> [p["type"] for p in user_message("What is it?", "a.jpg", ("screenshot", "s.png"))["content"]]
    ['image', 'screenshot', 'text']
    """
    return {"role": "user", "content": [*(_media_part(m) for m in media), {"type": "text", "text": text}]}


def assistant_message(text: str) -> dict:
    """An assistant turn of plain text."""
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def new_row(id: str, messages: list[dict], *, answer: str | None = None, task: str = "vqa",
            source: str = "custom", **gt: Any) -> dict:
    """Build and validate a canonical row; `gt` takes any of GT_FIELDS and `meta`.

    >>> new_row("q1", [user_message("2+2?")], answer="4")["answer"]
    '4'
    """
    unknown = sorted(set(gt) - set(GT_FIELDS) - {"meta"})
    if unknown:
        raise SchemaError(f"unknown ground-truth field(s) {unknown}; known: {list(GT_FIELDS)} and 'meta'",
                          row=id, field=unknown[0])
    return validate({"id": id, "messages": messages, "answer": answer, "task": task, "source": source, **gt})

