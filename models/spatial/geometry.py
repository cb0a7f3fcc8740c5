"""Posed RGB-D frames -> world points, and the 3D points under each image token of a Qwen-VL grid.

GS-Reasoner (arXiv 2510.13800, §3.1) lifts every pixel of a frame to the world with its depth, the
camera intrinsics and the camera-to-world pose, and gives each visual patch the 3D points of its pixels
(K of them, sampled) plus the point under the patch centre. Here a frame is what the 3D builder saves:
an RGB image, a depth map in metres (0 or non-finite where nothing was seen) and an OpenCV camera
(intrinsics 3x3, world-to-camera extrinsics 4x4: x right, y down, z forward).

A Qwen2.5-VL image token covers ``token_px`` x ``token_px`` pixels of the *resized* image (patch 14 x
merge 2 = 28); the depth map is at the frame's own size, so token cells are mapped back by the resize
ratio before any pixel is read.

>>> import numpy as np
>>> depth = np.full((4, 4), 2.0)
>>> xyz = backproject(depth, np.array([[2.0, 0, 2], [0, 2.0, 2], [0, 0, 1]]), np.eye(4))
>>> xyz[2, 2].round(3).tolist()          # pixel (2, 2)'s centre is 0.5 px right/below the principal point
[0.5, 0.5, 2.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def backproject(depth: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray) -> np.ndarray:
    """World coordinates (H, W, 3) of every pixel centre of `depth` (H, W), metres along the optical axis;
    pixels without depth come out non-finite (NaN)."""
    depth = np.asarray(depth, dtype=np.float64)
    h, w = depth.shape
    k = np.asarray(intrinsics, dtype=np.float64)
    ext = np.asarray(extrinsics, dtype=np.float64)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan)
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(k).T  # (H, W, 3), z = 1
    cam = rays * z[..., None]
    r, t = ext[:3, :3], ext[:3, 3]
    return (cam - t) @ r  # r is orthonormal: world = r^T (cam - t), written row-wise


@dataclass(frozen=True)
class PatchPoints:
    """The points under each image token of one frame, tokens in row-major order of the token grid.

    `xyz` (T, K, 3) world metres and `rgb` (T, K, 3) in 0-1 of up to K pixels sampled in each token's cell
    (`valid` (T, K) False for padding: a cell with fewer seen pixels); `center` (T, 3) the point under the
    cell's centre pixel (or, if that pixel saw nothing, the median of the cell's points) and
    `center_valid` (T,) False for a cell that saw nothing at all.
    """

    xyz: np.ndarray
    rgb: np.ndarray
    valid: np.ndarray
    center: np.ndarray
    center_valid: np.ndarray


def patch_points(depth: np.ndarray, rgb: np.ndarray | None, intrinsics: np.ndarray, extrinsics: np.ndarray,
                 grid: tuple[int, int], *, token_px: int = 28, k: int = 16,
                 rng: np.random.Generator | None = None) -> PatchPoints:
    """Sample up to `k` seen pixels of each token cell of a `grid` (rows, cols) of tokens.

    The resized image the tokens cover is ``grid * token_px`` pixels; `depth` (and `rgb` (H, W, 3) uint8)
    are at the frame's size. Sampling is without replacement and reproducible through `rng` (default:
    seed 0), so a sample's points do not change between epochs.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    world = backproject(depth, intrinsics, extrinsics)
    h, w = world.shape[:2]
    rows, cols = grid
    sy, sx = h / (rows * token_px), w / (cols * token_px)
    colour = np.asarray(rgb, np.float32) / 255.0 if rgb is not None else np.full((h, w, 3), 0.5, np.float32)
    seen = np.isfinite(world).all(-1)
    t = rows * cols
    out_xyz = np.zeros((t, k, 3), np.float32)
    out_rgb = np.zeros((t, k, 3), np.float32)
    valid = np.zeros((t, k), bool)
    center = np.zeros((t, 3), np.float32)
    center_valid = np.zeros(t, bool)
    # cell edges in frame pixels; a frame smaller than the resized image still gives every cell a pixel
    row_edges = np.round(np.arange(rows + 1) * token_px * sy).astype(int)
    col_edges = np.round(np.arange(cols + 1) * token_px * sx).astype(int)
    for i in range(rows):
        r0 = min(row_edges[i], h - 1)
        r1 = max(row_edges[i + 1], r0 + 1)
        for j in range(cols):
            c0 = min(col_edges[j], w - 1)
            c1 = max(col_edges[j + 1], c0 + 1)
            n = i * cols + j
            cell = seen[r0:r1, c0:c1]
            rr, cc = np.nonzero(cell)
            if len(rr) == 0:
                continue
            pick = rng.choice(len(rr), size=min(k, len(rr)), replace=False)
            rr, cc = rr[pick] + r0, cc[pick] + c0
            out_xyz[n, :len(pick)] = world[rr, cc]
            out_rgb[n, :len(pick)] = colour[rr, cc]
            valid[n, :len(pick)] = True
            mr, mc = min((r0 + r1) // 2, h - 1), min((c0 + c1) // 2, w - 1)
            center[n] = world[mr, mc] if seen[mr, mc] else np.median(world[r0:r1, c0:c1][cell], axis=0)
            center_valid[n] = True
    return PatchPoints(out_xyz, out_rgb, valid, center, center_valid)
