"""Rooms of primitive furniture: open3d meshes sampled into coloured point clouds with exact 3D boxes.

A `Room` is a floor (z = 0) and four walls around [0, W] x [0, D] metres, with furniture made of boxes,
cylinders and spheres (`CATALOGUE`), each rotated by a multiple of 90 degrees so its box stays axis-aligned.
Points are sampled on the mesh surfaces, area-weighted, with this module's own generator (open3d's sampler
draws from a global engine, which would tie a sample to the order samples are built in). A surface
point lies inside its mesh's convex hull, so each object's box (the min/max of its mesh vertices) holds
every one of its points; objects keep 10 cm apart and off the walls, so no other object's point is inside.

`path_cameras` pans a camera around a standing point inside the room (a video-like walk-through) and
`render_path` splats the cloud into each view, with per-object visibility (how many of its points win the
depth test), which is what "when does X first appear" is computed from, and the view's depth map (a posed
RGB-D frame, with the camera).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# category -> ((width lo, hi), (depth lo, hi), (height lo, hi)) in metres, before rotation
CATALOGUE: dict[str, tuple[tuple[float, float], ...]] = {
    "table": ((0.8, 1.6), (0.6, 1.0), (0.7, 0.8)),
    "chair": ((0.42, 0.5), (0.42, 0.5), (0.85, 1.0)),
    "bed": ((1.4, 1.8), (1.9, 2.1), (0.9, 1.1)),
    "sofa": ((1.6, 2.2), (0.8, 0.95), (0.75, 0.9)),
    "lamp": ((0.35, 0.45), (0.35, 0.45), (1.4, 1.7)),
    "cabinet": ((0.6, 1.0), (0.4, 0.5), (0.8, 1.2)),
    "tv": ((1.0, 1.4), (0.35, 0.45), (1.0, 1.2)),
    "plant": ((0.4, 0.6), (0.4, 0.6), (0.8, 1.2)),
    "bookshelf": ((0.8, 1.2), (0.3, 0.35), (1.6, 2.0)),
    "stool": ((0.35, 0.4), (0.35, 0.4), (0.55, 0.7)),
}
COLOURS = {"wood": (0.55, 0.38, 0.22), "dark": (0.25, 0.22, 0.2), "fabric": (0.3, 0.45, 0.65),
           "white": (0.9, 0.9, 0.88), "green": (0.2, 0.55, 0.25), "terracotta": (0.75, 0.4, 0.25),
           "red": (0.75, 0.2, 0.2), "metal": (0.6, 0.62, 0.65), "black": (0.08, 0.08, 0.1),
           "cream": (0.92, 0.85, 0.7)}
CLEARANCE = 0.1  # between objects' footprints, metres
WALL_GAP = 0.05


@dataclass(frozen=True)
class Part:
    kind: str  # "box" | "cylinder" | "sphere"
    size: tuple[float, float, float]  # box: extents; cylinder: (radius, radius, height); sphere: (r, r, r)
    offset: tuple[float, float, float]  # min corner of the part's own box, object frame
    colour: str


@dataclass(frozen=True)
class Obj:
    label: str
    box: tuple[float, float, float, float, float, float]  # x1, y1, z1, x2, y2, z2 metres, scene frame
    rotation: int  # quarter turns about z
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Room:
    width: float  # x extent
    depth: float  # y extent
    height: float
    objects: tuple[Obj, ...]
    xyz: np.ndarray  # (N, 3) float32 metres
    rgb: np.ndarray  # (N, 3) uint8
    instance: np.ndarray  # (N,) int32: object index, -1 floor, -2 walls

    @property
    def area(self) -> float:
        return self.width * self.depth


# ------------------------------------------------------------------------------------------- parts
def _legs(w, d, h, r, inset, colour):
    return [Part("cylinder", (r, r, h), (x - r, y - r, 0.0), colour)
            for x in (inset, w - inset) for y in (inset, d - inset)]


def parts_for(label: str, w: float, d: float, h: float, rng: np.random.Generator) -> list[Part]:
    """The primitives of one piece of furniture of footprint w x d and height h (object frame, origin at
    its min corner, its "front" facing -y)."""
    pick = lambda *names: names[int(rng.integers(len(names)))]  # noqa: E731
    if label == "table":
        c = pick("wood", "white", "dark")
        return [Part("box", (w, d, 0.05), (0, 0, h - 0.05), c)] + _legs(w, d, h - 0.05, 0.03, 0.07, "dark")
    if label == "chair":
        c = pick("wood", "fabric", "red")
        seat_back = [Part("box", (w, d, 0.05), (0, 0, 0.42), c),
                     Part("box", (w, 0.05, h - 0.47), (0, d - 0.05, 0.47), c)]
        return seat_back + _legs(w, d, 0.42, 0.02, 0.04, "dark")
    if label == "bed":
        return [Part("box", (w, d, 0.35), (0, 0, 0), "wood"),
                Part("box", (w - 0.06, d - 0.15, 0.18), (0.03, 0.02, 0.35), "white"),
                Part("box", (w, 0.08, h), (0, d - 0.08, 0), "wood"),
                Part("box", (w * 0.6, 0.35, 0.1), (w * 0.2, d - 0.5, 0.53), pick("cream", "fabric"))]
    if label == "sofa":
        c = pick("fabric", "red", "dark")
        return [Part("box", (w, d, 0.42), (0, 0, 0), c), Part("box", (w, 0.2, h), (0, d - 0.2, 0), c),
                Part("box", (0.15, d - 0.2, 0.6), (0, 0, 0), c),
                Part("box", (0.15, d - 0.2, 0.6), (w - 0.15, 0, 0), c)]
    if label == "lamp":
        r = min(w, d) / 2
        return [Part("cylinder", (r * 0.7, r * 0.7, 0.03), (r * 0.3, r * 0.3, 0), "black"),
                Part("cylinder", (0.02, 0.02, h - 2 * r), (r - 0.02, r - 0.02, 0.03), "metal"),
                Part("sphere", (r, r, r), (0, 0, h - 2 * r), "cream")]
    if label == "cabinet":
        c = pick("wood", "white")
        return [Part("box", (w, d, h), (0, 0, 0), c),
                Part("box", (0.1, 0.02, 0.03), (w * 0.3, -0.02, h * 0.8), "metal"),
                Part("box", (0.1, 0.02, 0.03), (w * 0.6, -0.02, h * 0.8), "metal")]
    if label == "tv":
        return [Part("box", (w, d, 0.45), (0, 0, 0), "dark"),
                Part("box", (w * 0.9, 0.05, h - 0.5), (w * 0.05, d / 2, 0.5), "black")]
    if label == "plant":
        r = min(w, d) / 2
        return [Part("cylinder", (r * 0.6, r * 0.6, 0.3), (r * 0.4, r * 0.4, 0), "terracotta"),
                Part("sphere", (r, r, r), (0, 0, h - 2 * r), "green")]
    if label == "bookshelf":
        c = pick("wood", "white", "dark")
        sides = [Part("box", (0.03, d, h), (0, 0, 0), c), Part("box", (0.03, d, h), (w - 0.03, 0, 0), c),
                 Part("box", (w, 0.02, h), (0, d - 0.02, 0), c)]
        shelves = [Part("box", (w - 0.06, d - 0.02, 0.02), (0.03, 0, float(z)), c)
                   for z in np.linspace(0, h - 0.02, 5)]
        return sides + shelves
    if label == "stool":
        r = min(w, d) / 2
        return [Part("cylinder", (r, r, 0.05), (0, 0, h - 0.05), pick("wood", "red", "black"))] + \
            _legs(w, d, h - 0.05, 0.02, 0.06, "metal")
    raise ValueError(f"unknown furniture {label!r}; known: {', '.join(CATALOGUE)}")


def _mesh(part: Part):
    """The part as an open3d triangle mesh, placed at its offset (object frame)."""
    import open3d as o3d

    sx, sy, sz = part.size
    if part.kind == "box":
        m = o3d.geometry.TriangleMesh.create_box(sx, sy, sz)
    elif part.kind == "cylinder":
        m = o3d.geometry.TriangleMesh.create_cylinder(radius=sx, height=sz, resolution=24)
        m.translate((sx, sx, sz / 2))  # open3d centres it on the origin
    elif part.kind == "sphere":
        m = o3d.geometry.TriangleMesh.create_sphere(radius=sx, resolution=12)
        m.translate((sx, sx, sx))
    else:
        raise ValueError(f"unknown primitive {part.kind!r}")
    return m.translate(part.offset)


def sample_surface(vertices: np.ndarray, triangles: np.ndarray, n: int,
                   rng: np.random.Generator) -> np.ndarray:
    """`n` points uniform on a triangle mesh's surface (area-weighted triangle, then uniform barycentric)."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    tri = rng.choice(len(triangles), size=n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1  # fold the far half of the parallelogram back into the triangle
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    return a[tri] + u[:, None] * (b[tri] - a[tri]) + v[:, None] * (c[tri] - a[tri])


def _rotate(xy: np.ndarray, quarter: int, w: float, d: float) -> np.ndarray:
    """Object-frame xy rotated by `quarter` turns, shifted back to a min corner at the origin."""
    x, y = xy[:, 0], xy[:, 1]
    return {0: np.stack([x, y], 1), 1: np.stack([d - y, x], 1), 2: np.stack([w - x, d - y], 1),
            3: np.stack([y, w - x], 1)}[quarter % 4]


def _jitter(colour: str, n: int, rng) -> np.ndarray:
    base = np.array(COLOURS[colour])
    return np.clip(base + rng.normal(0, 0.03, size=(n, 3)), 0, 1)


# -------------------------------------------------------------------------------------------- rooms
def _place(rng, labels, W, D) -> list[tuple[str, tuple, int, tuple]]:
    """(label, (w, d, h) before rotation, quarter turns, scene-frame xy of the footprint's min corner)."""
    placed, rects = [], []
    for label in labels:
        (w0, w1), (d0, d1), (h0, h1) = CATALOGUE[label]
        w, d, h = float(rng.uniform(w0, w1)), float(rng.uniform(d0, d1)), float(rng.uniform(h0, h1))
        q = int(rng.integers(4))
        fw, fd = (w, d) if q % 2 == 0 else (d, w)
        for _ in range(60):
            x = float(rng.uniform(WALL_GAP, W - WALL_GAP - fw)) if W - 2 * WALL_GAP > fw else None
            y = float(rng.uniform(WALL_GAP, D - WALL_GAP - fd)) if D - 2 * WALL_GAP > fd else None
            if x is None or y is None:
                break
            r = (x - CLEARANCE, y - CLEARANCE, x + fw + CLEARANCE, y + fd + CLEARANCE)
            if all(r[2] <= o[0] or o[2] <= r[0] or r[3] <= o[1] or o[3] <= r[1] for o in rects):
                rects.append((x, y, x + fw, y + fd))
                placed.append((label, (w, d, h), q, (x, y)))
                break
    return placed


def make_room(rng: np.random.Generator, *, num_points: int = 40000, objects: tuple[int, int] = (5, 9),
              labels: tuple[str, ...] | None = None) -> Room:
    """A seeded room with furniture and its point cloud (about `num_points` points)."""
    W, D, H = float(rng.uniform(4.0, 8.0)), float(rng.uniform(3.5, 7.0)), float(rng.uniform(2.5, 3.0))
    pool = list(labels or CATALOGUE)
    k = int(rng.integers(objects[0], objects[1] + 1))
    # repeats are likely for small things (chairs around a table), so counting questions have work to do
    weights = np.array([3.0 if c in ("chair", "stool", "plant", "lamp") else 1.0 for c in pool])
    chosen = [pool[i] for i in rng.choice(len(pool), size=k, p=weights / weights.sum())]
    objs, meshes = [], []
    for label, (w, d, h), q, (x, y) in _place(rng, chosen, W, D):
        parts = parts_for(label, w, d, h, rng)
        verts, tris, cols, base = [], [], [], 0
        for p in parts:
            m = _mesh(p)
            v = np.asarray(m.vertices)
            v = np.concatenate([_rotate(v[:, :2], q, w, d) + (x, y), v[:, 2:]], 1)
            t = np.asarray(m.triangles)
            verts.append(v)
            tris.append(t + base)
            cols += [p.colour] * len(t)
            base += len(v)
        v, t = np.concatenate(verts), np.concatenate(tris)
        box = tuple(float(c) for c in np.concatenate([v.min(0), v.max(0)]))
        objs.append(Obj(label, box, q, tuple(parts)))
        meshes.append((v, t, np.array(cols)))
    # budget: a fifth each for floor and walls, the rest over objects by surface area (at least 300 each)
    areas = [0.5 * np.linalg.norm(np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]]), axis=1).sum()
             for v, t, _ in meshes]
    total = max(sum(areas), 1e-9)
    xyz, rgb, inst = [], [], []
    n_floor = n_walls = num_points // 5
    floor = np.stack([rng.uniform(0, W, n_floor), rng.uniform(0, D, n_floor), np.zeros(n_floor)], 1)
    floor_tone = ("wood", "white", "dark")[int(rng.integers(3))]
    xyz.append(floor), rgb.append(_jitter(floor_tone, n_floor, rng)), inst.append(np.full(n_floor, -1))
    per = np.array([W, D, W, D]) / (2 * (W + D))
    counts = np.floor(per * n_walls).astype(int)
    for side, n in enumerate(counts):
        s, z = rng.random(n), rng.uniform(0, H, n)
        pts = [np.stack([s * W, np.zeros(n), z], 1), np.stack([np.full(n, W), s * D, z], 1),
               np.stack([s * W, np.full(n, D), z], 1), np.stack([np.zeros(n), s * D, z], 1)][side]
        xyz.append(pts), rgb.append(_jitter("cream", n, rng)), inst.append(np.full(n, -2))
    budget = num_points - n_floor - int(counts.sum())
    for i, ((v, t, cols), a) in enumerate(zip(meshes, areas)):
        n = max(300, int(budget * a / total))
        pts_all, col_all = [], []
        for colour in sorted(set(cols.tolist())):  # per colour, so each part keeps its own colour
            sel = t[cols == colour]
            share = 0.5 * np.linalg.norm(np.cross(v[sel[:, 1]] - v[sel[:, 0]], v[sel[:, 2]] - v[sel[:, 0]]),
                                         axis=1).sum() / a
            m = max(1, int(round(n * share)))
            pts_all.append(sample_surface(v, sel, m, rng))
            col_all.append(_jitter(colour, m, rng))
        pts = np.concatenate(pts_all)
        xyz.append(pts), rgb.append(np.concatenate(col_all)), inst.append(np.full(len(pts), i))
    return Room(W, D, H, tuple(objs), np.concatenate(xyz).astype(np.float32),
                (np.concatenate(rgb) * 255).round().astype(np.uint8), np.concatenate(inst).astype(np.int32))


# ----------------------------------------------------------------------------------------- cameras
def free_spot(room: Room, rng: np.random.Generator, margin: float = 0.4) -> tuple[float, float]:
    """A floor position at least `margin` from every object's footprint and the walls."""
    for _ in range(200):
        x = float(rng.uniform(margin, room.width - margin))
        y = float(rng.uniform(margin, room.depth - margin))
        if all(not (o.box[0] - margin < x < o.box[3] + margin and o.box[1] - margin < y < o.box[4] + margin)
               for o in room.objects):
            return x, y
    return room.width / 2, room.depth / 2


def path_cameras(room: Room, rng: np.random.Generator, *, k: int, width: int, height: int, fov: float = 70.0,
                 eye_height: float = 1.5, pitch: float = -20.0):
    """`k` cameras panning one full turn from a free standing point (a walk-through's head turn)."""
    from mmreason.modalities.point_render import Camera

    x, y = free_spot(room, rng)
    start = float(rng.uniform(0, 360))
    step = 360.0 / k * (1 if rng.random() < 0.5 else -1)
    eye = np.array([x, y, eye_height])
    cams = []
    for i in range(k):
        yaw = math.radians(start + step * i)
        look = np.array([math.cos(yaw), math.sin(yaw), math.tan(math.radians(pitch))])
        cams.append(Camera.look_at(eye, eye + look, width=width, height=height, fov=fov))
    return cams


def render_path(room: Room, cameras, *, point_size: int = 2, min_visible: int = 30):
    """Each camera's (image (PIL), objects seen, depth): the objects as {object index: visible points},
    those with at least `min_visible` points winning the depth test; depth (H, W) metres along the
    optical axis, inf where no point was drawn (the splatter's z-buffer, so a pixel's depth is that of the
    point whose colour it shows)."""
    # the splatter and depth test are the point-cloud adapter's; a path of cameras is all that is new here
    from mmreason.modalities.point_render import render_camera, visible_points

    xyz = room.xyz.astype(np.float64)
    out = []
    for cam in cameras:
        image, depth = render_camera((xyz, room.rgb), cam, point_size=point_size)
        vis = visible_points(xyz, cam, depth)
        counts = np.bincount(room.instance[vis & (room.instance >= 0)], minlength=len(room.objects))
        seen = {i: int(c) for i, c in enumerate(counts) if c >= min_visible}
        out.append((image, seen, depth))
    return out
