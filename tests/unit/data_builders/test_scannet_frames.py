"""ScanNet's SensReader export -> posed RGB-D frames: a synthetic export of a known floor, seen by two tracked
cameras (and one whose tracking failed), converts into ScanRefer rows whose frames back-project onto that
floor in the axis-aligned frame, with colour registered onto the depth grid; broken files are named."""

import json

import numpy as np
import pytest
from PIL import Image

from mmreason import schema
from mmreason.data_builders import converters
from mmreason.errors import MediaError

K_DEPTH = np.array([[60.0, 0, 40], [0, 60.0, 30], [0, 0, 1]])  # 80 x 60 depth frames
K_COLOR = np.array([[100.0, 0, 90], [0, 100.0, 62], [0, 0, 1]])  # 170 x 124 colour frames, a wider view
# axis alignment: a quarter turn about z, then a shift; the scan's floor z = 0 becomes z = 0.2
ALIGN = np.array([[0, -1, 0, 0.5], [1, 0, 0, -1.0], [0, 0, 1, 0.2], [0, 0, 0, 1]], dtype=float)


def look(eye, forward):
    """Camera-to-world 4 x 4 of a camera at `eye` looking along `forward` (x right, y down, z forward)."""
    z = np.asarray(forward, float) / np.linalg.norm(forward)
    x = np.cross(z, [0, 0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([x, y, z])
    pose[:3, 3] = eye
    return pose


POSES = [look([1.0, 2.0, 1.5], [0, 1, -1]), look([3.0, 1.0, 2.0], [-1, 0.5, -1.2])]


def floor_depth(pose, k=K_DEPTH, size=(80, 60)):
    """Millimetre depth of the floor z = 0 at every pixel centre (0 where the ray misses it)."""
    w, h = size
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(k).T @ pose[:3, :3].T  # world, cam z = 1
    t = np.where(rays[..., 2] < -1e-6, -pose[2, 3] / np.minimum(rays[..., 2], -1e-6), 0)
    return np.round(t * 1000).astype(np.uint16)


def write_export(folder, poses=POSES, invalid=(1,)):
    """A SensReader export: frames 0..len(poses) with frame numbers in `invalid` tracked as -inf."""
    for sub in ("color", "depth", "pose", "intrinsic"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for name, k in (("intrinsic_color.txt", K_COLOR), ("intrinsic_depth.txt", K_DEPTH)):
        m = np.eye(4)
        m[:3, :3] = k
        np.savetxt(folder / "intrinsic" / name, m)
    colour = np.zeros((124, 170, 3), np.uint8)
    colour[:, :90] = (220, 30, 30)  # red left of the colour camera's principal point, blue right of it
    colour[:, 90:] = (30, 30, 220)
    it = iter(poses)
    for n in range(len(poses) + len(invalid)):
        Image.fromarray(colour).save(folder / "color" / f"{n}.jpg", quality=95)
        if n in invalid:
            (folder / "pose" / f"{n}.txt").write_text("\n".join(["-inf -inf -inf -inf"] * 4) + "\n")
            Image.fromarray(np.zeros((60, 80), np.uint16)).save(folder / "depth" / f"{n}.png")
            continue
        pose = next(it)
        np.savetxt(folder / "pose" / f"{n}.txt", pose)
        Image.fromarray(floor_depth(pose)).save(folder / "depth" / f"{n}.png")


@pytest.fixture()
def source(tmp_path):
    write_export(tmp_path / "scans" / "scene0000_00" / "frames")
    (tmp_path / "boxes").mkdir()
    np.save(tmp_path / "boxes" / "scene0000_00_aligned_bbox.npy",
            np.array([[1.0, 1.0, 0.5, 1.0, 0.8, 1.0, 5, 3]]))
    (tmp_path / "meta.txt").write_text("axisAlignment = " + " ".join(map(str, ALIGN.ravel())) + "\n")
    refer = [{"scene_id": "scene0000_00", "object_id": "3", "object_name": "table", "ann_id": "0",
              "description": "the table."},
             {"scene_id": "scene0000_00", "object_id": "3", "object_name": "table", "ann_id": "1",
              "description": "a table by the wall."}]
    (tmp_path / "refer.json").write_text(json.dumps(refer))
    return {"src": str(tmp_path / "refer.json"), "boxes": str(tmp_path / "boxes"),
            "frames": str(tmp_path / "scans" / "{scene_id}" / "frames"), "axis_align": str(tmp_path / "meta.txt"),
            "progress": False}


def convert(tmp_path, source, name="out", **extra):
    out = converters.build_scanrefer(tmp_path / name, n=0, **{**source, **extra})
    return out, [schema.resolve_media(r, out) for r in sorted(schema.load_rows(out), key=lambda r: r["id"])]


def test_frames_back_project_onto_the_known_floor(tmp_path, source):
    from mmreason.models.spatial.collate import read_depth, read_rgb
    from mmreason.models.spatial.geometry import backproject

    out, rows = convert(tmp_path, source)
    row = rows[0]
    frames = row["meta"]["rgbd"]["frames"]
    assert [f["frame"] for f in frames] == [0, 2]  # frame 1 lost tracking: no camera, not used
    assert [p["type"] for p in row["messages"][0]["content"]] == ["image", "image", "text"]
    assert schema.images_of(row) == [str(out / f["image"]) for f in frames]
    # both rows of the scene share its frames
    assert rows[1]["meta"]["rgbd"]["frames"] == frames
    for frame, pose in zip(frames, POSES):
        depth = read_depth(out / frame["depth"], row["meta"]["rgbd"]["depth_scale"])
        world = backproject(depth, frame["intrinsics"], frame["extrinsics"])
        seen = np.isfinite(world).all(-1)
        assert seen.mean() > 0.5
        # every seen pixel lies on the floor, which the alignment puts at z = 0.2 (millimetre depth steps)
        np.testing.assert_allclose(world[seen][:, 2], 0.2, atol=3e-3)
        # and where the scan's own camera says: the pixel at the principal point, through ALIGN
        v, u = 30, 40
        ray = pose[:3, :3] @ np.linalg.inv(K_DEPTH) @ [u + 0.5, v + 0.5, 1]
        hit = pose[:3, 3] - pose[2, 3] / ray[2] * ray
        np.testing.assert_allclose(world[v, u], (ALIGN @ [*hit, 1])[:3], atol=5e-3)
        # colour registered on the depth grid: the colour camera's principal point falls on column 40
        rgb = read_rgb(out / frame["image"])
        assert rgb.shape == (60, 80, 3)
        assert (rgb[:, :39, 0] > 150).all() and (rgb[:, :39, 2] < 100).all()
        assert (rgb[:, 41:, 2] > 150).all() and (rgb[:, 41:, 0] < 100).all()


def test_the_spatial_collator_reads_the_converted_rows(tmp_path, source):
    from mmreason.models.spatial import SpatialConfig, spatial_inputs

    _, rows = convert(tmp_path, source, num_frames=1)
    config = SpatialConfig(width=16, heads=2, points_per_patch=6, scene_points=128)
    got = spatial_inputs(rows[:1], [[1, 4, 6]], config)  # a 2 x 3 token grid over the 80 x 60 frame
    assert got["spatial_center_mask"].any()
    centres = got["spatial_centers"][got["spatial_center_mask"]]
    np.testing.assert_allclose(centres[:, 2].numpy(), 0.2, atol=3e-3)
    assert got["spatial_scene_mask"].any()


@pytest.mark.parametrize("damage, named, message", [
    (lambda f: (f / "pose" / "2.txt").unlink(), "pose/2.txt", "cannot read"),
    (lambda f: (f / "pose" / "0.txt").write_text("1 0 0\n"), "pose/0.txt", "4 x 4 matrix"),
    (lambda f: (f / "intrinsic" / "intrinsic_depth.txt").write_text("fx"), "intrinsic_depth.txt", "4 x 4"),
    (lambda f: (f / "depth" / "2.png").write_bytes(b"not a png"), "depth/2.png", "cannot be read"),
    (lambda f: Image.new("RGB", (80, 60)).save(f / "depth" / "0.png"), "depth/0.png", "16-bit"),
    (lambda f: (f / "depth" / "0.png").unlink(), "depth/0.png", "not found"),
    (lambda f: (f / "color" / "2.jpg").write_bytes(b"\xff\xd8 broken"), "color/2.jpg", "cannot be read"),
])
def test_a_broken_file_is_named(tmp_path, source, damage, named, message):
    damage(tmp_path / "scans" / "scene0000_00" / "frames")
    with pytest.raises(MediaError, match=message) as err:
        convert(tmp_path, source)
    assert named in str(err.value).replace("\\", "/")


def test_a_scene_without_a_usable_export_is_named(tmp_path, source):
    folder = tmp_path / "scans" / "scene0000_00" / "frames"
    for n in (0, 2):
        (folder / "pose" / f"{n}.txt").write_text("\n".join(["-inf -inf -inf -inf"] * 4))
    with pytest.raises(MediaError, match="no frame has a finite camera pose"):
        convert(tmp_path, source)
    with pytest.raises(MediaError, match="frame export not found") as err:
        convert(tmp_path, source, name="other", frames=str(tmp_path / "nowhere" / "{scene_id}"))
    assert "nowhere/scene0000_00" in str(err.value).replace("\\", "/")
    with pytest.raises(ValueError, match="frames=scans/"):
        convert(tmp_path, source, name="third", frames=str(tmp_path / "fixed"))
