"""Image and video sources: COCO instances, RefCOCO refs, GRIT JSONL, DeepEyes (verl) parquet, Charades-STA.

Record order (sample j = record j):
- ``coco``: one record per (image, category) with non-crowd boxes, images in file order, categories by id;
  ``mode=grounding`` asks for every box of the category, ``mode=counting`` how many there are;
- ``refcoco``: one record per referring sentence, refs in file order (``split`` keeps one split); the
  boxes come from the COCO ``instances`` file the refs point into (``ann_id``);
- ``grit``: one record per JSON line (``question, answer, image, width, height, bboxs, dataset, split``);
- ``deepeyes``: one record per parquet row (files sorted by name), read by `schema.readers.from_verl`;
- ``charades``: one record per line ``VIDEO_ID START END##sentence``.

Boxes become [x1, y1, x2, y2] ORIGINAL pixels (COCO's are [x, y, width, height]).
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

from mmreason.data_builders.common import SampleContext
from mmreason.data_builders.converters_base import (
    Format, Skip, image_part, media, need, numbers, read_json, read_json_list, resolve, xywh_to_xyxy,
)
from mmreason.errors import SchemaError
from mmreason.schema import user_message


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}".rstrip("0")


def boxes_answer(boxes: list[list[float]]) -> str:
    """One box as "[x1, y1, x2, y2]", several as a list of those (the image builders' grounding answer).

    >>> boxes_answer([[1, 2, 3.5, 4]]), boxes_answer([[1, 2, 3, 4], [5, 6, 7, 8]])
    ('[1, 2, 3.5, 4]', '[[1, 2, 3, 4], [5, 6, 7, 8]]')
    """
    one = ["[" + ", ".join(_fmt(v) for v in b) + "]" for b in boxes]
    return one[0] if len(one) == 1 else "[" + ", ".join(one) + "]"


def _check_inside(boxes, size, where, ctx) -> list[list[float]]:
    """Boxes clipped to the image; a box left without area is an error naming the record."""
    w, h = size
    out = []
    for b in boxes:
        c = [min(max(b[0], 0.0), w), min(max(b[1], 0.0), h), min(max(b[2], 0.0), w), min(max(b[3], 0.0), h)]
        if c != list(b):
            ctx.count("clipped_boxes")
        if not (c[0] < c[2] and c[1] < c[3]):
            raise SchemaError(f"box {b} lies outside the {w}x{h} image", row=where, field="bbox")
        out.append(c)
    return out


# ------------------------------------------------------------------------------------------------ COCO
def _instances(path: Path) -> tuple[dict, dict, dict]:
    data = read_json(path)
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise SchemaError("not a COCO instances file (needs images, annotations, categories)", row=str(path))
    images = {im["id"]: im for im in data["images"]}
    cats = {c["id"]: c["name"] for c in data["categories"]}
    anns = {a["id"]: a for a in data["annotations"]}
    return images, cats, anns


def read_coco(src: Path, opts: dict) -> list:
    images, cats, anns = _instances(src)
    groups: dict[tuple, list] = {}
    for a in anns.values():
        where = f"{src} annotation {a.get('id')}"
        if a.get("iscrowd"):
            continue
        if need(a, "image_id", where) not in images or need(a, "category_id", where) not in cats:
            raise SchemaError("image_id or category_id not in the file's images/categories", row=where)
        if float(a.get("area") or 1e9) < float(opts["min_area"]):
            continue
        groups.setdefault((a["image_id"], a["category_id"]), []).append(
            (xywh_to_xyxy(need(a, "bbox", where), where), a["id"]))
    order = {iid: k for k, iid in enumerate(images)}
    ordered = sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1]))
    return [{"image": images[i], "category": cats[c], "boxes": [b for b, _ in v],
             "ann_ids": [k for _, k in v]} for (i, c), v in ordered]


def row_coco(rec: dict, ctx: SampleContext, opts: dict) -> dict:
    src, cat = Path(opts["src"]), rec["category"]
    where = f"{src} image {rec['image'].get('id')}"
    part, size = image_part(ctx, opts, src, need(rec["image"], "file_name", where), where)
    boxes = _check_inside(rec["boxes"], size, where, ctx)
    if opts["mode"] == "counting":
        q, a, task = f"How many {cat}s are in the image?", str(len(boxes)), "counting"
    else:
        q, a, task = (f"Locate every {cat} in the image and give their bounding boxes.", boxes_answer(boxes),
                      "grounding")
    return {"messages": [user_message(q, part)], "answer": a,
            "task": task, "source": "coco", "boxes": [{"label": cat, "box": b, "image": 0} for b in boxes],
            "meta": {"image_id": rec["image"]["id"], "ann_ids": rec["ann_ids"], "image_size": list(size),
                     "coord_frame": "pixel"}}


# --------------------------------------------------------------------------------------------- RefCOCO
class _PlainUnpickler(pickle.Unpickler):
    """Reads only what RefCOCO's refs hold (lists, dicts, strings, numbers): a pickle names functions to
    call while loading, so a downloaded one may run any code. Every such name is refused, sets excepted."""

    SAFE = {("builtins", "set"), ("builtins", "frozenset")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.SAFE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it names {module}.{name}")


def _load_refs(path: Path) -> list:
    if path.suffix in (".p", ".pkl", ".pickle"):  # the official refs(unc).p files are pickles
        with open(path, "rb") as fh:
            try:
                return _PlainUnpickler(fh).load()
            except pickle.UnpicklingError as exc:
                raise ValueError(
                    f"convert_refcoco: {path} is not a pickle of plain lists and dicts ({exc}); a pickle "
                    "can run code, so only those are read. Convert the file to JSON where you trust it "
                    "(json.dump of its pickle.load) and pass --set src=refs.json") from None
    return read_json(path)


def read_refcoco(src: Path, opts: dict) -> list:
    if not opts.get("instances"):
        raise ValueError("convert_refcoco: give the COCO instances file the refs point into: "
                         "--set instances=PATH")
    images, cats, anns = _instances(Path(opts["instances"]))
    out = []
    for k, ref in enumerate(_load_refs(src)):
        where = f"{src} ref {ref.get('ref_id', k) if isinstance(ref, dict) else k}"
        if opts["split"] and ref.get("split") != opts["split"]:
            continue
        ann = anns.get(need(ref, "ann_id", where))
        if ann is None:
            raise SchemaError(f"ann_id {ref['ann_id']} is not in {opts['instances']}", row=where,
                              field="ann_id")
        image = images.get(ann["image_id"])
        if image is None:
            raise SchemaError(f"image {ann['image_id']} is not in {opts['instances']}", row=where)
        box = xywh_to_xyxy(need(ann, "bbox", where), where)
        for s in need(ref, "sentences", where):
            text = s.get("sent") or s.get("raw") if isinstance(s, dict) else s
            if not text:
                raise SchemaError("a sentence without text", row=where, field="sentences")
            out.append({"image": image, "box": box, "sentence": text, "ref_id": ref.get("ref_id"),
                        "ann_id": ref["ann_id"], "sent_id": s.get("sent_id") if isinstance(s, dict) else None,
                        "split": ref.get("split"), "category": cats.get(ann.get("category_id"))})
    return out


def row_refcoco(rec: dict, ctx: SampleContext, opts: dict) -> dict:
    src = Path(opts["src"])
    where = f"{src} ref {rec['ref_id']}"
    part, size = image_part(ctx, opts, src, need(rec["image"], "file_name", where), where)
    [box] = _check_inside([rec["box"]], size, where, ctx)
    q = f"Locate the object described as \"{rec['sentence']}\" and give its bounding box."
    return {"messages": [user_message(q, part)], "answer": boxes_answer([box]), "task": "grounding",
            "source": "refcoco",
            "boxes": [{"label": rec["sentence"], "box": box, "image": 0}],
            "meta": {k: rec[k] for k in ("ref_id", "ann_id", "sent_id", "split", "category")}
            | {"image_id": rec["image"]["id"], "image_size": list(size), "coord_frame": "pixel"}}


# ------------------------------------------------------------------------------------------------ GRIT
def read_grit(src: Path, opts: dict) -> list:
    return read_json_list(src, "JSON lines (or a JSON list) of GRIT records")


def row_grit(rec: dict, ctx: SampleContext, opts: dict) -> dict:
    src = Path(opts["src"])
    where = f"{src} record {ctx.index}"
    part, size = image_part(ctx, opts, src, need(rec, "image", where), where)
    declared = (int(rec.get("width") or size[0]), int(rec.get("height") or size[1]))
    if declared != tuple(size):
        raise SchemaError(f"width/height {declared} differ from the image's {size}: boxes would be off",
                          row=where, field="width")
    boxes = _check_inside([numbers(b, 4, where, "bboxs") for b in rec.get("bboxs") or []], size, where, ctx)
    dataset = str(rec.get("dataset") or "grit")
    extra = {k: v for k, v in rec.items() if k not in ("question", "answer", "image", "bboxs")}
    return {"messages": [user_message(str(need(rec, "question", where)), part)],
            "answer": str(need(rec, "answer", where)),
            "task": "counting" if "tally" in dataset.lower() else "vqa",
            "source": f"grit_{dataset}", "boxes": [{"label": None, "box": b, "image": 0} for b in boxes],
            "meta": {**extra, "image_size": list(size), "coord_frame": "pixel"}}


# -------------------------------------------------------------------------------------------- DeepEyes
@functools.lru_cache(maxsize=2)
def _tables(src: str):
    import pyarrow.parquet as pq

    p = Path(src)
    files = sorted(p.glob("*.parquet")) if p.is_dir() else [p]
    if not files:
        raise FileNotFoundError(f"{src}: no parquet files")
    return [(f, pq.read_table(f, memory_map=True)) for f in files]


def read_deepeyes(src: Path, opts: dict) -> list:
    return [(i, k) for i, (_, t) in enumerate(_tables(str(src))) for k in range(t.num_rows)]


def row_deepeyes(rec, ctx: SampleContext, opts: dict) -> dict:
    from mmreason.schema.readers import from_verl

    f, k = rec
    path, table = _tables(opts["src"])[f]
    raw = table.slice(k, 1).to_pylist()[0]
    try:
        row = from_verl(raw, index=k, media_dir=ctx.root / "media" / "deepeyes", root=ctx.root)
    except SchemaError as e:
        raise SchemaError(f"{path} row {k}: {e}") from None
    if not raw.get("prompt"):
        raise Skip("empty_prompt")
    row["meta"] = {**row.get("meta", {}), "parquet": path.name, "parquet_row": k}
    row["id"] = None
    return row


# ------------------------------------------------------------------------------------------- Charades
def read_charades(src: Path, opts: dict) -> list:
    out = []
    for n, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        head, sep, sentence = line.partition("##")
        parts = head.split()
        try:
            vid, start, end = parts[0], float(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            vid = start = end = None
        if not sep or len(parts) != 3 or vid is None or not sentence.strip():
            raise SchemaError(f"expected 'VIDEO_ID START END##sentence', got {line[:80]!r}",
                              row=f"{src} line {n}")
        if not 0 <= start <= end:
            raise SchemaError(f"need 0 <= start <= end, got {start} {end}", row=f"{src} line {n}")
        out.append({"video": vid, "start": start, "end": end, "sentence": sentence.strip(), "line": n})
    return out


def row_charades(rec: dict, ctx: SampleContext, opts: dict) -> dict:
    src = Path(opts["src"])
    where = f"{src} line {rec['line']}"
    base = Path(opts["videos"]) if opts.get("videos") else src.parent
    video = media(ctx, resolve(rec["video"] + opts["ext"], base), where)
    s, e, sent = rec["start"], rec["end"], rec["sentence"].rstrip(".")
    q = f"When does \"{sent}\" happen in the video? Give the start and end time in seconds."
    return {"messages": [user_message(q, ("video", video))],
            "answer": f"{s:.1f} to {e:.1f}", "task": "temporal_grounding", "source": "charades_sta",
            "time_spans": [{"label": sent, "start": s, "end": e}],
            "meta": {"video_id": rec["video"], "line": rec["line"]}}


FORMATS = {
    "coco": Format(read_coco, row_coco, {"images": None, "mode": "grounding", "min_area": 0},
                   "a COCO instances JSON; images= the image folder (default: beside the JSON)"),
    "refcoco": Format(read_refcoco, row_refcoco, {"images": None, "instances": None, "split": None},
                      "refs JSON (or the official .p) with instances= the COCO instances JSON"),
    "grit": Format(read_grit, row_grit, {"images": None}, "GRIT's JSONL; images= the image folder"),
    "deepeyes": Format(read_deepeyes, row_deepeyes, {}, "a DeepEyes (verl) parquet file or folder of them"),
    "charades": Format(read_charades, row_charades, {"videos": None, "ext": ".mp4"},
                       "a Charades-STA annotation text file; videos= the video folder"),
}
