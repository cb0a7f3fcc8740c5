"""The spatial collator: the usual batch, plus each image token's 3D points and the scenes they belong to.

It wraps `mmreason.modalities.collate.Collator` (which stays the only place a chat template is rendered
and a processor called) and reads the token grid the processor chose for every image
(``image_grid_thw``). A row's posed RGB-D frames are listed in ``meta["rgbd"]`` (written by the 3D
builder, `mmreason.data_builders.scenes_3d` with ``rgbd=true``)::

    {"depth_scale": 1000, "frames": [{"image": "media/x/frame-0.png", "depth": "media/x/depth-0.png",
                                      "intrinsics": 3x3, "extrinsics": 4x4 world->camera}, ...]}

Depth maps are 16-bit PNGs in 1/`depth_scale` metres (0 = nothing seen; ScanNet's convention). Each
frame is matched to the row's image part whose path ends with its ``image``; images without a frame (a
crop, a screenshot) get no points, and their tokens pass through the adapter unchanged. A scene is the
union of the row's frames' points, of which the encoder sees `SpatialConfig.scene_points`, drawn with a
generator seeded by the row id, so a row gives the same tensors every epoch.

Beside the collator: `rollout_inputs` gives one rollout segment its tensors (the model's ``vision_extras``,
which `mmreason.rollout` calls on a prompt and on each tool observation), and `frames_inputs` takes frames
already in memory (`Frame`: the 3D demo's rendered views, with their depth and cameras).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mmreason.models.spatial.geometry import patch_points
from mmreason.models.spatial.pooling import SpatialConfig
from mmreason.schema import images_of

MERGE = 2  # Qwen2.5-VL merges 2 x 2 patches into one token


def _row_root(row: Mapping, image_path: str, rel: str) -> Path:
    """The dataset root a frame's relative paths hang from: the image part's path minus `rel`."""
    if not str(image_path).replace("\\", "/").endswith(rel):
        raise ValueError(f"sample {row.get('id')!r}: rgbd frame {rel!r} is not an image part of the row")
    return Path(str(image_path)[: len(str(image_path)) - len(rel)] or ".")


def read_depth(path: Path, scale: float) -> np.ndarray:
    """A 16-bit depth PNG -> metres (0 where nothing was seen)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im, dtype=np.float64) / float(scale)


def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def frame_records(row: Mapping) -> dict[str, dict]:
    """The row's RGB-D frames keyed by the image part path each belongs to (absolute paths filled in)."""
    meta = row.get("meta") or {}
    rgbd = meta.get("rgbd")
    if not rgbd:
        return {}
    frames = rgbd.get("frames") or []
    images = images_of(row)
    out = {}
    for i, frame in enumerate(frames):
        for key in ("image", "depth", "intrinsics", "extrinsics"):
            if key not in frame:
                raise ValueError(f"sample {row.get('id')!r}: meta.rgbd.frames[{i}] has no {key!r}")
        match = [p for p in images if str(p).replace("\\", "/").endswith(frame["image"])]
        if not match:
            raise ValueError(f"sample {row.get('id')!r}: meta.rgbd.frames[{i}].image {frame['image']!r} is "
                             f"not one of the row's image parts")
        root = _row_root(row, match[0], frame["image"])
        out[match[0]] = {**frame, "image_path": root / frame["image"], "depth_path": root / frame["depth"],
                         "scale": float(rgbd.get("depth_scale", 1000))}
    return out


@dataclass(frozen=True)
class Frame:
    """One posed RGB-D frame in memory: `depth` (H, W) metres (0 or non-finite: nothing seen), `rgb` (H, W,
    3) uint8 (None: grey), `intrinsics` 3x3 and `extrinsics` 4x4 world -> camera (OpenCV axes)."""

    depth: np.ndarray
    rgb: np.ndarray | None
    intrinsics: np.ndarray
    extrinsics: np.ndarray


def spatial_inputs(rows: Sequence[Mapping], grids: Sequence[Sequence[int]], config: SpatialConfig) -> dict:
    """The adapter's tensors for `rows`, whose image parts (in order) were given the token grids `grids`
    (``image_grid_thw`` rows: t, h, w in 14-px patches); each row is one scene."""
    images = [(r, path) for r in rows for path in images_of(r)]
    if len(images) != len(grids):
        raise ValueError(f"spatial collator: the batch's rows have {len(images)} image parts but the "
                         f"processor made {len(grids)} images (a point-cloud part renders extra views; rows "
                         "for the spatial path carry their frames as image parts only)")
    records = {id(r): frame_records(r) for r in rows}
    scene_of = {id(r): i for i, r in enumerate(rows)}
    listed = []
    for (row, path), (t, _, _) in zip(images, grids):
        if t != 1:
            raise ValueError(f"sample {row.get('id')!r}: image grid t={t}; the spatial collator reads still "
                             "images")
        rec = records[id(row)].get(path)
        frame = None if rec is None else Frame(
            read_depth(rec["depth_path"], rec["scale"]), read_rgb(rec["image_path"]),
            np.asarray(rec["intrinsics"]), np.asarray(rec["extrinsics"]))
        listed.append((scene_of[id(row)], frame, f"{row.get('id')}|{rec['image'] if rec else path}"))
    return frames_inputs(listed, grids, [f"{r.get('id')}|scene" for r in rows], config)


def frames_inputs(images: Sequence[tuple[int, Frame | None, str]], grids: Sequence[Sequence[int]],
                  scene_keys: Sequence[str], config: SpatialConfig) -> dict:
    """The adapter's tensors for images given as (scene number, frame or None, sampling key), in the order
    of their token grids `grids`; scene i is the union of its frames' points, `scene_keys[i]` seeding its
    sample. Keys make the sampling reproducible: the same frame gives the same points every epoch."""
    import torch

    k, n_scene = config.points_per_patch, config.scene_points
    pts, pmask, centers, cmask, token_scene = [], [], [], [], []
    for (scene, frame, key), (t, h, w) in zip(images, grids):
        if t != 1:
            raise ValueError(f"spatial inputs: image grid t={t}; the spatial path reads still images")
        tokens = (h // MERGE) * (w // MERGE)
        if frame is None:
            pts.append(np.zeros((tokens, k, 6), np.float32)), pmask.append(np.zeros((tokens, k), bool))
            centers.append(np.zeros((tokens, 3), np.float32)), cmask.append(np.zeros(tokens, bool))
        else:
            rng = np.random.default_rng(zlib.crc32(key.encode()))
            pp = patch_points(frame.depth, frame.rgb, np.asarray(frame.intrinsics), np.asarray(frame.extrinsics),
                              (h // MERGE, w // MERGE), token_px=config.token_px, k=k, rng=rng)
            pts.append(np.concatenate([pp.xyz, pp.rgb], -1)), pmask.append(pp.valid)
            centers.append(pp.center), cmask.append(pp.center_valid)
        token_scene.append(np.full(tokens, scene))
    scenes = []
    for i, key in enumerate(scene_keys):
        mine = [j for j, (s, _, _) in enumerate(images) if s == i]
        cloud = np.concatenate([pts[j][pmask[j]] for j in mine]) if mine else np.zeros((0, 6), np.float32)
        rng = np.random.default_rng(zlib.crc32(key.encode()))
        keep = rng.choice(len(cloud), size=min(n_scene, len(cloud)), replace=False) if len(cloud) else []
        scene = np.zeros((n_scene, 6), np.float32)
        scene[:len(keep)] = cloud[keep]
        mask = np.zeros(n_scene, bool)
        mask[:len(keep)] = True
        scenes.append((scene, mask))
    cat = lambda xs: torch.from_numpy(np.concatenate(xs)) if xs else torch.zeros(0)  # noqa: E731
    return {"spatial_points": cat(pts).float(), "spatial_point_mask": cat(pmask).bool(),
            "spatial_centers": cat(centers).float(), "spatial_center_mask": cat(cmask).bool(),
            "spatial_token_scene": cat(token_scene).long(),
            "spatial_scene": torch.from_numpy(np.stack([s for s, _ in scenes])).float(),
            "spatial_scene_mask": torch.from_numpy(np.stack([m for _, m in scenes]))}


def empty_inputs(grids: Sequence[Sequence[int]], config: SpatialConfig) -> dict:
    """The adapter's tensors for images that have no frame (a tool's crop shown during a rollout): no points
    under any token, and one scene with no points, so the tokens pass through unchanged."""
    import torch

    tokens = sum(int(t) * (int(h) // MERGE) * (int(w) // MERGE) for t, h, w in grids)
    k, n_scene = config.points_per_patch, config.scene_points
    return {"spatial_points": torch.zeros(tokens, k, 6),
            "spatial_point_mask": torch.zeros(tokens, k, dtype=torch.bool),
            "spatial_centers": torch.zeros(tokens, 3),
            "spatial_center_mask": torch.zeros(tokens, dtype=torch.bool),
            "spatial_token_scene": torch.zeros(tokens, dtype=torch.long),
            "spatial_scene": torch.zeros(1, n_scene, 6),
            "spatial_scene_mask": torch.zeros(1, n_scene, dtype=torch.bool)}


def rollout_inputs(row: Mapping | None, vision: Mapping[str, Any], config: SpatialConfig) -> dict:
    """The adapter's tensors for one rollout segment (`mmreason.rollout`'s ``vision_extras`` contract): the
    prompt's (`row` its prompt, with the posed frames in ``meta``) or an observation's (`row` None), whose
    processor tensors `vision` give the token grid of each image; nothing for a segment without images."""
    grids = vision.get("image_grid_thw")
    if grids is None or len(grids) == 0:
        return {}
    grids = grids.tolist() if hasattr(grids, "tolist") else [list(g) for g in grids]
    return spatial_inputs([row], grids, config) if row is not None else empty_inputs(grids, config)


@dataclass(frozen=True)
class SpatialCollator:
    """``SpatialCollator(collator, config)(rows)``: `collator`'s batch plus `spatial_inputs` when it holds
    images (a text-only batch is returned as it is)."""

    collator: Any
    config: SpatialConfig

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        batch = self.collator(rows)
        grids = batch.get("image_grid_thw")
        if grids is None or len(grids) == 0:
            return batch
        kept = [r for r in rows if r.get("id") in set(batch["ids"])] if "ids" in batch else rows
        return {**batch, **spatial_inputs(kept, grids.tolist(), self.config)}


def with_spatial_inputs(model: Any, collator: Any) -> Any:
    """`collator` wrapped in a `SpatialCollator` when `model` (or the model under a peft wrapper) carries a
    spatial adapter; `collator` itself otherwise. The training loops call this once."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    spatial = getattr(getattr(base, "config", None), "spatial", None)
    if not isinstance(spatial, dict):
        return collator
    return SpatialCollator(collator, SpatialConfig.from_dict(spatial))
