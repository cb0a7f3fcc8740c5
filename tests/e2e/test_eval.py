"""`mmreason eval`: generation on a built dataset with a tiny model (grounding, and V* with the zoom loop),
and the scoring path on hand-made predictions for every task kind (`--predictions` re-scoring).

The tiny model is random, so its scores are 0; what the generation tests check is that the pinned prompt,
pixel budget and decoding settings reach the model and are written next to the score. The numbers are
checked on predictions written by hand, whose scores are known exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from mmreason import cli
from mmreason.errors import RecipeError, SchemaError
from mmreason.geometry import ImageFrame, box_to_model, point_to_model, smart_resize
from mmreason.schema import load_rows, write_jsonl
from mmreason.eval import rescore, run_setup, runner, scoring
from mmreason.eval import tasks as eval_tasks
from mmreason.eval.tasks import TASKS, prompt_messages

BUDGET = 50176  # 64 merged tokens of 28 px: small pictures keep the tiny model fast


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from mmreason.data_builders import get_builder

    out = tmp_path_factory.mktemp("eval-scenes") / "scenes"
    return get_builder("image_scenes")(out, n=6, seed=4, progress=False, qtypes=["ground", "count", "color"])


def _run(*argv) -> int:
    return cli.main(["eval", *map(str, argv)])


def _read(out: Path) -> tuple[dict, list[dict]]:
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return results, samples


# ------------------------------------------------------------------------------------- generation
def test_grounding_end_to_end_records_the_pinned_settings(tiny_model_dir, scenes, tmp_path, capsys):
    model = tiny_model_dir("qwen2_5_vl")
    out = tmp_path / "grounding"
    assert _run("--model", model, "--data", scenes, "--task", "grounding", "--out", out,
                "--max-pixels", BUDGET, "--max-new-tokens", 8, "--batch-size", 2, "--quiet") == 0
    results, samples = _read(out)
    rows = [r for r in load_rows(scenes) if r["task"] == "grounding"]
    assert rows and [s["id"] for s in samples] == [r["id"] for r in rows]  # dataset order, every matching row
    assert results["samples"] == len(rows) and results["dataset"]["matching"] == len(rows)
    assert results["prompt"]["template"] == TASKS["grounding"].prompt
    assert results["media"]["image"]["max_pixels"] == BUDGET
    assert results["image_budget"]["max_pixels"] == BUDGET
    assert results["generation"] == {"max_new_tokens": 8, "max_turns": 1, "batch_size": 2, "seed": 0,
                                     "do_sample": False}
    assert results["model"]["family"] == "qwen2_5_vl" and results["dataset"]["sha256"]
    assert set(results["metrics"]) == {"acc@0.5", "miou", "format"} and results["headline"] == "acc@0.5"
    assert results["metrics"]["format"]["n"] == len(rows) and 0 <= results["metrics"]["format"]["mean"] <= 1
    for s, row in zip(samples, rows):
        question = row["messages"][0]["content"][-1]["text"]
        assert s["prompt"] == TASKS["grounding"].prompt.format(question=question)
        w, h = row["meta"]["image_size"]
        rh, rw = smart_resize(h, w, factor=28, min_pixels=3136, max_pixels=BUDGET)
        # the budget reached the processor: the frame the model saw is the smart_resize of the budget
        assert s["image_frames"] == [{"width": w, "height": h, "resized_width": rw, "resized_height": rh}]
        assert isinstance(s["output"], str) and set(s["scores"]) == {"acc@0.5", "miou", "format"}
        assert "answer" in s and isinstance(s["boxes_pixel"], list)  # the parse, beside the raw output
        assert s["stop_reason"] in ("max_tokens", "answer", "no_call")
    table = capsys.readouterr().out
    assert "acc@0.5" in table and "format" in table  # the table
    # Re-scoring the saved samples (family read from the results.json beside them) gives the same scores.
    assert _run("--task", "grounding", "--data", scenes, "--predictions", out / "samples.jsonl",
                "--out", tmp_path / "again") == 0
    again, resamples = _read(tmp_path / "again")
    assert again["metrics"] == results["metrics"] and again["model"]["family"] == "qwen2_5_vl"
    assert [s["scores"] for s in resamples] == [s["scores"] for s in samples]


def test_vstar_runs_the_tool_loop_with_the_tools_prompt(tiny_model_dir, scenes, tmp_path):
    out = tmp_path / "vstar"
    args = runner.parser().parse_args(["--model", str(tiny_model_dir("qwen2_5_vl")), "--data", str(scenes),
                                   "--task", "vstar", "--out", str(out), "--max-pixels", str(BUDGET),
                                   "--max-new-tokens", "8", "--max-turns", "2", "--limit", "1", "--quiet"])
    results = runner.evaluate(args)
    _, samples = _read(out)
    assert results["samples"] == 1 and results["prompt"]["tools"] == ["image_zoom_in_tool"]
    assert results["prompt"]["tool_frame"] == "pixel" and results["generation"]["max_turns"] == 2
    assert set(results["metrics"]) == {"accuracy", "zoom_iou", "tool_calls", "format"}
    assert samples[0]["prompt"].startswith("Question: ") and samples[0]["num_tool_calls"] >= 0
    system = prompt_messages(load_rows(scenes)[0], TASKS["vstar"], "qwen2_5_vl")[0]
    assert system["role"] == "system" and "image_zoom_in_tool" in system["content"][0]["text"]


# ----------------------------------------------------------------------------------- re-scoring
def _pred(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _model_box(box, size, family, budget=BUDGET):
    frame = ImageFrame.for_family(size[0], size[1], family, max_pixels=budget)
    return [round(v, 6) for v in box_to_model(box, family, frame)], frame


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl"])
def test_rescoring_grounding_and_counting_from_known_outputs(scenes, tmp_path, family):
    rows = list(load_rows(scenes))
    ground = [r for r in rows if r["task"] == "grounding"]
    assert len(ground) >= 2
    preds = []
    expected_iou = []
    for k, row in enumerate(ground):
        x1, y1, x2, y2 = row["boxes"][0]["box"]
        w = x2 - x1
        box = (x1, y1, x2, y2) if k == 0 else (x1 + w / 2, y1, x2 + w / 2, y2)  # IoU 1, then 1/3
        expected_iou.append(1.0 if k == 0 else 1 / 3)
        model_box, frame = _model_box(box, row["meta"]["image_size"], family)
        rec = {"id": row["id"], "output": f'<answer>{{"bbox_2d": {json.dumps(model_box)}}}</answer>'}
        if k == 0:  # one with the frames recorded, the others computed from the image and the budget
            rec["image_frames"] = [{"width": frame.width, "height": frame.height, "resized_width":
                                    frame.resized_width, "resized_height": frame.resized_height}]
        preds.append(rec)
    out = tmp_path / "re"
    assert _run("--task", "grounding", "--data", scenes, "--predictions", _pred(tmp_path / "p.jsonl", preds),
                "--family", family, "--max-pixels", BUDGET, "--out", out) == 0
    results, samples = _read(out)
    assert results["metrics"]["miou"]["mean"] == pytest.approx(sum(expected_iou) / len(expected_iou))
    assert results["metrics"]["acc@0.5"]["mean"] == pytest.approx(1 / len(ground))
    assert results["metrics"]["format"] == {"mean": 1.0, "n": len(ground)}  # every output is a box
    assert [s["scores"]["miou"] for s in samples] == pytest.approx(expected_iou)
    assert samples[0]["boxes_pixel"][0] == pytest.approx(list(ground[0]["boxes"][0]["box"]), abs=0.1)
    assert results["rescored_from"].endswith("p.jsonl")

    # The same outputs declared in the other family's frame land elsewhere: the frame decides the score.
    other = "qwen2_vl" if family == "qwen2_5_vl" else "qwen2_5_vl"
    assert _run("--task", "grounding", "--data", scenes, "--predictions", tmp_path / "p.jsonl",
                "--family", other, "--max-pixels", BUDGET, "--out", tmp_path / "wrong") == 0
    assert _read(tmp_path / "wrong")[0]["metrics"]["miou"]["mean"] < 0.5

    counting = [r for r in rows if r["task"] == "counting"]
    outputs = [f"<think>counted</think><answer>{r['answer']}</answer>" if i == 0 else
               ("\x00{garbage [1, 2" if i == len(counting) - 1 else "<answer>99</answer>")
               for i, r in enumerate(counting)]  # right, wrong, and junk that must not crash anything
    preds = _pred(tmp_path / "c.jsonl", [{"id": r["id"], "output": o} for r, o in zip(counting, outputs)])
    assert _run("--task", "counting", "--data", scenes, "--predictions", preds, "--family", family,
                "--out", tmp_path / "c") == 0
    results, samples = _read(tmp_path / "c")
    assert results["metrics"]["accuracy"]["mean"] == pytest.approx(1 / len(counting))
    assert results["metrics"]["grounding_iou"]["n"] == len(samples)
    # the junk has no <answer> block: the format rate says so, beside the accuracy it cost
    assert results["metrics"]["format"]["mean"] == pytest.approx((len(counting) - 1) / len(counting))
    assert [s["scores"]["format"] for s in samples][-1] == 0.0


def test_rescoring_vstar_reads_zoom_boxes_in_original_pixels(scenes, tmp_path):
    row = next(r for r in load_rows(scenes) if r["task"] == "vqa")
    box = [round(v) for v in row["boxes"][0]["box"]]
    zoom = f'<tool_call>{{"name": "image_zoom_in", "arguments": {{"bbox_2d": {box}}}}}</tool_call>'
    preds = [{"id": row["id"], "output": f"<think>small</think>{zoom}<answer>{row['answer']}</answer>",
              "num_tool_calls": 1}]
    # DeepEyes writes zoom boxes in original pixels, whatever the family's own frame
    assert _run("--task", "vstar", "--data", scenes, "--predictions", _pred(tmp_path / "v.jsonl", preds),
                "--family", "qwen3_vl", "--out", tmp_path / "v") == 0
    results, _ = _read(tmp_path / "v")
    assert {k: v["mean"] for k, v in results["metrics"].items()} == {"accuracy": 1.0, "zoom_iou": 1.0,
                                                                      "tool_calls": 1.0, "format": 1.0}


@pytest.fixture(scope="module")
def refer_scenes(tmp_path_factory):
    """The quickstart's scenes: 1-4 shapes, the question names one, the answer is its box alone."""
    from mmreason.data_builders import get_builder

    out = tmp_path_factory.mktemp("eval-refer") / "scenes"
    return get_builder("image_scenes")(out, n=8, seed=5, progress=False, preset="quickstart")


def test_refer_scores_the_named_object_the_wrong_one_and_the_format(refer_scenes, tmp_path):
    family = "qwen2_5_vl"
    rows = [r for r in load_rows(refer_scenes) if len(r["meta"]["objects"]) >= 2][:3]
    assert len(rows) == 3
    preds, others = [], []
    for k, row in enumerate(rows):
        named = row["boxes"][0]["box"]
        others.append(next(o["box"] for o in row["meta"]["objects"] if list(map(float, o["box"])) != named))
        box, _ = _model_box(others[-1] if k == 1 else named, row["meta"]["image_size"], family)
        # the named box, a distractor's box, then no box at all
        preds.append({"id": row["id"], "output": "no idea" if k == 2 else json.dumps({"bbox_2d": box})})
    out = tmp_path / "refer"
    predictions = _pred(tmp_path / "r.jsonl", preds)
    assert _run("--task", "refer", "--data", refer_scenes, "--predictions", predictions,
                "--family", family, "--max-pixels", BUDGET, "--out", out) == 0
    results, samples = _read(out)
    assert list(results["metrics"]) == ["miou", "acc@0.5", "wrong_object", "reward", "format"]
    per = [s["scores"] for s in samples]
    assert [p["acc@0.5"] for p in per] == [1.0, 0.0, 0.0]
    assert per[0]["reward"] == pytest.approx(1.0) and per[1]["reward"] < -0.9 and per[2]["reward"] == 0.0
    assert [p["wrong_object"] for p in per] == [0.0, 1.0, None]  # no box: the format rate counts it
    assert [p["format"] for p in per] == [1.0, 1.0, 0.0]
    assert results["metrics"]["wrong_object"] == {"mean": 0.5, "n": 2}
    assert results["metrics"]["format"]["mean"] == pytest.approx(2 / 3)
    assert samples[1]["boxes_pixel"][0] == pytest.approx(list(map(float, others[1])), abs=0.6)
    # the bare question where the row has it: the prompt the quickstart's SFT data trains on
    question = next(p["text"] for p in rows[0]["messages"][0]["content"] if p["type"] == "text")
    assert samples[0]["prompt"] == question
    sent = prompt_messages(rows[0], TASKS["refer"], family)[-1]["content"]
    assert [p["type"] for p in sent] == [p["type"] for p in rows[0]["messages"][0]["content"]]


def test_rescoring_rejects_unknown_ids_and_needs_a_family(scenes, tmp_path, capsys):
    bad = _pred(tmp_path / "bad.jsonl", [{"id": "no-such-row", "output": "x"}])
    assert _run("--task", "grounding", "--data", scenes, "--predictions", bad, "--family", "qwen2_vl",
                "--out", tmp_path / "o") == 2
    assert "no-such-row" in capsys.readouterr().err
    row = next(r for r in load_rows(scenes) if r["task"] == "grounding")
    ok = _pred(tmp_path / "ok.jsonl", [{"id": row["id"], "output": "[1, 2, 3, 4]"}])
    assert _run("--task", "grounding", "--data", scenes, "--predictions", ok, "--out", tmp_path / "o") == 2
    assert "--family" in capsys.readouterr().err
    assert _run("--task", "grounding", "--data", tmp_path / "none", "--predictions", ok,
                "--family", "qwen2_vl", "--out", tmp_path / "o") == 2
    assert "no canonical dataset" in capsys.readouterr().err
    assert _run("--task", "grounding", "--data", scenes, "--model", tmp_path / "no-model",
                "--out", tmp_path) == 2
    assert "not a checkpoint directory" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "output": "x"}\n{not json\n')
    with pytest.raises(SchemaError, match="line 2"):
        rescore.read_predictions(broken)


# --------------------------------------------------------- every task kind on a hand-made dataset
@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Rows of the GUI, 3D, spatial and video tasks, with small real pictures where frames are needed."""
    root = tmp_path_factory.mktemp("eval-mixed")
    Image.new("RGB", (400, 300), "white").save(root / "screen.png")
    user = lambda *parts: [{"role": "user", "content": list(parts)}]  # noqa: E731
    text = lambda t: {"type": "text", "text": t}  # noqa: E731
    shot = {"type": "screenshot", "screenshot": "screen.png"}
    video = {"type": "video", "video": "clip.mp4"}
    cloud = {"type": "point_cloud", "point_cloud": "room.ply"}
    gui = {"platform": "mobile", "width": 400, "height": 300, "goal": "open settings",
           "instruction": "tap the gear",
           "elements": [{"box": [300, 20, 380, 60], "role": "button", "text": "gear", "clickable": True}],
           "action": {"action": "click", "coordinate": [340, 40]},
           "history": [{"action": "swipe", "coordinate": [200, 250], "coordinate2": [200, 50]}]}
    rows = [
        {"id": "ss", "task": "gui_grounding", "source": "t", "messages": user(shot, text("tap the gear")),
         "boxes": [{"label": "gear", "box": [300, 20, 380, 60], "image": 0}], "gui": gui},
        {"id": "ac-click", "task": "gui_action", "source": "t", "messages": user(text("go"), shot),
         "gui": gui},
        {"id": "ac-back", "task": "gui_action", "source": "t", "messages": user(text("go"), shot),
         "gui": {**gui, "action": {"action": "system_button", "button": "Back"}}},
        {"id": "g3", "task": "grounding_3d", "source": "t", "messages": user(cloud, text("find the chair")),
         "boxes_3d": [{"label": "chair", "box": [0, 0, 0, 1, 1, 1]}]},
        {"id": "v-mc", "task": "spatial_qa", "source": "t", "messages": user(cloud, text("which? A. x B. y")),
         "answer": "B"},
        {"id": "v-num", "task": "spatial_qa", "source": "t", "messages": user(cloud, text("how far?")),
         "answer": "2"},
        {"id": "tg", "task": "temporal_grounding", "source": "t", "messages": user(video, text("when?")),
         "time_spans": [{"label": "e", "start": 1.0, "end": 3.0}]},
        {"id": "tg-moment", "task": "temporal_grounding", "source": "t",
         "messages": user(video, text("when?")),
         "time_spans": [{"label": "e", "start": 0.3, "end": 0.4}]},
        {"id": "vq", "task": "vqa", "source": "t", "messages": user(video, text("colour? A. red B. blue")),
         "answer": "A"},
    ]
    write_jsonl(rows, root / "rows.jsonl")
    return root / "rows.jsonl"


def _rescore(mixed, tmp_path, task, outputs, family="qwen2_5_vl"):
    preds = _pred(tmp_path / f"{task}.jsonl", [{"id": k, "output": v} for k, v in outputs.items()])
    assert _run("--task", task, "--data", mixed, "--predictions", preds, "--family", family,
                "--out", tmp_path / task) == 0
    results, samples = _read(tmp_path / task)
    return {k: v["mean"] for k, v in results["metrics"].items()}, {s["id"]: s["scores"] for s in samples}


def test_every_task_kind_scores_known_outputs(mixed, tmp_path):
    fam = "qwen2_5_vl"
    frame = ImageFrame.for_family(400, 300, fam, max_pixels=eval_tasks.INFIGUI_MAX_PIXELS)
    inside = [round(v) for v in point_to_model((340, 40), fam, frame)]
    outside = [round(v) for v in point_to_model((100, 200), fam, frame)]
    means, _ = _rescore(mixed, tmp_path, "screenspot", {"ss": f'[{{"point_2d": {inside}, "label": "gear"}}]'})
    assert means == {"click_accuracy": 1.0, "format": 1.0}
    means, _ = _rescore(mixed, tmp_path, "screenspot", {"ss": f'[{{"point_2d": {outside}}}]'})
    assert means == {"click_accuracy": 0.0, "format": 1.0}  # read, and wrong
    means, _ = _rescore(mixed, tmp_path, "screenspot", {"ss": "the gear, top right"})
    assert means == {"click_accuracy": 0.0, "format": 0.0}  # not read at all

    call = '<tool_call>{"name": "mobile_use", "arguments": %s}</tool_call>'
    click = "<think>gear</think>" + call % '{"action": "click", "coordinate": %s}'
    back = call % '{"action": "system_button", "button": "Back"}'
    means, per = _rescore(mixed, tmp_path, "android_control_low",
                          {"ac-click": click % inside, "ac-back": back})
    assert means == {"step_success": 1.0, "type": 1.0, "grounding": 1.0, "format": 1.0}
    assert per["ac-back"]["grounding"] is None  # grounding counts only steps with a coordinate
    means, _ = _rescore(mixed, tmp_path, "android_control_high",
                        {"ac-click": click % outside, "ac-back": click % inside})
    assert means == {"step_success": 0.0, "type": 0.5, "grounding": 0.0, "format": 1.0}

    means, _ = _rescore(mixed, tmp_path, "grounding_3d",
                        {"g3": "<answer>chair 1 <bbox>(0, 0, 0, 1, 1, 2)</bbox></answer>"})
    assert means == {"acc@0.25": 1.0, "acc@0.5": 1.0, "miou": 0.5, "format": 1.0}

    means, per = _rescore(mixed, tmp_path, "vsi",
                          {"v-mc": "<answer>B</answer>", "v-num": "<answer>2.2</answer>"})
    assert means["mc_accuracy"] == 1.0 and means["mra"] == pytest.approx(0.8)
    assert means["overall"] == pytest.approx(0.9) and per["v-mc"]["mra"] is None
    assert means["format"] == 0.0  # right answers, without the GCoT layout the prompt asks for
    gcot = "<think>chair 1 <bbox>(0, 0, 0, 1, 1, 1)</bbox> is near</think><answer>B</answer>"
    means, _ = _rescore(mixed, tmp_path, "vsi", {"v-mc": gcot, "v-num": "<answer>2.2</answer>"})
    assert means["format"] == 0.5

    means, per = _rescore(mixed, tmp_path, "temporal_grounding",
                          {"tg": "<answer>2.0 to 4.0</answer>", "tg-moment": "<answer>0.35</answer>"})
    assert per["tg"]["miou"] == pytest.approx(1 / 3)
    assert per["tg"]["r@0.3"] == 1.0 and per["tg"]["r@0.5"] == 0.0
    assert per["tg-moment"]["hit"] == 1.0 and per["tg-moment"]["miou"] == 0.0
    assert means["hit"] == 1.0 and means["format"] == 1.0

    means, _ = _rescore(mixed, tmp_path, "video_mcq", {"vq": "It is red.\nFINAL_ANSWER: A. red"})
    assert means == {"accuracy": 1.0, "format": 1.0}
    means, _ = _rescore(mixed, tmp_path, "video_mcq", {"vq": "<answer>A</answer>"})
    assert means["format"] == 0.0


def test_prompts_state_the_screen_in_the_family_frame(mixed):
    row = next(r for r in load_rows(mixed) if r["id"] == "ss")
    row = {**row, "messages": [{**m, "content": [{**p, "screenshot": str(mixed.parent / p["screenshot"])}
                                                   if p["type"] == "screenshot" else p for p in m["content"]]}
                               for m in row["messages"]]}
    media = TASKS["screenspot"].media
    resized = ImageFrame.for_family(400, 300, "qwen2_5_vl", max_pixels=media["image"]["max_pixels"])
    text = prompt_messages(row, TASKS["screenspot"], "qwen2_5_vl", media)[-1]["content"][-1]["text"]
    assert text.startswith(f"The screen's resolution is {resized.resized_width}x{resized.resized_height}.")
    assert '"tap the gear"' in text  # the instruction, not the dataset's agent query
    text = prompt_messages(row, TASKS["screenspot"], "qwen2_vl", media)[-1]["content"][-1]["text"]
    assert text.startswith("The screen's resolution is 1000x1000.")
    agent = prompt_messages({**row, "task": "gui_action"}, TASKS["android_control_low"], "qwen2_5_vl", media)
    assert agent[0]["role"] == "system" and "mobile_use" in agent[0]["content"][0]["text"]
    assert "Current step query: tap the gear" in agent[1]["content"][0]["text"]
    high = prompt_messages({**row, "task": "gui_action"}, TASKS["android_control_high"], "qwen2_5_vl", media)
    query = high[1]["content"][0]["text"]
    assert "Current step query" not in query and "Step 1: " in query


def test_video_segments_come_from_the_rows_unless_given():
    rows = [{"meta": {"segments": [[1, 0.0, 2.5], [2, 2.5, 4.0]]}}, {"meta": {"segments": [[1, 0.0, 2.5]]}}]
    assert run_setup.segment_seconds(rows, None) == 2.5 and run_setup.segment_seconds(rows, 10.0) == 10.0
    assert run_setup.segment_seconds([{"meta": {}}], None) is None
    with pytest.raises(RecipeError, match="--segment-seconds"):
        run_setup.segment_seconds(rows + [{"meta": {"segments": [[1, 0.0, 1.0]]}}], None)
    assert TASKS["video_com"].call_syntax == "video_com" and TASKS["video_com"].max_turns == 5


def test_task_table_binds_its_metrics():
    for name, task in TASKS.items():
        assert task.metrics and task.row_tasks and task.reference, name
        setup = run_setup.Setup(name, "qwen2_5_vl", task.media, run_setup.Generation(64, task.max_turns))
        bound = scoring.bound_metrics(task, setup)
        assert list(bound) == list(task.metrics)
        # every task reports its format rate, last, beside its metrics
        assert list(task.metrics)[-1] == "format" and task.metrics["format"].fn.endswith(":output_format")


# ------------------------------------------------------------------------------- the output folder
def test_a_rerun_into_an_existing_out_never_passes_for_the_earlier_result(tiny_model_dir, scenes, tmp_path,
                                                                         capsys):
    import os
    import signal
    import subprocess
    import sys
    import time

    model, out = tiny_model_dir("qwen2_5_vl"), tmp_path / "ev"
    args = ["--model", model, "--data", scenes, "--task", "grounding", "--out", out, "--max-pixels", BUDGET,
            "--max-new-tokens", 4, "--quiet"]
    assert _run(*args, "--limit", 2) == 0
    assert _read(out)[0]["samples"] == 2
    # other settings into the same folder: refused, naming the difference; the earlier run stays whole
    assert _run(*args, "--limit", 1) == 2
    err = capsys.readouterr().err
    assert f"--out {out} holds a run with other settings: --limit 2 (now 1)" in err and "--overwrite" in err
    assert _read(out)[0]["samples"] == 2
    assert _run(*args, "--limit", 1, "--overwrite") == 0
    assert _read(out)[0]["samples"] == 1 and len(_read(out)[1]) == 1
    # the same run again, killed midway: no results.json is left to pass for a finished run
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mmreason", "eval", *map(str, args), "--limit", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while (out / "results.json").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists() and not (out / "samples.jsonl").exists()
    assert json.loads((out / "settings.json").read_text())["limit"] == 1
