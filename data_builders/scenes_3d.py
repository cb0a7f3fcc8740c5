"""3D rooms as point clouds with exact 3D boxes, VSI-Bench-style spatial questions and GS-Reasoner traces.

Each sample assembles a room (`rooms_3d`: floor, walls, furniture from open3d primitives), saves its
coloured point cloud (``.ply`` with the per-point object ids in a ``-instances.npy`` beside it, or one
``.npz`` with ``xyz``/``rgb``/``instance``) and asks one question whose answer is computed from the ground
truth. Question types (``qtypes``), after VSI-Bench: ``object_count``, ``abs_distance`` (closest points of
two objects' boxes), ``object_size`` (longest side, cm), ``room_size`` (floor area), ``rel_direction``
(left/right, or the quadrant, standing at A facing B), ``appearance_order`` (first appearance along the
camera path); plus ``grounding_3d`` (GS-Reasoner's pure grounding answer). Types take turns by sample
index, so any run of ``len(qtypes)`` samples holds each once.

Traces follow GS-Reasoner's grounded CoT (arXiv 2510.13800; the grammar of
llava/submodules/lmms_eval/tasks/vsibench/vsibench_cot.yaml in github.com/WU-CVGL/GS-Reasoner):
``<think>analysis NAME COUNT <bbox>(x1, y1, z1, x2, y2, z2)</bbox>.. reasoning</think>
<answer>..</answer>``, axis-aligned boxes in scene metres with 4 decimals. With ``views`` > 0 the room
is also rendered along a camera path (a pan from a standing point) into an H.264 video part; every camera
(intrinsics, world-to-camera extrinsics, time) is in ``meta["cameras"]``. ``boxes_3d`` holds the boxes
the question is about; every object is in ``meta["objects"]``.

With ``rgbd`` the views are posed RGB-D frames instead, GS-Reasoner's input (arXiv 2510.13800 §3.1):
each view is an image part (PNG) with a 16-bit depth PNG in millimetres beside it (0 = no point drawn,
ScanNet's convention), listed with its camera in ``meta["rgbd"]``; the row then has no video and no
point-cloud part (the cloud is still saved, under ``meta["cloud"]``), so its images are exactly the
frames. `mmreason.models.spatial` back-projects them to per-patch world points.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mmreason.data_builders.common import DEFAULT_CHUNK_SIZE, SampleContext, atomic_target, build_dataset, \
    check_options, phase, save_image
from mmreason.data_builders.gcot import text_turn
from mmreason.data_builders.rooms_3d import Room, make_room, path_cameras, render_path
from mmreason import schema
from mmreason.traces import render_block, render_gcot_objects

NAME = "scenes_3d"
QTYPES = {"object_count": "counting", "abs_distance": "spatial_qa", "object_size": "spatial_qa",
          "room_size": "spatial_qa", "rel_direction": "spatial_qa", "appearance_order": "spatial_qa",
          "grounding_3d": "grounding_3d"}
DEFAULTS = {"qtypes": sorted(QTYPES), "num_points": 40000, "objects": [5, 9], "format": "ply", "views": 8,
            "view_size": [320, 240], "fps": 2, "trace": "gcot", "rgbd": False}
DEPTH_SCALE = 1000  # depth PNG units per metre (millimetres)
DECIMALS = 4


def _r(v: float) -> float:
    return round(float(v), DECIMALS)


def _box(o) -> list[float]:
    return [_r(v) for v in o.box]


def _centre(box) -> np.ndarray:
    return (np.asarray(box[:3]) + np.asarray(box[3:])) / 2


def box_distance(a, b) -> float:
    """Distance between the closest points of two axis-aligned boxes (0 if they touch or overlap).

    >>> box_distance([0, 0, 0, 1, 1, 1], [2, 0, 0, 3, 1, 1])
    1.0
    """
    return float(math.sqrt(sum(g * g for g in _gaps(a, b))))


def _gaps(a, b) -> list[float]:
    """Per-axis gap between two axis-aligned boxes (0 along an axis where they overlap)."""
    return [max(0.0, b[i] - a[i + 3], a[i] - b[i + 3]) for i in range(3)]


def _unique(room: Room) -> list[int]:
    """Indices of objects whose category occurs once in the room (a question can name them unambiguously)."""
    labels = [o.label for o in room.objects]
    return [i for i, o in enumerate(room.objects) if labels.count(o.label) == 1]


def _one_unique(rng, room: Room) -> int | None:
    """One of the `_unique` objects at random, or None when there is none."""
    uniq = _unique(room)
    return int(rng.choice(uniq)) if uniq else None


def _objects_text(room: Room, idx: list[int]) -> str:
    by_label: dict[str, list] = {}
    for i in idx:
        by_label.setdefault(room.objects[i].label, []).append(_box(room.objects[i]))
    return render_gcot_objects(by_label.items(), decimals=DECIMALS)


def _angle(a, b, c) -> float:
    """Signed angle (degrees, + = counter-clockwise = to the left) of c seen from a while facing b."""
    f, v = np.asarray(b[:2]) - a[:2], np.asarray(c[:2]) - a[:2]
    return math.degrees(math.atan2(f[0] * v[1] - f[1] * v[0], f @ v))


def _qa(q: str, a: str, idx: list[int], analysis: str, reasoning: str, **extra) -> dict:
    return {"q": q, "a": a, "idx": idx, "analysis": analysis, "reasoning": reasoning, **extra}


def q_count(rng, room: Room, seen) -> dict:
    label = room.objects[int(rng.integers(len(room.objects)))].label
    idx = [i for i, o in enumerate(room.objects) if o.label == label]
    n = len(idx)
    return _qa(f"How many {label}(s) are in this room?", str(n), idx, f"I need every {label} in the room.",
               f"There {'is' if n == 1 else 'are'} {n} {label} box{'es' if n != 1 else ''}, so the count is "
               f"{n}.")


def q_distance(rng, room: Room, seen) -> dict | None:
    uniq = _unique(room)
    if len(uniq) < 2:
        return None
    i, j = (int(k) for k in rng.choice(uniq, size=2, replace=False))
    a, b = room.objects[i], room.objects[j]
    gaps = _gaps(a.box, b.box)
    d = box_distance(a.box, b.box)
    return _qa(f"Measuring from the closest point of each object, what is the direct distance between the "
               f"{a.label} and the {b.label} (in meters)?", f"{d:.1f}", [i, j],
               f"I need the {a.label} and the {b.label}.",
               f"The boxes are {gaps[0]:.2f} m apart along x, {gaps[1]:.2f} m along y and {gaps[2]:.2f} m in "
               f"height, so the closest distance is about {d:.1f} m.")


def q_size(rng, room: Room, seen) -> dict | None:
    i = _one_unique(rng, room)
    if i is None:
        return None
    o = room.objects[i]
    ext = [o.box[k + 3] - o.box[k] for k in range(3)]
    cm = int(round(max(ext) * 100))
    return _qa(f"What is the length of the longest dimension (length, width, or height) of the {o.label}, "
               "measured in centimeters?", str(cm), [i], f"I need the {o.label}.",
               f"Its box measures {ext[0]:.2f} x {ext[1]:.2f} x {ext[2]:.2f} m; the longest side is about "
               f"{cm} cm.")


def q_ground(rng, room: Room, seen) -> dict | None:
    i = _one_unique(rng, room)
    if i is None:
        return None
    label = room.objects[i].label
    return _qa(f"Find the {label} in this room and give its 3D bounding box.", _objects_text(room, [i]), [i],
               "", "", grounding=True)


def q_room(rng, room: Room, seen) -> dict:
    a = room.area
    return _qa("What is the size of this room (in square meters)?", f"{a:.1f}", [],
               "The floor and the walls bound the room.",
               f"The floor spans {room.width:.2f} m along x and {room.depth:.2f} m along y, so the room is "
               f"about {a:.1f} square meters.")


def q_direction(rng, room: Room, seen) -> dict | None:
    uniq = _unique(room)
    if len(uniq) < 3:
        return None
    for _ in range(10):
        i, j, k = (int(v) for v in rng.choice(uniq, size=3, replace=False))
        ca, cb, cc = (_centre(room.objects[v].box) for v in (i, j, k))
        ang = _angle(ca, cb, cc)
        quad = bool(rng.random() < 0.5)
        edges = (0, 90, 180) if quad else (0, 180)
        if min(abs(abs(ang) - e) for e in edges) < 15 or np.linalg.norm((cb - ca)[:2]) < 0.5:
            continue  # too close to a boundary to be a fair question
        side = "left" if ang > 0 else "right"
        ans = (("front-" if abs(ang) < 90 else "back-") + side) if quad else side
        opts = "front-left, front-right, back-left, or back-right" if quad else "left or right"
        a, b, c = (room.objects[v].label for v in (i, j, k))
        where = (f"From the {a} at ({ca[0]:.2f}, {ca[1]:.2f}) facing the {b} at ({cb[0]:.2f}, {cb[1]:.2f}), "
                 f"the {c} at ({cc[0]:.2f}, {cc[1]:.2f}) lies {abs(ang):.0f} degrees to the {side}")
        return _qa(f"If I am standing by the {a} and facing the {b}, is the {c} to my {opts}?", ans,
                   [i, j, k], f"I need the {a}, the {b} and the {c}.", f"{where}, so it is {ans}.")
    return None


def q_order(rng, room: Room, seen) -> dict | None:
    if not seen:
        return None
    first: dict[int, int] = {}
    for f, frame in enumerate(seen):
        for i in frame:
            first.setdefault(i, f)
    by_frame: dict[int, list[int]] = {}
    for i in _unique(room):
        if i in first:
            by_frame.setdefault(first[i], []).append(i)
    distinct = [v[int(rng.integers(len(v)))] for _, v in sorted(by_frame.items())]
    if len(distinct) < 3:
        return None
    pick = sorted(int(i) for i in rng.choice(distinct, size=min(4, len(distinct)), replace=False))
    order = sorted(pick, key=lambda i: first[i])
    names = [room.objects[i].label for i in order]
    shuffled = [room.objects[i].label for i in rng.permutation(pick)]
    steps = ", the ".join(f"{room.objects[i].label} first shows in frame {first[i] + 1}" for i in order)
    return _qa(f"What will be the first-time appearance order of the following categories in the video: "
               f"{', '.join(shuffled)}?", ", ".join(names), order,
               "I need to know where each of these objects is relative to the camera's path.",
               f"As the camera turns, the {steps} of {len(seen)}, so the order is {', '.join(names)}.")


QUESTIONS = {"object_count": q_count, "abs_distance": q_distance, "object_size": q_size, "room_size": q_room,
             "rel_direction": q_direction, "appearance_order": q_order, "grounding_3d": q_ground}


def question(rng, qtype: str, room: Room, seen: list[dict] | None) -> dict | None:
    """{q, a, idx (relevant objects), analysis, reasoning} for `qtype`, or None if this room cannot support
    it (the caller builds another room). `seen` lists the objects visible in each view along the path."""
    return QUESTIONS[qtype](rng, room, seen)


def gcot(qa: dict, room: Room) -> str:
    """GS-Reasoner's target: grounded objects inside the thinking, then the short answer."""
    if qa.get("grounding"):
        return render_block("think", "") + render_block("answer", qa["a"])
    objects = f" {_objects_text(room, qa['idx'])}." if qa["idx"] else ""
    think = f"{qa['analysis']}{objects} {qa['reasoning']}"
    return render_block("think", think) + render_block("answer", qa["a"])


# ------------------------------------------------------------------------------------------ writing
def save_cloud(room: Room, fmt: str, ctx: SampleContext) -> tuple[str, str | None]:
    """The cloud as .ply (+ instance ids as .npy) or .npz; returns (cloud path, instances path or None)."""
    import os

    with phase("encode"):
        if fmt == "npz":
            path, rel = ctx.media("cloud", "npz")
            tmp = atomic_target(path)
            np.savez_compressed(tmp, xyz=room.xyz, rgb=room.rgb, instance=room.instance)
            os.replace(tmp, path)
            return rel, None
        import open3d as o3d

        path, rel = ctx.media("cloud", "ply")
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(room.xyz.astype(np.float64)))
        pc.colors = o3d.utility.Vector3dVector(room.rgb.astype(np.float64) / 255.0)
        tmp = atomic_target(path)
        if not o3d.io.write_point_cloud(str(tmp), pc, write_ascii=False, compressed=False):
            raise OSError(f"{path}: open3d could not write the point cloud")
        os.replace(tmp, path)
        ipath, irel = ctx.media("instances", "npy")
        itmp = atomic_target(ipath)
        np.save(itmp, room.instance)
        os.replace(itmp, ipath)
        return rel, irel


def save_rgbd(rendered, cams, ctx: SampleContext) -> tuple[list[dict], list[dict]]:
    """Each view as an image part (PNG) and a 16-bit depth PNG (millimetres, 0 = nothing drawn); returns
    the image parts and the ``meta["rgbd"]["frames"]`` records (paths relative to the dataset root)."""
    from PIL import Image

    parts, frames = [], []
    for i, ((image, _, depth), cam) in enumerate(zip(rendered, cams)):
        mm = np.where(np.isfinite(depth), np.round(depth * DEPTH_SCALE), 0)
        if mm.max(initial=0) > np.iinfo(np.uint16).max:
            raise ValueError(f"{ctx.id}: depth beyond {np.iinfo(np.uint16).max / DEPTH_SCALE} m does not fit a "
                             "16-bit PNG")
        irel = save_image(image, ctx.media(f"frame-{i}", "png"))
        drel = save_image(Image.fromarray(mm.astype(np.uint16)), ctx.media(f"depth-{i}", "png"))
        parts.append({"type": "image", "image": irel})
        frames.append({"image": irel, "depth": drel, **cam.as_dict()})
    return parts, frames


def make_sample(ctx: SampleContext) -> dict | None:
    opts, rng = ctx.options, ctx.rng
    qtypes = list(opts["qtypes"])
    qtype = qtypes[ctx.index % len(qtypes)]  # round robin: every n consecutive samples hold each type equally
    views = int(opts["views"])
    for _ in range(8):  # some rooms cannot support a question (e.g. no three distinct objects)
        with phase("render"):
            room = make_room(rng, num_points=int(opts["num_points"]), objects=tuple(opts["objects"]))
            rendered, cams = [], []
            if views:
                w, h = opts["view_size"]
                cams = path_cameras(room, rng, k=views, width=w, height=h)
                rendered = render_path(room, cams)
            qa = question(rng, qtype, room, [seen for _, seen, _ in rendered] if rendered else None)
        if qa is not None:
            break
        ctx.count(f"rebuilt_room_{qtype}")
    else:
        ctx.count(f"skipped_{qtype}")
        return None
    cloud, instances = save_cloud(room, opts["format"], ctx)
    content = [{"type": "point_cloud", "point_cloud": cloud}]
    meta_views = {}
    if opts["rgbd"]:
        content, frames = save_rgbd(rendered, cams, ctx)
        meta_views = {"rgbd": {"depth_scale": DEPTH_SCALE, "frames": frames}, "cloud": cloud,
                      "cameras": [c.as_dict() for c in cams],
                      "visible": [{f"{room.objects[i].label}#{i}": n for i, n in seen.items()}
                                  for _, seen, _ in rendered]}
    elif views:
        from mmreason.data_builders.video_clips import encode_mp4

        fps = int(opts["fps"])
        video = encode_mp4([im for im, _, _ in rendered], fps, ctx.media("views", "mp4"))
        content.append({"type": "video", "video": video, "fps": float(fps)})
        meta_views = {"cameras": [{**c.as_dict(), "t": i / fps} for i, c in enumerate(cams)],
                      "visible": [{f"{room.objects[i].label}#{i}": n for i, n in seen.items()}
                                  for _, seen, _ in rendered]}
    content.append({"type": "text", "text": qa["q"]})
    trace = gcot(qa, room)
    return {
        "id": ctx.id, "source": NAME, "task": QTYPES[qtype], "answer": qa["a"],
        "messages": [{"role": "user", "content": content}] + ([text_turn("assistant", trace)]
                                                               if opts["trace"] == "gcot" else []),
        "boxes_3d": [{"label": room.objects[i].label, "box": _box(room.objects[i])} for i in qa["idx"]],
        "meta": {"qtype": qtype, "trace": opts["trace"], "traces": {"gcot": trace},
                 "coord_frame": "scene_metres", "room": [_r(room.width), _r(room.depth), _r(room.height)],
                 "instances": instances,
                 "objects": [{"label": o.label, "box": _box(o), "rotation": o.rotation}
                             for o in room.objects],
                 "num_points": int(len(room.xyz)), **meta_views},
    }


def preview(row: dict, root: str | Path):
    """Card tile: the row's first point cloud seen from above, the footprints of ``meta["objects"]`` in red
    and of the GT ``boxes_3d`` in green (also used by the ScanRefer / ScanQA converters)."""
    from PIL import Image, ImageDraw

    from mmreason.data_builders.card import TILE
    from mmreason.modalities.point_cloud import load_point_cloud

    path = next((p for kind, p in schema.media_parts(row) if kind == "point_cloud"), None) \
        or (row.get("meta") or {}).get("cloud")  # rgbd rows keep their cloud out of the prompt
    cloud = load_point_cloud(path, root=root)
    # 60k points are plenty for a tile
    keep = np.linspace(0, cloud.num_points - 1, min(cloud.num_points, 60000)).astype(int)
    xyz = cloud.scene_xyz()[keep]
    rgb = cloud.rgb[keep] if cloud.rgb is not None else np.full((len(xyz), 3), 0.3)
    lo, hi = xyz[:, :2].min(0), xyz[:, :2].max(0)
    s = (TILE - 8) / max(float((hi - lo).max()), 1e-6)

    def px(x, y):  # scene metres -> tile pixels, y up
        return (x - lo[0]) * s + 4, (hi[1] - y) * s + 4

    order = np.argsort(xyz[:, 2])  # higher points drawn last: a top-down view
    u, v = px(xyz[order, 0], xyz[order, 1])
    arr = np.full((TILE, TILE, 3), 255, dtype=np.uint8)
    arr[np.clip(v.astype(int), 0, TILE - 1), np.clip(u.astype(int), 0, TILE - 1)] = \
        (np.clip(rgb[order], 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(arr)
    d = ImageDraw.Draw(img)
    for boxes, colour in (((row.get("meta") or {}).get("objects") or [], (200, 0, 0)),
                          (row.get("boxes_3d") or [], (0, 200, 0))):
        for b in boxes:
            x1, y1, _, x2, y2, _ = b["box"]
            (a, top), (c, bottom) = px(x1, y2), px(x2, y1)
            d.rectangle((a, top, c, bottom), outline=colour, width=2)
    return img


def build(out_dir: str | Path, *, n: int, seed: int = 0, shard: tuple[int, int] = (0, 1), workers: int = 1,
          chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True, **options) -> Path:
    """Point-cloud rooms with 3D boxes, VSI-Bench-style spatial questions and GS-Reasoner GCoT traces."""
    opts = {**DEFAULTS, **options}
    check_options("scenes_3d", opts, QTYPES)
    if "appearance_order" in opts["qtypes"] and not int(opts["views"]):
        raise ValueError("scenes_3d: appearance_order needs rendered views (views > 0)")
    if opts["format"] not in ("ply", "npz") or opts["trace"] not in ("gcot", "none"):
        raise ValueError("scenes_3d: format must be ply or npz, trace gcot or none")
    if opts["rgbd"] and not int(opts["views"]):
        raise ValueError("scenes_3d: rgbd needs rendered views (views > 0)")
    if any(int(v) % 2 for v in opts["view_size"]):
        raise ValueError("scenes_3d: view_size must be even (H.264 yuv420p)")
    return build_dataset(out_dir, name=NAME, make_sample=make_sample, n=n, seed=seed, shard=shard,
                         options=opts, workers=workers, chunk_size=chunk_size, progress=progress,
                         preview=preview)
