"""Benchmarks read as their users download them: each official release layout converted to canonical rows.

A benchmark task names a `Layout` (`tasks.Layout`: a loader here and its options); `mmreason eval --data`
then points at the downloaded folder and the rows are built on the fly, nothing written beside the data
(pictures embedded in a TSV are decoded once into the run's ``media/`` folder). Loaders:

- ``converter``: a public format the dataset converters already read (`data_builders.converters.FORMATS`:
  ScreenSpot / -v2 / -Pro JSON, AndroidControl episodes, RefCOCO refs, Charades-STA text, ScanRefer), one
  converter run per annotation file matching the layout's ``files`` globs, media referenced in place;
- ``vstar``: V* Bench (arXiv 2312.14135): ``direct_attributes/`` and ``relative_position/``, each picture
  ``NAME.jpg`` with ``NAME.json`` ``{"question", "options", "target_object", "bbox": [[x, y, w, h], ...]}``;
  the first option is the right one, options are listed as ``A. ...`` lines (DeepEyes' eval_vstar);
- ``tsv_mcq``: VLMEvalKit's MCQ TSV (HR-Bench ``hr_bench_4k.tsv`` / ``hr_bench_8k.tsv``): ``index, question,
  A..D, answer, category, image`` (base64), plus any columns kept in ``meta``;
- ``pope``: POPE's question files (``coco_pope_{random,popular,adversarial}.json``, one JSON object per
  line ``{"question_id", "image", "text", "label"}``), pictures in the layout's ``images`` folder;
- ``vsi_bench``: VSI-Bench's parquet (``id, dataset, scene_name, question_type, question, options,
  ground_truth``) with videos at ``<dataset>/<scene_name>.mp4``.

Every row is validated (`schema.validate`) and carries the breakdown keys of its benchmark in ``meta``.
Errors name the file and record.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from mmreason.errors import SchemaError

LETTERS = "ABCDEFGHIJ"
MCQ_SUFFIX = "Answer with the option's letter from the given choices directly."


@dataclass(frozen=True)
class Loaded:
    """A benchmark's rows (canonical, media paths absolute) and the annotation files they came from."""

    rows: list[dict]
    files: list[Path]


def _need_dir(root: Path, what: str) -> Path:
    if not root.is_dir():
        raise FileNotFoundError(f"--data {root}: not a folder; {what}")
    return root


def _matching(root: Path, patterns, what: str) -> list[Path]:
    files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    if not files:
        raise FileNotFoundError(f"--data {root}: no {' or '.join(patterns)} here; {what}")
    return files


def _validated(rows: list[dict], where: str) -> list[dict]:
    from mmreason.schema import validate

    out = []
    for k, row in enumerate(rows):
        try:
            out.append(validate(row, index=k))
        except SchemaError as exc:
            raise SchemaError(f"{where}: {exc}") from None
    return out


def options_text(question: str, options: list[str]) -> str:
    """The question with its options as ``A. ...`` lines and the letter instruction.

    >>> print(options_text("Colour?", ["red", "blue"]))
    Colour?
    A. red
    B. blue
    Answer with the option's letter from the given choices directly.
    """
    lines = [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    return "\n".join([question.strip(), *lines, MCQ_SUFFIX])


def _row(id_: str, task: str, source: str, text: str, media: tuple[str, str], answer: str, **gt) -> dict:
    return {"id": id_, "task": task, "source": source, "answer": answer,
            "messages": [{"role": "user", "content": [{"type": media[0], media[0]: media[1]},
                                                      {"type": "text", "text": text}]}], **gt}


# ------------------------------------------------------------------------------------------ converter
def converter(root: Path, options: Mapping[str, Any], cache: Path) -> Loaded:
    """Run a dataset converter in memory over every annotation file of the layout."""
    import numpy as np

    from mmreason.data_builders.common import SampleContext
    from mmreason.data_builders.converters import FORMATS, make_sample

    fmt = options["format"]
    what = options.get("hint", "")
    files = _matching(_need_dir(root, what), options["files"], what)
    base = {k: (str(root / v) if k in ("images", "videos", "instances") and v is not None else v)
            for k, v in {**FORMATS[fmt].defaults, **options.get("set", {})}.items()}
    rows = []
    for src in files:
        opts = {**base, "media": "absolute", "on_missing": "error", "format": fmt, "src": str(src.absolute())}
        for j in range(len(FORMATS[fmt].read(src, opts))):
            ctx = SampleContext(src.stem, j, 0, cache, opts, np.random.default_rng(j))
            row = make_sample(ctx)
            if row is not None:
                rows.append(row)
    post = POSTPROCESS.get(options.get("post", ""))
    rows = [post(r) for r in rows] if post else rows
    return Loaded(_validated(rows, str(root)), files)


def _screen(row: dict) -> dict:
    """ScreenSpot's breakdown keys: the device (mobile/desktop/web) and the element type (text/icon)."""
    meta = row.get("meta") or {}
    element = str(meta.get("ui_type") or meta.get("data_type") or "unknown").lower()
    return {**row, "meta": {**meta, "device": row["gui"]["platform"], "element": element}}


POSTPROCESS: dict[str, Callable[[dict], dict]] = {"screen": _screen}


# ---------------------------------------------------------------------------------------------- V*
def vstar(root: Path, options: Mapping[str, Any], cache: Path) -> Loaded:
    hint = "expected V* Bench's direct_attributes/ and relative_position/ folders of NAME.jpg + NAME.json"
    files = _matching(_need_dir(root, hint), [f"{c}/*.json" for c in options["categories"]], hint)
    rows = []
    for ann in files:
        where = str(ann)
        try:
            data = json.loads(ann.read_text(encoding="utf-8"))
            question, opts = str(data["question"]), [str(o) for o in data["options"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise SchemaError(f"not a V* annotation ({type(exc).__name__}: {exc})", row=where) from None
        image = next((p for p in (ann.with_suffix(s) for s in (".jpg", ".jpeg", ".png")) if p.is_file()), None)
        if image is None or not 2 <= len(opts) <= len(LETTERS):
            raise SchemaError("needs its picture beside it and 2-10 options", row=where)
        targets = data.get("target_object") or []
        boxes = []
        for k, b in enumerate(data.get("bbox") or []):
            x, y, w, h = (float(v) for v in b)
            label = targets[k] if k < len(targets) else None
            boxes.append({"label": label, "box": [x, y, x + w, y + h], "image": 0})
        category = ann.parent.name
        rows.append(_row(f"vstar-{category}-{ann.stem}", "vqa", "vstar_bench", options_text(question, opts),
                         ("image", str(image.absolute())), "A", boxes=boxes,
                         meta={"category": category, "options": opts, "file": ann.name}))
    return Loaded(_validated(rows, str(root)), files)


# --------------------------------------------------------------------------------------- TSV (MCQ)
def tsv_mcq(root: Path, options: Mapping[str, Any], cache: Path) -> Loaded:
    hint = f"expected the benchmark's TSV ({', '.join(options['files'])})"
    files = _matching(root if root.is_dir() else root.parent,
                      options["files"] if root.is_dir() else [root.name], hint)
    csv.field_size_limit(sys.maxsize)  # a base64 picture is one field of megabytes
    categories = options.get("categories", {})
    rows = []
    for tsv in files:
        media = cache / "media" / tsv.stem
        media.mkdir(parents=True, exist_ok=True)
        with open(tsv, encoding="utf-8", newline="") as fh:
            for n, rec in enumerate(csv.DictReader(fh, delimiter="\t"), 2):
                where = f"{tsv} line {n}"
                missing = [k for k in ("index", "question", "answer", "image", "A", "B") if not rec.get(k)]
                if missing:
                    raise SchemaError(f"missing column(s) {missing}", row=where)
                opts = [rec[k] for k in LETTERS if rec.get(k)]
                picture = media / f"{rec['index']}.jpg"
                if not picture.is_file():
                    try:
                        data = base64.b64decode(rec["image"], validate=True)
                    except (binascii.Error, ValueError):
                        raise SchemaError("the image column is not base64", row=where) from None
                    tmp = picture.with_name(f".{picture.name}.tmp")
                    tmp.write_bytes(data)
                    tmp.replace(picture)
                meta = {k: v for k, v in rec.items() if k not in ("image", "question", *LETTERS) and v}
                if "category" in meta:
                    meta["category"] = categories.get(meta["category"], meta["category"])
                meta["options"] = opts
                rows.append(_row(f"{tsv.stem}-{rec['index']}", "vqa", tsv.stem,
                                 options_text(rec["question"], opts), ("image", str(picture.absolute())),
                                 rec["answer"].strip(), meta=meta))
    return Loaded(_validated(rows, str(root)), files)


# -------------------------------------------------------------------------------------------- POPE
def pope(root: Path, options: Mapping[str, Any], cache: Path) -> Loaded:
    hint = "expected POPE's coco_pope_{random,popular,adversarial}.json question files"
    files = _matching(_need_dir(root, hint), options["files"], hint)
    images = root / options.get("images", "")
    rows = []
    for qfile in files:
        split = qfile.stem.rsplit("_", 1)[-1]
        for n, line in enumerate(qfile.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{qfile} line {n}"
            try:
                rec = json.loads(line)
                qid, image, text, label = rec["question_id"], rec["image"], rec["text"], rec["label"]
            except (ValueError, KeyError, TypeError) as exc:
                raise SchemaError(f"not a POPE question ({type(exc).__name__}: {exc})", row=where) from None
            if str(label).lower() not in ("yes", "no"):
                raise SchemaError(f"label must be yes or no, got {label!r}", row=where)
            path = images / image
            if not path.is_file():
                raise FileNotFoundError(f"{where}: image {path} not found (POPE's pictures are COCO val2014; "
                                        f"put them in {images})")
            rows.append(_row(f"pope-{split}-{qid}", "vqa", "pope", str(text), ("image", str(path.absolute())),
                             str(label).lower(), meta={"category": split, "question_id": qid}))
    return Loaded(_validated(rows, str(root)), files)


# --------------------------------------------------------------------------------------- VSI-Bench
def vsi_bench(root: Path, options: Mapping[str, Any], cache: Path) -> Loaded:
    import pyarrow.parquet as pq

    hint = "expected VSI-Bench's test parquet and its <dataset>/<scene_name>.mp4 videos"
    files = _matching(_need_dir(root, hint), options["files"], hint)
    rows = []
    for table in files:
        for n, rec in enumerate(pq.read_table(table).to_pylist()):
            where = f"{table} row {n}"
            try:
                video = root / rec["dataset"] / f"{rec['scene_name']}.mp4"
                qtype, question, gt = rec["question_type"], rec["question"], str(rec["ground_truth"])
            except (KeyError, TypeError) as exc:
                raise SchemaError(f"not a VSI-Bench row (missing {exc})", row=where) from None
            if not video.is_file():
                raise FileNotFoundError(f"{where}: video {video} not found")
            opts = list(rec.get("options") or [])
            # the options already carry their letters ("A. table"); the answer is the letter
            text = question + ("\nOptions:\n" + "\n".join(opts) if opts else "")
            rows.append(_row(f"vsi-{rec.get('id', n)}", "spatial_qa", "vsi_bench", text,
                             ("video", str(video.absolute())), gt,
                             meta={"question_type": qtype, "dataset": rec["dataset"], "scene": rec["scene_name"]}))
    return Loaded(_validated(rows, str(root)), files)


LOADERS: dict[str, Callable[[Path, Mapping[str, Any], Path], Loaded]] = {
    "converter": converter, "vstar": vstar, "tsv_mcq": tsv_mcq, "pope": pope, "vsi_bench": vsi_bench,
}


def load_layout(layout, data: str | Path, cache: str | Path) -> Loaded:
    """The rows of a benchmark release at `data`, read with `layout` (`tasks.Layout`)."""
    return LOADERS[layout.loader](Path(data), layout.options, Path(cache))


__all__ = ["Loaded", "LOADERS", "load_layout", "options_text"]
