import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmreason import geometry as g
from mmreason.families import FAMILIES

coord = st.floats(min_value=0, max_value=4000, allow_nan=False)
any_float = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def boxes(draw, lo=0.0, hi=4000.0):
    x1 = draw(st.floats(lo, hi - 2))
    y1 = draw(st.floats(lo, hi - 2))
    x2 = draw(st.floats(x1 + 1, hi))
    y2 = draw(st.floats(y1 + 1, hi))
    return (x1, y1, x2, y2)


@st.composite
def boxes3d(draw):
    lo = [draw(st.floats(-50, 48)) for _ in range(3)]
    hi = [draw(st.floats(v + 0.01, 50)) for v in lo]
    return tuple(lo + hi)


def test_smart_resize_known_values():
    assert g.smart_resize(480, 640) == (476, 644)
    # Qwen3-VL factor 32
    assert g.smart_resize(480, 640, factor=32, min_pixels=256 * 256, max_pixels=4096 * 4096) == (480, 640)
    # clamps down to the budget and keeps multiples of the factor
    h, w = g.smart_resize(3000, 4000, factor=28, min_pixels=3136, max_pixels=256 * 28 * 28)
    assert h % 28 == 0 and w % 28 == 0 and h * w <= 256 * 28 * 28
    # scales tiny images up
    h, w = g.smart_resize(10, 10, factor=28, min_pixels=3136, max_pixels=10**7)
    assert h * w >= 3136


def test_smart_resize_rejects_bad_sizes():
    with pytest.raises(ValueError, match="aspect ratio"):
        g.smart_resize(10, 5000)
    with pytest.raises(ValueError, match="positive"):
        g.smart_resize(0, 10)


@given(st.integers(20, 3000), st.integers(20, 3000), st.sampled_from(sorted(FAMILIES)))
def test_resized_is_multiple_of_factor_and_within_budget(h, w, fam):
    if max(h, w) / min(h, w) > 200:
        return
    f = g.ImageFrame.for_family(w, h, fam, max_pixels=512 * 28 * 28, min_pixels=4 * 28 * 28)
    factor = FAMILIES[fam].factor
    assert f.resized_width % factor == 0 and f.resized_height % factor == 0
    assert f.resized_width * f.resized_height <= 512 * 28 * 28


@given(boxes(hi=1000.0), st.integers(100, 3000), st.integers(100, 3000),
       st.sampled_from(["pixel", "resized", "norm1000", "norm1"]), st.sampled_from(sorted(FAMILIES)))
def test_box_round_trip_through_any_frame(box, w, h, frame_name, fam):
    frame = g.ImageFrame.for_family(w, h, fam)
    there = g.convert_box(box, "pixel", frame_name, frame)
    back = g.convert_box(there, frame_name, "pixel", frame)
    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6) for a, b in zip(box, back))


@pytest.mark.parametrize("fam", sorted(FAMILIES))
def test_model_frame_round_trip_with_integer_outputs(fam):
    # The model emits integers: rounding in its frame must land within a pixel of the original.
    frame = g.ImageFrame.for_family(1280, 720, fam, max_pixels=1280 * 28 * 28)
    box = (311.0, 142.0, 907.0, 655.0)
    emitted = tuple(round(v) for v in g.box_to_model(box, fam, frame))
    back = g.box_from_model(emitted, fam, frame)
    assert max(abs(a - b) for a, b in zip(box, back)) <= 1.3  # 1 unit of 0-1000 on a 1280-px side is 1.28 px


def test_family_frames_are_the_documented_ones():
    assert g.model_frame("qwen2_vl") == "norm1000"
    assert g.model_frame("qwen2_5_vl") == "resized"
    assert g.model_frame("qwen3_vl") == "norm1000"


@given(boxes(), boxes())
def test_iou_bounds_and_symmetry(a, b):
    v = g.iou(a, b)
    assert 0.0 <= v <= 1.0
    assert math.isclose(v, g.iou(b, a), abs_tol=1e-12)
    assert -1.0 <= g.giou(a, b) <= v + 1e-12


@given(boxes())
def test_iou_self_is_one(a):
    assert math.isclose(g.iou(a, a), 1.0)
    assert math.isclose(g.giou(a, a), 1.0)


def test_iou_worked_examples():
    assert math.isclose(g.iou((0, 0, 2, 2), (1, 1, 3, 3)), 1 / 7)
    assert g.iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    # GIoU of disjoint boxes: 0 - (hull - union)/hull = -(9-2)/9
    assert math.isclose(g.giou((0, 0, 1, 1), (2, 2, 3, 3)), -7 / 9)


@given(st.lists(any_float, min_size=0, max_size=6), st.lists(any_float, min_size=0, max_size=6))
def test_metrics_never_raise_and_stay_finite(a, b):
    for fn in (g.iou, g.giou):
        v = fn(a, b)
        assert math.isfinite(v)
    assert math.isfinite(g.iou_3d(a, b))
    assert isinstance(g.point_in_box(a[:2], b[:4]), bool)


@given(boxes3d(), boxes3d())
def test_iou_3d_bounds_symmetry(a, b):
    v = g.iou_3d(a, b)
    assert 0 <= v <= 1 and math.isclose(v, g.iou_3d(b, a), abs_tol=1e-12)
    assert math.isclose(g.iou_3d(a, a), 1.0)


def test_iou_3d_worked_example_and_center_size():
    assert math.isclose(g.iou_3d((0, 0, 0, 2, 2, 2), (1, 1, 1, 3, 3, 3)), 1 / 15)
    box = g.center_size_to_aabb((1, 2, 3, 2, 4, 6))
    assert box == (0, 0, 0, 2, 4, 6)
    assert g.aabb_to_center_size(box) == (1, 2, 3, 2, 4, 6)


def test_point_in_box_and_union_iou():
    assert g.point_in_box((5, 5), (0, 0, 10, 10))
    assert not g.point_in_box((11, 5), (0, 0, 10, 10))
    assert not g.point_in_box((float("nan"), 5), (0, 0, 10, 10))
    # two GT boxes side by side, one prediction covering both exactly
    assert math.isclose(g.union_area_iou([(0, 0, 20, 10)], [(0, 0, 10, 10), (10, 0, 20, 10)]), 1.0)
    # overlapping predictions are not double counted
    assert math.isclose(g.union_area_iou([(0, 0, 10, 10), (0, 0, 10, 10)], [(0, 0, 10, 20)]), 0.5)


@given(st.lists(boxes(hi=100.0), min_size=1, max_size=5), st.lists(boxes(hi=100.0), min_size=1, max_size=5))
@settings(max_examples=50)
def test_union_iou_bounds(p, q):
    v = g.union_area_iou(p, q)
    assert 0 <= v <= 1 and math.isclose(v, g.union_area_iou(q, p), abs_tol=1e-9)
