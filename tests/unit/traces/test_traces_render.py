"""The trace renderers (`mmreason.traces.render`): examples, bad input, parse(render(x)) == x round trips."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmreason.traces import (
    BLOCK_TAGS,
    parse,
    render_action,
    render_block,
    render_box,
    render_box_3d,
    render_gcot_objects,
    render_point,
    render_tool_call,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------------- renderers
def test_render_examples():
    assert render_block("rethink", "again") == "<rethink>again</rethink>"
    assert render_tool_call("image_zoom_in_tool", {"bbox_2d": [1, 2, 3, 4]}) == (
        '<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]}}\n</tool_call>')
    assert render_box([200, 168, 248, 202.4], "ints") == "(200, 168, 248, 202)"
    objects = [("chair", [[0, 0, 0, 1, 1, 1], [2, 2, 0, 3, 3, 1]]), ("door", [[5, 0, 0, 6, 0.1, 2]])]
    assert render_gcot_objects(objects) == (
        "chair 2 <bbox>(0.0000, 0.0000, 0.0000, 1.0000, 1.0000, 1.0000)</bbox>"
        "<bbox>(2.0000, 2.0000, 0.0000, 3.0000, 3.0000, 1.0000)</bbox>, "
        "door 1 <bbox>(5.0000, 0.0000, 0.0000, 6.0000, 0.1000, 2.0000)</bbox>")


@pytest.mark.parametrize("call", [
    lambda: render_block("thinking", "x"),
    lambda: render_block("think", "a</think>b"),
    lambda: render_box([1, 2, 3]),
    lambda: render_box([1, 2, 3, float("nan")]),
    lambda: render_box([1, 2, 3, 4], fmt="xyxy"),
    lambda: render_box([-1, 2, 3, 4], fmt="ints"),
    lambda: render_box([1, 2, 3, 4], fmt="box_tokens", label="<x>"),
    lambda: render_box_3d([0, 0, 0, 1, 1, float("inf")]),
    lambda: render_gcot_objects([("coffee table", [[0, 0, 0, 1, 1, 1]])]),
    lambda: render_gcot_objects([("chair", [])]),
    lambda: render_tool_call("", {}),
    lambda: render_tool_call("f", {"x": float("nan")}),
    lambda: render_tool_call("f", {"x": object()}),
    lambda: render_point([1, 2, 3]),
    lambda: render_action({"coordinate": [1, 2]}),
])
def test_renderers_reject_bad_input(call):
    with pytest.raises(ValueError):
        call()


finite = st.floats(allow_nan=False, allow_infinity=False)
labels = st.none() | st.text(alphabet="abcdefgh XYZ-_.é中{}\"'\\/", max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | finite | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(st.lists(finite, min_size=4, max_size=4), labels)
def test_round_trip_bbox_2d(box, label):
    (found,) = parse(render_box(box, label=label)).boxes
    assert (found.box, found.label, found.fmt) == (tuple(box), label, "bbox_2d")


@FUZZ
@given(st.lists(st.integers(0, 10**6), min_size=4, max_size=4), st.sampled_from(["ints", "box_tokens"]),
       labels)
def test_round_trip_integer_formats(box, fmt, label):
    if fmt == "box_tokens" and label is not None:
        label = label.replace("<", "").strip()
    (found,) = parse(render_box(box, fmt, label=label)).boxes
    assert (found.box, found.fmt) == (tuple(map(float, box)), fmt)
    # box tokens carry the label (stripped, as the parser reads it); GRIT's ints have no place for one
    assert found.label == (label.strip() if fmt == "box_tokens" and label is not None else None)


@FUZZ
@given(st.lists(st.lists(st.floats(-1e6, 1e6), min_size=6, max_size=6), min_size=1, max_size=4),
       st.from_regex(r"[A-Za-z_]\w{0,12}", fullmatch=True), st.integers(0, 6))
def test_round_trip_gcot(boxes, name, decimals):
    gcot = render_gcot_objects([(name, boxes), ("door", boxes[:1])], decimals)
    t = parse(render_block("think", "so " + gcot))
    assert [(b.name, b.count) for b in t.boxes_3d] == [(name, len(boxes))] * len(boxes) + [("door", 1)]
    rounded = [tuple(float(f"{v:.{decimals}f}") for v in b) for b in boxes]
    assert [b.box for b in t.boxes_3d[: len(boxes)]] == rounded
    assert t.issues == () and t.boxes == ()


@FUZZ
@given(st.lists(finite, min_size=2, max_size=2), labels)
def test_round_trip_point(point, label):
    (found,) = parse(render_point(point, label)).points
    assert (found.point, found.label, found.fmt) == (tuple(point), label, "point_2d")


@FUZZ
@given(st.text(min_size=1, max_size=20), st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_round_trip_tool_call(name, arguments):
    t = parse(render_tool_call(name, arguments))
    assert [(c.name, c.arguments, c.error) for c in t.tool_calls] == [(name, arguments, None)]
    # argument values may hold malformed boxes or points, reported as such; the call itself is clean
    assert not any(i.startswith("tool_call") for i in t.issues) and [b.tag for b in t.blocks] == ["tool_call"]


@FUZZ
@given(
    st.sampled_from(["click", "long_press", "type"]),
    st.lists(st.integers(0, 4000), min_size=2, max_size=2),
    st.sampled_from(["mobile_use", "computer_use", "grounding"]),
)
def test_round_trip_action(kind, xy, name):
    action = {"action": kind, "coordinate": xy}
    t = parse(render_action(action, name))
    assert t.actions == (action,) and t.tool_calls[0].name == name
    assert [p.point for p in t.points] == [tuple(map(float, xy))]


@FUZZ
@given(st.sampled_from(BLOCK_TAGS), st.text(max_size=60))
def test_round_trip_block(tag, text):
    if f"<{tag}>" in text or f"</{tag}>" in text:
        return
    t = parse(render_block(tag, text))
    block = t.blocks[0]
    assert (block.tag, block.text, block.closed, block.start) == (tag, text, True, 0)
