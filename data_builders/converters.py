"""Converters: public dataset formats -> canonical rows, built like any builder (shards, resume, card).

One builder per format, registered as ``convert_<format>``; the source goes in ``--set src=PATH`` and
``--n`` caps how many source records are converted (``--n 0``: all of them)::

    mmreason build convert_coco --out data/coco_ground --n 0 --set src=annotations/instances_val2017.json \\
        --set images=val2017
    mmreason build convert_screenspot --out data/ss --n 0 --set src=screenspot_mobile.json --set images=imgs

Record j of the source (in the source's order, see each format's docstring) becomes sample j, so shards
and resumption work as for the generated builders. Formats (`FORMATS`): ``coco``, ``refcoco``, ``grit``,
``deepeyes``, ``charades`` (`converters_2d`), ``screenspot``, ``androidcontrol`` (`converters_gui`),
``scanrefer``, ``scanqa`` (`converters_3d`).

Media (``media`` option): ``link`` (default) puts a symlink to the source file under
``media/src/<hash>.<ext>``, ``copy`` copies it there, ``absolute`` references the source file where it is.
A missing media file is a `MediaError` naming the file, the sample and the source record, unless
``on_missing=skip`` (then the record is skipped and counted in the card). Rows keep the source's own ids
and extra fields in ``meta``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mmreason.data_builders.common import DEFAULT_CHUNK_SIZE, SampleContext, build_dataset, phase
from mmreason.errors import MediaError, SchemaError

MEDIA_MODES = ("link", "copy", "absolute")
COMMON = {"media": "link", "on_missing": "error"}
PATH_OPTIONS = ("src", "images", "videos", "instances", "boxes", "clouds", "axis_align")  # made absolute


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


def _formats() -> dict[str, Format]:
    from mmreason.data_builders import converters_2d, converters_3d, converters_gui

    return {**converters_2d.FORMATS, **converters_gui.FORMATS, **converters_3d.FORMATS}


# -------------------------------------------------------------------------------------- source helpers
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


# ------------------------------------------------------------------------------------------ building
@functools.lru_cache(maxsize=4)
def _records(fmt: str, options_json: str) -> list:
    opts = json.loads(options_json)
    src = Path(opts["src"]).expanduser()
    if not src.exists():
        raise FileNotFoundError(f"convert_{fmt}: source {src} not found")
    return _formats()[fmt].read(src, opts)


def make_sample(ctx: SampleContext) -> dict | None:
    fmt = ctx.options["format"]
    records = _records(fmt, json.dumps(ctx.options, sort_keys=True))
    try:
        row = _formats()[fmt].row(records[ctx.index], ctx, ctx.options)
    except Skip as s:
        ctx.count(s.reason)
        return None
    row = {"source": fmt, **row, "id": ctx.id}
    row["meta"] = {"source_format": fmt, "source_index": ctx.index, **(row.get("meta") or {})}
    return row


def convert(fmt: str, out_dir: str | Path, *, n: int = 0, seed: int = 0, shard: tuple[int, int] = (0, 1),
            workers: int = 1, chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True, **options) -> Path:
    """Convert the first `n` records (all when n <= 0) of ``options["src"]`` in format `fmt` into a canonical
    dataset at `out_dir`."""
    formats = _formats()
    if fmt not in formats:
        raise ValueError(f"unknown source format {fmt!r}; known: {', '.join(sorted(formats))}")
    spec = formats[fmt]
    opts = {**COMMON, **spec.defaults, **options, "format": fmt}
    unknown = sorted(set(opts) - set(COMMON) - set(spec.defaults) - {"src", "format"})
    if unknown:
        raise ValueError(f"convert_{fmt}: unknown option(s) {unknown}; known: src, "
                         f"{', '.join(sorted({**COMMON, **spec.defaults}))}")
    if not opts.get("src"):
        raise ValueError(f"convert_{fmt}: give the source with --set src=PATH ({spec.summary})")
    if opts["media"] not in MEDIA_MODES or opts["on_missing"] not in ("error", "skip"):
        raise ValueError(f"convert_{fmt}: media must be one of {MEDIA_MODES}, on_missing error or skip")
    for key, value in list(opts.items()):  # paths are made absolute, so workers and resumes agree
        if key in PATH_OPTIONS and isinstance(value, str) and value:
            opts[key] = str(Path(value).expanduser().absolute())
    total = len(_records(fmt, json.dumps(opts, sort_keys=True)))
    count = total if n <= 0 else min(int(n), total)
    return build_dataset(out_dir, name=f"convert_{fmt}", make_sample=make_sample, n=count, seed=seed,
                         shard=shard, options=opts, workers=workers, chunk_size=chunk_size, progress=progress,
                         preview=spec.preview)


_DOCS = {"coco": "COCO instances JSON -> grounding (or counting) rows",
         "refcoco": "RefCOCO refs + COCO instances -> referring-expression grounding rows",
         "grit": "GRIT JSONL -> VQA and counting rows with their evidence boxes",
         "deepeyes": "DeepEyes (verl) parquet -> canonical rows, pictures written out",
         "charades": "Charades-STA annotations -> temporal grounding rows",
         "screenspot": "ScreenSpot / ScreenSpot-Pro JSON -> GUI grounding rows",
         "androidcontrol": "AndroidControl episodes -> InfiGUI-R1 agent-step rows",
         "scanrefer": "ScanRefer JSON + per-scene boxes -> 3D grounding rows",
         "scanqa": "ScanQA JSON + per-scene boxes -> 3D question-answer rows"}


def _builder(fmt: str) -> Callable[..., Path]:
    def build(out_dir: str | Path, *, n: int = 0, seed: int = 0, shard: tuple[int, int] = (0, 1),
              workers: int = 1, chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True,
              **options) -> Path:
        return convert(fmt, out_dir, n=n, seed=seed, shard=shard, workers=workers, chunk_size=chunk_size,
                       progress=progress, **options)

    build.__name__ = build.__qualname__ = f"build_{fmt}"
    build.__doc__ = f"{_DOCS[fmt]} (``--set src=PATH``; ``--n 0`` converts everything)."
    return build


build_coco = _builder("coco")
build_refcoco = _builder("refcoco")
build_grit = _builder("grit")
build_deepeyes = _builder("deepeyes")
build_charades = _builder("charades")
build_screenspot = _builder("screenspot")
build_androidcontrol = _builder("androidcontrol")
build_scanrefer = _builder("scanrefer")
build_scanqa = _builder("scanqa")
