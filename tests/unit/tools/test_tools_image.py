"""Image tools: DeepEyes' zoom rules one by one, clamping, every coordinate frame, crops cut from the
original pixels, upstream verl's enlarge rule, rotation, and hostile arguments (hypothesis)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mmreason.geometry import convert_box
from mmreason.modalities.image import LoadedImage, load_image
from mmreason.tools import run_tool_call
from mmreason.tools.env import Observation, ToolEnv, ToolSettings
from mmreason.tools.image import image_rotate, image_zoom_in

SMALL = {"image": {"min_pixels": 28 * 28, "max_pixels": 64 * 28 * 28}}


def _picture(width=1000, height=800, seed=0):
    """Random pixels: any crop identifies where it came from."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8))


def _env(family="qwen2_5_vl", frame="pixel", **changes):
    source = _picture()
    loaded = load_image(source, family, min_pixels=28 * 28, max_pixels=64 * 28 * 28)
    env = ToolEnv(family, images=[loaded], settings=ToolSettings(coord_frame=frame, **changes), media_options=SMALL)
    return env, source


def _zoom(env, box, **kw):
    return run_tool_call({"name": "image_zoom_in", "arguments": {"bbox_2d": box, **kw}}, env)


def test_the_crop_is_cut_from_the_original_pixels_not_the_resized_copy():
    env, source = _env()
    assert env.images[0].image.size != source.size  # the model saw a much smaller copy
    obs = _zoom(env, [100, 200, 400, 350], label="cup")
    assert not obs.error and obs.penalty == 0.0 and len(obs.images) == 1
    crop = obs.images[0]
    assert isinstance(crop, LoadedImage)
    assert obs.info["box_pixel"] == (100.0, 200.0, 400.0, 350.0) and obs.info["label"] == "cup"
    assert np.array_equal(np.asarray(crop.original), np.asarray(source.crop((100, 200, 400, 350))))
    # ...and the returned picture is sized by the family rule within the returned-image budget
    assert crop.image.size[0] % 28 == 0 and crop.image.size[1] % 28 == 0
    assert crop.image.size[0] * crop.image.size[1] <= 64 * 28 * 28
    assert "cup" in obs.text and "[100, 200, 400, 350]" in obs.text


def test_clamping_to_the_image_bounds():
    env, _ = _env()
    obs = _zoom(env, [-50, 700, 1200, 900])
    assert obs.info["box_pixel"] == (0.0, 700.0, 1000.0, 800.0)
    assert obs.images[0].original.size == (1000, 100)


@pytest.mark.parametrize("frame", ["pixel", "resized", "norm1000", "norm1"])
def test_every_coordinate_frame_cuts_the_same_region(frame):
    env, source = _env(frame=frame)
    wanted = (120.0, 80.0, 520.0, 480.0)
    box = convert_box(wanted, "pixel", frame, env.images[0].frame)
    obs = _zoom(env, list(box))
    assert not obs.error, obs.text
    assert all(abs(a - b) <= 1.0 for a, b in zip(obs.info["box_pixel"], wanted))


@pytest.mark.parametrize("family, frame", [("qwen2_5_vl", "resized"), ("qwen2_vl", "norm1000"),
                                           ("qwen3_vl", "norm1000"), ("qwen2_5_omni", "resized")])
def test_default_frame_is_the_family_output_frame(family, frame):
    env, _ = _env(family=family, frame=None)
    assert env.coord_frame == frame
    box = convert_box((0, 0, 500, 400), "pixel", frame, env.images[0].frame)
    obs = _zoom(env, list(box))
    assert all(abs(a - b) <= 1.0 for a, b in zip(obs.info["box_pixel"], (0, 0, 500, 400)))


@pytest.mark.parametrize("box, reason", [
    ([300, 100, 200, 400], "x1 < x2"),  # inverted x
    ([100, 400, 300, 100], "y1 < y2"),  # inverted y
    ([100, 100, 100, 400], "x1 < x2"),  # zero width
    ([0, 0, 990, 9.5], "too elongated"),  # aspect ratio 104 > 100
    ([10, 10, 40, 300], "too small"),  # shorter side 30: must be MORE than 30
    ([1100, 100, 1300, 300], "outside"),
    ([980, 100, 1100, 400], "too small"),  # 20 px wide once clamped
    ([10, 20, 30], "list of 4 numbers"),
    ("10, 20, 30, 40", "list of 4 numbers"),
    ([10, 20, "30", 40], "must be a number"),
    ([10, True, 30, 40], "must be a number"),
    ([float("nan"), 0, 100, 100], "finite"),
    ([0, 0, float("inf"), 100], "finite"),
    ([0, 0, 10**400, 100], "out of range"),
    ([0, 0, 1e30, 100], "between"),
])
def test_each_rejection_rule_is_an_error_observation(box, reason):
    env, _ = _env(invalid_penalty=-0.05)
    obs = _zoom(env, box)
    assert obs.error and obs.text.startswith("Error: ") and reason in obs.text, obs.text
    assert obs.images == () and obs.penalty == -0.05


def test_the_boundaries_thirty_one_pixels_and_aspect_one_hundred_pass():
    env, _ = _env()
    assert not _zoom(env, [10, 10, 41, 300]).error
    wide = ToolEnv("qwen2_5_vl", images=[load_image(_picture(3000, 100), "qwen2_5_vl", max_pixels=64 * 28 * 28)],
                   settings=ToolSettings(coord_frame="pixel", small_box="enlarge"))
    assert not _zoom(wide, [0, 0, 2800, 28]).error  # aspect exactly 100
    assert "too elongated" in _zoom(wide, [0, 0, 2801, 28]).text


def test_upstream_enlarge_rule_grows_small_boxes_about_their_centre():
    env, source = _env(small_box="enlarge")
    obs = _zoom(env, [500, 400, 510, 410])  # 10 x 10 around (505, 405)
    x1, y1, x2, y2 = obs.info["box_pixel"]
    assert (x2 - x1, y2 - y1) == (28.0, 28.0) and (x1 + x2) / 2 == 505 and (y1 + y2) / 2 == 405
    corner = _zoom(env, [0, 0, 4, 8])  # at the corner: shifted back inside, aspect kept (28 x 56)
    assert corner.info["box_pixel"] == (0.0, 0.0, 28.0, 56.0)
    tiny = ToolEnv("qwen2_5_vl", images=[load_image(_picture(20, 20), "qwen2_5_vl")],
                   settings=ToolSettings(coord_frame="pixel", small_box="enlarge"))
    assert "too small" in _zoom(tiny, [0, 0, 10, 10]).text


def test_enlarging_keeps_the_shape_and_the_result_is_checked_again():
    # verl's rule scales both sides by one factor; a box that must shrink to fit the image can end up too
    # small, and is then refused (capping each side on its own cut a 100 x 28 box of another shape)
    strip = ToolEnv("qwen2_5_vl", images=[load_image(_picture(100, 40), "qwen2_5_vl")],
                    settings=ToolSettings(coord_frame="pixel", small_box="enlarge"))
    obs = _zoom(strip, [10, 10, 90, 15])  # 80 x 5: to 448 x 28, which fits only as 100 x 6.25
    assert obs.error and "too small" in obs.text
    # what fits is cut at the grown size, inside the image, corners rounded outwards
    ok = _zoom(strip, [10, 10, 30, 15])  # 20 x 5 -> 112 x 28 -> scaled to 100 x 25: still under 28
    assert ok.error
    square = _zoom(strip, [45, 15, 50, 20])  # 5 x 5 -> 28 x 28 around (47.5, 17.5)
    assert square.info["box_pixel"] == (33.0, 3.0, 62.0, 32.0)


def test_image_index_and_missing_images():
    env, _ = _env()
    assert "image_index must be between 0 and 0" in _zoom(env, [0, 0, 100, 100], image_index=1).text
    assert "image_index must be a whole number" in _zoom(env, [0, 0, 100, 100], image_index=0.5).text
    empty = ToolEnv("qwen2_5_vl")
    assert _zoom(empty, [0, 0, 100, 100]).text == "Error: this sample has no image"


def test_label_must_be_text():
    env, _ = _env()
    assert "label must be a string" in _zoom(env, [0, 0, 100, 100], label=["x"]).text
    assert "x" * 200 in _zoom(env, [0, 0, 100, 100], label="x" * 5000).text  # long labels are cut, not fatal


def test_rotate_turns_counter_clockwise_with_the_canvas_expanded():
    source = Image.new("RGB", (300, 200), "white")
    source.paste((255, 0, 0), (0, 0, 30, 30))  # a red mark in the top-left corner
    env = ToolEnv("qwen2_5_vl", images=[load_image(source, "qwen2_5_vl")])
    obs = image_rotate(env, 90)
    rotated = obs.images[0].original
    assert rotated.size == (200, 300)
    assert rotated.getpixel((5, 295)) == (255, 0, 0)  # top-left goes to bottom-left when turned left
    assert obs.info["angle"] == 90.0 and not obs.error
    for bad in (float("nan"), 361, "90", None):
        out = image_rotate(env, bad)
        assert out.error and out.images == ()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                          st.text(max_size=3), st.none(), st.booleans()), min_size=0, max_size=6))
def test_hostile_boxes_never_raise_and_never_cut_an_invalid_crop(box):
    env, _ = _env()
    obs = _zoom(env, box)
    assert isinstance(obs, Observation)
    if not obs.error:
        x1, y1, x2, y2 = obs.info["box_pixel"]
        assert 0 <= x1 < x2 <= 1000 and 0 <= y1 < y2 <= 800
        assert min(x2 - x1, y2 - y1) > 30 and max(x2 - x1, y2 - y1) / min(x2 - x1, y2 - y1) <= 100
        assert all(math.isfinite(v) for v in (x1, y1, x2, y2))


def test_tools_called_directly_also_return_errors():
    env, _ = _env()
    assert image_zoom_in(env, "junk").error
    assert image_zoom_in(env, [0, 0, 500, 500]).images
