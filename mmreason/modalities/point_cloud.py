"""Point clouds: read, clean, align, sample and normalise, keeping the transform back to the scene.

Frames. A file holds points in its *raw* frame (a scanner's, say). An optional 4x4 ``axis_align``
matrix (ScanNet's ``axis_align_matrix``) maps raw points into the *scene* frame: axis-aligned, metres,
the frame ``boxes_3d`` use in the canonical schema and GS-Reasoner prints. Normalisation then centres
and scales scene points into the *normalised* frame a 3D encoder sees. :class:`Normalization` records
both steps, so a 3D box predicted in the normalised frame maps back to metres with
:meth:`Normalization.to_scene` (only a shift and one uniform scale, so axis-aligned boxes stay so).

Two representations for models: rendered views (:mod:`mmreason.modalities.point_render`, any 2D VLM)
and point patches (:func:`point_patches`: groups of nearby points, for point-patch models).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mmreason.errors import MediaError
from mmreason.families import Family
from mmreason.modalities.image import load_image, resolve_media_path
from mmreason.modalities.ply import read_ascii, read_header, truncation
from mmreason.modalities.point_render import View, render_views, views_caption

NORMALIZE_MODES = ("none", "center", "unit_sphere", "unit_cube")
_XYZ_KEYS = ("xyz", "points", "coord", "coords", "pos")
_RGB_KEYS = ("rgb", "colors", "color")
_IDENTITY = tuple(tuple(float(i == j) for j in range(4)) for i in range(4))


@dataclass(frozen=True)
class Normalization:
    """raw --axis_align--> scene (metres) --(p - center) / scale--> normalised.

    >>> n = Normalization(center=(1.0, 2.0, 0.0), scale=2.0)
    >>> n.to_scene((0, 0, 0, 0.5, 0.5, 0.5))
    (1.0, 2.0, 0.0, 2.0, 3.0, 1.0)
    >>> n.from_scene((1.0, 2.0, 0.0, 2.0, 3.0, 1.0))
    (0.0, 0.0, 0.0, 0.5, 0.5, 0.5)
    """

    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0
    axis_align: tuple[tuple[float, ...], ...] = _IDENTITY

    def points_to_scene(self, xyz: Any) -> np.ndarray:
        """Normalised points (N, 3) -> scene metres."""
        return np.asarray(xyz, dtype=np.float64) * self.scale + np.asarray(self.center)

    def points_from_scene(self, xyz: Any) -> np.ndarray:
        return (np.asarray(xyz, dtype=np.float64) - np.asarray(self.center)) / self.scale

    def raw_to_scene(self, xyz: Any) -> np.ndarray:
        """Raw file points (N, 3) -> scene metres through `axis_align`."""
        m = np.asarray(self.axis_align, dtype=np.float64)
        return np.asarray(xyz, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]

    def to_scene(self, box3d: Sequence[float]) -> tuple[float, ...]:
        """A normalised-frame box ``(x1, y1, z1, x2, y2, z2)`` -> metres in the scene frame."""
        pts = self.points_to_scene(np.asarray(box3d, dtype=np.float64).reshape(2, 3))
        return tuple(float(v) for v in pts.reshape(6))

    def from_scene(self, box3d: Sequence[float]) -> tuple[float, ...]:
        """A scene-frame box in metres -> the normalised frame."""
        pts = self.points_from_scene(np.asarray(box3d, dtype=np.float64).reshape(2, 3))
        return tuple(float(v) for v in pts.reshape(6))


@dataclass(frozen=True, eq=False)
class PointCloud:
    """Points in the normalised frame (float32, N x 3), colours in 0-1 or None, and how they got there."""

    xyz: np.ndarray
    rgb: np.ndarray | None
    source: str
    normalization: Normalization = field(default_factory=Normalization)
    num_source_points: int = 0
    dropped: int = 0  # non-finite points removed while loading
    render_options: tuple[tuple[str, Any], ...] = ()  # keyword arguments of `render_views` for `as_parts`

    @property
    def num_points(self) -> int:
        return len(self.xyz)

    @property
    def frame(self) -> Normalization:
        """What maps model outputs back to the scene (views carry their own cameras)."""
        return self.normalization

    @functools.cached_property
    def views(self) -> list[View]:
        """Rendered views with `render_options`; computed once."""
        return render_views(self, **dict(self.render_options))

    def as_parts(self, family: str | Family | None = None) -> list[dict]:
        """The chat parts a 2D VLM gets for this cloud: one image per rendered view, then how to read them."""
        parts = [{"type": "image", "image": load_image(v.image, family, path=self.source)}
                 for v in self.views]
        drawn = bool(dict(self.render_options).get("draw_boxes"))
        return parts + [{"type": "text", "text": views_caption(self.views, marks_drawn=drawn)}]

    @property
    def points(self) -> np.ndarray:
        """N x 3 (xyz) or N x 6 (xyz + rgb), float32."""
        return self.xyz if self.rgb is None else np.concatenate([self.xyz, self.rgb], axis=1)

    def scene_xyz(self) -> np.ndarray:
        """The points back in scene metres."""
        return self.normalization.points_to_scene(self.xyz)


# ------------------------------------------------------------------------------------------ reading
def _read_file(path: Path, sample_id: Any) -> tuple[np.ndarray, np.ndarray | None]:
    suffix = path.suffix.lower()
    if suffix in (".ply", ".pcd"):
        import open3d as o3d

        header = read_header(path) if suffix == ".ply" else None
        if header is not None and (reason := truncation(path, header)):
            raise MediaError(path, reason, sample_id=sample_id)
        if header is not None and header.fmt == "ascii":
            return read_ascii(path, header, sample_id)
        pc = o3d.io.read_point_cloud(str(path), remove_nan_points=False, remove_infinite_points=False)
        xyz = np.asarray(pc.points, dtype=np.float64)
        if len(xyz) == 0:
            raise MediaError(path, "no points could be read (corrupt file, or a cloud without points)",
                             sample_id=sample_id)
        return xyz, (np.asarray(pc.colors, dtype=np.float64) if pc.has_colors() else None)
    if suffix == ".npy":
        return _split(np.load(path, allow_pickle=False), path, sample_id)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        xyz_key = next((k for k in _XYZ_KEYS if k in arrays), None)
        if xyz_key is None and len(arrays) == 1:
            return _split(next(iter(arrays.values())), path, sample_id)
        if xyz_key is None:
            raise MediaError(path, f"no point array: expected one of keys {_XYZ_KEYS}, found "
                             f"{sorted(arrays)}", sample_id=sample_id)
        xyz, rgb = _split(arrays[xyz_key], path, sample_id)
        rgb_key = next((k for k in _RGB_KEYS if k in arrays), None)
        if rgb_key is not None:
            rgb = np.asarray(arrays[rgb_key])
            if rgb.shape != xyz.shape:
                raise MediaError(path, f"colour array {rgb_key!r} has shape {rgb.shape}, points {xyz.shape}",
                                 sample_id=sample_id)
        return xyz, rgb
    raise MediaError(path, f"unsupported point-cloud format {suffix!r} (use .ply, .pcd, .npy or .npz)",
                     sample_id=sample_id)


def _split(arr: Any, path: Any, sample_id: Any) -> tuple[np.ndarray, np.ndarray | None]:
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[1] not in (3, 6) or not np.issubdtype(arr.dtype, np.number):
        raise MediaError(path, f"expected an N x 3 (xyz) or N x 6 (xyz+rgb) numeric array, got {arr.dtype} "
                         f"{arr.shape}", sample_id=sample_id)
    return arr[:, :3].astype(np.float64), (arr[:, 3:6] if arr.shape[1] == 6 else None)


def _colours(rgb: np.ndarray | None, path: Any, sample_id: Any) -> np.ndarray | None:
    """Colours to float 0-1: integer types and anything above 1 are read as 0-255."""
    if rgb is None:
        return None
    is_int = np.issubdtype(rgb.dtype, np.integer)
    rgb = rgb.astype(np.float64)
    finite = rgb[np.isfinite(rgb)]
    if finite.size and (finite.min() < 0 or finite.max() > 255):
        raise MediaError(path, f"colours span {finite.min():g}..{finite.max():g}, neither 0-1 nor 0-255",
                         sample_id=sample_id)
    return rgb / 255.0 if is_int or (finite.size and finite.max() > 1.0) else rgb


# ----------------------------------------------------------------------------------------- sampling
def farthest_point_sample(xyz: Any, n: int, *, seed: int = 0) -> np.ndarray:
    """Indices of `n` points chosen by farthest-point sampling (start point drawn from `seed`).

    Each pick is the point farthest from those already picked, so the picks cover the cloud: every
    point lies within the covering radius r of a pick while picks are at least r apart (a 2-approximation
    of the best covering). Vectorised: `n` passes of O(N) numpy work.

    >>> sorted(farthest_point_sample([[0, 0, 0], [0.1, 0, 0], [5, 0, 0]], 2, seed=0).tolist())
    [0, 2]
    """
    pts = np.asarray(xyz, dtype=np.float32)[:, :3]
    total = len(pts)
    if n >= total:
        return np.arange(total)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    picks = np.empty(n, dtype=np.int64)
    picks[0] = np.random.default_rng(seed).integers(total)
    # One contiguous array per axis and in-place ufuncs: ~10x faster than (N, 3) arithmetic or einsum.
    cols = [np.ascontiguousarray(pts[:, i]) for i in range(3)]
    dist = np.full(total, np.inf, dtype=np.float32)
    d2, tmp = np.empty(total, dtype=np.float32), np.empty(total, dtype=np.float32)
    for i in range(1, n):
        last = pts[picks[i - 1]]
        np.subtract(cols[0], last[0], out=d2)
        np.multiply(d2, d2, out=d2)
        for axis in (1, 2):
            np.subtract(cols[axis], last[axis], out=tmp)
            np.multiply(tmp, tmp, out=tmp)
            np.add(d2, tmp, out=d2)
        np.minimum(dist, d2, out=dist)
        picks[i] = int(np.argmax(dist))
    return picks


def voxel_down_sample(
    xyz: np.ndarray, rgb: np.ndarray | None, voxel_size: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Open3D voxel-grid down-sampling: one point (mean position and colour) per occupied voxel."""
    import open3d as o3d

    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(xyz, dtype=np.float64)))
    if rgb is not None:
        pc.colors = o3d.utility.Vector3dVector(np.asarray(rgb, dtype=np.float64))
    down = pc.voxel_down_sample(float(voxel_size))
    return np.asarray(down.points), (np.asarray(down.colors) if rgb is not None else None)


def point_patches(
    points: Any, num_patches: int, patch_size: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """FPS centres and their k-nearest-neighbour groups, the input of a point-patch encoder.

    Returns ``centers`` (G, 3) and ``patches`` (G, K, C): each patch's xyz relative to its centre, then
    any further channels (rgb) unchanged, neighbours ordered nearest first. A cloud with fewer than K
    points repeats its neighbours; a max-pooling encoder is unchanged by repeats.
    """
    import open3d as o3d

    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"points must be N x C with C >= 3, got shape {pts.shape}")
    if not 0 < num_patches <= len(pts):
        raise ValueError(f"cannot take {num_patches} patch centres from {len(pts)} points")
    centers = pts[farthest_point_sample(pts, num_patches, seed=seed), :3]
    # Open3D's KD-tree answers each centre's k nearest, nearest first: O(G log N) instead of a (G, N) matrix.
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts[:, :3].astype(np.float64)))
    tree = o3d.geometry.KDTreeFlann(cloud)
    k = min(patch_size, len(pts))
    near = np.stack([np.asarray(tree.search_knn_vector_3d(c.astype(np.float64).reshape(3, 1), k)[1])
                     for c in centers])
    near = np.resize(near.T, (patch_size, num_patches)).T  # repeat cyclically up to K
    patches = pts[near].copy()
    patches[..., :3] -= centers[:, None, :]
    return centers, patches


# ------------------------------------------------------------------------------------------- loader
def _normalization(xyz: np.ndarray, mode: str, axis_align: Any, path: Any, sample_id: Any) -> Normalization:
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"unknown normalize mode {mode!r}; known: {', '.join(NORMALIZE_MODES)}")
    lo, hi = xyz.min(0), xyz.max(0)
    center = np.zeros(3) if mode == "none" else (lo + hi) / 2
    if mode == "unit_sphere":
        scale = float(np.sqrt(((xyz - center) ** 2).sum(1).max()))
    elif mode == "unit_cube":
        scale = float((hi - lo).max() / 2)
    else:
        scale = 1.0
    if not scale > 0:
        raise MediaError(path, f"all {len(xyz)} points coincide; cannot normalise a degenerate cloud",
                         sample_id=sample_id)
    return Normalization(tuple(float(v) for v in center), scale, axis_align)


def load_point_cloud(
    part_value: Any, *, root: str | os.PathLike | None = None, sample_id: Any = None,
    num_points: int | None = None, voxel_size: float | None = None, axis_align: Any = None,
    normalize: str = "none", seed: int = 0, **options: Any,
) -> PointCloud:
    """Read a point-cloud part (a .ply/.pcd/.npy/.npz path, or an N x 3|6 array) into a :class:`PointCloud`.

    Steps, in order: refuse a cloud with infinite or float32-overflowing coordinates (a corrupt file),
    drop NaN points (counted in ``dropped``; all of them -> error), apply `axis_align` (4x4, raw ->
    scene), voxel down-sample at `voxel_size` metres, farthest-point sample to `num_points` (a smaller
    cloud repeats points, seeded, so tensors keep their shape), then normalise:
    ``"none"`` keeps scene metres, ``"center"`` centres the bounding box, ``"unit_sphere"`` also scales
    into the unit ball, ``"unit_cube"`` into [-1, 1]^3. Options meant for other modalities are ignored.

    >>> import numpy as np
    >>> pc = load_point_cloud(np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [2, 2, 2.0]]), normalize="unit_cube")
    >>> pc.normalization.to_scene(tuple(pc.xyz.min(0)) + tuple(pc.xyz.max(0)))
    (0.0, 0.0, 0.0, 2.0, 2.0, 2.0)
    """
    if isinstance(part_value, (str, os.PathLike)):
        path = resolve_media_path(part_value, root, sample_id=sample_id)
        if not path.is_file():
            raise MediaError(path, "file not found", sample_id=sample_id)
        if path.stat().st_size == 0:
            raise MediaError(path, "empty file", sample_id=sample_id)
        source = str(path)
        try:
            xyz, rgb = _read_file(path, sample_id)
        except MediaError:
            raise
        except Exception as e:
            raise MediaError(path, f"cannot read point cloud: {e}", sample_id=sample_id) from None
    else:
        source = "<array>"
        xyz, rgb = _split(part_value, source, sample_id)
    total = len(xyz)
    rgb = _colours(rgb, source, sample_id)
    # NaN marks a missing return (scanners write it) and is dropped below; an infinite coordinate, or one
    # past float32 (what Open3D's uninitialised memory looks like), is a corrupt file: refused, not dropped.
    broken = np.isinf(xyz).any(1) | (np.abs(np.nan_to_num(xyz)) > np.finfo(np.float32).max).any(1)
    if broken.any():
        first = int(np.argmax(broken))
        raise MediaError(source, f"{int(broken.sum())} of {total} points have infinite or out-of-range "
                         f"coordinates (first: point {first}, {xyz[first].tolist()})", sample_id=sample_id)
    keep = np.isfinite(xyz).all(1) & (np.isfinite(rgb).all(1) if rgb is not None else True)
    if total == 0:
        raise MediaError(source, "the cloud holds no points", sample_id=sample_id)
    if not keep.any():
        raise MediaError(source, f"all {total} points are NaN", sample_id=sample_id)
    xyz, rgb = xyz[keep], (rgb[keep] if rgb is not None else None)
    if len(xyz) < 2:
        raise MediaError(source, "a single point is not a point cloud", sample_id=sample_id)
    align = _IDENTITY
    if axis_align is not None:
        matrix = np.asarray(axis_align, dtype=np.float64).reshape(4, 4)
        align = tuple(tuple(float(v) for v in row) for row in matrix)
    xyz = Normalization(axis_align=align).raw_to_scene(xyz)
    if voxel_size:
        xyz, rgb = voxel_down_sample(xyz, rgb, voxel_size)
    if num_points is not None:
        if len(xyz) >= num_points:
            idx = farthest_point_sample(xyz, num_points, seed=seed)
        else:
            extra = np.random.default_rng(seed).integers(len(xyz), size=num_points - len(xyz))
            idx = np.concatenate([np.arange(len(xyz)), extra])
        xyz, rgb = xyz[idx], (rgb[idx] if rgb is not None else None)
    norm = _normalization(xyz, normalize, align, source, sample_id)
    xyz = norm.points_from_scene(xyz).astype(np.float32)
    rgb = None if rgb is None else rgb.astype(np.float32)
    return PointCloud(xyz, rgb, source, norm, total, int(total - keep.sum()))


_LOAD_KEYS = ("num_points", "voxel_size", "axis_align", "normalize", "seed")
_RENDER_KEYS = {"views": "k", "elevation": "elevation", "fov": "fov", "point_size": "point_size",
                "start_azimuth": "start_azimuth"}


def load_part(
    part: Mapping[str, Any], *, root: str | os.PathLike | None = None, family: str | Family | None = None,
    sample_id: Any = None, defaults: Mapping[str, Any] | None = None,
) -> PointCloud:
    """Registry loader for ``{"type": "point_cloud", "point_cloud": path, ...}`` parts.

    Options (the part's, else the recipe's `defaults`): loading ``num_points``, ``voxel_size``,
    ``axis_align``, ``normalize``, ``seed``; rendering ``views`` (count), ``view_size`` (int or [w, h]),
    ``elevation``, ``fov``, ``point_size``, ``start_azimuth`` and ``marks`` (scene-frame 3D boxes drawn as
    numbered marks on every view, the AffordBot candidates).
    """
    value = part.get("point_cloud")
    if value is None:
        raise MediaError("<missing>", "point_cloud part has no 'point_cloud' value", sample_id=sample_id)
    if isinstance(value, PointCloud):
        return value
    opts = {**(defaults or {}), **{k: v for k, v in part.items() if k not in ("type", "point_cloud")}}
    cloud = load_point_cloud(value, root=root, sample_id=sample_id,
                             **{k: opts[k] for k in _LOAD_KEYS if k in opts})
    render = {arg: opts[key] for key, arg in _RENDER_KEYS.items() if key in opts}
    if "view_size" in opts:
        size = opts["view_size"]
        render["width"], render["height"] = (size, size) if isinstance(size, int) else size
    if opts.get("marks"):
        render["boxes_3d"], render["draw_boxes"] = list(opts["marks"]), True
    return PointCloud(cloud.xyz, cloud.rgb, cloud.source, cloud.normalization, cloud.num_source_points,
                      cloud.dropped, tuple(sorted(render.items())))
