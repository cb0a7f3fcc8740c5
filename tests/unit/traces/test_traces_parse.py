"""The trace parser (`mmreason.traces.parsing`): one realistic output per method, malformed input, fuzz."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmreason.traces import (
    BLOCK_TAGS,
    Trace,
    extract_answer,
    extract_boxed,
    find_boxes,
    find_boxes_3d,
    find_points,
    find_tool_calls,
    parse,
    parse_blocks,
    render_action,
    render_tool_call,
    tag_counts,
)
from mmreason.traces.parsing import MAX_ISSUES

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ one realistic output per method
GRIT = (
    "<think> The question asks whether the cat is left of the laptop. The cat is at "
    '(200, 168, 248, 202) and the laptop {"bbox_2d": [300, 150, 420, 260]}, so the cat is further '
    "left.</think> <rethink> The cat box is left of the laptop box: 248 < 300. </rethink> <answer> yes"
)
DEEPEYES = (
    "<think>The sign is too small to read. I will zoom in.</think>\n<tool_call>\n"
    '{"name": "image_zoom_in_tool", "arguments": '
    '{"bbox_2d": [1024, 512, 1280, 700], "label": "street sign"}}\n'
    "</tool_call><|im_end|>\n<|im_start|>user\n"
    "<tool_response><image>Here is the zoomed-in image.</tool_response><|im_end|>\n"
    "<|im_start|>assistant\n<think>Still blurry; zoom closer.</think>\n"
    '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1100, 560, 1200, 640]}}</tool_call>'
    "<|im_end|>\n<|im_start|>user\n<tool_response><image></tool_response><|im_end|>\n<|im_start|>assistant\n"
    "<think>It reads Main St.</think>\n<answer>Main Street</answer>"
)
GS_REASONER = (
    "<think>The question asks which is closer to the door. chair 2 <bbox>(0.1000, 0.2000, 0.0000, 0.6000, "
    "0.7000, 0.9000)</bbox><bbox>(1.0000, 1.2000, 0.0000, 1.5000, 1.7000, 0.9000)</bbox>, door 1 "
    "<bbox>(-0.5000, 0.0000, 0.0000, 0.3000, 0.1000, 2.1000)</bbox> The first chair is 0.4 m away.</think>"
    "<answer>A</answer>"
)
INFIGUI = (
    "<think>The goal is to turn on Wi-Fi. <step>Open the Settings app</step> The Settings icon is on the "
    "home screen.</think>\n<tool_call>\n"
    '{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [540, 1210]}}\n</tool_call>'
)
SWIPE = {"action": "swipe", "coordinate": [540, 1800], "coordinate2": [540, 600]}
INFIGUI_NO_WRAPPER = "<think>Swipe up to see more apps.</think>\n" + json.dumps(
    {"name": "mobile_use", "arguments": SWIPE}
)
UI_INS = (
    "<think>From the functional perspective, the instruction refers to the save icon.</think><tool_call>"
    '{"name": "grounding", "arguments": {"action": "click", "coordinate": [1024, 88]}}</tool_call>'
)
QWEN_GROUNDING = (
    'Here are the objects:\n```json\n[\n  {"bbox_2d": [135, 114, 1016, 672], "label": "dog"},\n'
    '  {"label": "frisbee", "bbox_2d": [702.5, 80, 840, 190.5]},\n'
    '  {"point_2d": [40, 50], "label": "nose"}\n]\n```'
)
QWEN2_BOX_TOKENS = (
    "<|object_ref_start|>the dogs<|object_ref_end|><|box_start|>(123,456),(789,999)<|box_end|>"
    "<|box_start|>(10,20),(30,40)<|box_end|> and <|box_start|>(1,2),(3,4)<|box_end|>"
)
VIDEO_COM = (
    "The man appears in the middle of the video.\nFIND_SEGMENT(man in a red jacket) = [3, 4]\n"
    "FIND_FRAME(the man opens the door) = [57]\nSPATIAL_ZOOM(door handle) = [120, 80, 260, 200]\n"
    "FINAL_ANSWER: B. He opens the door"
)
TON = '<think>\n\n</think><action>{"action_type": "click", "x": 0.52, "y": 0.31}</action>'
GUI_R1 = (
    "<think>Tap search.</think>"
    "<answer>[{'action': 'click', 'point': [123, 456], 'input_text': 'no input text'}]</answer>"
)
CLICK = {"action": "click", "coordinate": [540, 1210]}

EXAMPLES = {
    "grit": (GRIT, {
        "tags": ["<think>", "</think>", "<rethink>", "</rethink>", "<answer>"],
        "answer": "yes",
        "boxes": [((200, 168, 248, 202), None, "ints"), ((300, 150, 420, 260), None, "bbox_2d")],
    }),
    "deepeyes": (DEEPEYES, {
        "answer": "Main Street",
        "think": "The sign is too small to read. I will zoom in.",
        "calls": [
            ("image_zoom_in_tool", {"bbox_2d": [1024, 512, 1280, 700], "label": "street sign"}),
            ("image_zoom_in_tool", {"bbox_2d": [1100, 560, 1200, 640]}),
        ],
        "boxes": [
            ((1024, 512, 1280, 700), "street sign", "bbox_2d"),
            ((1100, 560, 1200, 640), None, "bbox_2d"),
        ],
        "actions": [],
    }),
    "gs_reasoner": (GS_REASONER, {
        "answer": "A",
        "boxes": [],
        "boxes_3d": [
            ((0.1, 0.2, 0.0, 0.6, 0.7, 0.9), "chair", 2),
            ((1.0, 1.2, 0.0, 1.5, 1.7, 0.9), "chair", 2),
            ((-0.5, 0.0, 0.0, 0.3, 0.1, 2.1), "door", 1),
        ],
    }),
    "infigui_r1": (INFIGUI, {
        "step": "Open the Settings app",
        "calls": [("mobile_use", CLICK)],
        "actions": [CLICK],
        "points": [((540, 1210), None, "coordinate")],
    }),
    "infigui_no_wrapper": (INFIGUI_NO_WRAPPER, {
        "calls": [("mobile_use", SWIPE)],
        "actions": [SWIPE],
        "points": [((540, 1800), None, "coordinate"), ((540, 600), None, "coordinate2")],
    }),
    "ui_ins": (UI_INS, {
        "actions": [{"action": "click", "coordinate": [1024, 88]}],
        "points": [((1024, 88), None, "coordinate")],
    }),
    "qwen_grounding": (QWEN_GROUNDING, {
        "boxes": [((135, 114, 1016, 672), "dog", "bbox_2d"), ((702.5, 80, 840, 190.5), "frisbee", "bbox_2d")],
        "points": [((40, 50), "nose", "point_2d")],
    }),
    "qwen2_box_tokens": (QWEN2_BOX_TOKENS, {
        "boxes": [
            ((123, 456, 789, 999), "the dogs", "box_tokens"),
            ((10, 20, 30, 40), "the dogs", "box_tokens"),
            ((1, 2, 3, 4), None, "box_tokens"),
        ],
    }),
    "video_com": (VIDEO_COM, {
        "manipulations": [
            ("FIND_SEGMENT", "man in a red jacket", (3, 4)),
            ("FIND_FRAME", "the man opens the door", (57,)),
            ("SPATIAL_ZOOM", "door handle", (120, 80, 260, 200)),
        ],
        "extracted": "B. He opens the door",
        "points": [],
    }),
    "ton": (TON, {"think": "", "actions": [{"action_type": "click", "x": 0.52, "y": 0.31}]}),
    "gui_r1": (GUI_R1, {
        "actions": [{"action": "click", "point": [123, 456], "input_text": "no input text"}],
        "points": [((123, 456), None, "point")],
    }),
}


def _floats(rows):
    return [(tuple(map(float, coords)), *rest) for coords, *rest in rows]


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_method_formats(name):
    text, want = EXAMPLES[name]
    t = parse(text)
    if "tags" in want:
        assert t.tags() == want["tags"]
    if "answer" in want:
        assert t.answer == want["answer"]
    if "think" in want:
        assert t.think == want["think"]
    if "step" in want:
        assert t.blocks_of("step")[0].text == want["step"]
    if "calls" in want:
        assert [(c.name, c.arguments) for c in t.tool_calls] == want["calls"]
        assert all(c.error is None for c in t.tool_calls)
    if "actions" in want:
        assert list(t.actions) == want["actions"]
    if "boxes" in want:
        assert [(b.box, b.label, b.fmt) for b in t.boxes] == _floats(want["boxes"])
    if "boxes_3d" in want:
        assert [(b.box, b.name, b.count) for b in t.boxes_3d] == want["boxes_3d"]
    if "points" in want:
        assert [(p.point, p.label, p.fmt) for p in t.points] == _floats(want["points"])
    if "manipulations" in want:
        assert [(m.kind, m.query, m.values) for m in t.manipulations] == want["manipulations"]
    if "extracted" in want:
        assert extract_answer(text) == want["extracted"]
    assert t.issues == ()  # every example is well formed
    assert parse_blocks(text) == t.blocks
    for mention in (*t.blocks, *t.tool_calls, *t.boxes, *t.boxes_3d, *t.points, *t.manipulations):
        assert 0 <= mention.start < mention.end <= len(text)


def test_deepeyes_blocks_in_order_and_last_call_per_turn():
    t = parse(DEEPEYES)
    assert [b.tag for b in t.blocks] == [
        "think", "tool_call", "tool_response", "think", "tool_call", "tool_response", "think", "answer"]
    assert t.tool_calls[-1].arguments["bbox_2d"] == [1100, 560, 1200, 640]
    box = t.boxes[0]
    assert DEEPEYES[box.start : box.end].startswith('"bbox_2d"')


def test_spans_point_into_the_text():
    t = parse(GRIT)
    think = t.blocks[0]
    assert GRIT[think.start : think.end] == f"<think>{think.text}</think>"
    assert GRIT[t.boxes[0].start : t.boxes[0].end] == "200, 168, 248, 202"
    assert t.boxes[0].start < t.blocks_of("rethink")[0].start  # GRIT rewards boxes written before <rethink>


# ----------------------------------------------------------------------------------- malformed
def test_missing_close_before_next_block_ends_there():
    t = parse("<think>reasoning<answer>7</answer>")
    assert (t.think, t.answer) == ("reasoning", "7")
    assert t.blocks[0].closed is False
    assert t.issues == ("unclosed <think> at 0",)


def test_open_answer_at_the_end_is_normal_but_open_think_is_not():
    assert parse("<think>a</think><answer>42").issues == ()
    assert parse("<think>a</think><answer>42").blocks[-1].closed is False
    assert parse("<think>still going").issues == ("unclosed <think> at 0",)


def test_open_block_ends_at_the_chat_turn():
    t = parse("<answer>42<|im_end|>\n<|im_start|>user\nmore")
    assert t.answer == "42"


def test_close_without_open_at_start_means_the_prompt_opened_it():
    t = parse("reasoning</think><answer>3</answer>")  # Qwen3-style templates put <think> in the prompt
    assert (t.think, t.answer) == ("reasoning", "3")
    assert t.issues == ("</think> at 9 without <think>; taken to open at 0",)


def test_stray_close_and_reopened_tag():
    t = parse("<think>a</think></answer><think>b<think>c</think>")
    assert [b.text for b in t.blocks_of("think")] == ["a", "b", "c"]
    assert t.issues == ("stray </answer> at 16", "unclosed <think> at 25")


def test_tag_mentioned_inside_a_closed_think_stays_inside():
    t = parse("<think>I will write <answer>x</answer> at the end.</think><answer>7</answer>")
    assert t.think == "I will write <answer>x</answer> at the end."
    assert t.answer == "7"


def test_non_finite_numbers_are_dropped_and_reported():
    t = parse(
        '{"bbox_2d": [1e999, 2, 3, 4]} {"point_2d": [NaN, 1]} [Infinity, 2] <bbox>(1,2,3,4,5,inf)</bbox>'
        " <|box_start|>(1,2),(3,1e400)<|box_end|> SPATIAL_ZOOM(x) = [1, 2, 3, -inf]"
    )
    assert t.boxes == () and t.points == () and t.boxes_3d == () and t.manipulations == ()
    assert len(t.issues) == 6 and all("non-finite" in i for i in t.issues)


def test_wrong_arity_and_non_numbers_are_reported():
    t = parse('{"bbox_2d": [1, 2, 3]} {"bbox_2d": [1, "a", 3]} {"coordinate": [1, 2, 3]} <bbox>(1, 2)</bbox>')
    assert t.boxes == () and t.boxes_3d == ()
    assert [i.split(":")[1].strip() for i in t.issues] == [
        "3 values, expected 4", "non-numeric values", "3 values, expected 2", "expected 6 numbers"]


def test_grit_ints_are_integers_only():
    text = "at 10, 20, 30, 40 and 1.5, 2, 3, 4 and 1, 2, 3, 4.5"
    assert [b.box for b in find_boxes(text)] == [(10, 20, 30, 40)]
    assert find_boxes("[10.0, 20.0, 30.0, 40.0]") == []


def test_bad_tool_call_json_keeps_the_name_and_says_why():
    t = parse('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4}</tool_call>')
    call = t.tool_calls[0]
    assert (call.name, call.arguments) == ("image_zoom_in_tool", {})
    assert "invalid JSON" in call.error and "invalid JSON" in t.issues[0]


@pytest.mark.parametrize("body, note", [
    ('{"name": "mobile_use", "arguments": {"action": "wait"}', "missing '}' added"),
    ('{"name": "mobile_use", "arguments": {"action": "wait"}}}', "extra text"),
    ("{'name': 'mobile_use', 'arguments': {'action': 'wait'}}", "Python literal"),
])
def test_common_tool_call_slips_are_read_and_reported(body, note):
    t = parse(f"<tool_call>{body}</tool_call>")
    assert (t.tool_calls[0].name, t.actions) == ("mobile_use", ({"action": "wait"},))
    assert note in t.tool_calls[0].error and note in t.issues[0]


def test_bare_json_only_when_nothing_wrapped():
    wrapped = render_action({"action": "click", "coordinate": [1, 2]})
    t = parse(wrapped + ' {"action": "wait"} {"name": "mobile_use", "arguments": {"action": "back"}}')
    assert [c.arguments for c in t.tool_calls] == [{"action": "click", "coordinate": [1, 2]}]
    assert t.actions == ({"action": "click", "coordinate": [1, 2]},)
    zoom = render_tool_call("image_zoom_in_tool", {"bbox_2d": [1, 2, 3, 4]})
    t = parse(zoom + ' {"action": "wait"} {"name": "mobile_use", "arguments": {"action": "back"}}')
    assert [c.name for c in t.tool_calls] == ["image_zoom_in_tool"]
    assert t.actions == ({"action": "wait"}, {"action": "back"})  # no GUI call was wrapped: bare ones count
    t = parse('<think>maybe {"action": "click"}</think> {"action": "type", "text": "hi"}')
    assert t.actions == ({"action": "type", "text": "hi"},)  # JSON inside blocks is not bare


def test_openai_style_string_arguments():
    t = parse('<tool_call>{"name": "mobile_use", "arguments": "{\\"action\\": \\"back\\"}"}</tool_call>')
    assert t.tool_calls[0].arguments == {"action": "back"} and t.issues == ()


@pytest.mark.parametrize("text", [
    "<tool_call>" + "[" * 5000 + "]" * 5000 + "</tool_call>",
    '<tool_call>{"name": "x", "arguments": ' + '{"a": ' * 5000 + "1" + "}" * 5001 + "</tool_call>",
    "<action>" + "[" * 5000 + "</action>",
    '{"action": ' * 5000,
    "<answer>" + "[" * 5000 + "</answer>",
])
def test_deeply_nested_json_is_reported_not_raised(text):
    t = parse(text)
    assert not any(i.startswith("parser error") for i in t.issues)
    if text.startswith("<tool_call>"):
        assert "nested too deeply" in t.tool_calls[0].error


def test_issues_are_capped():
    t = parse("</think>x" + "<think><think>" * 500)
    assert len(t.issues) == MAX_ISSUES + 1 and t.issues[-1].startswith("... and")


def test_not_a_string():
    t = parse(None)
    assert isinstance(t, Trace) and t.issues == ("expected a string, got NoneType",)
    assert extract_answer(b"<answer>1</answer>") is None and find_boxes(3) == []
    assert tag_counts(None)["<think>"] == 0


def test_trace_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse("x").text = "y"


# ----------------------------------------------------------------------------------- extractors
@pytest.mark.parametrize("text, want", [
    ("<think>x</think><answer> B </answer>", "B"),
    ("<answer>first</answer> then <answer>second", "second"),
    (r"<think>so</think> the result is \boxed{\frac{1}{2}} and \boxed{3 + \{4\}}", r"3 + \{4\}"),
    (r"\boxed{unclosed and \boxed{ok}", "ok"),
    ("FIND_FRAME(q) = [1]\nFINAL_ANSWER: A. yes\nFINAL_ANSWER: C. no", "C. no"),
    ("no answer here", None),
])
def test_extract_answer(text, want):
    assert extract_answer(text) == want


def test_extract_boxed():
    assert extract_boxed(r"\boxed{a{b{c}}d}") == "a{b{c}}d"
    assert extract_boxed(r"\boxed{") is None and extract_boxed("no box") is None


def test_tag_counts_and_tags():
    text = "<think>a</think><think>b<answer>c</answer><bbox>(1,2,3,4,5,6)</bbox>"
    counts = tag_counts(text)
    assert (counts["<think>"], counts["</think>"], counts["<answer>"], counts["<bbox>"]) == (2, 1, 1, 1)
    assert counts["<rethink>"] == 0 and set(counts) >= {f"<{t}>" for t in BLOCK_TAGS}
    assert sum(counts.values()) == len(parse(text).tags())


def test_parse_blocks_never_raises():
    for junk in (None, 3, b"<think>a</think>", ["<answer>"]):
        assert parse_blocks(junk) == parse(junk).blocks == ()
    assert [b.tag for b in parse_blocks("<think>a<answer>7<|im_end|>x")] == ["think", "answer"]


def test_find_helpers_match_parse():
    for text in (GRIT, DEEPEYES, GS_REASONER, QWEN_GROUNDING, VIDEO_COM):
        t = parse(text)
        assert (find_boxes(text), find_boxes_3d(text), find_points(text), find_tool_calls(text)) == (
            list(t.boxes), list(t.boxes_3d), list(t.points), list(t.tool_calls))


# ----------------------------------------------------------------------------------- fuzz
FRAGMENTS = [
    "<think>", "</think>", "<rethink>", "</rethink>", "<answer>", "</answer>", "<step>", "</step>",
    "<action>",
    "</action>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<bbox>", "</bbox>",
    "<think", "/think>", "</", "<", ">", "(", ")", "{", "}", "[", "]", '"', "'", ",", ":", " ", "\n",
    "```json", '"bbox_2d": ', '"bbox": ', '"label": "', "'label': '", '"point_2d": ', '"coordinate": ',
    '"name": "mobile_use"',
    '"arguments": ', '"action": "click"', "{'action': 'click'", "1e999", "-1e999", "NaN", "Infinity", "-inf",
    "-0", "12", "3.5", "1, 2, 3, 4", "99999999999999999999999", "<|box_start|>", "<|box_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|im_end|>", "\\boxed{", "FINAL_ANSWER:", "FIND_FRAME(",
    "SPATIAL_ZOOM(", "FIND_SEGMENT(", ") = [", "chair 2 ", "<bbox>(1, 2, 3, 4, 5, 6)</bbox>", "\\u", "\\",
]
finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(
    finite.map(repr), st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["1e999", "-1e999", "NaN", "nan", "Infinity", "inf", "-0", "1e-400", "9" * 400]),
)


def check_invariants(text: str, t: Trace) -> None:
    assert isinstance(t, Trace) and t.text == text
    assert not any(i.startswith("parser error") for i in t.issues), t.issues
    assert len(t.issues) <= MAX_ISSUES + 1
    for group in (t.blocks, t.tool_calls, t.boxes, t.boxes_3d, t.points, t.manipulations):
        assert [m.start for m in group] == sorted(m.start for m in group)
        for m in group:
            assert 0 <= m.start <= m.end <= len(text)
    for b in t.blocks:
        span, open_tag, close_tag = text[b.start : b.end], f"<{b.tag}>", f"</{b.tag}>"
        if not b.closed:
            assert span == open_tag + b.text
        elif span.startswith(open_tag):
            assert span == open_tag + b.text + close_tag
        else:  # opened by the prompt
            assert b.start == 0 and span == b.text + close_tag
    assert all(len(b.box) == 4 and all(map(math.isfinite, b.box)) for b in t.boxes)
    assert all(len(b.box) == 6 and all(map(math.isfinite, b.box)) for b in t.boxes_3d)
    assert all(len(p.point) == 2 and all(map(math.isfinite, p.point)) for p in t.points)
    assert all(all(map(math.isfinite, m.values)) for m in t.manipulations)
    assert all(isinstance(a, dict) for a in t.actions)
    assert all(isinstance(c.arguments, dict) for c in t.tool_calls)
    for value in (t.think, t.rethink, t.answer, extract_answer(text), extract_boxed(text)):
        assert value is None or isinstance(value, str)
    assert sum(tag_counts(text).values()) == len(t.tags())
    assert parse_blocks(text) == t.blocks  # the cheap entry point the format rewards use


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text(text):
    check_invariants(text, parse(text))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4) | numbers, max_size=80))
def test_fuzz_fragment_soup(parts):
    text = "".join(parts)
    check_invariants(text, parse(text))


@FUZZ
@given(st.lists(numbers, min_size=6, max_size=6), st.sampled_from([
    '{{"bbox_2d": [{0}, {1}, {2}, {3}], "label": "x"}}', "<|box_start|>({0},{1}),({2},{3})<|box_end|>",
    "chair 1 <bbox>({0}, {1}, {2}, {3}, {4}, {5})</bbox>", '{{"point_2d": [{0}, {1}]}}', "[{0}, {1}]",
    "SPATIAL_ZOOM(q) = [{0}, {1}, {2}, {3}]",
    (
        '<tool_call>{{"name": "mobile_use", "arguments": {{"action": "click", "coordinate": [{0}, {1}]}}}}'
        "</tool_call>"
    ),
]))
def test_fuzz_numbers(nums, template):
    text = template.format(*nums)
    t = parse(text)
    check_invariants(text, t)
    used = [float(n) for n in nums[: 1 + max(int(i) for i in re.findall(r"(?<!\{)\{(\d)\}", template))]]
    if all(map(math.isfinite, used)):
        inverted = tuple(f"box at {b.start}: inverted" for b in t.boxes
                         if b.box[2] < b.box[0] or b.box[3] < b.box[1])
        assert tuple(i.split(" (")[0] for i in t.issues) == inverted
        assert len(t.boxes) + len(t.boxes_3d) + len(t.points) + len(t.manipulations) >= 1
    else:
        assert any("non-finite" in i for i in t.issues)


def test_reward_blocks_agree_with_parse():
    from mmreason.rewards._common import Sample

    for text in (GRIT, DEEPEYES, "<think>a<answer>7", "</think>x"):
        assert Sample(text, {}).blocks == parse(text).blocks  # scanned on its own
    for text in (GRIT, DEEPEYES):
        given = Sample(text, {}, parse(text))  # the trace a trainer parsed and passed
        assert given.blocks == given.trace.blocks == parse_blocks(text)
    assert Sample(None, {}).blocks == ()


REALISTIC = [text for text, _ in EXAMPLES.values()]


@FUZZ
@given(st.lists(st.sampled_from(REALISTIC) | st.sampled_from(FRAGMENTS + ["<|im_start|>", "<|endoftext|>"])
                | st.text(max_size=6), min_size=1, max_size=12), st.integers(0, 4000), st.integers(0, 4000))
def test_parse_blocks_matches_parse_on_realistic_traces(parts, cut_start, cut_end):
    # whole method outputs glued to stray tags and turn tokens, then cut anywhere (a stop string or the
    # length limit ends a generation mid-block; a prompt may hold the start of one)
    text = "".join(parts)
    for piece in (text, text[cut_start % (len(text) + 1):], text[: len(text) - cut_end % (len(text) + 1)]):
        assert parse_blocks(piece) == parse(piece).blocks


def test_long_strings():
    texts = ["<answer>" + "x" * 200_000, '{"label": "' + "a" * 200_000]
    texts += ["<think>" + " " * 200_000 + "</think>"]
    texts += ["1," * 100_000, "\\boxed{" * 50_000, "FIND_FRAME(" * 20_000, "{'a': " * 30_000]
    for text in texts:
        check_invariants(text, parse(text))


# A hang guard, not a timing assertion: catastrophic backtracking would run for hours, not seconds.
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["realistic", "nested_tags", "json_starts", "digit_commas", "bbox_keys"])
def test_one_megabyte_parses(kind):
    unit = GRIT + DEEPEYES + GS_REASONER + INFIGUI + QWEN_GROUNDING + QWEN2_BOX_TOKENS + VIDEO_COM
    text = {
        "realistic": unit * (1_000_000 // len(unit)),
        "nested_tags": "<think><step>" * 80_000,
        "json_starts": '{"' * 500_000,
        "digit_commas": "1, " * 330_000,
        "bbox_keys": '"bbox_2d": [' * 80_000,
    }[kind]
    t = parse(text)
    check_invariants(text, t)
    if kind == "realistic":
        reps = 1_000_000 // len(unit)
        one = parse(unit)
        assert (len(t.boxes), len(t.boxes_3d), len(t.tool_calls)) == (
            reps * len(one.boxes), reps * len(one.boxes_3d), reps * len(one.tool_calls))


def test_json_fixture_is_valid():
    # the Qwen grounding example is real JSON once the fence is gone, as a model would emit it
    body = QWEN_GROUNDING.split("```json")[1].split("```")[0]
    assert len(json.loads(body)) == 3


def test_an_inverted_box_is_an_issue_in_every_box_format():
    # a completion cut off mid-box, or corners written in the wrong order: kept, and flagged
    t = parse('<answer>{"bbox_2d": [50, 60, 10, 70]}</answer> <|box_start|>(5,9),(8,1)<|box_end|> '
              "at 30, 40, 10, 20")
    assert [b.box for b in t.boxes] == [(50, 60, 10, 70), (5, 9, 8, 1), (30, 40, 10, 20)]
    assert t.issues == ("box at 9: inverted (x2 < x1): corners swapped or the box cut off",
                        "box at 47: inverted (y2 < y1): corners swapped or the box cut off",
                        "box at 86: inverted (x2 < x1, y2 < y1): corners swapped or the box cut off")
    assert parse('{"bbox_2d": [1, 2, 1, 2]}').issues == ()  # a degenerate box is not inverted
