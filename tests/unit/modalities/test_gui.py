"""GUI adapter: screenshot validation, action records <-> model JSON through every family's frame, the
InfiGUI-R1 prompt, and the AndroidControl matcher."""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mmreason.errors import MediaError, SchemaError
from mmreason.families import FAMILIES
from mmreason.geometry import ImageFrame, smart_resize
from mmreason.modalities.gui import (
    ACTIONS, Click, Drag, Element, Hotkey, Key, LongPress, MoveTo, Open, RightClick, DoubleClick, Screenshot,
    Scroll, Swipe, SystemButton, Terminate, Type, Wait, action_from_model, action_to_dict, action_to_model,
    infigui_messages, load_screenshot, match_action, parse_action, render_action, swipe_direction,
)

GUI = {"platform": "mobile", "width": 1080, "height": 1920, "elements": [
    {"box": [40, 100, 1040, 220], "role": "EditText", "text": "Search", "clickable": True},
    {"box": [100, 400, 300, 600], "role": "ImageView", "text": "Settings", "clickable": True},
    {"box": [0, 1800, 1080, 1920], "role": "View", "text": "", "clickable": False},
]}


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    d = tmp_path_factory.mktemp("gui")
    Image.new("RGB", (1080, 1920), (240, 240, 240)).save(d / "screen.png")
    data = (d / "screen.png").read_bytes()
    (d / "cut.png").write_bytes(data[: len(data) // 3])
    return d


def test_screenshot_loads_with_typed_elements(shot):
    s = load_screenshot("screen.png", root=shot, gui=GUI, sample_id="ep1-3")
    assert (s.width, s.height, s.platform, s.clipped) == (1080, 1920, "mobile", 0)
    assert s.elements[1] == Element((100.0, 400.0, 300.0, 600.0), "ImageView", "Settings", True)
    assert s.elements_at((150, 500)) == [1] and s.elements_at((5, 5)) == []
    assert s.frame("qwen2_5_vl", max_pixels=6400 * 28 * 28) == ImageFrame.for_family(
        1080, 1920, "qwen2_5_vl", max_pixels=6400 * 28 * 28)


def test_element_outside_the_screen_is_an_error_naming_file_and_element(shot):
    extra = {"box": [900, 1700, 1200, 1950], "role": "Button", "text": "OK"}
    bad = {**GUI, "elements": GUI["elements"] + [extra]}
    with pytest.raises(MediaError) as err:
        load_screenshot(shot / "screen.png", gui=bad, sample_id="ep9-0")
    msg = str(err.value)
    assert "ep9-0" in msg and "screen.png" in msg and "element 3" in msg and "'OK'" in msg
    clipped = load_screenshot(shot / "screen.png", gui=bad, on_bad_box="clip")
    assert clipped.clipped == 1 and clipped.elements[3].box == (900.0, 1700.0, 1080.0, 1920.0)
    gone = {**GUI, "elements": [{"box": [2000, 10, 2100, 50]}]}
    assert load_screenshot(shot / "screen.png", gui=gone, on_bad_box="clip").elements == ()


@pytest.mark.parametrize("gui,error,match", [
    ({**GUI, "elements": [{"box": [10, 10, 5, 20]}]}, MediaError, "malformed box"),
    ({**GUI, "elements": [{"box": [10, "x", 5, 20]}]}, MediaError, "malformed box"),
    ({**GUI, "elements": [{"box": [0, 0, float("nan"), 2]}]}, MediaError, "malformed box"),
    ({**GUI, "width": 540, "height": 960}, MediaError, "540x960 but the image is 1080x1920"),
    ({**GUI, "platform": "watch"}, SchemaError, "platform"),
])
def test_bad_gui_facts(shot, gui, error, match):
    with pytest.raises(error, match=match):
        load_screenshot(shot / "screen.png", gui=gui, sample_id="s")


def test_bad_screenshot_files(shot):
    with pytest.raises(MediaError, match="s-cut"):
        load_screenshot(shot / "cut.png", gui=GUI, sample_id="s-cut")
    with pytest.raises(MediaError, match="not found"):
        load_screenshot("nope.png", root=shot, sample_id="s")


ALL_ACTIONS = [
    Click((10.0, 20.0)), LongPress((5.0, 6.0), 2.0), DoubleClick((1.0, 2.0)), RightClick((3.0, 4.0)),
    MoveTo((7.0, 8.0)), Drag((1.0, 1.0), (50.0, 60.0)), Swipe((500.0, 1500.0), (500.0, 300.0)),
    Swipe(direction="left"), Scroll("down", (300.0, 400.0), -120.0), Type("hello world"), Key("volume_up"),
    Hotkey(("ctrl", "c")), SystemButton("Back"), Open("Settings"), Wait(1.5), Wait(), Terminate("failure"),
]


@pytest.mark.parametrize("action", ALL_ACTIONS, ids=lambda a: a.action)
def test_render_then_parse_is_identity(action):
    for tool in ("mobile_use", None):
        got = parse_action(render_action(action, tool=tool))
        assert got.ok and got.action == action and got.tool == tool
    assert {a.action for a in ALL_ACTIONS} == set(ACTIONS)


SCREENS = [("mobile", 1080, 1920), ("mobile", 720, 1600), ("desktop", 1280, 800), ("web", 1920, 1080)]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("platform,width,height", SCREENS)
def test_round_trip_through_each_family_frame_within_a_pixel(family, platform, width, height):
    frame = ImageFrame.for_family(width, height, family, max_pixels=6400 * 28 * 28)
    points = [(0.0, 0.0), (width, height), (width / 3, height / 7), (width - 1.5, 2.25), (517.3, 333.9)]
    for p in points:
        for action in (Click(p), Drag(p, (width / 2, height / 2)), Swipe(p, (3.0, 4.0))):
            text = render_action(action_to_model(action, family, frame))  # what the model would emit
            back = action_from_model(parse_action(text).action, family, frame)
            for key in ("coordinate", "coordinate2"):
                got, want = getattr(back, key, None), getattr(action, key, None)
                if want is None:
                    continue
                assert abs(got[0] - want[0]) <= 1 and abs(got[1] - want[1]) <= 1, (family, key, got, want)
            exact = action_from_model(action_to_model(action, family, frame), family, frame)
            assert exact.coordinate == pytest.approx(action.coordinate)


def test_model_frame_is_the_family_frame():
    frame = ImageFrame.for_family(1080, 1920, "qwen2_5_vl")
    assert action_to_model(Click((1080, 1920)), "qwen2_vl", frame).coordinate == pytest.approx((1000, 1000))
    assert action_to_model(Click((1080, 1920)), "qwen2_5_vl", frame).coordinate == pytest.approx(
        (frame.resized_width, frame.resized_height))
    assert action_to_model(Type("x"), "qwen3_vl", frame) == Type("x")


@pytest.mark.parametrize("text,expected", [
    ('<think>tap search</think><tool_call>\n{"name": "mobile_use", "arguments": {"action": "click", '
     '"coordinate": [540, 160]}}\n</tool_call>', Click((540.0, 160.0))),
    ('{"action": "open_app", "app_name": "Gmail"}', Open("Gmail")),
    ("{'action': 'type', 'text': 'hi'}", Type("hi")),
    ('{"name": "computer_use", "arguments": "{\\"action\\": \\"left_click\\", \\"coordinate\\": [1, 2]}"}',
     Click((1.0, 2.0))),
    ('{"action": "hotkey", "keys": "ctrl + shift + t"}', Hotkey(("ctrl", "shift", "t"))),
    ('{"action": "key", "keys": ["ctrl", "v"]}', Hotkey(("ctrl", "v"))),
    ('{"action": "system_button", "button": "back"}', SystemButton("Back")),
    ('{"action": "scroll", "pixels": 300}', Scroll("up", None, 300.0)),
    ('{"action": "swipe", "coordinate": "(10, 20)", "coordinate2": [10, 900]}',
     Swipe((10.0, 20.0), (10.0, 900.0))),
    ('{"action": "click", "coordinate": {"x": 3, "y": 4}}', Click((3.0, 4.0))),
])
def test_parse_accepts_the_forms_models_emit(text, expected):
    assert parse_action(text).action == expected


def test_a_box_for_a_point_is_taken_as_its_centre_and_flagged():
    got = parse_action('{"action": "click", "coordinate": [10, 20, 30, 40]}')
    assert got.action == Click((20.0, 30.0)) and not got.ok and "centre" in got.issues[0]


@pytest.mark.parametrize("text,issue", [
    ("I would click the button", "no JSON"), ('{"action": "click", "coordinate": [1, 2}', "malformed"),
    ('{"action": "teleport"}', "unknown action"), ('{"coordinate": [1, 2]}', "missing action"),
    ('{"action": "click"}', "needs coordinate"),
    ('{"action": "click", "coordinate": [1, NaN]}', "not finite"),
    ('{"action": "click", "coordinate": [1, 2, 3]}', "needs 2 numbers"), ("[1, 2]", "not a JSON object"),
    ('{"action": "swipe", "coordinate": [1, 2]}', "coordinate2 or direction"),
    ('{"action": "system_button", "button": "Power"}', "unknown button"),
    ('{"name": "mobile_use", "arguments": 5}', "arguments is not an object"),
])
def test_parse_reports_problems_instead_of_raising(text, issue):
    got = parse_action(text)
    assert not got.ok and any(issue in i for i in got.issues), got


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["action", "coordinate", "coordinate2", "text", "keys", "button", "time", "pixels",
                         "direction", "status", "arguments", "name"]), inner, max_size=5),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), json_values.map(json.dumps),
                 st.dictionaries(st.sampled_from(["action", "coordinate", "text", "arguments"]),
                                 json_values)))
def test_parse_never_raises_on_model_output(output):
    got = parse_action(output)
    assert got.action is not None or got.issues


def test_infigui_prompt_states_resized_resolution_and_history(shot):
    s = load_screenshot(shot / "screen.png", gui=GUI)
    history = [Click((540.0, 160.0)), Type("wifi")]
    msgs = infigui_messages("Turn on wifi", s, family="qwen2_5_vl", step_instruction="Open settings",
                            history=history)
    rh, rw = smart_resize(1920, 1080, factor=28, min_pixels=56 * 56, max_pixels=6400 * 28 * 28)
    system = msgs[0]["content"][0]["text"]
    assert system.startswith("You FIRST think") and "<step> </step>" in system
    tool = json.loads(re.search(r"<tools>\n(.*)\n</tools>", system).group(1))
    assert tool["function"]["name"] == "mobile_use"
    assert f"The screen's resolution is {rw}x{rh}." in tool["function"]["description"]
    text, image = msgs[1]["content"]
    assert text["text"].startswith("The user query: Turn on wifi\nCurrent step query: Open settings\n")
    frame = s.frame("qwen2_5_vl", max_pixels=6400 * 28 * 28)
    x, y = round(540 * frame.resized_width / 1080), round(160 * frame.resized_height / 1920)
    assert text["text"].endswith(f'Step 1: {{"action": "click", "coordinate": [{x}, {y}]}}; '
                                 'Step 2: {"action": "type", "text": "wifi"}; ')
    assert image == {"type": "screenshot", "screenshot": s.path, "max_pixels": 6400 * 28 * 28}
    norm = infigui_messages("g", "x.png", family="qwen2_vl", size=(1080, 1920), reasoning=False)
    assert "resolution is 1000x1000" in norm[0]["content"][0]["text"]
    assert "Current step query" not in norm[1]["content"][0]["text"]


SCREEN = (1080, 1920)
ICON = (100.0, 400.0, 300.0, 600.0)


@pytest.mark.parametrize("pred,gt,candidates,expected", [
    (Click((305, 500)), Click((200, 500)), [ICON], (True, True)),       # inside the 1.2x enlarged box
    (Click((330, 500)), Click((200, 500)), [ICON], (True, False)),      # outside it, and 130 px away
    (Click((260, 520)), Click((200, 500)), [], (True, True)),           # within 4% of 1920 = 76.8 px
    (Click((280, 500)), Click((200, 500)), [], (True, False)),          # 80 px away
    (LongPress((200, 500), 1), Click((200, 500)), [ICON], (False, False)),
    (Type("Wi-Fi settings"), Type("wi-fi"), [], (True, True)),          # substring either way, any case
    (Type("wifi"), Type("Wi-Fi"), [], (True, False)),
    (Open("settings"), Open("Settings app"), [], (True, True)),
    (Click((150, 450)), Open("Settings"), [ICON], (True, True)),        # click on the app icon opens it
    (Click((900, 900)), Open("Settings"), [ICON], (True, False)),
    (Click((150, 450)), Open("Settings"), [], (False, False)),
    (Swipe((500, 1500), (520, 300)), Swipe(direction="up"), [], (True, True)),
    (Swipe((500, 1500), (900, 1450)), Swipe(direction="up"), [], (True, False)),
    (SystemButton("back"), SystemButton("Back"), [], (True, True)),
    (SystemButton("Home"), SystemButton("Back"), [], (True, False)),
    (Wait(3), Wait(1), [], (True, True)),
    (Terminate("success"), Terminate("failure"), [], (True, False)),
    (Hotkey(("C", "ctrl")), Hotkey(("ctrl", "c")), [], (True, True)),
    (None, Click((1, 1)), [], (False, False)),
    (Click((150, 450)), Click((0, 0)), [Element(ICON, "ImageView", "Settings")], (True, True)),
])
def test_android_control_matcher(pred, gt, candidates, expected):
    assert match_action(pred, gt, candidates=candidates, screen=SCREEN) == expected


def test_swipe_direction_uses_the_dominant_axis():
    assert swipe_direction(Swipe((0, 0), (10, -50))) == "up"
    assert swipe_direction(Swipe((0, 0), (-60, 50))) == "left"
    assert swipe_direction(Swipe((0, 0), (10, 10))) == "down"  # ties count as vertical
    assert swipe_direction(Swipe()) is None
    assert action_to_dict(Swipe(direction="up")) == {"action": "swipe", "direction": "up"}


def test_screenshot_is_a_plain_record():
    s = Screenshot("a.png", 10, 20, "web", (Element((0, 0, 1, 1)),))
    assert s.elements[0].clickable and s.frame("qwen3_vl").width == 10
