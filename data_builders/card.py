"""The dataset card: mergeable per-chunk statistics, README.md, and preview.png with the ground truth drawn.

Statistics are computed once per chunk (so a million-row build never re-reads its rows) as counters
and running summaries that add up across chunks, whichever shard wrote them.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
from PIL import Image, ImageDraw

from mmreason import schema

AREA_EDGES = (0.0, 0.0005, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # box area / image area
TOP_ANSWERS = 200
TILE = 320
CAPTION_H = 64


# -------------------------------------------------------------------------------------- statistics
def _summary(values: Iterable[float]) -> dict:
    v = [float(x) for x in values]
    return {"n": len(v), "sum": sum(v), "min": min(v) if v else None, "max": max(v) if v else None}


def _merge_summary(a: dict, b: dict) -> dict:
    mins = [x for x in (a.get("min"), b.get("min")) if x is not None]
    maxs = [x for x in (a.get("max"), b.get("max")) if x is not None]
    return {"n": a.get("n", 0) + b.get("n", 0), "sum": a.get("sum", 0.0) + b.get("sum", 0.0),
            "min": min(mins) if mins else None, "max": max(maxs) if maxs else None}


def _image_sizes(row: Mapping, root: Path, cache: dict) -> list[tuple[int, int] | None]:
    sizes = []
    for path in schema.images_of(row):
        if path not in cache:
            try:
                with Image.open(root / path) as im:  # reads the header only
                    cache[path] = im.size
            except OSError:
                cache[path] = None
        sizes.append(cache[path])
    return sizes


_PER_ROW = {"boxes": "boxes_per_row", "rationale_regions": "regions_per_row", "time_spans": "spans_per_row",
            "boxes_3d": "boxes_3d_per_row", "points": "points_per_row"}


def chunk_stats(rows: list[Mapping], root: str | Path) -> dict:
    """Counts and summaries for one chunk of canonical rows; combine chunks with `merge_stats`."""
    root = Path(root)
    c = {k: Counter() for k in ("task", "qtype", "answers", "boxes_per_row", "regions_per_row", "spans_per_row",
                                "boxes_3d_per_row", "points_per_row", "media", "assistant_turns", "area_frac")}
    sizes_cache: dict = {}
    box_w, box_h, span_len, ans_len = [], [], [], []
    for row in rows:
        meta = row.get("meta") or {}
        c["task"][row["task"]] += 1
        c["qtype"][str(meta.get("qtype", row["task"]))] += 1
        if row.get("answer") is None:
            c["answers"]["<none>"] += 1
        else:
            c["answers"][row["answer"][:40]] += 1
            ans_len.append(len(row["answer"]))
        for key in ("boxes", "rationale_regions", "time_spans", "boxes_3d", "points"):
            c[_PER_ROW[key]][str(len(row.get(key) or []))] += 1
        for kind, _ in schema.media_parts(row):
            c["media"][kind] += 1
        c["assistant_turns"][str(sum(m["role"] == "assistant" for m in row["messages"]))] += 1
        sizes = _image_sizes(row, root, sizes_cache) if row.get("boxes") else []
        for b in row.get("boxes") or []:
            x1, y1, x2, y2 = b["box"]
            box_w.append(x2 - x1)
            box_h.append(y2 - y1)
            size = sizes[b["image"]] if b["image"] < len(sizes) else None
            if size:
                frac = (x2 - x1) * (y2 - y1) / (size[0] * size[1])
                edge = next((i for i in range(1, len(AREA_EDGES)) if frac <= AREA_EDGES[i]), len(AREA_EDGES) - 1)
                c["area_frac"][f"{AREA_EDGES[edge - 1]:g}-{AREA_EDGES[edge]:g}"] += 1
        span_len += [s["end"] - s["start"] for s in row.get("time_spans") or []]
    out = {k: dict(v) for k, v in c.items()}
    out["answers"] = dict(Counter(out["answers"]).most_common(TOP_ANSWERS))
    out.update(rows=len(rows), box_w=_summary(box_w), box_h=_summary(box_h), span_len=_summary(span_len),
               answer_len=_summary(ans_len))
    return out


def merge_stats(stats: Iterable[Mapping]) -> dict:
    out: dict = {}
    for st in stats:
        for k, v in st.items():
            if isinstance(v, dict) and "sum" in v and "n" in v:
                out[k] = _merge_summary(out.get(k, {}), v)
            elif isinstance(v, dict):
                out[k] = Counter(out.get(k, {})) + Counter(v)
            elif isinstance(v, (int, float)):
                out[k] = out.get(k, 0) + v
    return out


# ---------------------------------------------------------------------------------------- previews
def _fit(image: Image.Image, size: int) -> tuple[Image.Image, float]:
    scale = min(size / image.width, size / image.height, 1.0) if image.width and image.height else 1.0
    out = image.convert("RGB").resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    return out, scale


def draw_boxes(image: Image.Image, row: Mapping, image_index: int = 0, size: int = TILE) -> Image.Image:
    """`image` shrunk to `size`, with that image's GT boxes (green), rationale regions (orange), points (red)."""
    out, s = _fit(image, size)
    d = ImageDraw.Draw(out)
    for key, color, width in (("rationale_regions", (255, 140, 0), 1), ("boxes", (0, 200, 0), 2)):
        for b in row.get(key) or []:
            if b.get("image", 0) == image_index:
                x1, y1, x2, y2 = (v * s for v in b["box"])
                d.rectangle((x1 - width, y1 - width, x2 + width, y2 + width), outline=color, width=width)
    for p in row.get("points") or []:
        if p.get("image", 0) == image_index:
            x, y = (v * s for v in p["point"])
            d.ellipse((x - 4, y - 4, x + 4, y + 4), outline=(255, 0, 0), width=2)
    return out


def timeline(duration: float, spans: Iterable[Mapping], width: int = TILE, height: int = 24) -> Image.Image:
    """A bar for [0, duration] seconds with each GT time span shaded."""
    im = Image.new("RGB", (width, height), (235, 235, 235))
    d = ImageDraw.Draw(im)
    for s in spans:
        x1, x2 = (int(width * min(max(t / max(duration, 1e-6), 0), 1)) for t in (s["start"], s["end"]))
        d.rectangle((x1, 2, max(x2, x1 + 1), height - 3), fill=(0, 170, 0))
    return im


def video_frame(path: str | Path, t: float) -> Image.Image | None:
    """The decoded frame shown at time `t` (seconds), via PyAV; None if the file cannot be read."""
    import av

    try:
        with av.open(str(path)) as c:
            frame = None
            for f in c.decode(video=0):
                if frame is not None and f.time is not None and f.time > t + 1e-6:
                    break
                frame = f
            return frame.to_image() if frame is not None else None
    except (av.error.FFmpegError, OSError):
        return None


def waveform(path: str | Path, width: int = TILE, height: int = 120) -> tuple[Image.Image, float] | None:
    """A min/max envelope of an audio file and its duration in seconds."""
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError):
        return None
    x = data.mean(axis=1)
    im = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(im)
    for i, seg in enumerate(np.array_split(x, width)):
        if seg.size:
            lo, hi = float(seg.min()), float(seg.max())
            d.line((i, height / 2 - hi * height / 2, i, height / 2 - lo * height / 2), fill=(40, 40, 160))
    return im, len(x) / sr


def default_preview(row: Mapping, root: str | Path) -> Image.Image:
    """A tile showing one sample's ground truth: the first image with boxes, a video frame, or a waveform."""
    root = Path(root)
    images = schema.images_of(row)
    media = schema.media_parts(row)
    spans = row.get("time_spans") or []
    tile = None
    if images:
        try:
            with Image.open(root / images[0]) as im:
                tile = draw_boxes(im, row, 0)
        except OSError:
            tile = None
    elif media and media[0][0] == "video":
        t = spans[0]["start"] if spans else 0.0
        frame = video_frame(root / media[0][1], t)
        if frame is not None:
            tile, _ = _fit(frame, TILE)
    elif media and media[0][0] == "audio":
        wf = waveform(root / media[0][1])
        if wf is not None:
            img, duration = wf
            tile = Image.new("RGB", (TILE, img.height + 24), (255, 255, 255))
            tile.paste(img, (0, 0))
            tile.paste(timeline(duration, spans), (0, img.height))
    return tile if tile is not None else Image.new("RGB", (TILE, TILE // 2), (250, 250, 250))


def question_of(row: Mapping) -> str:
    users = [m for m in row["messages"] if m["role"] == "user"]
    return schema.text_of(users[0]) if users else ""


def preview_grid(rows: list[Mapping], root: str | Path, preview: Callable | None = None,
                 cols: int = 4) -> Image.Image:
    """Tiles of a few samples with their question and answer underneath."""
    tiles = []
    from mmreason.data_builders.draw import font

    for row in rows:
        try:
            t = (preview or default_preview)(row, root)
        except Exception as exc:  # noqa: BLE001  (a broken tile must not fail a finished build)
            t = Image.new("RGB", (TILE, TILE // 2), (250, 235, 235))
            ImageDraw.Draw(t).text((4, 4), f"no preview: {type(exc).__name__}", fill=(120, 0, 0))
        canvas = Image.new("RGB", (TILE, TILE + CAPTION_H), (255, 255, 255))
        canvas.paste(t.crop((0, 0, min(t.width, TILE), min(t.height, TILE))), (0, 0))
        caption = textwrap.shorten(question_of(row), 110) + f"  -> {textwrap.shorten(str(row.get('answer')), 40)}"
        ImageDraw.Draw(canvas).multiline_text((4, TILE + 4), "\n".join(textwrap.wrap(caption, 48)[:4]),
                                              fill=(0, 0, 0), font=font(12), spacing=2)
        tiles.append(canvas)
    cols = max(1, min(cols, len(tiles)))
    nrows = max(1, -(-len(tiles) // cols))
    grid = Image.new("RGB", (cols * (TILE + 8), nrows * (TILE + CAPTION_H + 8)), (200, 200, 200))
    for i, t in enumerate(tiles):
        grid.paste(t, ((i % cols) * (TILE + 8) + 4, (i // cols) * (TILE + CAPTION_H + 8) + 4))
    return grid


def _pick_preview_rows(root: Path, files: list[str], k: int = 8) -> list[dict]:
    """Up to `k` rows from the first chunk files, one per question type first, for a varied preview."""
    picked, seen, rest = [], set(), []
    import pyarrow.parquet as pq

    for f in files[:4]:
        for row in map(schema.decode_row, pq.read_table(root / f).to_pylist()):
            qt = (row.get("meta") or {}).get("qtype", row["task"])
            (rest if qt in seen else picked).append(row)
            seen.add(qt)
            if len(picked) >= k:
                return picked
    return (picked + rest)[:k]


# -------------------------------------------------------------------------------------------- card
def _table(counter: Mapping, head: str, limit: int = 30) -> str:
    total = sum(counter.values()) or 1
    items = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]
    lines = [f"| {head} | count | share |", "|---|---:|---:|"]
    lines += [f"| {k} | {v} | {100 * v / total:.1f}% |" for k, v in items]
    return "\n".join(lines)


def _num_table(counter: Mapping, head: str) -> str:
    items = sorted(counter.items(), key=lambda kv: float(kv[0]) if kv[0].replace(".", "").isdigit() else 0)
    return "\n".join([f"| {head} | rows |", "|---:|---:|"] + [f"| {k} | {v} |" for k, v in items])


def _fmt_summary(s: Mapping, unit: str = "") -> str:
    if not s or not s.get("n"):
        return "none"
    return f"n={s['n']}, mean {s['sum'] / s['n']:.2f}{unit}, min {s['min']:.2f}{unit}, max {s['max']:.2f}{unit}"


def write_card(root: Path, manifest: Mapping, entries: list[Mapping], *, preview: Callable | None = None) -> None:
    """README.md (front matter lets `datasets.load_dataset(root)` find the Parquet files) and preview.png."""
    st = merge_stats(en["stats"] for en in entries)
    times = Counter()
    for en in entries:
        times.update(en.get("timings", {}))
    has_preview = bool(manifest["files"])
    if has_preview:
        grid = preview_grid(_pick_preview_rows(root, manifest["files"]), root, preview)
        tmp = root / f".preview.tmp{os.getpid()}.png"
        grid.save(tmp)
        os.replace(tmp, root / "preview.png")
    status = "complete" if manifest["complete"] else \
        f"partial: {manifest['chunks_done']} of {manifest['chunks_total']} chunks"
    missing = manifest["missing"][:10]
    total = times.get("total", 0.0) or 1e-9
    phases = [(p, times.get(p, 0.0)) for p in ("render", "encode", "write")]
    phases.append(("other", max(0.0, total - sum(t for _, t in phases))))
    counters = st.get("counters", {})
    more = " ..." if len(manifest["missing"]) > 10 else ""
    parts = [
        "---", "configs:", "- config_name: default", "  data_files:", "  - split: train",
        '    path: "part-*.parquet"', "---", "",
        f"# {manifest['builder']}: a synthetic grounded-reasoning dataset", "",
        f"Built with `mmreason build {manifest['builder']} --n {manifest['n']} --seed {manifest['seed']}`. "
        f"Status: **{status}**" + (f" (missing {', '.join(missing)}{more})" if missing else "") + ".", "",
        f"Rows: **{manifest['rows']}** (skipped by the builder: {manifest['skipped']}); "
        f"media parts: {', '.join(f'{k} {v}' for k, v in sorted(st.get('media', {}).items())) or 'none'}.", "",
        "![preview: a few samples with their ground truth drawn](preview.png)" if has_preview else "", "",
        "Boxes are ORIGINAL pixels `[x1, y1, x2, y2]` (right/bottom edges exclusive); time spans are seconds.",
        "Load with `mmreason.schema.load_rows(\"<this folder>\")` (canonical rows, media paths relative to it) "
        "or `datasets.load_dataset(\"<this folder>\")`.", "",
        "## Settings", "", "```json", json.dumps({k: manifest[k] for k in ("n", "seed", "chunk_size", "options")},
                                                 indent=1, sort_keys=True), "```", "",
        "## Tasks", "", _table(st.get("task", {}), "task"), "",
        "## Question types", "", _table(st.get("qtype", {}), "qtype"), "",
        "## Answers", "", f"Answer length (characters): {_fmt_summary(st.get('answer_len', {}))}.", "",
        _table(Counter(st.get("answers", {})), "answer (top 20)", 20), "",
        "## Ground truth", "", f"Box width (px): {_fmt_summary(st.get('box_w', {}))}. "
        f"Box height (px): {_fmt_summary(st.get('box_h', {}))}. Time span length (s): "
        f"{_fmt_summary(st.get('span_len', {}))}.", "",
        _num_table(st.get("boxes_per_row", {}), "boxes per row"), "",
        _table(st.get("area_frac", {}), "box area / image area"), "",
        _num_table(st.get("regions_per_row", {}), "rationale regions per row"), "",
        _num_table(st.get("spans_per_row", {}), "time spans per row"), "",
        _num_table(st.get("assistant_turns", {}), "assistant turns per row"), "",
    ]
    if counters:
        parts += ["## Builder counters", "", _table(counters, "counter"), ""]
    parts += ["## Build time", "", "| phase | seconds | share |", "|---|---:|---:|"]
    parts += [f"| {p} | {t:.2f} | {100 * t / total:.1f}% |" for p, t in phases]
    parts += ["", f"Samples per second (one process, all chunks): {manifest['rows'] / total:.2f}.", ""]
    tmp = root / f".README.tmp{os.getpid()}.md"
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, root / "README.md")
