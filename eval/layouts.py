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
  ground_truth``) with videos at ``<dataset>/<scene_name>.mp4``;
- ``android_control``: AndroidControl's test episodes as InfiGUI-R1's evaluation reads them
  (``android_control_test.json``, github.com/Reallm-Labs/InfiGUI-R1 eval/android_control): a JSON list of
  ``{"episode": {episode_id, goal, step_instructions, screenshot_paths, actions}, "width", "height",
  "step_pams", "step_check_pams"}``, one step per ``step_check_pams`` entry (``{action, coordinate,
  candidate_bbox, text, direction, button}`` in original pixels; ``step_pams`` are the actions written in
  the ``mobile_use`` space, the history of the later steps), screenshot i before action i, its path
  relative to the release folder. The google-research release (TFRecords of episodes with accessibility
  trees) is the source this file was converted from: the candidate boxes are its tree elements under the
  GT point;
- ``scanrefer``: ScanRefer (arXiv 1912.08830) ``ScanRefer_filtered_val.json`` (``scene_id, object_id,
  object_name, ann_id, description``) over ScanNet v2 ``scans/<scene_id>/`` folders: the target box from
  the scene's aggregated annotation (`scannet.object_boxes`); the model is given the mesh's vertices in
  the same axis-aligned frame (metres), written once per scene into the run's ``media/scanrefer/``;
- ``mathvista``: MathVista (arXiv 2310.02255) testmini, as the JSON of its GitHub release (``testmini.json``:
  ``{pid: {question, image, choices, unit, precision, answer, question_type, answer_type, query,
  metadata}}``, pictures at ``image`` relative to the folder) or the parquet of its Hugging Face release
  (``data/testmini-*.parquet``, the same columns plus ``decoded_image`` bytes, decoded once into the run's
  ``media/``). The prompt is the release's ``query`` (hint, question, lettered choices).

Every row is validated (`schema.validate`) and carries the breakdown keys of its benchmark in ``meta``.
Errors name the file and record.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import re
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


# --------------------------------------------------------------------------------- AndroidControl
def _present(action: Mapping[str, Any]) -> dict:
    return {k: v for k, v in action.items() if v is not None}


def _gt_action(check: Mapping[str, Any], where: str) -> dict:
    """A ``step_check_pams`` entry as the ``gui.action`` the matcher reads: its candidate boxes named
    ``candidate_boxes`` (`rewards.gui.candidate_boxes`)."""
    if not isinstance(check, Mapping) or not isinstance(check.get("action"), str):
        raise SchemaError("a step_check_pams entry needs an 'action'", row=where)
    action = _present({k: v for k, v in check.items() if k != "candidate_bbox"})
    boxes = check.get("candidate_bbox") or []
    if boxes:
        action["candidate_boxes"] = [list(map(float, b)) for b in boxes]
    return action


def android_control(root: Path, options: Mapping[str, Any], cache: Path) -> Loaded:
    from PIL import Image

    hint = "expected AndroidControl's test episodes as InfiGUI-R1 evaluates them (android_control_test.json)"
    files = _matching(_need_dir(root, hint), options["files"], hint)
    rows = []
    for ann in files:
        data = json.loads(ann.read_text(encoding="utf-8"))
        for e, rec in enumerate(data if isinstance(data, list) else []):
            where = f"{ann} episode {e}"
            try:
                ep, checks, steps = rec["episode"], rec["step_check_pams"], rec["step_pams"]
                width, height, goal = int(rec["width"]), int(rec["height"]), str(ep["goal"])
                shots, instructions, episode = ep["screenshot_paths"], ep["step_instructions"], ep["episode_id"]
            except (KeyError, TypeError, ValueError) as exc:
                raise SchemaError(f"not an AndroidControl test episode (missing {exc})", row=where) from None
            where = f"{ann} episode {episode}"
            if not len(checks) == len(steps) == len(instructions) <= len(shots) - 1:
                raise SchemaError(f"{len(checks)} step_check_pams, {len(steps)} step_pams, {len(instructions)} "
                                  f"step_instructions and {len(shots)} screenshots: expected one of each per step "
                                  "and a last screenshot", row=where)
            for i, check in enumerate(checks):
                step = f"{where} step {i}"
                shot = root / options.get("images", "") / shots[i]
                if not shot.is_file():
                    raise FileNotFoundError(f"{step}: screenshot {shot} not found")
                with Image.open(shot) as im:
                    if im.size != (width, height):
                        raise SchemaError(f"screenshot {shot} is {im.size[0]}x{im.size[1]}, the episode declares "
                                          f"{width}x{height}", row=step)
                action = _gt_action(check, step)
                rows.append({
                    "id": f"android_control-{episode}-{i}", "task": "gui_action", "source": "android_control",
                    "answer": json.dumps(_present(steps[i])),
                    "messages": [{"role": "user", "content": [
                        {"type": "text", "text": goal}, {"type": "screenshot", "screenshot": str(shot.absolute())}]}],
                    "gui": {"platform": "mobile", "width": width, "height": height, "goal": goal,
                            "instruction": str(instructions[i]), "action": action, "elements": [],
                            "history": [_present(h) for h in steps[:i]]},
                    "meta": {"episode_id": episode, "step": i, "action": action["action"], "coord_frame": "pixel"}})
    return Loaded(_validated(rows, str(root)), files)


# --------------------------------------------------------------------------------------- ScanRefer
def scanrefer(root: Path, options: Mapping[str, Any], cache: Path) -> Loaded:
    from mmreason.eval.scannet import aligned_cloud, object_boxes, scene_files
    from mmreason.schema import user_message
    from mmreason.traces import render_gcot_objects

    hint = "expected ScanRefer's ScanRefer_filtered_val.json and ScanNet's scans/<scene_id>/ folders"
    files = _matching(_need_dir(root, hint), options["files"], hint)
    scans = root / options.get("scans", "scans")
    rows, used = [], set()
    for ann in files:
        data = json.loads(ann.read_text(encoding="utf-8"))
        for n, rec in enumerate(data if isinstance(data, list) else []):
            where = f"{ann} record {n}"
            try:
                scene, oid, text = str(rec["scene_id"]), str(rec["object_id"]), str(rec["description"]).strip()
            except (KeyError, TypeError) as exc:
                raise SchemaError(f"not a ScanRefer record (missing {exc})", row=where) from None
            boxes, scene_paths = object_boxes(scans, scene), scene_files(scans, scene)
            if oid not in boxes:
                raise SchemaError(f"object {oid} has no vertices in {scene_paths['aggregation']}", row=where)
            label, box = boxes[oid]
            name = str(rec.get("object_name") or label).replace("_", " ")
            same = sum(1 for other, _ in boxes.values() if other == label)
            used.update(scene_paths[k] for k in ("aggregation", "segs", "meta"))
            cloud = aligned_cloud(scans, scene, cache / "media" / "scanrefer" / f"{scene}.npy")
            cloud = {"type": "point_cloud", "point_cloud": str(cloud.absolute())}
            question = f"Locate the object in the scene that matches this description: {text}"
            token = re.sub(r"\W+", "_", name).strip("_") or "object"
            rows.append({"id": f"scanrefer-{scene}-{oid}-{rec.get('ann_id', n)}", "task": "grounding_3d",
                         "source": "scanrefer", "messages": [user_message(question, cloud)],
                         "answer": render_gcot_objects([(token, [box])]),
                         "boxes_3d": [{"label": name, "box": box}],
                         "meta": {"scene_id": scene, "object_id": oid, "ann_id": rec.get("ann_id"),
                                  "object_name": name, "coord_frame": "scene_metres",
                                  # unique: no other object of the scene has its annotated label
                                  "subset": "unique" if same == 1 else "multiple"}})
    return Loaded(_validated(rows, str(root)), files + sorted(used))


# --------------------------------------------------------------------------------------- MathVista
_MATHVISTA_META = ("task", "category", "context", "grade", "language", "source")


def _mathvista_records(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data.values()) if isinstance(data, dict) else list(data)


def _mathvista_image(root: Path, rec: Mapping[str, Any], media: Path, where: str) -> Path:
    decoded = rec.get("decoded_image")
    if isinstance(decoded, Mapping) and decoded.get("bytes"):
        suffix = Path(str(decoded.get("path") or rec.get("image") or "x.png")).suffix or ".png"
        picture = media / f"{rec['pid']}{suffix}"
        if not picture.is_file():
            media.mkdir(parents=True, exist_ok=True)
            tmp = picture.with_name(f".{picture.name}.tmp")
            tmp.write_bytes(decoded["bytes"])
            tmp.replace(picture)
        return picture
    picture = root / str(rec.get("image") or "")
    if not rec.get("image") or not picture.is_file():
        raise FileNotFoundError(f"{where}: image {picture} not found (MathVista's pictures are images/*.jpg "
                                "beside testmini.json)")
    return picture


def mathvista(root: Path, options: Mapping[str, Any], cache: Path) -> Loaded:
    hint = "expected MathVista's testmini.json (with images/) or data/testmini-*.parquet"
    files = _matching(_need_dir(root, hint), options["files"], hint)
    rows = []
    for table in files:
        for n, rec in enumerate(_mathvista_records(table)):
            where = f"{table} record {n}"
            missing = [k for k in ("pid", "question", "answer", "question_type", "answer_type") if rec.get(k) is None]
            if missing:
                raise SchemaError(f"not a MathVista problem (missing {missing})", row=where)
            where = f"{table} pid {rec['pid']}"
            choices = [str(c) for c in rec.get("choices") or []] or None
            if rec["question_type"] == "multi_choice" and not choices:
                raise SchemaError("a multi_choice problem without choices", row=where)
            text = rec.get("query") or "\n".join(
                [f"Question: {rec['question']}"]
                + (["Choices:"] + [f"({LETTERS[i]}) {c}" for i, c in enumerate(choices)] if choices else []))
            picture = _mathvista_image(root, rec, cache / "media" / "mathvista", where)
            metadata = rec.get("metadata") or {}
            meta = {"pid": str(rec["pid"]), "question_type": rec["question_type"],
                    "answer_type": rec["answer_type"], "precision": rec.get("precision"), "choices": choices,
                    "unit": rec.get("unit"),
                    **{k: metadata[k] for k in _MATHVISTA_META if isinstance(metadata.get(k), str)}}
            rows.append(_row(f"mathvista-{rec['pid']}", "vqa", "mathvista", str(text),
                             ("image", str(picture.absolute())), str(rec["answer"]), meta=meta))
    return Loaded(_validated(rows, str(root)), files)


LOADERS: dict[str, Callable[[Path, Mapping[str, Any], Path], Loaded]] = {
    "converter": converter, "vstar": vstar, "tsv_mcq": tsv_mcq, "pope": pope, "vsi_bench": vsi_bench,
    "android_control": android_control, "scanrefer": scanrefer, "mathvista": mathvista,
}


def load_layout(layout, data: str | Path, cache: str | Path) -> Loaded:
    """The rows of a benchmark release at `data`, read with `layout` (`tasks.Layout`)."""
    return LOADERS[layout.loader](Path(data), layout.options, Path(cache))


__all__ = ["Loaded", "LOADERS", "load_layout", "options_text"]
