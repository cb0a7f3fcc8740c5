"""InfiGUI-R1 (arXiv 2504.14239, §3.2): gated 0.1·format + 0.9·accuracy; agent, grounding, other branches."""

import pytest

from mmreason.errors import RecipeError
from mmreason.rewards import infigui as IG


def call(args: str) -> str:
    return '<tool_call>{"name": "mobile_use", "arguments": {%s}}</tool_call>' % args


GUI = {"platform": "mobile", "width": 1000, "height": 2000, "goal": "turn on wifi",
       "instruction": "open the settings",
       "elements": [{"box": [0, 0, 1000, 2000], "role": "screen"},
                    {"box": [100, 100, 300, 200], "role": "icon"}],
       "action": {"action": "click", "coordinate": [200, 150]}}
TYPE_GUI = {**GUI, "action": {"action": "type", "text": "wi-fi settings"}}
FAR = '"action": "click", "coordinate": [900, 1900]'

# (completion, gui, expected); R = 0.1 + 0.9 · R_acc when formatted, else 0
AGENT_TABLE = [
    # click inside the smallest element holding the GT point (enlarged 1.2x): R_acc = 0.2 + 0.8 = 1
    ("<think>tap settings</think>" + call('"action": "click", "coordinate": [110, 110]'), GUI, 1.0),
    # just outside the element but inside its 1.2x enlargement (x range 80..320)
    ("<think>tap</think>" + call('"action": "click", "coordinate": [310, 150]'), GUI, 1.0),
    # right type, wrong place; the <step> sub-goal equals the instruction -> R_acc = 0.2 + 0.2 · 1
    ("<think><step>Open the settings</step> tap</think>" + call(FAR), GUI, 0.1 + 0.9 * 0.4),
    # right type, wrong place, unrelated sub-goal -> R_acc = 0.2
    ("<think>swipe down</think>" + call(FAR), GUI, 0.1 + 0.9 * 0.2),
    # wrong type: R_acc = 0 + 0.2 · F1("tap it", "open settings") = 0
    ("<think>tap it</think>" + call('"action": "swipe", "coordinate": [5, 5], "coordinate2": [5, 500]'),
     GUI, 0.1),
    # gated: no <think> -> 0 even though the action is right
    (call('"action": "click", "coordinate": [110, 110]'), GUI, 0.0),
    # gated: text before <think>
    ("Sure. <think>x</think>" + call('"action": "click", "coordinate": [110, 110]'), GUI, 0.0),
    # type text matches as a substring, case-insensitively
    ("<think>type</think>" + call('"action": "type", "text": "Wi-Fi"'), TYPE_GUI, 1.0),
    ("<think>type</think>" + call('"action": "type", "text": "bluetooth"'), TYPE_GUI, 0.1 + 0.9 * 0.2),
]


@pytest.mark.parametrize("completion,gui,expected", AGENT_TABLE)
def test_agent_table(completion, gui, expected):
    assert IG.infigui([completion], gui=[gui], coord_frame="pixel") == [pytest.approx(expected)]


def test_agent_clicks_in_the_resized_frame():
    frames = [[{"width": 1000, "height": 2000, "resized_width": 500, "resized_height": 1000}]]
    comp = "<think>tap</think>" + call('"action": "click", "coordinate": [100, 75]')  # -> (200, 150) px
    assert IG.infigui([comp], gui=[GUI], image_frames=frames) == [pytest.approx(1.0)]
    assert IG.infigui([comp], gui=[GUI], image_frames=frames, coord_frame="pixel") == [pytest.approx(0.28)]
    # the default frame is "resized"; without sizes to map it the row is not scored rather than misread
    assert IG.infigui([comp], gui=[{k: v for k, v in GUI.items() if k not in ("width", "height")}]) == [None]
    # with the family, the resized size is recomputed from the screenshot size by smart_resize
    out = IG.infigui([comp], gui=[GUI], family="qwen2_5_vl", max_pixels=500 * 1000)
    assert out[0] is not None


GROUND = {"task": "gui_grounding", "boxes": [{"box": [0, 0, 100, 100], "image": 0}]}
GROUNDING_TABLE = [
    ('<think>the icon</think>{"point_2d": [50, 50]}', 1.0),
    ('<think>the icon</think>{"point_2d": [150, 50]}', 0.1),
    ('<think>the icon</think>{"bbox_2d": [0, 0, 100, 80]}', 1.0),  # IoU 0.8 >= 0.7
    ('<think>the icon</think>{"bbox_2d": [0, 0, 100, 50]}', 0.1 + 0.9 * 0.5 / 0.7),  # IoU 0.5 -> 0.5 / 0.7
    ('<think>the icon at [50, 50]</think>', 0.0),  # the point is inside the reasoning: nothing after it
]


@pytest.mark.parametrize("completion,expected", GROUNDING_TABLE)
def test_grounding_table(completion, expected):
    cols = {k: [v] for k, v in GROUND.items()}
    assert IG.infigui([completion], coord_frame="pixel", **cols) == [pytest.approx(expected)]


@pytest.mark.parametrize("completion,answer,expected", [
    ("<think>6 x 7</think><answer>42</answer>", "42", 1.0),
    ("<think>half</think><answer>1/2</answer>", "0.5", 1.0),  # math-verify
    ("<think>?</think><answer>41</answer>", "42", 0.1),
    ("<answer>42</answer>", "42", 0.0),
])
def test_other_tasks(completion, answer, expected):
    assert IG.infigui([completion], answer=[answer]) == [pytest.approx(expected)]


def test_not_applicable_and_options():
    assert IG.infigui(["<think>x</think>"]) == [None]
    with pytest.raises(RecipeError):
        IG.infigui([], iou_tau=0)
    assert IG.unigram_f1("open the settings app", "Open Settings") == pytest.approx(0.8)
