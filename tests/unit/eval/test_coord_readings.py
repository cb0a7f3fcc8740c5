"""Both coordinate readings: a model whose frame is ambiguous (0-1000 relative, or absolute pixels of the
resized input) is scored in both, and results.json and the printed table say which reading won;
--coord-frame pins one. Scored through `mmreason eval --predictions` on a RefCOCO release written in its
own layout (a 280 x 280 picture: within every budget, so the resized frame is the picture's pixels).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from PIL import Image

from mmreason import cli


def _refcoco(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (280, 280), (90, 90, 90)).save(root / "images" / "COCO_train2014_000000000001.jpg")
    (root / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "width": 280, "height": 280}],
        "annotations": [{"id": 10, "image_id": 1, "bbox": [28, 28, 84, 56], "category_id": 1},
                        {"id": 11, "image_id": 1, "bbox": [140, 140, 56, 56], "category_id": 1}],
        "categories": [{"id": 1, "name": "dog"}]}))
    refs = [{"ref_id": k, "ann_id": ann, "image_id": 1, "split": "val", "category_id": 1,
             "sentences": [{"sent": text, "sent_id": 100 + k}]}
            for k, (ann, text) in enumerate(((10, "left dog"), (11, "right dog")))]
    (root / "refs(unc).p").write_bytes(pickle.dumps(refs))
    return root


# both answers in absolute pixels: the GT boxes [28, 28, 112, 84] and [140, 140, 196, 196]
ABSOLUTE = {"refs(unc)-000000000": '<answer>{"bbox_2d": [28, 28, 112, 84]}</answer>',
            "refs(unc)-000000001": '<answer>{"bbox_2d": [140, 140, 196, 196]}</answer>'}


def _run(tmp_path: Path, family: str, *extra: str) -> dict:
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in ABSOLUTE.items()))
    out = tmp_path / f"out-{family}-{len(extra)}"
    assert cli.main(["eval", "--task", "refcoco", "--data", str(_refcoco(tmp_path / out.name)), "--predictions",
                     str(preds), "--family", family, "--out", str(out), *extra]) == 0
    return json.loads((out / "results.json").read_text())


def test_qwen2_vl_outputs_in_pixels_are_read_both_ways_and_pixels_win(tmp_path, capsys):
    results = _run(tmp_path, "qwen2_vl")
    # declared 0-1000: [28, 28, 112, 84] is read as [7.84, 7.84, 31.36, 23.52] px, missing its box (IoU 0);
    # [140, 140, 196, 196] as [39.2, 39.2, 54.9, 54.9] px, missing too. Read as pixels both are exact.
    assert results["metrics"]["acc@0.5"]["mean"] == 0.0  # the headline stays the declared reading
    readings = results["coord_readings"]
    assert readings["declared"] == "norm1000" and readings["by"] == "acc@0.5" and readings["won"] == "resized"
    assert readings["scored"]["resized"]["acc@0.5"] == {"mean": 1.0, "n": 2}
    assert readings["scored"]["resized"]["miou"]["mean"] == pytest.approx(1.0)
    assert readings["scored"]["norm1000"]["acc@0.5"]["mean"] == 0.0
    printed = capsys.readouterr().out
    assert "as norm1000 (declared): acc@0.5 0.0000; as resized: acc@0.5 1.0000 -> resized won" in printed
    assert "--coord-frame resized" in printed


def test_a_tie_keeps_the_declared_reading(tmp_path):
    results = _run(tmp_path, "qwen2_5_vl")
    # declared resized pixels: both exact (1.0); read as 0-1000 the boxes shrink to 28% of their place: 0
    assert results["metrics"]["acc@0.5"]["mean"] == 1.0
    assert results["coord_readings"]["won"] == "resized"
    assert results["coord_readings"]["scored"]["norm1000"]["acc@0.5"]["mean"] == 0.0


def test_coord_frame_pins_the_reading(tmp_path):
    results = _run(tmp_path, "qwen2_vl", "--coord-frame", "resized")
    assert results["metrics"]["acc@0.5"]["mean"] == 1.0 and results["coord_readings"] is None


def test_tasks_without_coordinates_score_one_reading():
    from mmreason.eval.coord_readings import coordinate_metrics, coordinate_readings
    from mmreason.eval.benchmarks import find_task

    assert coordinate_metrics(find_task("pope")) == [] and coordinate_readings(find_task("pope"), "qwen2_vl", None) == ()
    # V*'s zoom boxes are pinned to original pixels (DeepEyes' tool frame): not ambiguous
    assert "zoom_iou" not in coordinate_metrics(find_task("vstar_bench"))
    assert coordinate_readings(find_task("screenspot_v2"), "qwen3_vl", None) == ("resized",)
