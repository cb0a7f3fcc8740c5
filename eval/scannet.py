"""ScanNet scene annotations read as released, for 3D grounding benchmarks (ScanRefer) that score against them.

A ScanNet v2 scene folder ``scans/<scene_id>/`` holds the mesh ``<scene_id>_vh_clean_2.ply`` (its vertices
are the scene's points, in the scanner's frame), the over-segmentation ``<scene_id>_vh_clean_2.0.010000
.segs.json`` (``segIndices``: one segment id per vertex), the instance annotation
``<scene_id>.aggregation.json`` (``segGroups``: ``{objectId, label, segments}``) and the meta file
``<scene_id>.txt`` whose ``axisAlignment = 16 numbers`` line maps the scanner frame to the axis-aligned
scene frame. An object's box is the axis-aligned extent of its vertices in that aligned frame, in metres:
what ScanRefer's preprocessing (``*_aligned_bbox.npy``) and GS-Reasoner's evaluation score against, and
ScanRefer's ``object_id`` is the aggregation's ``objectId``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from mmreason.errors import MediaError, SchemaError
from mmreason.modalities.ply import read_ascii, read_header
from mmreason.data_builders.converters_3d import axis_alignment  # one parser of ScanNet's meta file

_NUMPY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
                "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
                "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def scene_files(scans: Path, scene: str) -> dict[str, Path]:
    """The four released files of a scene (the aggregation under either of its two released names)."""
    folder = scans / scene
    aggregation = folder / f"{scene}.aggregation.json"
    if not aggregation.is_file() and (folder / f"{scene}_vh_clean.aggregation.json").is_file():
        aggregation = folder / f"{scene}_vh_clean.aggregation.json"
    return {"mesh": folder / f"{scene}_vh_clean_2.ply", "segs": folder / f"{scene}_vh_clean_2.0.010000.segs.json",
            "aggregation": aggregation, "meta": folder / f"{scene}.txt"}


def mesh_vertices(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The x, y, z (float64) of every vertex of a PLY mesh (binary or ASCII) in file order, and their
    red, green, blue as stored (None without colours)."""
    header = read_header(path) if path.is_file() else None
    if header is None:
        raise MediaError(path, "not a PLY file" if path.is_file() else "mesh not found")
    if header.fmt == "ascii":
        return read_ascii(path, header, None)
    before, count, props = header.vertex()
    if before or any(t == "list" for t, _ in props) or not {"x", "y", "z"} <= {n for _, n in props}:
        raise MediaError(path, "expected the vertex element first, with scalar x, y, z properties")
    order = "<" if header.fmt == "binary_little_endian" else ">"
    try:
        dtype = np.dtype([(name, order + _NUMPY_TYPES[kind]) for kind, name in props])
    except KeyError as exc:
        raise MediaError(path, f"unknown PLY property type {exc}") from None
    with open(path, "rb") as fh:
        fh.seek(header.body_start)
        data = np.fromfile(fh, dtype=dtype, count=count)
    if len(data) < count:
        raise MediaError(path, f"truncated: header declares {count} vertices, file holds {len(data)}")
    xyz = np.stack([data[a].astype(np.float64) for a in "xyz"], axis=1)
    names = set(data.dtype.names)
    rgb = np.stack([data[c] for c in ("red", "green", "blue")], axis=1) if {"red", "green", "blue"} <= names else None
    return xyz, rgb


def aligned(scans: Path, scene: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The scene's mesh vertices in the axis-aligned frame (metres) and their colours."""
    files = scene_files(scans, scene)
    matrix = np.asarray(axis_alignment(files["meta"]), dtype=np.float64)
    xyz, rgb = mesh_vertices(files["mesh"])
    return xyz @ matrix[:3, :3].T + matrix[:3, 3], rgb


def aligned_cloud(scans: Path, scene: str, out: Path) -> Path:
    """The scene as the model is given it: ``out`` (written once), an N x 6 float32 ``.npy`` of the aligned
    vertices and their colours in 0-1 (N x 3 without colours), so its boxes are read in the GT's frame."""
    if not out.is_file():
        xyz, rgb = aligned(scans, scene)
        cloud = xyz if rgb is None else np.concatenate([xyz, np.asarray(rgb, np.float64) / 255.0], axis=1)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.stem}.tmp.npy")
        np.save(tmp, cloud.astype(np.float32))
        tmp.replace(out)
    return out


def _json(path: Path, key: str) -> object:
    if not path.is_file():
        raise MediaError(path, "ScanNet annotation file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))[key]
    except (ValueError, KeyError, TypeError) as exc:
        raise SchemaError(f"not a ScanNet annotation file ({type(exc).__name__}: {exc})", row=str(path)) from None


@functools.lru_cache(maxsize=8)
def object_boxes(scans: Path, scene: str) -> dict[str, tuple[str, list[float]]]:
    """``{objectId (str): (label, [x1, y1, z1, x2, y2, z2])}`` for every annotated object of a scene, the
    box spanning the object's vertices in the axis-aligned frame (metres)."""
    files = scene_files(scans, scene)
    xyz = aligned(scans, scene)[0]
    seg_of_vertex = np.asarray(_json(files["segs"], "segIndices"))
    if len(seg_of_vertex) != len(xyz):
        raise SchemaError(f"{len(seg_of_vertex)} segment ids for {len(xyz)} mesh vertices", row=str(files["segs"]))
    boxes = {}
    for k, group in enumerate(_json(files["aggregation"], "segGroups")):
        where = f"{files['aggregation']} segGroup {k}"
        try:
            oid, label, segments = group["objectId"], str(group["label"]), list(group["segments"])
        except (KeyError, TypeError) as exc:
            raise SchemaError(f"segGroup without {exc}", row=where) from None
        points = xyz[np.isin(seg_of_vertex, segments)]
        if len(points) == 0:
            continue  # an object whose segments hold no vertex has no extent to score against
        boxes[str(oid)] = (label, [round(float(v), 4) for v in (*points.min(0), *points.max(0))])
    return boxes


__all__ = ["scene_files", "axis_alignment", "mesh_vertices", "aligned", "aligned_cloud", "object_boxes"]
