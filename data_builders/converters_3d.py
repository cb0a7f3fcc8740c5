"""3D sources: ScanRefer (grounding descriptions) and ScanQA (questions) over ScanNet-style scenes.

- ``scanrefer``: a JSON list of ``{scene_id, object_id, object_name, ann_id, description}``, one record each;
- ``scanqa``: a JSON list of ``{scene_id, question_id, question, answers, object_ids, object_names}``.

Neither file holds geometry: the boxes come from ``boxes``, either a JSON table ``{scene_id: [{object_id,
label, box: [x1, y1, z1, x2, y2, z2]} | {object_id, label, center, size}]}`` or a folder of ScanRefer's
preprocessed ``<scene_id>_aligned_bbox.npy`` (or ``_bbox.npy``) arrays, rows ``[cx, cy, cz, dx, dy, dz,
class, object_id]``. The cloud of each scene is ``clouds`` with ``{scene_id}`` filled in (e.g.
``scans/{scene_id}/{scene_id}_vh_clean_2.ply``); when the cloud is in the raw scanner frame, ``axis_align``
(ScanNet's ``{scene_id}.txt`` with its ``axisAlignment`` line) puts the 4x4 matrix in ``meta["axis_align"]``.

With ``frames`` (a ``{scene_id}`` template of ScanNet SensReader export folders: ``color/``, ``depth/``,
``pose/``, ``intrinsic/``) a row shows the scene as ``num_frames`` posed RGB-D frames instead of the cloud:
image parts plus ``meta["rgbd"]``, what GS-Reasoner's spatial path reads (`data_builders.scannet_frames`).

ScanRefer rows answer in GS-Reasoner's grounding form ``name 1 <bbox>(x1, y1, z1, x2, y2, z2)</bbox>``;
ScanQA rows answer with the first reference answer (all of them in ``meta["answers"]``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from mmreason.data_builders.common import SampleContext
from mmreason.data_builders.converters_base import (
    Format, Skip, media, need, numbers, read_json, read_json_list,
)
from mmreason.data_builders.scenes_3d import preview
from mmreason.errors import MediaError, SchemaError
from mmreason.geometry import center_size_to_aabb
from mmreason.schema import user_message
from mmreason.traces import render_gcot_objects


@functools.lru_cache(maxsize=256)
def _scene_boxes(boxes: str, scene: str) -> dict[str, tuple[str, tuple]]:
    """{object id (str): (label, [x1, y1, z1, x2, y2, z2])} for one scene."""
    p = Path(boxes)
    if p.is_dir():
        found = [f for f in (p / f"{scene}_aligned_bbox.npy", p / f"{scene}_bbox.npy") if f.exists()]
        f = found[0] if found else None
        if f is None:
            raise MediaError(p / f"{scene}_aligned_bbox.npy", "no box table for this scene")
        arr = np.load(f)
        if arr.ndim != 2 or arr.shape[1] < 8:
            raise MediaError(f, f"expected rows [cx, cy, cz, dx, dy, dz, class, object_id], got shape "
                                f"{arr.shape}")
        return {str(int(r[7])): (str(int(r[6])), tuple(center_size_to_aabb(r[:6]))) for r in arr}
    table = _json_table(str(p))
    out = {}
    for k, item in enumerate(table.get(scene) or []):
        where = f"{p} scene {scene} box {k}"
        if item.get("box") is not None:
            box = tuple(numbers(item["box"], 6, where, "box"))
        else:
            box = tuple(center_size_to_aabb(numbers(need(item, "center", where), 3, where, "center")
                                            + numbers(need(item, "size", where), 3, where, "size")))
        if not all(box[i] < box[i + 3] for i in range(3)):
            raise SchemaError(f"box {box} has no volume", row=where, field="box")
        out[str(need(item, "object_id", where))] = (str(item.get("label") or ""), box)
    return out


@functools.lru_cache(maxsize=2)
def _json_table(path: str) -> dict:
    data = read_json(Path(path))
    if not isinstance(data, dict):
        raise SchemaError("expected {scene_id: [boxes]}", row=path)
    return data


def _axis_align(template: str | None, scene: str) -> list[list[float]] | None:
    if not template:
        return None
    path = Path(template.format(scene_id=scene))
    return axis_alignment(path)


def axis_alignment(meta: Path) -> list[list[float]]:
    """The 4x4 ``axisAlignment`` matrix of a scene's meta file (row-major, as ScanNet writes it)."""
    if not meta.is_file():
        raise MediaError(meta, "ScanNet meta file not found (it holds the axisAlignment line)")
    m = re.search(r"axisAlignment\s*=\s*([-\d.eE+\s]+)", meta.read_text(encoding="utf-8"))
    values = [float(v) for v in m.group(1).split()] if m else []
    if len(values) != 16:
        raise MediaError(meta, "no 'axisAlignment = 16 numbers' line")
    return [values[i:i + 4] for i in range(0, 16, 4)]


def _scene_parts(ctx: SampleContext, opts: dict, scene: str, where: str) -> tuple[list[dict], dict]:
    """The prompt's parts showing `scene` (its cloud, or its posed RGB-D frames) and what they add to meta."""
    if not opts.get("frames"):
        path = Path(opts["clouds"].format(scene_id=scene))
        return [{"type": "point_cloud", "point_cloud": media(ctx, path, where)}], {}
    from mmreason.data_builders.scannet_frames import export_frames

    folder = Path(opts["frames"].format(scene_id=scene))
    if not folder.is_dir():
        if ctx.options.get("on_missing") == "skip":
            raise Skip("missing_frames")
        raise MediaError(folder, f"ScanNet frame export not found (source {where})", sample_id=ctx.id)
    parts, rgbd = export_frames(folder, scene, ctx.root, num_frames=int(opts["num_frames"]),
                                axis_align=_axis_align(opts.get("axis_align"), scene))
    return parts, {"rgbd": rgbd}


def _preview(row: dict, root: str | Path):
    """Card tile: the cloud from above with its boxes (`scenes_3d.preview`); a row shown as RGB-D frames
    only, its first frame."""
    from mmreason.data_builders.card import default_preview
    from mmreason.schema import media_parts

    if any(kind == "point_cloud" for kind, _ in media_parts(row)) or (row.get("meta") or {}).get("cloud"):
        return preview(row, root)
    return default_preview(row, root)


def _token(name: str) -> str:
    """An object name as the single word GS-Reasoner's grammar reads ("coffee table" -> "coffee_table")."""
    return re.sub(r"\W+", "_", name.strip()).strip("_") or "object"


def read_list(src: Path, opts: dict) -> list:
    data = read_json_list(src, "a JSON list")
    if not opts.get("boxes"):
        raise ValueError("give the per-scene box table: --set boxes=PATH (a JSON table or a folder of "
                         "*_bbox.npy)")
    if opts.get("frames"):
        if "{scene_id}" not in opts["frames"]:
            raise ValueError("give the ScanNet frame exports as a path template: "
                             "--set frames=scans/{scene_id}/frames")
    elif not opts.get("clouds") or "{scene_id}" not in opts["clouds"]:
        raise ValueError("give the scene clouds as a path template: "
                         "--set clouds=scans/{scene_id}/{scene_id}.ply (or frames= for posed RGB-D frames)")
    return data


def row_scanrefer(rec: dict, ctx: SampleContext, opts: dict) -> dict:
    where = f"{opts['src']} record {ctx.index}"
    scene, oid = str(need(rec, "scene_id", where)), str(need(rec, "object_id", where))
    table = _scene_boxes(opts["boxes"], scene)
    if oid not in table:
        if opts["on_missing"] == "skip":
            raise Skip("missing_box")
        raise SchemaError(f"object {oid} of {scene} is not in the box table {opts['boxes']}", row=where,
                          field="object_id")
    name = str(rec.get("object_name") or table[oid][0]).replace("_", " ")
    box = [round(v, 4) for v in table[oid][1]]
    text = str(need(rec, "description", where)).strip()
    q = f"Locate the object in the scene that matches this description: {text}"
    parts, shown = _scene_parts(ctx, opts, scene, where)
    return {"messages": [user_message(q, *parts)],
            "answer": render_gcot_objects([(_token(name), [box])]), "task": "grounding_3d",
            "source": "scanrefer",
            "boxes_3d": [{"label": name, "box": box}],
            "meta": {"scene_id": scene, "object_id": oid, "ann_id": rec.get("ann_id"),
                     "coord_frame": "scene_metres",
                     "axis_align": _axis_align(opts.get("axis_align"), scene), **shown}}


def row_scanqa(rec: dict, ctx: SampleContext, opts: dict) -> dict:
    where = f"{opts['src']} record {ctx.index}"
    scene = str(need(rec, "scene_id", where))
    table = _scene_boxes(opts["boxes"], scene)
    ids = [str(i) for i in rec.get("object_ids") or []]
    names = list(rec.get("object_names") or [])
    boxes = []
    for k, oid in enumerate(ids):
        if oid in table:
            label = str(names[k]) if k < len(names) else table[oid][0]
            boxes.append({"label": label.replace("_", " "), "box": [round(v, 4) for v in table[oid][1]]})
        else:
            ctx.count("missing_box")
    answers = [str(a) for a in rec.get("answers") or []]
    q = str(need(rec, "question", where))
    parts, shown = _scene_parts(ctx, opts, scene, where)
    return {"messages": [user_message(q, *parts)],
            "answer": answers[0] if answers else None, "task": "3d_qa", "source": "scanqa", "boxes_3d": boxes,
            "meta": {"scene_id": scene, "question_id": rec.get("question_id"), "answers": answers,
                     "object_ids": ids, "coord_frame": "scene_metres",
                     "axis_align": _axis_align(opts.get("axis_align"), scene), **shown}}


# GS-Reasoner's release feeds 32 frames per scene at fine-tuning (48 in pre-training)
_OPTS = {"boxes": None, "clouds": None, "axis_align": None, "frames": None, "num_frames": 32}
FORMATS = {
    "scanrefer": Format(read_list, row_scanrefer, dict(_OPTS),
                        "ScanRefer JSON; boxes= the per-scene box table, clouds= (or frames=, ScanNet RGB-D "
                        "exports) a {scene_id} path template",
                        preview=_preview),
    "scanqa": Format(read_list, row_scanqa, dict(_OPTS),
                     "ScanQA JSON; boxes= the per-scene box table, clouds= (or frames=, ScanNet RGB-D "
                     "exports) a {scene_id} path template",
                     preview=_preview),
}
