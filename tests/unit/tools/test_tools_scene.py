"""3D tools on a generated scene: what each named view puts left and right, cameras given by position,
crops that keep only the points inside a box, and bad boxes and cameras."""

import numpy as np
import pytest

from mmreason.modalities.point_cloud import load_point_cloud
from mmreason.tools import run_tool_call
from mmreason.tools.env import ToolEnv, ToolSettings

RED = (0.4, -1.4, 0.0, 1.4, -0.4, 1.0)  # x > 0, y < 0
BLUE = (-1.4, 0.4, 0.0, -0.4, 1.4, 1.0)  # x < 0, y > 0


def _cube(box, n, rng):
    lo, hi = np.array(box[:3]), np.array(box[3:])
    return rng.uniform(lo, hi, size=(n, 3))


@pytest.fixture(scope="module")
def env():
    rng = np.random.default_rng(0)
    xyz = np.r_[_cube(RED, 3000, rng), _cube(BLUE, 3000, rng)]
    rgb = np.r_[np.tile([1.0, 0, 0], (3000, 1)), np.tile([0, 0, 1.0], (3000, 1))]
    cloud = load_point_cloud(np.c_[xyz, rgb], normalize="unit_cube")  # tools work in scene metres regardless
    return ToolEnv("qwen2_5_vl", clouds=[cloud], settings=ToolSettings(view_size=96),
                   media_options={"image": {"min_pixels": 0, "max_pixels": 96 * 96}})


def _call(env, name, **arguments):
    return run_tool_call({"name": name, "arguments": arguments}, env)


def _sides(obs):
    """(red on the left half?, red in the upper half?) from the picture's red and blue pixel centroids."""
    img = np.asarray(obs.images[0].image).astype(int)
    red = (img[..., 0] > 150) & (img[..., 2] < 100)
    blue = (img[..., 2] > 150) & (img[..., 0] < 100)
    assert red.sum() > 20 and blue.sum() > 20
    ry, rx = np.argwhere(red).mean(0)
    by, bx = np.argwhere(blue).mean(0)
    return rx < bx, ry < by


@pytest.mark.parametrize("view, red_left", [("front", False), ("back", True), ("left", False), ("right", True)])
def test_named_views_look_from_where_they_say(env, view, red_left):
    # front: from -y, +x on the right; back: from +y; left: from -x, -y on the right; right: from +x
    obs = _call(env, "render_view", view=view)
    assert not obs.error and f"from the {view}" in obs.text
    assert _sides(obs)[0] == red_left


def test_top_view_is_a_map_with_y_up(env):
    obs = _call(env, "render_view", view="top")
    red_left, red_up = _sides(obs)
    assert not red_left and not red_up  # red at +x (right) and -y (down)
    camera = obs.info["camera"]
    assert camera["width"] == 96 and np.allclose(np.array(camera["extrinsics"])[2, :3], [0, 0, -1])


def test_a_given_camera(env):
    obs = _call(env, "render_view", position=[0.0, -6.0, 0.5])  # looks at the centre: like the front view
    assert not obs.error and not _sides(obs)[0]
    down = _call(env, "render_view", position=[0.0, 0.0, 8.0], look_at=[0.0, 0.0, 0.0])  # straight down
    assert not down.error and _sides(down) == (False, False)


@pytest.mark.parametrize("arguments, reason", [
    ({"view": "under"}, "view must be one of"),
    ({"view": 3}, "view must be one of"),
    ({"position": [0, 0, 0.5], "look_at": [0, 0, 0.5]}, "different points"),
    ({"position": [0, 0]}, "list of 3 numbers"),
    ({"position": [0, float("nan"), 1]}, "finite"),
    ({"position": [0, 1e30, 1]}, "between"),
    ({"view": "front", "position": [0, -5, 0]}, "not both"),
    ({"look_at": [0, 0, 0]}, "needs a position"),
    ({"cloud_index": 2}, "cloud_index must be between 0 and 0"),
])
def test_bad_views(env, arguments, reason):
    obs = _call(env, "render_view", **arguments)
    assert obs.error and reason in obs.text, obs.text


def test_crop_region_keeps_only_the_points_inside(env):
    obs = _call(env, "crop_region", bbox_3d=list(RED), view="front")
    assert not obs.error and obs.info["num_points"] == 3000
    img = np.asarray(obs.images[0].image).astype(int)
    red = (img[..., 0] > 150) & (img[..., 2] < 100)
    blue = (img[..., 2] > 150) & (img[..., 0] < 100)
    assert red.sum() > 0.2 * red.size and blue.sum() == 0  # close up on red, nothing blue


@pytest.mark.parametrize("box, reason", [
    ([0, 0, 0, 1, 1], "list of 6 numbers"),
    ([1, 0, 0, 0, 1, 1], "minimum corner first"),
    ([5, 5, 5, 6, 6, 6], "no points inside"),
    ([0, 0, 0, 1, 1, float("inf")], "finite"),
])
def test_bad_crops(env, box, reason):
    obs = _call(env, "crop_region", bbox_3d=box)
    assert obs.error and reason in obs.text, obs.text


def test_no_cloud():
    assert _call(ToolEnv("qwen2_5_vl"), "render_view").text == "Error: this sample has no point cloud"
