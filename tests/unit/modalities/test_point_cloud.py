"""Point-cloud adapter: readers, bad files, alignment and normalisation, sampling, patches, rendered views
(checked against Open3D's renderer), and views fed to a tiny Qwen2.5-VL."""

import json

import numpy as np
import open3d as o3d
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmreason.errors import MediaError
from mmreason.modalities import load_part
from mmreason.modalities.image import LoadedImage
from mmreason.modalities.point_cloud import (
    Normalization, farthest_point_sample, load_point_cloud, point_patches, voxel_down_sample,
)
from mmreason.modalities.point_render import Camera, project_box, render_views

RED_BOX = (1.0, 1.0, 0.0, 1.5, 1.6, 0.8)
BLUE_BOX = (3.0, 2.0, 0.0, 3.5, 2.5, 1.5)


def _cuboid_surface(box, n, rng):
    """`n` points on the six faces of an axis-aligned box."""
    lo, hi = np.array(box[:3]), np.array(box[3:])
    pts = rng.uniform(lo, hi, size=(n, 3))
    axis = rng.integers(3, size=n)
    side = rng.integers(2, size=n)
    pts[np.arange(n), axis] = np.where(side == 1, hi[axis], lo[axis])
    return pts


def _room(seed=0):
    """A 4 x 3 m grey floor with a red and a blue box standing on it: xyz (N, 3), rgb (N, 3) in 0-1."""
    rng = np.random.default_rng(seed)
    floor = np.c_[rng.uniform(0, 4, 6000), rng.uniform(0, 3, 6000), np.zeros(6000)]
    red, blue = _cuboid_surface(RED_BOX, 3000, rng), _cuboid_surface(BLUE_BOX, 3000, rng)
    xyz = np.r_[floor, red, blue]
    rgb = np.r_[np.full((6000, 3), 0.6), np.tile([1.0, 0, 0], (3000, 1)), np.tile([0, 0, 1.0], (3000, 1))]
    return xyz, rgb


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clouds")
    xyz, rgb = _room()
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
    pc.colors = o3d.utility.Vector3dVector(rgb)
    o3d.io.write_point_cloud(str(d / "room.ply"), pc)
    o3d.io.write_point_cloud(str(d / "room_ascii.ply"), pc, write_ascii=True)
    o3d.io.write_point_cloud(str(d / "room.pcd"), pc)
    np.save(d / "room255.npy", np.c_[xyz, (rgb * 255).round()].astype(np.float32))
    np.save(d / "xyz.npy", xyz)
    np.savez(d / "room.npz", xyz=xyz, rgb=(rgb * 255).astype(np.uint8))
    np.savez(d / "single.npz", np.c_[xyz, rgb])
    for name in ("room.ply", "room_ascii.ply", "room.pcd"):
        data = (d / name).read_bytes()
        (d / f"cut_{name}").write_bytes(data[: len(data) // 2])
    (d / "garbage.ply").write_bytes(bytes(range(256)) * 4)
    (d / "garbage.npy").write_bytes(b"\x93NUMPY garbage" * 10)
    (d / "empty.pcd").write_bytes(b"")
    np.save(d / "four_cols.npy", np.zeros((10, 4)))
    np.save(d / "all_nan.npy", np.full((5, 3), np.nan))
    np.save(d / "one_point.npy", np.array([[1.0, 2.0, 3.0], [np.nan, 0, 0]]))
    np.save(d / "bad_colour.npy", np.c_[xyz[:10], np.full((10, 3), 300.0)])
    np.save(d / "some_nan.npy", np.r_[xyz[:100], np.full((7, 3), np.nan)])
    return d, xyz, rgb


@pytest.mark.parametrize("name", ["room.ply", "room_ascii.ply", "room.pcd", "room255.npy", "room.npz",
                                  "single.npz"])
def test_readers_agree_and_detect_colour_range(files, name):
    d, xyz, rgb = files
    cloud = load_point_cloud(name, root=d, sample_id="s")
    assert cloud.num_points == len(xyz) and cloud.dropped == 0
    np.testing.assert_allclose(cloud.xyz, xyz, atol=1e-4)
    np.testing.assert_allclose(cloud.rgb, rgb, atol=1 / 255 + 1e-6)  # 0-255 files come back in 0-1


def test_xyz_only_files_have_no_colour(files):
    d, xyz, _ = files
    cloud = load_point_cloud(d / "xyz.npy")
    assert cloud.rgb is None and cloud.points.shape == (len(xyz), 3)


@pytest.mark.parametrize("name,reason", [
    ("cut_room.ply", "truncated"), ("cut_room_ascii.ply", "truncated"), ("cut_room.pcd", "no points"),
    ("garbage.ply", "no points"), ("garbage.npy", "cannot read"), ("empty.pcd", "empty file"),
    ("missing.ply", "not found"), ("four_cols.npy", "N x 3"), ("all_nan.npy", "all 5 points are NaN"),
    ("one_point.npy", "single point"), ("bad_colour.npy", "colours span"),
])
def test_bad_files_name_file_and_sample(files, name, reason):
    with pytest.raises(MediaError, match=reason) as err:
        load_point_cloud(name, root=files[0], sample_id="scene-3")
    assert err.value.sample_id == "scene-3" and name in str(err.value)


def test_nan_points_are_dropped_and_counted(files):
    cloud = load_point_cloud(files[0] / "some_nan.npy")
    assert (cloud.num_points, cloud.dropped, cloud.num_source_points) == (100, 7, 107)
    assert np.isfinite(cloud.xyz).all()


def _spoil_line(src, dst, vertex, text):
    """Copy an ASCII PLY file with one vertex line replaced by `text`."""
    lines = src.read_text().splitlines()
    lines[lines.index("end_header") + 1 + vertex] = text
    dst.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("line,reason", [("0.5 abc 0.1 10 20 30", "unreadable vertex data.*abc"),
                                         ("0.5 inf 0.1 10 20 30", "infinite or out-of-range")])
def test_ply_open3d_cannot_parse_is_refused_not_garbage(files, tmp_path, line, reason):
    # Open3D prints "Read PLY failed" for these and still returns all vertices, the unread ones garbage.
    d, xyz, _ = files
    _spoil_line(d / "room_ascii.ply", tmp_path / "spoilt.ply", 40, line)
    with pytest.raises(MediaError, match=reason) as err:
        load_point_cloud("spoilt.ply", root=tmp_path, sample_id="scene-9")
    assert err.value.sample_id == "scene-9" and "spoilt.ply" in str(err.value)
    # under on_error="skip" the bad row costs only itself
    from mmreason.modalities import load_dataset_media

    (tmp_path / "good.ply").write_bytes((d / "room_ascii.ply").read_bytes())
    rows = [{"id": i, "messages": [{"role": "user", "content": [{"type": "point_cloud", "point_cloud": f}]}]}
            for i, f in (("a", "good.ply"), ("b", "spoilt.ply"))]
    kept, report = load_dataset_media(rows, tmp_path, "qwen2_5_vl", on_error="skip")
    assert [r["id"] for r, _ in kept] == ["a"] and report.skipped == 1 and "spoilt.ply" in report.errors[0]


def test_out_of_range_coordinates_are_refused(files, tmp_path):
    xyz = files[1][:50].copy()
    xyz[7, 1] = 1e39  # beyond float32: what uninitialised memory reads as
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
    o3d.io.write_point_cloud(str(tmp_path / "wild.ply"), pc)  # binary doubles: no parse to fail
    xyz[7, 1] = np.inf
    np.save(tmp_path / "inf.npy", xyz)
    for name in ("wild.ply", "inf.npy"):
        with pytest.raises(MediaError, match=r"1 of 50 points have infinite or out-of-range.*point 7"):
            load_point_cloud(name, root=tmp_path, sample_id="s")


def test_axis_alignment_and_normalisation_map_boxes_back_to_metres(files):
    d, xyz, _ = files
    # The file is in a raw frame: the scene rotated 90 degrees about z and shifted; axis_align undoes it.
    rot = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    shift = np.array([10.0, -5.0, 2.0])
    raw = (xyz - shift) @ rot  # scene = raw @ rot.T + shift
    align = np.eye(4)
    align[:3, :3], align[:3, 3] = rot, shift
    cloud = load_point_cloud(raw, axis_align=align, normalize="unit_sphere")
    assert np.linalg.norm(cloud.xyz, axis=1).max() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(cloud.scene_xyz(), xyz, atol=1e-5)
    # A box around the red object's points in the normalised frame is the red box in metres.
    red = cloud.xyz[6000:9000]
    norm_box = tuple(red.min(0)) + tuple(red.max(0))
    np.testing.assert_allclose(cloud.normalization.to_scene(norm_box), RED_BOX, atol=1e-4)
    np.testing.assert_allclose(cloud.normalization.from_scene(RED_BOX), norm_box, atol=1e-5)
    cube = load_point_cloud(xyz, normalize="unit_cube")
    assert np.abs(cube.xyz).max() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(MediaError, match="coincide"):
        load_point_cloud(np.ones((4, 3)), normalize="unit_sphere", sample_id="s")


def test_normalization_is_json_able_and_exact():
    n = Normalization((1.0, -2.0, 0.5), 3.0)
    box = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    np.testing.assert_allclose(n.from_scene(n.to_scene(box)), box, atol=1e-12)
    assert json.loads(json.dumps(n.__dict__))["scale"] == 3.0


@settings(max_examples=25, deadline=None)
@given(n=st.integers(20, 300), k=st.integers(2, 19), seed=st.integers(0, 1000))
def test_fps_covers_the_cloud(n, k, seed):
    pts = np.random.default_rng(seed).normal(size=(n, 3)) * [3.0, 1.0, 0.2]
    picks = farthest_point_sample(pts, k, seed=seed)
    assert len(set(picks.tolist())) == k
    d = np.linalg.norm(pts[:, None] - pts[picks][None], axis=-1)
    cover = d.min(1).max()  # every point lies within `cover` of a pick ...
    sep = np.linalg.norm(pts[picks][:, None] - pts[picks][None], axis=-1)
    sep = sep[~np.eye(k, dtype=bool)].min()  # ... and picks lie at least that far apart (the 2-approx.)
    assert sep >= cover - 1e-5
    np.testing.assert_array_equal(picks, farthest_point_sample(pts, k, seed=seed))


def test_fps_keeps_outliers_that_random_sampling_misses():
    rng = np.random.default_rng(0)
    pts = np.r_[rng.normal(size=(5000, 3)) * 0.01, [[5, 0, 0], [0, 5, 0], [0, 0, 5]]]
    picks = set(farthest_point_sample(pts, 8, seed=1).tolist())
    assert {5000, 5001, 5002} <= picks


def test_voxel_and_num_points(files):
    d, xyz, rgb = files
    v = 0.25
    down, down_rgb = voxel_down_sample(xyz, rgb, v)
    # Open3D puts the grid origin half a voxel below the minimum corner.
    occupied = np.unique(np.floor((xyz - (xyz.min(0) - v / 2)) / v).astype(int), axis=0)
    assert len(down) == len(occupied) and down_rgb.shape == down.shape
    cloud = load_point_cloud(d / "room.ply", voxel_size=v, num_points=256)
    assert cloud.num_points == 256 and cloud.num_source_points == len(xyz)
    padded = load_point_cloud(xyz[:50], num_points=64, seed=3)
    assert padded.num_points == 64 and len(np.unique(padded.xyz, axis=0)) == 50


def test_point_patches_are_knn_groups_around_fps_centres(files):
    _, xyz, rgb = files
    pts = np.c_[xyz[::10], rgb[::10]].astype(np.float32)
    centers, patches = point_patches(pts, 32, 16, seed=0)
    assert centers.shape == (32, 3) and patches.shape == (32, 16, 6)
    for g in (0, 17, 31):
        d = np.linalg.norm(pts[:, :3] - centers[g], axis=1)
        nearest = np.sort(d)[:16]
        np.testing.assert_allclose(np.linalg.norm(patches[g, :, :3], axis=1), nearest, atol=1e-5)
    assert np.isin(patches[..., 3:].reshape(-1, 3), pts[:, 3:]).all()  # colours travel unchanged
    few_c, few_p = point_patches(pts[:5], 2, 8)
    assert few_p.shape == (2, 8, 6)  # fewer points than K: neighbours repeat
    with pytest.raises(ValueError, match="patch centres"):
        point_patches(pts[:5], 6, 4)


def test_camera_projects_and_unprojects():
    cam = Camera.look_at((5, 0, 2), (0, 0, 0), width=320, height=240, fov=60)
    r = cam.extrinsics[:3, :3]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(cam.position, (5, 0, 2), atol=1e-12)
    uv, z = cam.project(np.array([[0.0, 0, 0]]))
    np.testing.assert_allclose(uv[0], (160, 120), atol=1e-9)  # the target lands in the image centre
    np.testing.assert_allclose(cam.unproject(uv[0, 0], uv[0, 1], z[0]), (0, 0, 0), atol=1e-9)
    up, _ = cam.project(np.array([[0.0, 0, 1]]))
    assert up[0, 1] < 120  # +z is up in the scene, so it is higher (smaller y) in the image
    assert project_box((6, -1, -1, 7, 1, 1), cam) is None  # wholly behind the camera
    inside = project_box((4, -1, 1, 6, 1, 3), cam)  # the camera stands inside this box
    assert inside == (0.0, 0.0, 320.0, 240.0)


def test_views_keep_cameras_and_project_boxes_onto_the_objects(files):
    d, _, _ = files
    cloud = load_point_cloud(d / "room.ply", normalize="unit_sphere")  # views render in metres regardless
    boxes = [{"label": "red box", "box": list(RED_BOX)}, {"label": "blue box", "box": list(BLUE_BOX)}]
    views = render_views(cloud, k=4, width=224, height=224, boxes_3d=boxes, point_size=2)
    assert [v.azimuth for v in views] == [0, 90, 180, 270]
    scene = cloud.scene_xyz()
    centre = (scene.min(0) + scene.max(0)) / 2  # cameras orbit the scene's bounding-box centre
    dists = [np.linalg.norm(v.camera.position - centre) for v in views]
    assert max(dists) - min(dists) < 1e-9
    json.dumps([v.camera.as_dict() for v in views])
    for v in views:
        img = np.asarray(v.image).astype(int)
        for colour, index in (((255, 0, 0), 0), ((0, 0, 255), 1)):
            mask = (np.abs(img - colour).sum(-1) < 30)
            ys, xs = np.nonzero(mask)
            seen = [b for b in v.boxes if b.index == index]
            assert seen and seen[0].visible_points > 50
            drawn = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            # The projected 3D box frames the rendered object, up to the splat radius (2 px) and a pixel.
            assert np.abs(np.subtract(drawn, seen[0].box)).max() <= 3
        # A pixel on the red object unprojects to a point on the red box.
        ys, xs = np.nonzero(np.abs(img - (255, 0, 0)).sum(-1) < 30)
        p = v.unproject(xs[len(xs) // 2] + 0.5, ys[len(ys) // 2] + 0.5)
        lo, hi = np.array(RED_BOX[:3]) - 0.05, np.array(RED_BOX[3:]) + 0.05
        assert p is not None and (np.array(p) >= lo).all() and (np.array(p) <= hi).all()
    again = render_views(cloud, k=4, width=224, height=224, boxes_3d=boxes, point_size=2)
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(views, again))


def test_numpy_renderer_matches_open3d(files):
    d, _, _ = files
    cloud = load_point_cloud(d / "room.ply")
    ours = render_views(cloud, k=2, width=160, height=160, point_size=2)
    theirs = render_views(cloud, k=2, width=160, height=160, point_size=2, backend="open3d")
    for a, b in zip(ours, theirs):
        ma, mb = np.isfinite(a.depth), np.isfinite(b.depth)
        overlap = (ma & mb).sum() / (ma | mb).sum()
        assert overlap > 0.8  # same silhouette: the camera conventions agree
        both = ma & mb
        assert np.median(np.abs(a.depth[both] - b.depth[both])) < 0.05  # metres
        red_a = (np.abs(np.asarray(a.image).astype(int) - (255, 0, 0)).sum(-1) < 30)
        red_b = (np.abs(np.asarray(b.image).astype(int) - (255, 0, 0)).sum(-1) < 30)
        assert (red_a & red_b).sum() / (red_a | red_b).sum() > 0.7  # and colours come through unchanged


def test_registry_part_renders_views_for_a_2d_family(files):
    d, _, _ = files
    part = {"type": "point_cloud", "point_cloud": "room.npz", "num_points": 2048, "views": 3,
            "view_size": 112, "marks": [list(RED_BOX), list(BLUE_BOX)]}
    cloud = load_part(part, root=d, family="qwen2_5_vl", sample_id="scene-1")
    assert cloud.num_points == 2048 and cloud.frame == cloud.normalization
    parts = cloud.as_parts("qwen2_5_vl")
    assert [p["type"] for p in parts] == ["image"] * 3 + ["text"]
    assert all(isinstance(p["image"], LoadedImage) and p["image"].image.size == (112, 112) for p in parts[:3])
    assert "3 rendered views" in parts[-1]["text"] and "0, 1" in parts[-1]["text"]
    marked = np.asarray(cloud.views[0].image).astype(int)
    assert ((marked == (255, 0, 0)).all(-1)).sum() > 0  # the marks are drawn
    with pytest.raises(MediaError, match="scene-2"):
        load_part({"type": "point_cloud", "point_cloud": "missing.ply"}, root=d, sample_id="scene-2")


def test_rendered_views_train_a_tiny_qwen2_5_vl(files, tiny_model):
    import copy

    import torch

    d, _, _ = files
    model, processor = tiny_model("qwen2_5_vl")
    cloud = load_part({"type": "point_cloud", "point_cloud": "room.ply", "num_points": 2048, "views": 2,
                       "view_size": 112}, root=d, family="qwen2_5_vl")
    parts = cloud.as_parts("qwen2_5_vl")
    images = [p["image"].image for p in parts if p["type"] == "image"]
    question = {"type": "text", "text": parts[-1]["text"] + " Which box is red?"}
    content = [{"type": "image"} for _ in images] + [question]
    messages = [{"role": "user", "content": content},
                {"role": "assistant", "content": [{"type": "text", "text": "the left one"}]}]
    text = processor.apply_chat_template(messages, tokenize=False)
    batch = processor(text=[text], images=images, return_tensors="pt")
    merged = (112 // 28) ** 2
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((batch["input_ids"] == image_id).sum()) == 2 * merged  # both views reach the model, unresized
    model = copy.deepcopy(model).train()
    out = model(**batch, labels=batch["input_ids"])
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for n, p in model.named_parameters()
               if "visual" in n)
