"""Per-patch 3D coordinates: back-projection is exact on an analytic plane, and the patch points of a
rendered builder room (saved as posed RGB-D frames, read back by the spatial collator) lie on the room's
own points, inside the box of the object they show."""

import numpy as np
import pytest
import torch

from mmreason.data_builders.rooms_3d import make_room, path_cameras, render_path
from mmreason.models.spatial.geometry import backproject, patch_points
from mmreason.modalities.point_render import Camera

SPLAT = 2  # render_path's splat radius: a pixel shows a point up to this many pixels away from its ray


def _tolerance(xyz, cam):
    """How far a back-projected pixel may sit from the point it shows: the splat disc (plus the pixel's own
    half-diagonal) at that depth, plus the millimetre quantisation of a saved depth map."""
    z = cam.to_camera(xyz)[:, 2]
    return (SPLAT + 1) * np.sqrt(2) * z / cam.intrinsics[0, 0] + 2e-3


def _nearest(a, b):
    return torch.cdist(torch.from_numpy(np.asarray(a, np.float64)),
                       torch.from_numpy(np.asarray(b, np.float64))).min(1)


def test_backprojection_is_exact_on_a_plane():
    # a camera looking down at the floor from 2 m: every pixel's depth is known in closed form
    cam = Camera.look_at([1.0, 2.0, 2.0], [1.5, 3.0, 0.0], width=64, height=48, fov=60)
    u, v = np.meshgrid(np.arange(64) + 0.5, np.arange(48) + 0.5)
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(cam.intrinsics).T  # camera frame, z = 1
    r, t = cam.extrinsics[:3, :3], cam.extrinsics[:3, 3]
    origin = -r.T @ t
    dirs = rays @ r  # world directions whose camera z is 1
    depth = -origin[2] / dirs[..., 2]  # where the ray meets z = 0
    xyz = backproject(depth, cam.intrinsics, cam.extrinsics)
    np.testing.assert_allclose(xyz[..., 2], 0.0, atol=1e-9)
    uv, z = cam.project(xyz.reshape(-1, 3))
    np.testing.assert_allclose(uv, np.stack([u, v], -1).reshape(-1, 2), atol=1e-6)
    np.testing.assert_allclose(z, depth.ravel(), atol=1e-9)
    hole = depth.copy()
    hole[0, 0] = 0
    assert np.isnan(backproject(hole, cam.intrinsics, cam.extrinsics)[0, 0]).all()


@pytest.fixture(scope="module")
def rendered_room():
    rng = np.random.default_rng(3)
    room = make_room(rng, num_points=20000)
    cams = path_cameras(room, rng, k=4, width=224, height=168)
    return room, cams, render_path(room, cams)


def test_patch_points_lie_on_the_scene_and_in_their_objects_box(rendered_room):
    room, cams, views = rendered_room
    for (image, _, depth), cam in zip(views, cams):
        pp = patch_points(depth, np.asarray(image), cam.intrinsics, cam.extrinsics, (6, 8), k=16)
        assert pp.xyz.shape == (48, 16, 3) and pp.valid.mean() > 0.5
        pts = pp.xyz[pp.valid]
        near = _nearest(pts, room.xyz)
        assert (near.values.numpy() <= _tolerance(pts, cam)).all()
        # a point that shows furniture lies in (or within the splat tolerance of) that object's box
        inst = room.instance[near.indices.numpy()]
        for p, i, tol in zip(pts, inst, _tolerance(pts, cam)):
            if i >= 0:
                lo, hi = np.array(room.objects[i].box[:3]), np.array(room.objects[i].box[3:])
                assert (p >= lo - tol).all() and (p <= hi + tol).all()
        # the centre point is the token's own: within its cell's points' extent
        for n in np.flatnonzero(pp.center_valid):
            cell = pp.xyz[n][pp.valid[n]]
            assert (pp.center[n] >= cell.min(0) - 0.5).all() and (pp.center[n] <= cell.max(0) + 0.5).all()


def test_patch_cells_follow_the_resized_grid(rendered_room):
    # a 2 x 2 token grid over a 224 x 168 frame: each token reads only its own quarter of the pixels
    room, cams, views = rendered_room
    image, _, depth = views[0]
    cam = cams[0]
    pp = patch_points(depth, np.asarray(image), cam.intrinsics, cam.extrinsics, (2, 2), k=64)
    for n in range(4):
        uv, _ = cam.project(pp.xyz[n][pp.valid[n]])
        row, col = divmod(n, 2)
        # splatted pixels sit within SPLAT + 1 px of their point's projection
        assert (uv[:, 0] >= col * 112 - SPLAT - 1).all() and (uv[:, 0] <= (col + 1) * 112 + SPLAT + 1).all()
        assert (uv[:, 1] >= row * 84 - SPLAT - 1).all() and (uv[:, 1] <= (row + 1) * 84 + SPLAT + 1).all()


def test_builder_frames_through_the_spatial_collator(tmp_path, processor):
    from mmreason.data_builders.scenes_3d import build
    from mmreason.modalities.collate import Collator
    from mmreason.modalities.point_cloud import load_point_cloud
    from mmreason.models.spatial import SpatialCollator, SpatialConfig
    from mmreason.schema import dataset_root, load_rows, resolve_media

    out = build(tmp_path / "ds", n=1, seed=0, qtypes=["grounding_3d"], rgbd=True, views=3,
                num_points=20000, view_size=[224, 168], progress=False)
    rows = [resolve_media(r, dataset_root(out)) for r in load_rows(out)]
    row = rows[0]
    assert [p["type"] for p in row["messages"][0]["content"]] == ["image"] * 3 + ["text"]
    config = SpatialConfig(points_per_patch=8, scene_points=512)
    batch = SpatialCollator(Collator(processor("qwen2_5_vl"), "qwen2_5_vl", return_meta=False), config)(rows)
    tokens = int((batch["image_grid_thw"].prod(-1) // 4).sum())
    assert batch["spatial_points"].shape == (tokens, 8, 6)
    assert batch["spatial_scene"].shape == (1, 512, 6) and batch["spatial_scene_mask"].all()
    cloud = load_point_cloud(row["meta"]["cloud"], root=dataset_root(out)).scene_xyz()
    cams = [Camera(np.array(f["intrinsics"]), np.array(f["extrinsics"]), f["width"], f["height"])
            for f in row["meta"]["rgbd"]["frames"]]
    per_image = (batch["image_grid_thw"].prod(-1) // 4).tolist()
    start = 0
    for cam, n in zip(cams, per_image):
        mask = batch["spatial_point_mask"][start:start + n]
        pts = batch["spatial_points"][start:start + n, :, :3][mask].numpy()
        assert len(pts) > 0
        assert (_nearest(pts, cloud).values.numpy() <= _tolerance(pts, cam)).all()
        start += n
    # the same row gives the same tensors (seeded by its id), whatever batch it comes in
    again = SpatialCollator(Collator(processor("qwen2_5_vl"), "qwen2_5_vl", return_meta=False), config)(rows)
    torch.testing.assert_close(again["spatial_points"], batch["spatial_points"])
