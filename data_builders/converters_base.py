"""What every converter format module shares: the `Format` record, `Skip`, and the source helpers
(JSON reading with errors that name the file and line, required keys, numbers, COCO boxes, media placement).

`converters` dispatches to the format modules (`converters_2d`, `converters_gui`, `converters_3d`); they
import this module, never `converters`, so no module of the family imports another in a circle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mmreason.data_builders.common import SampleContext, phase
from mmreason.errors import MediaError, SchemaError


@dataclass(frozen=True)
class Format:
    """A source format: `read(src, opts)` lists its records in order; `row(record, ctx, opts)` converts one
    (id and source are filled in by the caller when absent); `defaults` are its options."""

    read: Callable[[Path, dict], list]
    row: Callable[[Any, SampleContext, dict], dict]
    defaults: dict
    summary: str
    preview: Callable | None = None  # the card's tile for one row (default: `card.default_preview`)


class Skip(Exception):
    """Raised by a row converter to drop a record (counted in the card under `reason`)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_json(path: Path) -> Any:
    """A JSON file, or a JSON-lines file (``.jsonl``) as a list; errors name the file and line."""
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix == ".jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise SchemaError(f"invalid JSON: {e.msg}", row=f"{path} line {n}") from None
        return out
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SchemaError(f"invalid JSON at line {e.lineno}: {e.msg}", row=str(path)) from None


def read_json_list(path: Path, what: str) -> list:
    """`read_json(path)`, which must hold a list; else a SchemaError "expected <what>" naming the file."""
    data = read_json(path)
    if not isinstance(data, list):
        raise SchemaError(f"expected {what}", row=str(path))
    return data


def need(record: Any, key: str, where: str) -> Any:
    """`record[key]`, or a SchemaError naming the record and the missing key."""
    if not isinstance(record, dict):
        raise SchemaError(f"expected a JSON object, got {type(record).__name__}", row=where)
    if record.get(key) is None:
        has = ", ".join(sorted(record)) or "nothing"
        raise SchemaError(f"missing {key!r} (has: {has})", row=where, field=key)
    return record[key]


def numbers(value: Any, n: int, where: str, field: str) -> list[float]:
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        out = []
    if len(out) != n:
        raise SchemaError(f"expected {n} numbers, got {value!r}", row=where, field=field)
    return out


def xywh_to_xyxy(box, where: str, field: str = "bbox") -> list[float]:
    """COCO's [x, y, width, height] -> [x1, y1, x2, y2].

    >>> xywh_to_xyxy([10, 20, 30, 40], "r")
    [10.0, 20.0, 40.0, 60.0]
    """
    x, y, w, h = numbers(box, 4, where, field)
    if w <= 0 or h <= 0:
        raise SchemaError(f"box {box!r} has no area (width and height must be > 0)", row=where, field=field)
    return [x, y, x + w, y + h]


def resolve(path: str | Path, base: Path | None) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or base is None else base / p


def media(ctx: SampleContext, source: Path, where: str) -> str:
    """The path a row uses for the source media file `source`, per the ``media`` option.

    ``link``/``copy`` place it at ``media/src/<h[:2]>/<h><ext>`` (h: hash of the absolute source path), so
    rows sharing an image share one entry.
    """
    source = Path(source).absolute()
    if not source.is_file():
        if ctx.options.get("on_missing") == "skip":
            raise Skip("missing_media")
        raise MediaError(source, f"file not found (source {where})", sample_id=ctx.id)
    mode = ctx.options.get("media", "link")
    if mode == "absolute":
        return str(source)
    h = hashlib.sha1(str(source).encode("utf-8")).hexdigest()[:20]
    rel = f"media/src/{h[:2]}/{h}{source.suffix.lower()}"
    target = ctx.root / rel
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        with phase("encode"):
            tmp.unlink(missing_ok=True)
            if mode == "copy":
                shutil.copyfile(source, tmp)
            else:
                os.symlink(source, tmp)
            os.replace(tmp, target)
    return rel


def image_part(ctx: SampleContext, opts: dict, src: Path, name: str, where: str, *,
               kind: str = "image") -> tuple[dict, tuple[int, int]]:
    """The `kind` ("image" or "screenshot") content part for the picture `name`, relative to the ``images``
    option or else to the source file's folder, and its (width, height)."""
    base = Path(opts["images"]) if opts.get("images") else src.parent
    path = resolve(name, base)
    return {"type": kind, kind: media(ctx, path, where)}, image_size(path, ctx)


def image_size(path: Path, ctx: SampleContext) -> tuple[int, int]:
    """(width, height) from the image header."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except OSError as e:
        raise MediaError(path, f"not a readable image: {e}", sample_id=ctx.id) from None
