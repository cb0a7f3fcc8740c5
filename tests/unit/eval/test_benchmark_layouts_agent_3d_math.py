"""AndroidControl, ScanRefer and MathVista read as published: each test writes a small release in the
benchmark's own layout, scores hand-written outputs through `mmreason eval --predictions`, and checks the
scores against values worked out by hand (in the comments).

Screenshots are multiples of 28 px and within InfiGUI-R1's budget, so for qwen2_5_vl (absolute coordinates
in the resized frame) the model frame is the screenshot's own pixels.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mmreason import cli

from .release_scoring import FAMILY, group, means, score



# ------------------------------------------------------------------------------------- AndroidControl
_EMPTY_CHECK = {"button": None, "candidate_bbox": None, "coordinate": None, "direction": None, "text": None}
_EMPTY_PAM = {"button": None, "coordinate": None, "coordinate2": None, "text": None, "time": None}


def _step(action: str, pam: dict | None = None, **check) -> tuple[dict, dict]:
    return {**_EMPTY_CHECK, "action": action, **check}, {**_EMPTY_PAM, "action": action, **(pam or {})}


def _episode(root: Path, episode_id: int, goal: str, steps: list[tuple[dict, dict]], instructions: list[str]):
    shots = []
    for k in range(len(steps) + 1):  # a screenshot before each action and one after the last
        path = f"images/episode_{episode_id}_{k}.png"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (280, 560), (20 * k, 40, 60)).save(root / path)
        shots.append(path)
    return {"episode": {"episode_id": episode_id, "goal": goal, "screenshot_paths": shots,
                        "step_instructions": instructions, "actions": []},
            "width": 280, "height": 560, "step_check_pams": [c for c, _ in steps],
            "step_pams": [p for _, p in steps]}


def _call(**arguments) -> str:
    return ("<think>next</think><tool_call>" + json.dumps({"name": "mobile_use", "arguments": arguments})
            + "</tool_call>")


@pytest.fixture
def android_release(tmp_path):
    root = tmp_path / "android_control_test"
    episodes = [
        _episode(root, 101, "Buy coffee beans", [
            _step("click", {"coordinate": [140, 100]}, coordinate=[140, 100], candidate_bbox=[[100, 80, 180, 120]]),
            _step("type", {"text": "coffee"}, text="coffee"),
            _step("swipe", {"coordinate": [140, 400], "coordinate2": [140, 100]}, direction="up")],
            ["Tap the search bar", "Type coffee", "Scroll down to the results"]),
        _episode(root, 102, "Set an alarm", [
            _step("open", {"text": "Clock"}, text="Clock", candidate_bbox=[]),
            _step("system_button", {"button": "Back"}, button="Back"),
            _step("click", {"coordinate": [50, 500]}, coordinate=[50, 500], candidate_bbox=[[20, 480, 80, 520]])],
            ["Open the clock app", "Go back", "Tap the plus"]),
    ]
    (root / "android_control_test.json").write_text(json.dumps(episodes))
    return root


ANDROID_OUTPUTS = {
    "android_control-101-0": _call(action="click", coordinate=[150, 110]),  # inside [100, 80, 180, 120]
    "android_control-101-1": _call(action="type", text="Coffee beans"),  # "coffee" is a substring
    "android_control-101-2": _call(action="swipe", coordinate=[140, 100], coordinate2=[140, 400]),  # down, not up
    "android_control-102-0": _call(action="open", text="Alarm"),  # type right, app wrong
    "android_control-102-1": _call(action="wait", time=2),  # type wrong
    # GT [50, 500]: 335 px away (over 0.04 * 560 = 22.4) and outside the enlarged box [14, 476, 86, 524]
    "android_control-102-2": _call(action="click", coordinate=[200, 200]),
}


def test_androidcontrol_low_type_grounding_step_success(tmp_path, android_release):
    results, samples = score(tmp_path, "androidcontrol_low", android_release, ANDROID_OUTPUTS)
    # type: all but the wait -> 5/6; step success: the click and the type -> 2/6; grounding over the two GT
    # clicks (101-0 hit, 102-2 missed) -> 1/2; every output is a readable action
    assert means(results, "type", "step_success", "grounding", "format") == [
        pytest.approx(5 / 6), pytest.approx(1 / 3), 0.5, 1.0]
    assert group(results, "action", "step_success") == {"click": 0.5, "open": 0.0, "swipe": 0.0,
                                                         "system_button": 0.0, "type": 1.0}
    assert results["paper"]["InfiGUI-R1-3B (arXiv 2504.14239)"]["step_success"] == 0.921
    third = samples[2]["prompt"]
    assert "Current step query: Scroll down to the results" in third
    # the history is the step_pams of the earlier steps, in order
    assert third.index("Step 1:") < third.index('"click"') < third.index("Step 2:") < third.index('"coffee"')


def test_androidcontrol_high_has_no_step_instruction(tmp_path, android_release):
    results, samples = score(tmp_path, "androidcontrol_high", android_release, ANDROID_OUTPUTS)
    assert means(results, "step_success") == [pytest.approx(1 / 3)]
    assert "Current step query" not in samples[0]["prompt"] and "Buy coffee beans" in samples[0]["prompt"]


def test_androidcontrol_screenshot_of_another_size_names_the_step(tmp_path, android_release, capsys):
    Image.new("RGB", (100, 100)).save(android_release / "images" / "episode_102_1.png")
    preds = tmp_path / "p.jsonl"
    preds.write_text("")
    assert cli.main(["eval", "--task", "androidcontrol_low", "--data", str(android_release), "--predictions",
                     str(preds), "--family", FAMILY, "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err
    assert "android_control_test.json episode 102 step 1" in err and "is 100x100" in err and "280x560" in err


# ------------------------------------------------------------------------------------------ ScanRefer
def _cube(lo, hi) -> list[tuple[float, float, float]]:
    return [(x, y, z) for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]


def _write_ply(path: Path, vertices) -> None:
    """A mesh laid out as ScanNet's _vh_clean_2.ply: binary, x y z float and r g b a uchar, then faces."""
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar alpha\n"
              "element face 0\nproperty list uchar int vertex_indices\nend_header\n")
    body = b"".join(struct.pack("<fffBBBB", *v, 128, 128, 128, 255) for v in vertices)
    path.write_bytes(header.encode() + body)


# aligned = (-y, x, z + 0.5): a quarter turn about z and a lift, as a real axisAlignment line can be
ALIGN = [[0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0.5], [0, 0, 0, 1]]


@pytest.fixture
def scanrefer_release(tmp_path):
    root = tmp_path / "scanrefer"
    scene = root / "scans" / "scene0011_00"
    scene.mkdir(parents=True)
    chair, table, chair2 = _cube((0, 0, 0), (1, 1, 1)), _cube((2, 0, 0), (3, 2, 1)), _cube((4, 4, 0), (5, 5, 1))
    floor = [(9.0, 9.0, 0.0), (-9.0, -9.0, 0.0)]
    _write_ply(scene / "scene0011_00_vh_clean_2.ply", chair + table + chair2 + floor)
    segs = [10] * 8 + [20] * 4 + [21] * 4 + [30] * 8 + [99] * 2  # the table spans two segments
    (scene / "scene0011_00_vh_clean_2.0.010000.segs.json").write_text(json.dumps({"segIndices": segs}))
    (scene / "scene0011_00.aggregation.json").write_text(json.dumps({"segGroups": [
        {"id": 0, "objectId": 0, "label": "chair", "segments": [10]},
        {"id": 1, "objectId": 1, "label": "table", "segments": [20, 21]},
        {"id": 2, "objectId": 2, "label": "chair", "segments": [30]}]}))
    (scene / "scene0011_00.txt").write_text(
        "colorHeight = 968\naxisAlignment = " + " ".join(str(v) for row in ALIGN for v in row) + "\n")
    (root / "ScanRefer_filtered_val.json").write_text(json.dumps([
        {"scene_id": "scene0011_00", "object_id": "0", "object_name": "chair", "ann_id": "0",
         "description": "the chair next to the table.", "token": []},
        {"scene_id": "scene0011_00", "object_id": "1", "object_name": "table", "ann_id": "2",
         "description": "a long brown table.", "token": []}]))
    return root


def test_scanrefer_boxes_from_aggregated_annotations(tmp_path, scanrefer_release):
    # chair raw [0,1]^3 -> aligned x [-1, 0], y [0, 1], z [0.5, 1.5]; table raw x [2,3], y [0,2], z [0,1] ->
    # aligned x [-2, 0], y [2, 3], z [0.5, 1.5] (volume 2). The table answer is shifted by 1 in x:
    # overlap 1 x 1 x 1 = 1, union 2 + 2 - 1 = 3 -> IoU 1/3 (a hit at 0.25, a miss at 0.5)
    results, samples = score(tmp_path, "scanrefer", scanrefer_release, {
        "scanrefer-scene0011_00-0-0": "<answer>chair 1 <bbox>(-1, 0, 0.5, 0, 1, 1.5)</bbox></answer>",
        "scanrefer-scene0011_00-1-2": "<answer>table 1 <bbox>(-1, 2, 0.5, 1, 3, 1.5)</bbox></answer>"})
    assert means(results, "acc@0.25", "acc@0.5", "miou", "format") == [1.0, 0.5, pytest.approx(2 / 3), 1.0]
    # two chairs in the scene: that description is "multiple"; the one table is "unique"
    assert group(results, "subset", "acc@0.5") == {"multiple": 1.0, "unique": 0.0}
    assert samples[1]["gt"] == "table 1 <bbox>(-2.0000, 2.0000, 0.5000, 0.0000, 3.0000, 1.5000)</bbox>"
    assert "the chair next to the table." in samples[0]["prompt"]
    assert results["paper"]["GS-Reasoner (arXiv 2510.13800) via a paper note"]["acc@0.25"] == 0.608


def test_scanrefer_model_sees_the_cloud_in_the_aligned_frame(tmp_path, scanrefer_release):
    from mmreason.eval.benchmarks import find_task
    from mmreason.eval.layouts import load_layout
    from mmreason.modalities.point_cloud import load_part

    rows = load_layout(find_task("scanrefer").layout, scanrefer_release, tmp_path).rows
    part = rows[0]["messages"][0]["content"][0]
    assert part["point_cloud"] == str(tmp_path / "media" / "scanrefer" / "scene0011_00.npy")  # the run's copy
    cloud = load_part(part, sample_id=rows[0]["id"])
    xyz = cloud.scene_xyz()
    assert cloud.rgb is not None and cloud.rgb.max() == pytest.approx(128 / 255)
    # every vertex aligned as the GT boxes are: the floor (9, 9, 0), (-9, -9, 0) -> (-9, 9, 0.5), (9, -9, 0.5)
    assert xyz.min(0) == pytest.approx([-9, -9, 0.5]) and xyz.max(0) == pytest.approx([9, 9, 1.5])
    assert rows[0]["boxes_3d"][0]["box"] == [-1.0, 0.0, 0.5, 0.0, 1.0, 1.5]


def test_scanrefer_object_without_vertices_is_named(tmp_path, scanrefer_release):
    (scanrefer_release / "ScanRefer_filtered_val.json").write_text(json.dumps([
        {"scene_id": "scene0011_00", "object_id": "7", "object_name": "lamp", "ann_id": "0", "description": "x"}]))
    from mmreason.errors import SchemaError
    from mmreason.eval.benchmarks import find_task
    from mmreason.eval.layouts import load_layout

    with pytest.raises(SchemaError, match=r"ScanRefer_filtered_val.json record 0.*object 7.*aggregation"):
        load_layout(find_task("scanrefer").layout, scanrefer_release, tmp_path)


# ------------------------------------------------------------------------------------------ MathVista
_ANGLES = ["30°", "60°", "90°"]


def _problem(pid: str, answer: str, question_type: str, answer_type: str, task: str, precision=None,
             choices=None) -> dict:
    query = f"Hint: Please answer the question.\nQuestion: Problem {pid}?"
    if choices:
        query += "\nChoices:\n" + "\n".join(f"({'ABC'[i]}) {c}" for i, c in enumerate(choices))
    return {"pid": pid, "question": f"Problem {pid}?", "image": f"images/{pid}.jpg", "choices": choices,
            "unit": None, "precision": precision, "answer": answer, "question_type": question_type,
            "answer_type": answer_type, "query": query,
            "metadata": {"task": task, "category": "math-targeted-vqa", "language": "english", "skills": []}}


MATHVISTA = [
    _problem("1", "60°", "multi_choice", "text", "geometry problem solving", choices=_ANGLES),
    _problem("2", "90°", "multi_choice", "text", "geometry problem solving", choices=_ANGLES),
    _problem("3", "12", "free_form", "integer", "math word problem"),
    _problem("4", "1.25", "free_form", "float", "math word problem", precision=2.0),
    _problem("5", "3.5", "free_form", "float", "math word problem", precision=1.0),
    _problem("6", "90°", "multi_choice", "text", "figure question answering", choices=_ANGLES),
]
MATHVISTA_OUTPUTS = {
    "mathvista-1": "<answer>B</answer>",  # the letter names 60°: right
    "mathvista-2": "<answer>(A) 30°</answer>",  # the letter in parentheses wins: 30°, wrong
    "mathvista-3": "<answer>x = 12 cm</answer>",  # not a number; its last number 12: right
    "mathvista-4": "<think>1.254</think><answer>\\boxed{1.254}</answer>",  # round(1.254, 2) = 1.25: right
    "mathvista-5": "3.4",  # no answer block (format 0), read whole: 3.4, wrong
    # nearest option by edit distance: "90 degrees" is 8 edits from 90°, 9 from 30° and 60°: right
    "mathvista-6": "<answer>90 degrees</answer>",
}


def test_mathvista_testmini_json_answer_matching(tmp_path):
    root = tmp_path / "MathVista"
    for p in MATHVISTA:
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (56, 56), (0, 0, 200)).save(root / p["image"])
    (root / "testmini.json").write_text(json.dumps({p["pid"]: p for p in MATHVISTA}, ensure_ascii=False))
    results, samples = score(tmp_path, "mathvista", root, MATHVISTA_OUTPUTS)
    assert means(results, "accuracy", "format") == [pytest.approx(4 / 6), pytest.approx(5 / 6)]
    assert group(results, "question_type", "accuracy") == {"free_form": pytest.approx(2 / 3),
                                                             "multi_choice": pytest.approx(2 / 3)}
    assert group(results, "task", "accuracy") == {"figure question answering": 1.0,
                                                   "geometry problem solving": 0.5,
                                                   "math word problem": pytest.approx(2 / 3)}
    assert samples[0]["prompt"].startswith("Hint: Please answer the question.\nQuestion: Problem 1?\n"
                                           "Choices:\n(A) 30°\n(B) 60°\n(C) 90°\n")
    assert set(results["paper"]) == {"DeepEyes-7B (arXiv 2505.14362)",
                                     "GRIT Qwen2.5-VL-3B, GPT-judged (arXiv 2505.15879, Table 1)"}


def test_mathvista_parquet_with_decoded_pictures(tmp_path):
    root = tmp_path / "MathVista-hf"
    (root / "data").mkdir(parents=True)
    buf = io.BytesIO()
    Image.new("RGB", (56, 56), (200, 0, 0)).save(buf, format="PNG")
    records = [{**p, "choices": p["choices"], "precision": p["precision"],
                "decoded_image": {"bytes": buf.getvalue(), "path": f"{p['pid']}.png"}} for p in MATHVISTA[:3]]
    pq.write_table(pa.Table.from_pylist(records), root / "data" / "testmini-00000-of-00001.parquet")
    results, _ = score(tmp_path, "mathvista", root, {k: MATHVISTA_OUTPUTS[k] for k in
                                                      ("mathvista-1", "mathvista-2", "mathvista-3")})
    assert means(results, "accuracy") == [pytest.approx(2 / 3)]
    assert (tmp_path / "out" / "media" / "mathvista" / "1.png").is_file()  # decoded once, in the run folder


def test_mathvista_problem_missing_its_answer_type_is_named(tmp_path):
    root = tmp_path / "MathVista"
    root.mkdir()
    bad = {k: v for k, v in MATHVISTA[0].items() if k != "answer_type"}
    (root / "testmini.json").write_text(json.dumps({"1": bad}))
    from mmreason.errors import SchemaError
    from mmreason.eval.benchmarks import find_task
    from mmreason.eval.layouts import load_layout

    with pytest.raises(SchemaError, match=r"testmini.json record 0.*answer_type"):
        load_layout(find_task("mathvista").layout, root, tmp_path)


def test_scannet_mesh_reader_matches_ascii_and_binary(tmp_path):
    from mmreason.eval.scannet import mesh_vertices

    points = _cube((0, 0, 0), (1, 2, 3))
    _write_ply(tmp_path / "b.ply", points)
    (tmp_path / "a.ply").write_text("ply\nformat ascii 1.0\nelement vertex 8\nproperty float x\nproperty float y\n"
                                    "property float z\nend_header\n" + "".join(f"{x} {y} {z}\n" for x, y, z in points))
    (binary, colours), (ascii_, no_colours) = mesh_vertices(tmp_path / "b.ply"), mesh_vertices(tmp_path / "a.ply")
    assert np.array_equal(binary, ascii_) and binary.max(0).tolist() == [1.0, 2.0, 3.0]
    assert colours.tolist() == [[128, 128, 128]] * 8 and no_colours is None
