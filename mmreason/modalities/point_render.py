"""Rendered views of a point cloud, so any 2D VLM can answer about a 3D scene (the AffordBot path).

K cameras orbit the scene looking at its centre; each :class:`View` keeps its image, its camera
(intrinsics + world-to-camera extrinsics, OpenCV convention: x right, y down, z forward, in scene
metres) and its depth map, so a pixel maps back to a 3D point (:meth:`View.unproject`). 3D boxes are
projected onto every view as 2D boxes (:class:`ProjectedBox`, with how many of the box's points are
visible there), and can be drawn as numbered marks.

Two renderers: ``"numpy"`` (default) splats every point as a disc of `point_size` pixels into a
z-buffer; it is deterministic, needs no GPU or display, and is safe in any worker process.
``"open3d"`` uses Open3D's Filament OffscreenRenderer (headless needs a Vulkan or EGL driver; its
engine is one per process), and serves mostly to cross-check the camera maths. :func:`render_camera` runs
the numpy splatter for one camera of the caller's choosing (the 3D tools, the room builder's camera path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

NEAR = 1e-3  # metres: points closer to the camera plane are not drawn


@runtime_checkable
class SceneCloud(Protocol):
    """What the renderer reads from a cloud: its points in scene metres and its colours (0-1, or None).

    `mmreason.modalities.point_cloud.PointCloud` is one; the renderer names only this shape, because the
    point cloud module imports the renderer (its `views`), and the dependency must run one way.
    """

    rgb: np.ndarray | None

    def scene_xyz(self) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera: `intrinsics` 3x3, `extrinsics` 4x4 world -> camera, image size in pixels.

    Pixel coordinates are continuous: the image spans [0, width] x [0, height], pixel (i, j) covers
    [i, i + 1) x [j, j + 1).
    """

    intrinsics: np.ndarray
    extrinsics: np.ndarray
    width: int
    height: int

    @classmethod
    def look_at(cls, eye: Sequence[float], target: Sequence[float], *, width: int, height: int,
                fov: float = 60.0, up: Sequence[float] = (0.0, 0.0, 1.0)) -> "Camera":
        """A camera at `eye` looking at `target`; `fov` (degrees) spans the image's shorter side."""
        eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
        forward = target - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, up)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        ext = np.eye(4)
        ext[:3, :3] = np.stack([right, down, forward])
        ext[:3, 3] = -ext[:3, :3] @ eye
        f = min(width, height) / 2 / math.tan(math.radians(fov) / 2)
        intr = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
        return cls(intr, ext, int(width), int(height))

    @property
    def position(self) -> np.ndarray:
        r, t = self.extrinsics[:3, :3], self.extrinsics[:3, 3]
        return -r.T @ t

    def to_camera(self, xyz: Any) -> np.ndarray:
        return np.asarray(xyz, dtype=np.float64) @ self.extrinsics[:3, :3].T + self.extrinsics[:3, 3]

    def project(self, xyz: Any) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel coordinates (N, 2) and depths (N,); depth <= 0 is behind."""
        cam = self.to_camera(xyz)
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = (cam @ self.intrinsics.T)[:, :2] / z[:, None]
        return uv, z

    def unproject(self, u: float, v: float, depth: float) -> np.ndarray:
        """Pixel (u, v) at `depth` metres -> world point."""
        ray = np.linalg.solve(self.intrinsics, np.array([u, v, 1.0])) * depth
        r, t = self.extrinsics[:3, :3], self.extrinsics[:3, 3]
        return r.T @ (ray - t)

    def as_dict(self) -> dict:
        """JSON-able record of the camera (what a dataset row stores in `meta`)."""
        return {"intrinsics": self.intrinsics.tolist(), "extrinsics": self.extrinsics.tolist(),
                "width": self.width, "height": self.height}


@dataclass(frozen=True)
class ProjectedBox:
    """A 3D box seen in one view: `box` in the view's pixels (clipped to the image), `index` into the
    boxes given, and how many of the cloud's points inside the 3D box are visible in this view."""

    index: int
    label: str | None
    box: tuple[float, float, float, float]
    visible_points: int


@dataclass(frozen=True, eq=False)
class View:
    image: Any  # PIL.Image.Image, RGB
    camera: Camera
    depth: np.ndarray  # (H, W) metres along the optical axis; inf where nothing was drawn
    azimuth: float
    elevation: float
    boxes: tuple[ProjectedBox, ...] = ()

    def unproject(self, x: float, y: float, *, search: int = 3) -> tuple[float, float, float] | None:
        """The scene point under pixel (x, y): the nearest drawn pixel within `search` pixels, or None."""
        h, w = self.depth.shape
        col, row = int(math.floor(x)), int(math.floor(y))
        r0, r1 = max(row - search, 0), min(row + search + 1, h)
        c0, c1 = max(col - search, 0), min(col + search + 1, w)
        if r0 >= r1 or c0 >= c1:
            return None
        window = self.depth[r0:r1, c0:c1]
        rows, cols = np.nonzero(np.isfinite(window))
        if len(rows) == 0:
            return None
        best = np.argmin((rows + r0 - row) ** 2 + (cols + c0 - col) ** 2)
        rr, cc = rows[best] + r0, cols[best] + c0
        return tuple(float(v) for v in self.camera.unproject(cc + 0.5, rr + 0.5, float(self.depth[rr, cc])))


# ----------------------------------------------------------------------------------------- cameras
def orbit_cameras(xyz: np.ndarray, k: int, *, width: int, height: int, fov: float = 60.0,
                  elevation: float = 30.0, start_azimuth: float = 0.0) -> list[tuple[float, Camera]]:
    """`k` cameras evenly spaced in azimuth around the bounding box of `xyz`, far enough that the
    box's bounding sphere fits the field of view. Returns (azimuth in degrees, camera) pairs."""
    if not -89.0 <= elevation <= 89.0:
        raise ValueError(f"elevation must be within +-89 degrees, got {elevation}")
    lo, hi = xyz.min(0), xyz.max(0)
    center = (lo + hi) / 2
    radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-6)
    dist = radius / math.sin(math.radians(fov) / 2)
    el = math.radians(elevation)
    out = []
    for i in range(k):
        az = start_azimuth + 360.0 * i / k
        a = math.radians(az)
        eye = center + dist * np.array([math.cos(el) * math.cos(a), math.cos(el) * math.sin(a), math.sin(el)])
        out.append((az, Camera.look_at(eye, center, width=width, height=height, fov=fov)))
    return out


# --------------------------------------------------------------------------------------- renderers
def point_colors(xyz: np.ndarray, rgb: np.ndarray | None) -> np.ndarray:
    """uint8 (N, 3) colours to draw the points `xyz` with: `rgb` (0-1) scaled to 0-255, or, for a cloud
    without colours, a viridis map of height (z)."""
    if rgb is not None:
        return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
    from matplotlib import colormaps

    zs = xyz[:, 2]
    level = (zs - zs.min()) / max(float(np.ptp(zs)), 1e-9)
    return (colormaps["viridis"](level)[:, :3] * 255).round().astype(np.uint8)


def splat_radius(num_points: int, width: int, height: int) -> int:
    """The default splat radius in pixels (1 to 8): discs that together cover about the image area the
    cloud spans."""
    return int(np.clip(round(math.sqrt(0.8 * width * height / (math.pi * num_points))), 1, 8))


def _disc(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    dx, dy = np.meshgrid(r, r)
    keep = dx ** 2 + dy ** 2 <= radius ** 2 + radius  # a rounder disc than the strict circle
    return np.stack([dx[keep], dy[keep]], 1)


def _splat(
    xyz: np.ndarray, colors: np.ndarray, cam: Camera, radius: int, background: int
) -> tuple[np.ndarray, np.ndarray]:
    """Z-buffer point splatting: each point covers a disc of pixels; the nearest point wins a pixel."""
    w, h = cam.width, cam.height
    uv, z = cam.project(xyz)
    front = z > NEAR
    uv, z, colors = uv[front], z[front], colors[front]
    offsets = _disc(radius)
    px = (np.floor(uv[:, 0]).astype(np.int64)[:, None] + offsets[None, :, 0]).ravel()
    py = (np.floor(uv[:, 1]).astype(np.int64)[:, None] + offsets[None, :, 1]).ravel()
    owner = np.repeat(np.arange(len(z)), len(offsets))
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    pix, owner = py[inside] * w + px[inside], owner[inside]
    order = np.lexsort((z[owner], pix))  # by pixel, then nearest first: deterministic, no write races
    pix, owner = pix[order], owner[order]
    first = np.ones(len(pix), dtype=bool)
    first[1:] = pix[1:] != pix[:-1]
    image = np.full((h * w, 3), background, dtype=np.uint8)
    depth = np.full(h * w, np.inf, dtype=np.float32)
    image[pix[first]] = colors[owner[first]]
    depth[pix[first]] = z[owner[first]]
    return image.reshape(h, w, 3), depth.reshape(h, w)


def _render_open3d(xyz: np.ndarray, colors: np.ndarray, cams: list[Camera], radius: int,
                   background: int) -> list[tuple[np.ndarray, np.ndarray]]:
    import open3d as o3d

    rendering = o3d.visualization.rendering
    renderer = rendering.OffscreenRenderer(cams[0].width, cams[0].height)
    try:
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz.astype(np.float64)))
        pc.colors = o3d.utility.Vector3dVector(colors.astype(np.float64) / 255.0)
        mat = rendering.MaterialRecord()
        mat.shader = "defaultUnlit"
        mat.point_size = float(2 * radius + 1)
        renderer.scene.add_geometry("cloud", pc, mat)
        renderer.scene.set_background([background / 255.0] * 3 + [1.0])
        renderer.scene.view.set_post_processing(False)  # no tone mapping: pixels keep the points' colours
        out = []
        for cam in cams:
            renderer.setup_camera(cam.intrinsics, cam.extrinsics, cam.width, cam.height)
            img = np.asarray(renderer.render_to_image())[..., :3].copy()
            depth = np.asarray(renderer.render_to_depth_image(z_in_view_space=True)).astype(np.float32)
            out.append((img, np.where(np.isfinite(depth) & (depth > 0), depth, np.inf).astype(np.float32)))
        return out
    finally:
        del renderer


# ------------------------------------------------------------------------------------------- boxes
_EDGES = [(a, a | bit) for a in range(8) for bit in (1, 2, 4) if not a & bit]


def project_box(box3d: Sequence[float], cam: Camera) -> tuple[float, float, float, float] | None:
    """The 2D box (view pixels, clipped to the image) covering a 3D box, or None when it is out of view.

    Box edges that cross the near plane are cut there, so a box the camera stands next to or inside
    still projects correctly.
    """
    lo, hi = np.asarray(box3d[:3], dtype=np.float64), np.asarray(box3d[3:6], dtype=np.float64)
    corners = np.array([[(hi if i & 1 else lo)[0], (hi if i & 2 else lo)[1], (hi if i & 4 else lo)[2]]
                        for i in range(8)])
    z = cam.to_camera(corners)[:, 2]
    pts = [corners[z > NEAR]]
    for a, b in _EDGES:
        if (z[a] > NEAR) != (z[b] > NEAR):
            t = (NEAR - z[a]) / (z[b] - z[a])
            pts.append((corners[a] + t * (corners[b] - corners[a]))[None])
    pts = np.concatenate(pts)
    if len(pts) == 0:
        return None
    uv, _ = cam.project(pts)
    x1, y1 = np.clip(uv.min(0), 0, [cam.width, cam.height])
    x2, y2 = np.clip(uv.max(0), 0, [cam.width, cam.height])
    return (float(x1), float(y1), float(x2), float(y2)) if x2 > x1 and y2 > y1 else None


def visible_points(xyz: np.ndarray, cam: Camera, depth: np.ndarray) -> np.ndarray:
    """Which points (N,) win (or tie) the depth test of `depth`, a view's depth map, at the pixel they
    project to."""
    uv, z = cam.project(xyz)
    col, row = np.floor(uv[:, 0]), np.floor(uv[:, 1])
    ok = (z > NEAR) & (col >= 0) & (col < cam.width) & (row >= 0) & (row < cam.height)
    vis = np.zeros(len(xyz), dtype=bool)
    buf = depth[row[ok].astype(np.int64), col[ok].astype(np.int64)]
    vis[ok] = z[ok] <= buf * 1.01 + 0.01  # 1% + 1 cm: the tolerance of a rasterised depth buffer
    return vis


def _draw_marks(image: Any, boxes: Sequence[ProjectedBox]) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    for b in boxes:
        draw.rectangle(b.box, outline=(255, 0, 0), width=2)
        tx, ty = b.box[0] + 2, b.box[1] + 1
        draw.rectangle((tx - 1, ty - 1, tx + 7 * len(str(b.index)) + 1, ty + 11), fill=(255, 0, 0))
        draw.text((tx, ty), str(b.index), fill=(255, 255, 255))


# -------------------------------------------------------------------------------------------- entry
def render_camera(
    points: SceneCloud | tuple[np.ndarray, np.ndarray], camera: Camera, *, point_size: int | None = None,
    background: int = 255,
) -> tuple[Any, np.ndarray]:
    """`points` as `camera` sees them, by the numpy splatter: (RGB PIL image, depth map (H, W) in metres
    along the optical axis, inf where nothing was drawn).

    `points` is a `PointCloud` (drawn in scene metres, coloured by `point_colors`) or an ``(xyz, colors)``
    pair: (N, 3) scene points and (N, 3) uint8 colours. `point_size` is the splat radius in pixels
    (default: `splat_radius`, as `render_views` picks it).
    """
    from PIL import Image

    if isinstance(points, SceneCloud):
        xyz = points.scene_xyz()
        colors = point_colors(xyz, points.rgb)
    else:
        xyz, colors = points
    if point_size is None:
        point_size = splat_radius(len(xyz), camera.width, camera.height)
    image, depth = _splat(xyz, colors, camera, point_size, background)
    return Image.fromarray(image, "RGB"), depth


def render_views(
    cloud: SceneCloud, *, k: int = 4, width: int = 448, height: int = 448, fov: float = 60.0,
    elevation: float = 30.0, start_azimuth: float = 0.0, point_size: int | None = None,
    boxes_3d: Sequence[Any] = (), draw_boxes: bool = False, background: int = 255, backend: str = "numpy",
) -> list[View]:
    """`k` surround views of `cloud`, rendered in scene metres (whatever the cloud's normalisation).

    `boxes_3d` are scene-frame boxes: canonical ``{"label", "box": [x1, y1, z1, x2, y2, z2]}`` dicts or
    bare 6-sequences; each view lists those that fall in it, and `draw_boxes` draws them as marks
    numbered by their index. `point_size` is the splat radius in pixels (default: from the point density).
    Points without colour are coloured by height.
    """
    from PIL import Image

    if backend not in ("numpy", "open3d"):
        raise ValueError(f"unknown renderer {backend!r}; use 'numpy' or 'open3d'")
    xyz = cloud.scene_xyz()
    colors = point_colors(xyz, cloud.rgb)
    if point_size is None:
        point_size = splat_radius(len(xyz), width, height)
    cams = orbit_cameras(xyz, k, width=width, height=height, fov=fov, elevation=elevation,
                         start_azimuth=start_azimuth)
    if backend == "numpy":
        rendered = [_splat(xyz, colors, cam, point_size, background) for _, cam in cams]
    else:
        rendered = _render_open3d(xyz, colors, [cam for _, cam in cams], point_size, background)
    boxes = [(b.get("label"), b["box"]) if isinstance(b, dict) else (None, b) for b in boxes_3d]
    views = []
    for (az, cam), (img, depth) in zip(cams, rendered):
        image = Image.fromarray(img, "RGB")
        visible = visible_points(xyz, cam, depth) if boxes else None
        projected = []
        for i, (label, box) in enumerate(boxes):
            b2 = project_box(box, cam)
            if b2 is None:
                continue
            # 1 micron of slack: points on a face must not drop out through the normalisation round trip.
            lo, hi = np.asarray(box[:3]) - 1e-6, np.asarray(box[3:6]) + 1e-6
            inside = (xyz >= lo).all(1) & (xyz <= hi).all(1)
            projected.append(ProjectedBox(i, label, b2, int((inside & visible).sum())))
        if draw_boxes:
            _draw_marks(image, projected)
        views.append(View(image, cam, depth, az, elevation, tuple(projected)))
    return views


def views_caption(views: Sequence[View], *, marks_drawn: bool = False) -> str:
    """The text that tells a VLM what the rendered views are (and the numbered marks, when drawn)."""
    if not views:
        return "The 3D scene could not be rendered."
    azimuths = ", ".join(f"{v.azimuth:g}" for v in views)
    text = (f"The 3D scene is shown in {len(views)} rendered views from cameras around it, in order of "
            f"azimuth ({azimuths} degrees), looking down at {views[0].elevation:g} degrees.")
    marked = sorted({b.index for v in views for b in v.boxes})
    if marks_drawn and marked:
        text += f" Red numbered boxes mark candidate objects: {', '.join(map(str, marked))}."
    return text
