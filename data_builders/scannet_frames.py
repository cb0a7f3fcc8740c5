"""ScanNet's exported RGB-D frames -> the posed RGB-D frames GS-Reasoner's spatial path reads.

ScanNet's SensReader (github.com/ScanNet/ScanNet, ``SensReader/python``) exports a scan's ``.sens`` file as
one folder per scene::

    color/N.jpg                       colour frames (1296 x 968)
    depth/N.png                       16-bit depth in millimetres, 0 = no measurement (640 x 480)
    pose/N.txt                        4 x 4 camera -> world; a frame whose tracking failed holds -inf
    intrinsic/intrinsic_color.txt     4 x 4, the pinhole matrix in its top-left 3 x 3
    intrinsic/intrinsic_depth.txt

The spatial path (`mmreason.models.spatial.collate`) reads one image part per frame and, in
``meta["rgbd"]``, a depth PNG on the image's own pixel grid with its intrinsics and world -> camera
extrinsics. The colour and depth cameras of a frame share one pose and differ in their intrinsics, so a
colour pixel and a depth pixel that see the same ray are related by K_color K_depth^-1 whatever the depth;
each colour frame is resampled onto the depth camera's grid through that map (bilinear) and the frame
keeps the depth intrinsics. `num_frames` frames with a valid pose are taken evenly spaced over the scan
(GS-Reasoner's release feeds 32 per scene, 48 in pre-training: github.com/WU-CVGL/GS-Reasoner); with
ScanNet's axis alignment matrix the world is the axis-aligned scene frame its boxes are given in.

Frames are written once per scene under ``media/scannet/<scene>/`` of the dataset (rows of one scene share
them). A missing, unreadable or malformed file is an error naming it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from mmreason.data_builders.common import atomic_target
from mmreason.errors import MediaError

DEPTH_SCALE = 1000  # ScanNet's depth PNGs are in millimetres
_FRAME_NAME = re.compile(r"^(\d+)\.jpg$")


def read_matrix(path: Path) -> np.ndarray:
    """A 4 x 4 matrix written as 4 lines of 4 numbers (SensReader's pose and intrinsic files); a `MediaError`
    naming the file when it is missing or not that."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MediaError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        values = []
    if len(values) != 16:
        raise MediaError(path, "expected a 4 x 4 matrix (16 numbers)")
    return np.array(values, dtype=np.float64).reshape(4, 4)


def frame_numbers(folder: Path) -> list[int]:
    """The frame numbers of an export, in order (from ``color/N.jpg``)."""
    color = Path(folder) / "color"
    if not color.is_dir():
        raise MediaError(color, "no color/ folder: not a ScanNet SensReader export")
    found = sorted(int(m.group(1)) for f in os.listdir(color) if (m := _FRAME_NAME.match(f)))
    if not found:
        raise MediaError(color, "no N.jpg colour frames")
    return found


def pick(numbers: Sequence[int], n: int) -> list[int]:
    """`n` of `numbers` evenly spaced, first and last included (all of them when there are fewer).

    >>> pick(list(range(10)), 4)
    [0, 3, 6, 9]
    """
    if n <= 0:
        raise ValueError(f"num_frames must be >= 1, got {n}")
    if len(numbers) <= n:
        return list(numbers)
    return [numbers[int(round(i * (len(numbers) - 1) / (n - 1)))] for i in range(n)] if n > 1 else [numbers[0]]


def read_depth_png(path: Path) -> np.ndarray:
    """A 16-bit single-channel depth PNG as uint16 (millimetres); a `MediaError` naming the file otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("I;16", "I;16B", "I;16L", "I"):
                raise MediaError(path, f"depth must be a 16-bit single-channel PNG, got mode {im.mode}")
            depth = np.asarray(im)
    except FileNotFoundError:
        raise MediaError(path, "depth frame not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise MediaError(path, f"cannot be read as a PNG: {exc}") from None
    if depth.min(initial=0) < 0 or depth.max(initial=0) > np.iinfo(np.uint16).max:
        raise MediaError(path, "depth values outside 16 bits")
    return depth.astype(np.uint16)


def read_color(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise MediaError(path, "colour frame not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise MediaError(path, f"cannot be read as an image: {exc}") from None


def register_color(color, k_color: np.ndarray, k_depth: np.ndarray, size: tuple[int, int]):
    """The colour frame resampled onto the depth camera's pixel grid `size` (width, height): the output pixel
    centred at (x, y) shows the colour at K_color K_depth^-1 (x, y, 1) (both cameras at one centre; pixel i
    spans [i, i + 1), as `mmreason.models.spatial.geometry` reads them)."""
    from PIL import Image

    m = np.asarray(k_color, np.float64)[:3, :3] @ np.linalg.inv(np.asarray(k_depth, np.float64)[:3, :3])
    return color.transform(size, Image.Transform.AFFINE, data=tuple(m[:2].reshape(-1)),
                           resample=Image.Resampling.BILINEAR)


def _write_once(path: Path, save) -> None:
    """Write `path` through `save(tmp)` unless it exists (rows of a scene share its frames; processes that
    race write the same bytes, and `os.replace` keeps the file whole)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_target(path)
    save(tmp)
    os.replace(tmp, path)


def export_frames(folder: Path, scene: str, root: Path, *, num_frames: int = 32,
                  axis_align: Sequence[Sequence[float]] | None = None) -> tuple[list[dict], dict]:
    """A scene's export `folder` -> (its image parts, its ``meta["rgbd"]``), frames written under `root`'s
    ``media/scannet/<scene>/`` (paths in both relative to `root`). `axis_align` (4 x 4, ScanNet's
    ``axisAlignment``) maps the scan's world into the frame the extrinsics then point from."""
    from PIL import Image

    folder = Path(folder)
    k_color = read_matrix(folder / "intrinsic" / "intrinsic_color.txt")
    k_depth = read_matrix(folder / "intrinsic" / "intrinsic_depth.txt")
    align = np.eye(4) if axis_align is None else np.asarray(axis_align, np.float64)
    valid = []
    for n in frame_numbers(folder):
        pose = read_matrix(folder / "pose" / f"{n}.txt")
        if np.isfinite(pose).all():  # SensReader writes -inf where tracking was lost: no camera to use
            valid.append((n, pose))
    if not valid:
        raise MediaError(folder / "pose", "no frame has a finite camera pose")
    poses = dict(valid)
    parts, frames = [], []
    safe = re.sub(r"[^\w.-]+", "_", scene)
    for n in pick([n for n, _ in valid], num_frames):
        depth_src = folder / "depth" / f"{n}.png"
        depth = read_depth_png(depth_src)
        image_rel = f"media/scannet/{safe}/color-{n}.jpg"
        depth_rel = f"media/scannet/{safe}/depth-{n}.png"
        size = (depth.shape[1], depth.shape[0])
        _write_once(root / image_rel, lambda tmp: register_color(
            read_color(folder / "color" / f"{n}.jpg"), k_color, k_depth, size).save(tmp, quality=95))
        _write_once(root / depth_rel, lambda tmp: Image.fromarray(depth).save(tmp, format="PNG"))
        world_to_camera = np.linalg.inv(align @ poses[n])
        parts.append({"type": "image", "image": image_rel})
        frames.append({"image": image_rel, "depth": depth_rel, "intrinsics": k_depth[:3, :3].tolist(),
                       "extrinsics": world_to_camera.tolist(), "frame": n})
    return parts, {"depth_scale": DEPTH_SCALE, "frames": frames}
