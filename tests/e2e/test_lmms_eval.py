"""lmms-eval's own evaluator runs a local task, written here in lmms-eval's task format (YAML + utils.py
over a Parquet file with an image column, as its hub tasks are laid out), on the project's tiny base
through the ``mmreason`` model class (`mmreason.eval.lmms_eval_model`), found by name as lmms-eval finds
any model. The scenes come from the image_scenes builder: "Where is the red circle?" over 112-px shapes,
the question the tiny base was pretrained on, so its boxes are good and the score is not 0.

Checked: the responses lmms-eval logs are our model's (the very outputs `mmreason eval --task refer` writes
for the same rows), and the score is lmms-eval's: its aggregate is the mean of its per-sample values, which
are the IoUs of those responses with the ground truth, computed here again by hand.

Tool tasks (slow tier): a checkpoint SFT-trained here, through `mmreason train`, to call the zoom tool
carries its tools in the recipe saved beside its weights; lmms-eval's run of it goes through mmreason's
multi-turn loop, and the responses hold the call and the picture the zoom tool returned.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lmms_tasks import BASE, evaluate, iou, scene_docs, write_parquet
from zoom_checkpoint import ZOOM, train_zoom_checkpoint

from mmreason import cli
from mmreason.schema import load_rows

TASK = "mmreason_local_refer"

TASK_YAML = """\
task: {task}
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_messages: !function utils.doc_to_messages
doc_to_target: answer
generation_kwargs:
  max_new_tokens: {max_new_tokens}
  temperature: 0
process_results: !function utils.process_results
metric_list:
  - metric: box_iou
    aggregation: mean
    higher_is_better: true
"""

# The question before the picture, as the tiny base was trained; the box is read from the response's JSON.
TASK_UTILS = '''\
import json
import re


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return doc["question"]


def doc_to_messages(doc, lmms_eval_specific_kwargs=None):
    return [{"role": "user", "content": [{"type": "text", "text": doc["question"]},
                                         {"type": "image", "url": doc["image"].convert("RGB")}]}]


def process_results(doc, results):
    found = re.search(r"\\[([^\\]]*)\\]", results[0])
    try:
        box = [float(v) for v in found.group(1).split(",")] if found else []
    except ValueError:
        box = []
    gt = json.loads(doc["answer"])
    if len(box) != 4:
        return {"box_iou": 0.0}
    w = max(0.0, min(box[2], gt[2]) - max(box[0], gt[0]))
    h = max(0.0, min(box[3], gt[3]) - max(box[1], gt[1]))
    union = (box[2] - box[0]) * (box[3] - box[1]) + (gt[2] - gt[0]) * (gt[3] - gt[1]) - w * h
    return {"box_iou": w * h / union if union > 0 else 0.0}
'''


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from mmreason.data_builders import get_builder

    out = tmp_path_factory.mktemp("lmms-scenes") / "scenes"
    return get_builder("image_scenes")(out, n=6, seed=3, progress=False, preset="quickstart")


def write_task(scenes: Path, folder: Path, max_new_tokens: int = 32) -> Path:
    """The task folder (YAML + utils.py) over a Parquet file of the scenes' pictures, questions and boxes."""
    folder.mkdir()
    write_parquet([{"id": d["id"], "question": d["question"], "image": d["image"], "answer": json.dumps(d["box"])}
                   for d in scene_docs(scenes)], folder / "refer.parquet")
    (folder / f"{TASK}.yaml").write_text(TASK_YAML.format(task=TASK, data=folder / "refer.parquet",
                                                          max_new_tokens=max_new_tokens))
    (folder / "utils.py").write_text(TASK_UTILS)
    return folder


@pytest.fixture
def local_task(scenes, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    return write_task(scenes, tmp_path / "tasks")


def test_lmms_eval_scores_a_local_task_with_our_model(local_task, scenes, tmp_path):
    results = evaluate(TASK, local_task, f"pretrained={BASE}")
    samples = results["samples"][TASK]
    rows = load_rows(scenes)
    assert len(samples) == len(rows)
    assert results["config"]["model"] == "mmreason"
    # Our model's outputs: `mmreason eval` on the same rows, prompt and budget writes the same text.
    assert cli.main(["eval", "--model", str(BASE), "--data", str(scenes), "--task", "refer", "--quiet",
                     "--out", str(tmp_path / "ours")]) == 0
    ours = {json.loads(line)["id"]: json.loads(line)
            for line in (tmp_path / "ours" / "samples.jsonl").read_text().splitlines()}
    by_doc = {s["doc_id"]: s for s in samples}
    for i, row in enumerate(rows):
        (response,) = by_doc[i]["resps"][0]
        assert response == ours[row["id"]]["output"] and response.startswith('{"bbox_2d": [')
    # lmms-eval's metric: its mean of its per-sample values, each the IoU of our response with the GT box.
    by_hand = [iou(json.loads(by_doc[i]["resps"][0][0])["bbox_2d"], row["boxes"][0]["box"])
               for i, row in enumerate(rows)]
    assert [by_doc[i]["box_iou"] for i in range(len(rows))] == pytest.approx(by_hand)
    score = results["results"][TASK]["box_iou,none"]
    assert score == pytest.approx(sum(by_hand) / len(by_hand)) and score > 0.5  # the base boxes shapes well
    # and `mmreason eval`'s own mean IoU of the same outputs agrees (112-px scenes: no resize)
    mine = json.loads((tmp_path / "ours" / "results.json").read_text())["metrics"]["miou"]["mean"]
    assert score == pytest.approx(mine, abs=1e-6)




@pytest.mark.slow
def test_a_checkpoint_trained_with_tools_runs_them_in_our_loop(tmp_path, monkeypatch):
    """SFT (50 steps, about 1.5 minutes on 2 shared cores) teaches the tiny base one zoom call under
    DeepEyes' prompt; lmms-eval then runs the checkpoint with no tool argument at all."""
    scenes, rows, final = train_zoom_checkpoint(tmp_path)
    assert "image_zoom_in_tool" in (final / "recipe.yaml").read_text()

    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    task = write_task(scenes, tmp_path / "tasks", max_new_tokens=64)
    results = evaluate(TASK, task, f"pretrained={final},output=full,max_turns=2")
    samples = results["samples"][TASK]
    assert len(samples) == len(rows)
    for s in samples:
        (response,) = s["resps"][0]
        # the call, then what mmreason's zoom tool returned (a picture and its note), then the next turn
        assert response.startswith(ZOOM)
        assert "<tool_response>" in response and "Zoomed in on the region at [0, 0, 56, 56]." in response
    # scored by lmms-eval as any response: the first box in it is the zoom box
    by_hand = [iou([0, 0, 56, 56], r["boxes"][0]["box"]) for r in rows]
    assert [s["box_iou"] for s in sorted(samples, key=lambda s: s["doc_id"])] == pytest.approx(by_hand)
    assert results["results"][TASK]["box_iou,none"] == pytest.approx(sum(by_hand) / len(by_hand))
