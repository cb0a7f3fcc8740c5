"""Converters: public dataset formats -> canonical rows, built like any builder (shards, resume, card).

One builder per format, registered as ``convert_<format>``; the source goes in ``--set src=PATH`` and
``--n`` caps how many source records are converted (``--n 0``: all of them)::

    mmreason build convert_coco --out data/coco_ground --n 0 --set src=annotations/instances_val2017.json \\
        --set images=val2017
    mmreason build convert_screenspot --out data/ss --n 0 --set src=screenspot_mobile.json --set images=imgs

Record j of the source (in the source's order, see each format's docstring) becomes sample j, so shards
and resumption work as for the generated builders. Formats (`FORMATS`): ``coco``, ``refcoco``, ``grit``,
``deepeyes``, ``charades`` (`converters_2d`), ``screenspot``, ``androidcontrol`` (`converters_gui`),
``scanrefer``, ``scanqa`` (`converters_3d`); what those modules share is in `converters_base`.

Media (``media`` option): ``link`` (default) puts a symlink to the source file under
``media/src/<hash>.<ext>``, ``copy`` copies it there, ``absolute`` references the source file where it is
(outside the dataset folder, so reading it back needs ``MMREASON_ALLOW_MEDIA_OUTSIDE_ROOT=1``).
A missing media file is a `MediaError` naming the file, the sample and the source record, unless
``on_missing=skip`` (then the record is skipped and counted in the card). Rows keep the source's own ids
and extra fields in ``meta``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable

from mmreason.data_builders import converters_2d, converters_3d, converters_gui
from mmreason.data_builders.common import DEFAULT_CHUNK_SIZE, SampleContext, build_dataset
from mmreason.data_builders.converters_base import Format, Skip

MEDIA_MODES = ("link", "copy", "absolute")
COMMON = {"media": "link", "on_missing": "error"}
PATH_OPTIONS = ("src", "images", "videos", "instances", "boxes", "clouds", "axis_align")  # made absolute


FORMATS: dict[str, Format] = {**converters_2d.FORMATS, **converters_gui.FORMATS, **converters_3d.FORMATS}


# ------------------------------------------------------------------------------------------ building
@functools.lru_cache(maxsize=4)
def _records(fmt: str, options_json: str) -> list:
    opts = json.loads(options_json)
    src = Path(opts["src"]).expanduser()
    if not src.exists():  # a usage error (ValueError): `mmreason build` prints it as one line, exit 2
        raise ValueError(f"convert_{fmt}: src={src} does not exist; give the source with --set src=PATH "
                         f"({FORMATS[fmt].summary})")
    return FORMATS[fmt].read(src, opts)


def make_sample(ctx: SampleContext) -> dict | None:
    fmt = ctx.options["format"]
    records = _records(fmt, json.dumps(ctx.options, sort_keys=True))
    try:
        row = FORMATS[fmt].row(records[ctx.index], ctx, ctx.options)
    except Skip as s:
        ctx.count(s.reason)
        return None
    row = {"source": fmt, **row, "id": ctx.id}
    row["meta"] = {"source_format": fmt, "source_index": ctx.index, **(row.get("meta") or {})}
    return row


def format_options(fmt: str) -> dict:
    """The options a converter of `fmt` takes, with their defaults (``src`` has none)."""
    return {"src": None, **COMMON, **FORMATS[fmt].defaults}


def convert(fmt: str, out_dir: str | Path, *, n: int = 0, seed: int = 0, shard: tuple[int, int] = (0, 1),
            workers: int = 1, chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True, **options) -> Path:
    """Convert the first `n` records (all when n <= 0) of ``options["src"]`` in format `fmt` into a canonical
    dataset at `out_dir`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown source format {fmt!r}; known: {', '.join(sorted(FORMATS))}")
    spec = FORMATS[fmt]
    opts = {**COMMON, **spec.defaults, **options, "format": fmt}
    unknown = sorted(set(opts) - set(format_options(fmt)) - {"format"})
    if unknown:
        raise ValueError(f"convert_{fmt}: unknown option(s) {unknown}; known: "
                         f"{', '.join(sorted(format_options(fmt)))}")
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
    build.options = format_options(fmt)  # what `mmreason build convert_<fmt> --help` lists
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
