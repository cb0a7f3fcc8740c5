"""Video-CoM, UI-Ins, TON and the GUI action rewards: worked examples from each method's released code.

Video-CoM: train/src/train/reward_funcs.py (github.com/mbzuai-oryx/Video-CoM); UI-Ins:
GRPO/grpo_scripts/reward_fn.py (github.com/alibaba/UI-Ins); TON: src/r1-v/src/open_r1/grpo.py and
grpo_gui.py (github.com/kokolerk/TON).
"""

import pytest

from mmreason.rewards import gui, ton, video_com
from mmreason.traces import parse

# ---------------------------------------------------------------------------------------- Video-CoM
GTS = {"valid_segments": [2, 3], "valid_frames": [[10, 20]], "valid_bounding_box": [[12, [0, 0, 10, 12]]]}
VIDEO_TABLE = [
    # frame 12 in [10, 20]; zoom on frame 12 IoU 100/120 >= 0.35; segment 5 not valid -> 2/3; answer B = B
    ("FIND_FRAME(cup) = [12]\nSPATIAL_ZOOM(cup) = [0, 0, 10, 10]\nFIND_SEGMENT(pour) = [5]\n"
     "FINAL_ANSWER: B. pour", "B. pour", 1 + 2 / 3),
    # zoom IoU 20/120 < 0.35; frames 12 and 30: one of two valid -> (1 + 0) / (2 + 1)
    ("FIND_FRAME(a) = [30, 12]\nSPATIAL_ZOOM(a) = [0, 0, 10, 2]\nFINAL_ANSWER: A", "B", 1 / 3),
    # a zoom before any FIND_FRAME has no frame and is not counted; segments {2, 3} both valid
    # (a repeated id counts once)
    ("SPATIAL_ZOOM(a) = [0, 0, 10, 12]\nFIND_SEGMENT(x) = [2, 3, 3]\nFINAL_ANSWER: C", "C", 1 + 1.0),
    # no manipulations: accuracy only
    ("FINAL_ANSWER: D. dog", "D", 1.0),
    # the release's letter rule: the first character decides, so "dog" reads as D
    ("FINAL_ANSWER: dog", "D. dog", 1.0),
    ("no final answer line", "B", 0.0),
]


@pytest.mark.parametrize("completion,answer,expected", VIDEO_TABLE)
def test_video_com_table(completion, answer, expected):
    out = video_com.video_com([completion], answer=[answer], reasoning_gts=[GTS])
    assert out == [pytest.approx(expected)]


def test_video_com_ground_truth_from_meta_and_missing():
    comp = "FIND_FRAME(a) = [11]\nFINAL_ANSWER: A"
    assert video_com.video_com([comp], answer=["A"], meta=[{"reasoning_gts": GTS}]) == [pytest.approx(2.0)]
    assert video_com.video_com([comp], answer=["A"]) == [1.0]  # no GT manipulations: nothing to judge
    assert video_com.video_com([comp], answer=[None]) == [None]
    # the GT columns may arrive as JSON text (how free-form dicts are stored on disk)
    as_json = ['{"reasoning_gts": {"valid_frames": [[0, 5]]}}']
    assert video_com.video_com([comp], answer=["A"], meta=as_json) == [1.0]


def test_video_com_step_scores_have_spans_and_per_line_scores():
    text = ("FIND_SEGMENT(a) = [2, 9]\nFIND_FRAME(b) = [12]\nSPATIAL_ZOOM(c) = [0, 0, 10, 2]\n"
            "FIND_FRAME(d) = [30]\nSPATIAL_ZOOM(e) = [0, 0, 10, 10]\nFINAL_ANSWER: A")
    steps = video_com.video_com_step_scores(text, GTS)
    # segments 2 valid, 9 not: 1/2; frame 12 valid; zoom on 12 IoU 20/120 < 0.35; frame 30 invalid;
    # a zoom on frame 30 has no GT box there: unjudged
    assert [(s.kind, s.label, s.score) for s in steps] == [
        ("segment", "partial", 0.5), ("frame", "correct", 1.0), ("zoom", "erroneous", 0.0),
        ("frame", "erroneous", 0.0), ("zoom", "unjudged", 0.0)]
    assert [text[s.start:s.end].split("(")[0] for s in steps] == [
        "FIND_SEGMENT", "FIND_FRAME", "SPATIAL_ZOOM", "FIND_FRAME", "SPATIAL_ZOOM"]
    assert video_com.video_com_step_scores(text, None)[0].label == "unjudged"


# ------------------------------------------------------------------------------------------- UI-Ins
UI_TABLE = [
    ('<tool_call>{"name": "grounding", "arguments": {"action": "click", "coordinate": [75,75]}}</tool_call>',
     1.0),
    ("[150,150]", 0.0),
    ("[75, 75]", 0.0),  # a space after the comma: the regex finds no point
    ("[75,75] or [80,80]", 0.0),  # more than one point is rejected
    ("[75.5,75]", 0.0),  # decimals are not points to UI-Ins
    ("[50,100]", 1.0),  # on the border (inclusive)
]


@pytest.mark.parametrize("completion,expected", UI_TABLE)
def test_ui_ins_table(completion, expected):
    # GT (100, 100, 200, 200) on a 1000 x 1000 screenshot resized to 500 x 500 -> (50, 50, 100, 100) resized
    frames = [[{"width": 1000, "height": 1000, "resized_width": 500, "resized_height": 500}]]
    boxes = [[{"box": [100, 100, 200, 200], "image": 0}]]
    assert gui.ui_ins([completion], boxes=boxes, image_frames=frames) == [expected]


def test_ui_ins_frames_and_gui_target():
    # without any size the resized frame is unknown: not scored
    assert gui.ui_ins(["[75,75]"], boxes=[[{"box": [100, 100, 200, 200]}]]) == [None]
    # a Qwen3-VL (0-1000) model on a 2000 x 1000 screen: GT (100, 100, 200, 200) -> (50, 100, 100, 200)
    assert gui.ui_ins(["[75,150]"], boxes=[[{"box": [100, 100, 200, 200]}]], family="qwen3_vl",
                      image_sizes=[[[2000, 1000]]]) == [1.0]
    # the GUI target element (smallest element holding the GT click) when there are no boxes
    g = {"width": 100, "height": 100, "elements": [{"box": [0, 0, 100, 100]}, {"box": [10, 10, 20, 20]}],
         "action": {"action": "click", "coordinate": [15, 15]}}
    assert gui.ui_ins(["[12,18]", "[50,50]"], gui=[g, g], coord_frame="pixel") == [1.0, 0.0]


# -------------------------------------------------------------------------------------- GUI actions
def test_gui_action_rewards():
    g = {"width": 1000, "height": 1000, "action": {"action": "swipe", "direction": "up"}}
    up = '{"action": "swipe", "coordinate": [500, 800], "coordinate2": [500, 200]}'
    down = '{"action": "swipe", "coordinate": [500, 200], "coordinate2": [500, 800]}'
    click_ = '{"action": "click", "coordinate": [1, 1]}'
    assert gui.gui_action_type([up, down, click_], gui=[g] * 3) == [1.0, 1.0, 0.0]
    assert gui.gui_action_match([up, down], gui=[g] * 2, coord_frame="pixel") == [1.0, 0.0]
    back = {"width": 10, "height": 10, "action": {"action": "system_button", "button": "Back"}}
    assert gui.gui_action_match(['{"action": "system_button", "button": "back"}'], gui=[back]) == [1.0]
    assert gui.gui_action_match(['{"action": "click"}'], gui=[None]) == [None]
    # an alias is the same type ("tap" is a click)
    click = {"width": 100, "height": 100, "action": {"action": "click", "coordinate": [50, 50]}}
    tap = '{"action": "tap", "coordinate": [51, 51]}'
    assert gui.gui_action_match([tap], gui=[click], coord_frame="pixel") == [1.0]


# ---------------------------------------------------------------------------------------------- TON
def test_ton_format_and_skip_think_metric():
    seen = {}
    out = ton.ton_format(["<think>\n\n</think>\n<answer>3</answer>",
                          "<think>because</think><answer>3</answer>",
                          "<think>a</think>x<answer>3</answer>", "<answer>3</answer>"],
                         log_metric=lambda k, v: seen.__setitem__(k, v))
    assert out == [1.0, 1.0, 0.0, 0.0]
    assert seen["ton_format/skip_think"] == 0.25


@pytest.mark.parametrize("completion,solution,expected", [
    ("<think></think><answer>\\frac{1}{2}</answer>", "<answer>0.5</answer>", 1.0),  # math-verify
    ("<answer>Cat</answer>", "<answer>Cat</answer>", 1.0),  # string match
    ("<answer>Cat</answer>", "cat", 0.0),  # exact, case-sensitive, as released
    ("<answer>7</answer>", "8", 0.0),
])
def test_ton_accuracy(completion, solution, expected):
    assert ton.ton_accuracy([completion], solution=[solution]) == [expected]


def test_ton_gui_rewards():
    g = {"width": 100, "height": 200, "action": {"action": "click", "coordinate": [50, 100]}}
    near = "<think>ok</think><action>{'action': 'click', 'position': [0.6, 0.5]}</action>"  # d = 0.1
    far = "<think>ok</think><action>{'action': 'click', 'position': [0.5, 0.7]}</action>"  # d = 0.2
    typ = '<think>ok</think><action>{"action": "type", "value": "hi"}</action>'
    assert ton.ton_gui_format([near, "<action>{}</action>"]) == [1.0, 0.0]
    assert ton.ton_gui_type([near, typ], gui=[g, g]) == [1.0, 0.0]
    assert ton.ton_gui_value([near, far, typ], gui=[g] * 3) == [1.0, 0.0, 0.0]


def test_gui_action_type_and_the_matcher_agree_on_a_click_for_open():
    # InfiGUI-R1's evaluation: a click answers an `open` when the GT names the app's icon box; the type
    # then matches, and the parameters match when the click lands on the icon
    icon = {"action": "open", "text": "Clock", "candidate_boxes": [[10, 10, 30, 30]]}
    row = {"width": 100, "height": 100, "action": icon}
    on_icon = '{"action": "click", "coordinate": [20, 20]}'
    elsewhere = '{"action": "click", "coordinate": [80, 80]}'
    kw = {"gui": [row, row], "coord_frame": "pixel"}
    assert gui.gui_action_type([on_icon, elsewhere], gui=kw["gui"]) == [1.0, 1.0]
    assert gui.gui_action_match([on_icon, elsewhere], **kw) == [1.0, 0.0]
    types = [gui.match_action(gui.predicted_action(parse(c)), icon, row, "pixel", None)[0]
             for c in (on_icon, elsewhere)]
    assert types == [True, True]
    # without an icon box a click cannot answer `open`: neither counts it
    bare = {"width": 100, "height": 100, "action": {"action": "open", "text": "Clock"}}
    assert gui.gui_action_type([on_icon], gui=[bare]) == [0.0]
    assert gui.gui_action_match([on_icon], gui=[bare], coord_frame="pixel") == [0.0]
