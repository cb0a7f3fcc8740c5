"""InfiGUI-R1 error recovery mined from a real tiny model's own wrong clicks on pages in headless Chromium.

The model is the shipped tiny base (`base:qwen2_5_vl`): it never saw a screen, and started on a click
(``prefill``) it writes its own coordinates, wrong on almost every step."""

import json

import pytest

from mmreason import schema, traces
from mmreason.data_builders import browser, gui_recovery
from mmreason.modalities.gui import parse_action

MODEL = "base:qwen2_5_vl"
# the model writes the coordinates; 224x224 pixels is the budget at which it writes two numbers
ASK = {"model": MODEL, "prefill": '{"action": "click", "coordinate": [', "stop": ["}"], "max_pixels": 50176,
       "max_new_tokens": 16, "samples": 8, "platforms": ["mobile"], "seed": 0}
# seed 0: with the shipped base, one step is answered right 6 times of 8 and the others never: wrong clicks to
# mine, and a step for each filter; the assertions below hold for any such outcome


@pytest.fixture(scope="module", autouse=True)
def chromium():
    with browser.keep_shared() as session:
        yield session


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    out = tmp_path_factory.mktemp("recovery") / "mined"
    gui_recovery.build(out, n=3, progress=False, keep="wrong", **ASK)
    rows = sorted(schema.load_rows(out), key=lambda r: r["id"])
    counters = {}
    for manifest in sorted(out.glob("chunks/*.json")):
        for k, v in json.loads(manifest.read_text())["stats"]["counters"].items():
            counters[k] = counters.get(k, 0) + v
    return out, rows, counters


def _step_history(text: str) -> list[dict]:
    part = text.split("Task progress (You have done the following operation on the current device): ")[1]
    return [json.loads(s.split(": ", 1)[1]) for s in part.split("; ") if s.strip()]


def test_steps_the_model_gets_wrong_become_recovery_rows(mined):
    out, rows, counters = mined
    assert counters["steps_asked"] == 3 and counters["answers"] == 24
    # wrong enough to mine, and right on some answer, so one step is "prone to error"
    assert rows and 0 < counters["answers_right"] < counters["answers"], counters
    assert len(rows) == sum(counters.get(k, 0) for k in gui_recovery.QTYPES)
    for row in rows:
        meta = row["meta"]
        mine = meta["mined"]
        assert meta["qtype"] in gui_recovery.QTYPES and mine["success_rate"] < 1
        # the wrong action is the model's own: it parses out of its own completion, which starts as prefilled
        assert mine["wrong_completion"].startswith(ASK["prefill"])
        assert parse_action(mine["wrong_completion"]).action is not None
        # and the row shows it as the step before the target (then Back, when it left the page)
        user = next(m for m in row["messages"] if m["role"] == "user")
        history = _step_history(user["content"][0]["text"])
        shown = history[-2] if mine["left_page"] and meta["qtype"] == "back_on_track" else history[-1]
        assert shown["action"] == "click"
        assert shown["coordinate"] == [round(v) for v in mine["wrong_action"]["coordinate"]]
        assert len(history) == mine["step_index"] + 1 + (mine["left_page"] and meta["qtype"] == "back_on_track")
        # the target is an action, on a screen that was really taken after the wrong click
        target = traces.parse(row["messages"][-1]["content"][0]["text"])
        assert target.think and not target.issues
        action = parse_action(target.tool_calls[0].arguments).action
        assert action is not None and (row["gui"]["action"]["action"] == action.action)
        assert (out / schema.images_of(row)[0]).is_file()
        if meta["qtype"] == "back_on_track" and action.action == "click":
            # the correct click lands on an element of that screen (the GT box the row carries)
            x1, y1, x2, y2 = row["boxes"][0]["box"]
            assert x1 <= action.coordinate[0] <= x2 and y1 <= action.coordinate[1] <= y2


def test_keep_prone_keeps_only_steps_the_model_sometimes_gets_right(mined, tmp_path):
    _, rows, wrong_counters = mined
    out = tmp_path / "prone"
    gui_recovery.build(out, n=3, progress=False, keep="prone", **ASK)
    counters = json.loads(next(out.glob("chunks/*.json")).read_text())["stats"]["counters"]
    prone = list(schema.load_rows(out)) if counters.get("back_on_track", 0) + counters.get("error_escape", 0) else []
    # the same answers as with keep=wrong (seeded per sample); steps never answered right are dropped now
    assert counters["answers"] == wrong_counters["answers"]
    assert counters["answers_right"] == wrong_counters["answers_right"] > 0
    assert counters.get("skipped_never_right", 0) >= 1
    assert counters.get("skipped_never_right", 0) < counters["steps_asked"]  # the step answered right stays
    assert [r["meta"]["mined"] for r in prone] == [r["meta"]["mined"] for r in rows
                                                   if 0 < r["meta"]["mined"]["success_rate"] < 1]


def test_bad_options_are_named(tmp_path):
    with pytest.raises(ValueError, match="model"):
        gui_recovery.build(tmp_path / "a", n=1)
    with pytest.raises(ValueError, match="keep"):
        gui_recovery.build(tmp_path / "b", n=1, model=MODEL, keep="sometimes")
    with pytest.raises(ValueError, match="stop"):
        gui_recovery.build(tmp_path / "c", n=1, model=MODEL, stop="}")
