"""GUI builder: boxes cover their elements in the screenshot, actions are real, recovery rows cohere."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmreason import schema, traces
from mmreason.data_builders import browser, gui_pages, gui_templates
from mmreason.modalities.gui import load_screenshot, parse_action


@pytest.fixture(scope="module", autouse=True)
def chromium():
    with browser.keep_shared() as session:  # one Chromium for the whole module
        yield session


@pytest.fixture(scope="module")
def grounding(tmp_path_factory):
    out = tmp_path_factory.mktemp("gui") / "ground"
    gui_pages.build(out, n=4, seed=3, chunk_size=2, progress=False, qtypes=["ground"])
    return out, sorted(schema.load_rows(out), key=lambda r: r["id"])


def _rgb(css: str) -> tuple[int, int, int, float] | None:
    m = re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)", css)
    return None if m is None else (int(m[1]), int(m[2]), int(m[3]), float(m[4] or 1))


def _share(pixels: np.ndarray, rgb) -> float:
    return float((np.abs(pixels.astype(int) - np.array(rgb)).max(-1) <= 10).mean())


def _screens(out: Path, row: dict) -> list[np.ndarray]:
    return [np.asarray(Image.open(out / p).convert("RGB")) for p in schema.images_of(row)]


def test_grounding_boxes_cover_their_elements(grounding):
    out, rows = grounding
    assert len(rows) == 4
    checked = 0
    for row in rows:
        shot = load_screenshot(schema.images_of(row)[0], root=out, gui=row["gui"], sample_id=row["id"])
        assert shot.width == row["gui"]["width"] and len(shot.elements) == len(row["gui"]["elements"])
        box = row["boxes"][0]["box"]
        x, y = row["points"][0]["point"]
        assert box[0] <= x <= box[2] and box[1] <= y <= box[3]
        meta = row["meta"]
        assert row["gui"]["elements"][meta["target"]]["box"] == box
        assert set(meta["instructions"]) == set(gui_pages.PERSPECTIVES)
        assert meta["instructions"][meta["perspective"]] in row["messages"][1]["content"][0]["text"]
        # the target turn parses back to a click on the point
        trace = traces.parse(row["messages"][-1]["content"][0]["text"])
        assert trace.think and not trace.issues
        act = parse_action(trace.tool_calls[0].arguments).action
        assert act.coordinate == (round(x), round(y))
        # pixel check: an element with a solid colour fills its box, and the ring just outside is not it
        img = _screens(out, row)[0]
        for el, css in zip(row["gui"]["elements"], meta["element_backgrounds"]):
            bg = _rgb(css)
            if bg is None or bg[3] < 1 or not el["clickable"]:
                continue  # transparent, or covered by something else
            x1, y1, x2, y2 = (int(round(v)) for v in el["box"])
            inside = img[y1:y2, x1:x2].reshape(-1, 3)
            ring = np.concatenate([img[max(y1 - 4, 0):max(y1 - 1, 0), x1:x2].reshape(-1, 3),
                                   img[y2 + 1:y2 + 4, x1:x2].reshape(-1, 3),
                                   img[y1:y2, max(x1 - 4, 0):max(x1 - 1, 0)].reshape(-1, 3),
                                   img[y1:y2, x2 + 1:x2 + 4].reshape(-1, 3)])
            assert _share(inside, bg[:3]) > 0.4, (row["id"], el, css)
            if len(ring):
                assert _share(ring, bg[:3]) < 0.15, (row["id"], el, css)
            checked += 1
    assert checked >= 8


def test_grounding_is_deterministic_and_shardable(grounding, tmp_path):
    out, rows = grounding
    part = gui_pages.build(tmp_path / "part", n=4, seed=3, chunk_size=2, shard=(1, 2), progress=False,
                           qtypes=["ground"])
    again = sorted(schema.load_rows(part), key=lambda r: r["id"])
    assert again == rows[2:]
    for row in again:
        for p in schema.images_of(row):
            assert (part / p).read_bytes() == (out / p).read_bytes()


def test_trajectory_screens_change_after_each_real_action(tmp_path):
    out = gui_pages.build(tmp_path / "traj", n=2, seed=1, chunk_size=2, progress=False, qtypes=["trajectory"],
                          kinds=["shopping", "list"])
    rows = list(schema.load_rows(out))
    assert len(rows) == 2
    for row in rows:
        screens = _screens(out, row)
        actions = [traces.parse(m["content"][0]["text"]) for m in row["messages"] if m["role"] == "assistant"]
        steps = row["meta"]["steps"]
        assert len(screens) == len(actions) == len(steps) + 1  # one screen per decision, the last terminates
        for a, b in zip(screens, screens[1:]):
            assert a.shape != b.shape or np.abs(a.astype(int) - b.astype(int)).sum() > 0
        for k, (trace, step) in enumerate(zip(actions, steps)):
            assert "<step>" in trace.think and step["subgoal"] in trace.think
            act = parse_action(trace.tool_calls[0].arguments).action
            assert act.action == step["action"]["action"]
            if act.action == "click":
                [gt] = [b for b in row["boxes"] if b["image"] == k]
                x1, y1, x2, y2 = gt["box"]
                assert x1 <= act.coordinate[0] <= x2 and y1 <= act.coordinate[1] <= y2
        assert parse_action(actions[-1].tool_calls[0].arguments).action.action == "terminate"
        assert row["messages"][1]["role"] == "user" and all(m["role"] in ("assistant", "tool")
                                                            for m in row["messages"][2:])


def test_error_recovery_rows(tmp_path):
    out = gui_pages.build(tmp_path / "rec", n=4, seed=2, chunk_size=4, progress=False,
                          qtypes=["error_escape", "back_on_track"], kinds=["dialog", "shopping", "settings"])
    rows = list(schema.load_rows(out))
    assert {r["meta"]["qtype"] for r in rows} == {"error_escape", "back_on_track"}
    for row in rows:
        gui, meta = row["gui"], row["meta"]
        back = {"mobile": "system_button", "web": "hotkey"}[gui["platform"]]
        if meta["qtype"] == "error_escape":
            assert gui["action"]["action"] == back and gui["history"][-1]["action"] == "click"
            assert meta["page"] != "index.html" or meta["kind"] == "settings"
        else:
            assert [h["action"] for h in gui["history"][-2:]] == ["click", back]
            call = traces.parse(row["messages"][-1]["content"][0]["text"]).tool_calls[0]
            target = parse_action(call.arguments)
            if target.action.action == "click":
                x1, y1, x2, y2 = row["boxes"][0]["box"]
                assert x1 <= target.action.coordinate[0] <= x2 and y1 <= target.action.coordinate[1] <= y2
        # the prompt lists the history, wrong action included, as InfiGUI-R1's "Step n: {json}; "
        query = row["messages"][1]["content"][0]["text"]
        assert query.count("Step ") == len(gui["history"])
        assert json.loads(query.split(f"Step {len(gui['history'])}: ")[1].split("; ")[0])["action"] == \
            gui["history"][-1]["action"]


def test_templates_and_options():
    rng = np.random.default_rng(0)
    for kind in gui_templates.KINDS:
        site = gui_templates.make_site(rng, kind, mobile=bool(rng.random() < 0.5))
        assert site.start in site.pages and site.steps
        html = "".join(site.pages.values())
        assert all(s.key in site.info and f"data-key='{s.key}'" in html for s in site.steps)
    with pytest.raises(ValueError, match="qtypes"):
        gui_pages.build("/nonexistent", n=1, qtypes=["fly"])
    with pytest.raises(ValueError, match="kind"):
        gui_templates.make_site(rng, "spaceship", True)
