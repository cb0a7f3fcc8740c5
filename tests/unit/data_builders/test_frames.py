"""GUI targets move into each family's frame: action points and the stated screen resolution too."""

import pytest

from mmreason.data_builders.frames import render_for_family
from mmreason.geometry import ImageFrame, point_from_model
from mmreason.traces import parse


def _gui_row():
    call = ('<think>tap it</think><tool_call>{"name": "mobile_use", "arguments": {"action": "swipe", '
            '"coordinate": [540, 1200], "coordinate2": [540, 300]}}</tool_call>')
    return {"id": "g", "meta": {"coord_frame": "pixel", "image_size": [1080, 2400]}, "messages": [
        {"role": "system", "content": [{"type": "text", "text": "The screen's resolution is 1080x2400."}]},
        {"role": "assistant", "content": [{"type": "text", "text": call}]}]}


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_action_points_and_resolution_follow_the_family_frame(family):
    out = render_for_family(_gui_row(), family, max_pixels=1024 * 28 * 28)
    frame = ImageFrame.for_family(1080, 2400, family, max_pixels=1024 * 28 * 28)
    system = out["messages"][0]["content"][0]["text"]
    expected = (f"{frame.resized_width}x{frame.resized_height}" if family == "qwen2_5_vl" else "1000x1000")
    assert system == f"The screen's resolution is {expected}."
    trace = parse(out["messages"][1]["content"][0]["text"])
    args = trace.tool_calls[0].arguments
    for key, original in (("coordinate", (540, 1200)), ("coordinate2", (540, 300))):
        back = point_from_model(args[key], family, frame)
        assert abs(back[0] - original[0]) <= 3 and abs(back[1] - original[1]) <= 3
    if family != "qwen2_5_vl":
        assert args["coordinate"] == [500, 500]


def test_pixel_family_frame_unchanged_rows_stay_put():
    row = _gui_row()
    row["meta"]["coord_frame"] = "norm1000"
    assert render_for_family(row, "qwen2_5_vl") == row


def test_tool_calls_keep_original_pixels_when_the_tools_read_them():
    text = ('<think>it is at {"bbox_2d": [1000, 500, 1200, 700]}</think><tool_call>'
            '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1000, 500, 1200, 700]}}</tool_call>')
    row = {"id": "z", "meta": {"coord_frame": "pixel", "image_size": [2000, 1000]},
           "messages": [{"role": "assistant", "content": [{"type": "text", "text": text}]}]}
    moved = parse(render_for_family(row, "qwen3_vl")["messages"][0]["content"][0]["text"])
    kept = parse(render_for_family(row, "qwen3_vl", tool_frame="pixel")["messages"][0]["content"][0]["text"])
    assert moved.tool_calls[0].arguments["bbox_2d"] == [500, 500, 600, 700]
    assert kept.tool_calls[0].arguments["bbox_2d"] == [1000, 500, 1200, 700]  # the tool crops these pixels
    assert [b.box for b in kept.boxes][0] == (500, 500, 600, 700)  # the thought's box still moves


def test_edges_named_in_prose_move_with_the_boxes():
    text = ('<think>{"bbox_2d": [200, 100, 400, 300]}</think><rethink>it ends at x=400 and starts at y=100'
            '</rethink><answer>yes</answer>')
    row = {"id": "r", "meta": {"coord_frame": "pixel", "image_size": [2000, 1000]},
           "messages": [{"role": "assistant", "content": [{"type": "text", "text": text}]}]}
    out = render_for_family(row, "qwen3_vl")["messages"][0]["content"][0]["text"]
    assert '"bbox_2d": [100, 100, 200, 300]' in out and "ends at x=200 and starts at y=100" in out
