"""3D rooms: boxes hold their objects' points and no others, traces parse and match, answers follow GT."""

import math

import av
import numpy as np
import pytest

from mmreason import schema, traces
from mmreason.data_builders import rooms_3d, scenes_3d
from mmreason.modalities.point_cloud import load_point_cloud

SMALL = {"num_points": 12000, "views": 6, "view_size": [160, 120], "objects": [5, 8]}
TOL = 1e-4  # boxes are printed with 4 decimals


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("rooms") / "all"
    scenes_3d.build(out, n=len(scenes_3d.QTYPES), seed=4, chunk_size=4, progress=False,
                    qtypes=sorted(scenes_3d.QTYPES), **SMALL)
    return out, sorted(schema.load_rows(out), key=lambda r: r["id"])


def _cloud(out, row):
    part = row["messages"][0]["content"][0]
    cloud = load_point_cloud(part["point_cloud"], root=out, sample_id=row["id"])
    inst = np.load(out / row["meta"]["instances"])
    assert len(inst) == cloud.num_points == row["meta"]["num_points"]
    return cloud.scene_xyz(), inst


def _inside(xyz, box, tol=TOL):
    lo, hi = np.asarray(box[:3]) - tol, np.asarray(box[3:]) + tol
    return ((xyz >= lo) & (xyz <= hi)).all(1)


def test_boxes_hold_their_objects_points_and_no_others(built):
    out, rows = built
    for row in rows:
        xyz, inst = _cloud(out, row)
        for i, obj in enumerate(row["meta"]["objects"]):
            box = obj["box"]
            mine = inst == i
            assert mine.sum() >= 250
            assert _inside(xyz[mine], box).all(), (row["id"], obj["label"])
            # the box is tight: its points reach every face
            assert np.allclose(xyz[mine].min(0), box[:3], atol=0.05)
            assert np.allclose(xyz[mine].max(0), box[3:], atol=0.05)
            inside = _inside(xyz, box)
            assert not (inside & (inst >= 0) & ~mine).any()  # no other object's point
            assert not (inside & (inst == -2)).any()  # no wall point
            floor = inside & (inst == -1)  # the floor only touches the bottom face
            assert (xyz[floor, 2] <= box[2] + TOL).all()


def test_traces_parse_and_match_the_ground_truth(built):
    out, rows = built
    assert {r["meta"]["qtype"] for r in rows} == set(scenes_3d.QTYPES)
    for row in rows:
        text = row["messages"][-1]["content"][0]["text"]
        trace = traces.parse(text)
        assert not trace.issues and trace.answer == row["answer"], row["id"]
        got = sorted((m.name, m.box) for m in trace.boxes_3d)
        want = sorted((b["label"], tuple(b["box"])) for b in row["boxes_3d"])
        assert len(got) == len(want)
        for (gn, gb), (wn, wb) in zip(got, want):
            assert gn == wn and max(abs(a - b) for a, b in zip(gb, wb)) < TOL
        for m in trace.boxes_3d:  # "name count" is the number of boxes listed for that name
            assert m.count == sum(b.name == m.name for b in trace.boxes_3d)
        assert row["task"] == scenes_3d.QTYPES[row["meta"]["qtype"]]


def test_answers_follow_from_the_ground_truth(built):
    out, rows = built
    for row in rows:
        qt, meta, gt = row["meta"]["qtype"], row["meta"], row["boxes_3d"]
        labels = [o["label"] for o in meta["objects"]]
        if qt == "object_count":
            assert int(row["answer"]) == labels.count(gt[0]["label"]) == len(gt)
        elif qt == "abs_distance":
            a, b = (g["box"] for g in gt)
            gaps = [max(0, b[k] - a[k + 3], a[k] - b[k + 3]) for k in range(3)]
            assert row["answer"] == f"{math.sqrt(sum(g * g for g in gaps)):.1f}"
        elif qt == "object_size":
            box = gt[0]["box"]
            assert int(row["answer"]) == round(max(box[k + 3] - box[k] for k in range(3)) * 100)
        elif qt == "room_size":
            assert row["answer"] == f"{meta['room'][0] * meta['room'][1]:.1f}"
            xyz, inst = _cloud(out, row)
            walls = xyz[inst == -2]
            assert np.allclose(walls[:, :2].max(0), meta["room"][:2], atol=1e-3)
        elif qt == "rel_direction":
            ca, cb, cc = (np.add(g["box"][:3], g["box"][3:])[:2] / 2 for g in gt)
            f, v = cb - ca, cc - ca
            ang = math.degrees(math.atan2(f[0] * v[1] - f[1] * v[0], f @ v))
            side = "left" if ang > 0 else "right"
            assert row["answer"] in (side, ("front-" if abs(ang) < 90 else "back-") + side)
        elif qt == "appearance_order":
            first = {}
            for k, frame in enumerate(meta["visible"]):
                for name in frame:
                    first.setdefault(name.split("#")[0], k)
            order = row["answer"].split(", ")
            assert [first[n] for n in order] == sorted(first[n] for n in order)
            assert len(set(first[n] for n in order)) == len(order) >= 3
        elif qt == "grounding_3d":
            assert row["answer"].startswith(f"{gt[0]['label']} 1 <bbox>(")
        if meta.get("cameras"):
            video = row["messages"][0]["content"][1]["video"]
            with av.open(str(out / video)) as c:
                assert sum(1 for _ in c.decode(video=0)) == SMALL["views"] == len(meta["cameras"])


def test_rooms_are_deterministic_and_shards_match(built, tmp_path):
    a, b = (rooms_3d.make_room(np.random.default_rng(7), num_points=5000) for _ in range(2))
    assert np.array_equal(a.xyz, b.xyz) and np.array_equal(a.rgb, b.rgb) and a.objects == b.objects
    out, rows = built
    part = scenes_3d.build(tmp_path / "part", n=len(scenes_3d.QTYPES), seed=4, chunk_size=4, shard=(1, 2),
                           progress=False, qtypes=sorted(scenes_3d.QTYPES), **SMALL)
    again = sorted(schema.load_rows(part), key=lambda r: r["id"])
    assert again == rows[4:]
    for row in again:
        for _, p in schema.media_parts(row):
            assert (part / p).read_bytes() == (out / p).read_bytes()


def test_npz_format_and_bad_options(tmp_path):
    out = scenes_3d.build(tmp_path / "npz", n=1, seed=0, progress=False, format="npz", views=0,
                          qtypes=["object_size"], num_points=4000)
    [row] = list(schema.load_rows(out))
    z = np.load(out / row["messages"][0]["content"][0]["point_cloud"])
    assert set(z.files) == {"xyz", "rgb", "instance"} and len(row["messages"][0]["content"]) == 2
    with pytest.raises(ValueError, match="views"):
        scenes_3d.build(tmp_path / "x", n=1, views=0, qtypes=["appearance_order"])
    with pytest.raises(ValueError, match="qtypes"):
        scenes_3d.build(tmp_path / "y", n=1, qtypes=["weather"])
    assert scenes_3d.box_distance([0, 0, 0, 1, 1, 1], [0.5, 0.5, 0.5, 2, 2, 2]) == 0.0
