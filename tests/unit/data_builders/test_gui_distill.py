"""InfiGUI-R1's spatial reasoning distillation against a real OpenAI-compatible teacher on 127.0.0.1: the teacher
sees the screenshot and the compressed element list; only traces whose action matches the ground truth stay."""

import json
import re

import pytest
from chat_server import ChatServer
from PIL import Image, ImageDraw

from mmreason import schema, traces
from mmreason.data_builders import gui_distill
from mmreason.data_builders.frames import render_for_family
from mmreason.rewards import bind_reward

W, H = 200, 400
SEARCH, CART = [10, 10, 110, 40], [120, 300, 190, 340]  # element boxes, screenshot pixels
GOALS = ["Open the cart", "Search for boots", "Go back", "Open the cart again"]


def steps(root):
    """Four agent steps: the goal names what the teacher's answer (below) does to each."""
    (root / "img").mkdir(parents=True)
    image = Image.new("RGB", (W, H), (240, 240, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle(SEARCH, fill=(200, 200, 255))
    draw.rectangle(CART, fill=(255, 200, 200))
    image.save(root / "img" / "screen.png")
    elements = [{"box": SEARCH, "role": "searchbox", "text": "Search", "clickable": True},
                {"box": CART, "role": "link", "text": "Cart 2", "clickable": True},
                {"box": [0, 0, W, H], "role": "generic", "text": "", "clickable": False}]
    actions = [{"action": "click", "coordinate": [155, 320]}, {"action": "click", "coordinate": [60, 25]},
               {"action": "system_button", "button": "Back"}, {"action": "click", "coordinate": [155, 320]}]
    rows = []
    for i, (goal, action) in enumerate(zip(GOALS, actions)):
        query = f"The user query: {goal}\nTask progress (You have done the following operation on the current " \
                "device): "
        rows.append({
            "id": f"s{i}", "task": "gui_action", "source": "pages", "answer": json.dumps(action),
            "messages": [{"role": "system", "content": [{"type": "text", "text": "You are a GUI agent."}]},
                         {"role": "user", "content": [{"type": "text", "text": query},
                                                      {"type": "screenshot", "screenshot": "img/screen.png"}]},
                         {"role": "assistant", "content": [{"type": "text", "text": "<think>t</think>"}]}],
            "gui": {"platform": "mobile", "width": W, "height": H, "elements": elements, "action": action,
                    "goal": goal, "history": []},
        })
    schema.write_jsonl(rows, root / "steps.jsonl")
    return root / "steps.jsonl"


def call(args):
    return "<tool_call>\n" + json.dumps({"name": "mobile_use", "arguments": args}) + "\n</tool_call>"


class Teacher:
    """Right at once for the cart; for the search box, a click on the cart first, then right; Back never
    (it keeps tapping); for the last goal, an unclosed thought, then no action at all."""

    def __init__(self):
        self.tries = {}

    def __call__(self, body):
        text = next(p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text")
        goal = re.search(r"The user query: (.*)", text).group(1)
        k = self.tries[goal] = self.tries.get(goal, 0) + 1
        cart = call({"action": "click", "coordinate": [150, 318]})
        if goal == "Open the cart":
            return "<think>The cart link is at the bottom right, [120, 300, 190, 340]; I tap it.</think>\n" + cart
        if goal == "Search for boots":
            if k == 1:
                return "<think>The cart is what I need.</think>" + cart
            return "<think>The search box is at the top left.</think>" + call({"action": "click", "coordinate": [58, 27]})
        if goal == "Go back":
            return "<think>Tap somewhere.</think>" + call({"action": "click", "coordinate": [5, 5]})
        return "<think>unfinished" if k == 1 else "<think>I am not sure what to do.</think>"


@pytest.fixture()
def server():
    with ChatServer(Teacher()) as s:
        yield s


def test_only_traces_whose_action_matches_are_kept(tmp_path, server):
    src = steps(tmp_path / "src")
    out = gui_distill.build(tmp_path / "out", progress=False, src=str(src), base_url=server.url, k=2)
    rows = {r["meta"]["source_id"]: r for r in schema.load_rows(out)}
    assert sorted(rows) == ["s0", "s1"]  # Back was never given; the last teacher never wrote an action

    # what the teacher saw: the screenshot, and the compressed element list with pixel boxes, no container
    body = server.bodies[0]
    parts = body["messages"][-1]["content"]
    assert any(p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/png") for p in parts)
    prompt = next(p["text"] for p in parts if p["type"] == "text")
    assert 'searchbox "Search" [10, 10, 110, 40] clickable' in prompt and "generic" not in prompt
    assert f"{W}x{H}" in prompt and "The user query: Open the cart" in prompt

    # kept targets: the thought, then one mobile_use call; they score 1 with the project's GUI reward
    for sid, want in (("s0", [150, 318]), ("s1", [58, 27])):
        row = rows[sid]
        target = schema.text_of(row["messages"][-1])
        trace = traces.parse(target)
        assert trace.think and trace.tool_calls[0].arguments["coordinate"] == want
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert row["meta"]["coord_frame"] == "pixel" and (out / schema.images_of(row)[0]).is_file()
        match = bind_reward("gui_action_match", coord_frame="pixel")
        assert match([target], gui=[row["gui"]]) == [1.0]
    assert rows["s1"]["meta"]["teacher"]["rejections"] == ["params"]  # a click, on the wrong element

    card = json.loads((out / "manifest.json").read_text())
    assert card["rows"] == 2 and card["skipped"] == 2
    counters = {}
    for f in (out / "chunks").glob("*.json"):
        for key, v in json.loads(f.read_text())["stats"]["counters"].items():
            counters[key] = counters.get(key, 0) + v
    assert counters["kept"] == 2 and counters["rejected"] == 2 and counters["tries"] == 7
    # Back answered with clicks twice (type), an unclosed thought (format), a thought without action
    assert (counters["rejected_type"], counters["rejected_params"], counters["rejected_format"],
            counters["rejected_no_action"]) == (2, 1, 1, 1)


def test_kept_targets_move_into_a_familys_frame(tmp_path, server):
    out = gui_distill.build(tmp_path / "out", n=1, progress=False, src=str(steps(tmp_path / "src")),
                            base_url=server.url)
    row = schema.load_rows(out)[0]
    moved = render_for_family(row, "qwen2_vl", root=out)
    text = schema.text_of(moved["messages"][-1])
    assert traces.parse(text).tool_calls[0].arguments["coordinate"] == [750, 795]  # 150/200, 318/400 in 0-1000


@pytest.mark.parametrize("options,word", [({}, "src"), ({"src": "x", "base_url": None}, "exactly one"),
                                          ({"src": "/nonexistent", "base_url": "http://127.0.0.1:9/v1"},
                                           "does not exist"),
                                          ({"src": "x", "base_url": "http://127.0.0.1:9/v1", "k": 0}, "k >= 1"),
                                          ({"teacher": "x"}, "unknown option")])
def test_bad_options_fail_before_any_request(tmp_path, options, word):
    with pytest.raises(ValueError, match=word):
        gui_distill.build(tmp_path / "out", progress=False, **options)
