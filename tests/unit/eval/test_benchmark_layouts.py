"""Benchmark tasks read their releases as published: each test writes a small release in the benchmark's own
layout (file names, columns, box conventions), scores hand-written outputs through `mmreason eval
--predictions`, and checks the scores against values worked out by hand.

Coordinates: the pictures are multiples of 28 px and within every budget, so for qwen2_5_vl (absolute
coordinates in the resized frame) the model frame is the picture's own pixels.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmreason import cli

from .release_scoring import FAMILY, group, means, score


def _picture(path: Path, size=(280, 140)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 60, 30)).save(path)
    return path



# ------------------------------------------------------------------------------------------------ V*
def test_vstar_bench_folders_of_picture_and_json(tmp_path):
    root = tmp_path / "vstar_bench"
    for category, name, box in (("direct_attributes", "sa_1", [10, 20, 30, 40]),
                                ("direct_attributes", "sa_2", [0, 0, 28, 28]),
                                ("relative_position", "sa_3", [50, 50, 20, 10])):
        _picture(root / category / f"{name}.jpg")
        (root / category / f"{name}.json").write_text(json.dumps({
            "target_object": ["cup"], "bbox": [box], "question": f"What colour is the cup in {name}?",
            "options": ["red", "blue", "green", "white"]}))
    zoom = '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 40, 60]}}</tool_call>'
    results, samples = score(tmp_path, "vstar_bench", root, {
        "vstar-direct_attributes-sa_1": f"<think>look</think>{zoom}<answer>A</answer>",
        "vstar-direct_attributes-sa_2": "<answer>B</answer>",
        "vstar-relative_position-sa_3": "<answer>(A) red</answer>"})
    # the right option is the first, listed as A; A, B, A -> 2 of 3
    assert means(results, "accuracy", "format") == [pytest.approx(2 / 3), 1.0]
    assert group(results, "category", "accuracy") == {"direct_attributes": 0.5, "relative_position": 1.0}
    # the zoom box is exactly sa_1's GT box [x, y, w, h] = [10, 20, 30, 40] -> [10, 20, 40, 60]: IoU 1
    assert samples[0]["scores"]["zoom_iou"] == 1.0
    assert samples[0]["prompt"].startswith("Question: What colour is the cup in sa_1?\nA. red\nB. blue")
    assert results["paper"] and results["layout"]["loader"] == "vstar"


# ------------------------------------------------------------------------------------------ HR-Bench
def test_hr_bench_tsv_with_base64_pictures(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (280, 280), (0, 90, 0)).save(buf, format="JPEG")
    picture = base64.b64encode(buf.getvalue()).decode()
    header = ["index", "question", "answer", "category", "A", "B", "C", "D", "image", "cycle_category"]
    lines = ["\t".join(header)]
    for index, answer, category in ((0, "A", "single"), (1, "C", "single"), (2, "B", "cross"), (3, "D", "cross")):
        lines.append("\t".join([str(index), f"What is written on sign {index}?", answer, category, "stop",
                                "go", "wait", "exit", picture, "0"]))
    root = tmp_path / "HR-Bench"
    root.mkdir()
    (root / "hr_bench_4k.tsv").write_text("\n".join(lines) + "\n")
    results, samples = score(tmp_path, "hr_bench", root, {
        "hr_bench_4k-0": "<answer>A</answer>", "hr_bench_4k-1": "<answer>C. wait</answer>",
        "hr_bench_4k-2": "<answer>D</answer>", "hr_bench_4k-3": "no answer tags: D"})
    # right: 0, 1; wrong: 2; unreadable: 3 -> accuracy 2/4, format 3/4
    assert means(results, "accuracy", "format") == [0.5, 0.75]
    assert group(results, "category", "accuracy") == {"FCP": 0.0, "FSP": 1.0}  # single -> FSP, cross -> FCP
    assert (tmp_path / "out" / "media" / "hr_bench_4k" / "2.jpg").is_file()  # decoded once, in the run folder
    assert "What is written on sign 3?\nA. stop\nB. go\nC. wait\nD. exit\n" in samples[3]["prompt"]


# ----------------------------------------------------------------------------------------- ScreenSpot
def _screenspot_v1(root: Path) -> None:
    _picture(root / "screenspot_imgs" / "phone.png", (280, 560))
    _picture(root / "screenspot_imgs" / "site.png", (560, 280))
    (root / "screenspot_mobile.json").write_text(json.dumps([
        {"img_filename": "phone.png", "bbox": [10, 10, 100, 50], "instruction": "open settings",
         "data_type": "text", "data_source": "android"},
        {"img_filename": "phone.png", "bbox": [200, 400, 40, 40], "instruction": "tap the bell",
         "data_type": "icon", "data_source": "ios"}]))
    (root / "screenspot_web.json").write_text(json.dumps([
        {"img_filename": "site.png", "bbox": [300, 100, 50, 20], "instruction": "search", "data_type": "icon",
         "data_source": "shop"}]))


def test_screenspot_json_per_device_and_element(tmp_path):
    root = tmp_path / "ScreenSpot"
    _screenspot_v1(root)
    results, _ = score(tmp_path, "screenspot_v1", root, {
        "screenspot_mobile-000000000": '[{"point_2d": [50, 30], "label": "settings"}]',  # inside [10,10,110,60]
        "screenspot_mobile-000000001": '[{"point_2d": [100, 100], "label": "bell"}]',  # outside [200,400,240,440]
        "screenspot_web-000000000": '[{"point_2d": [320, 110], "label": "search"}]'})  # inside [300,100,350,120]
    assert means(results, "click_accuracy", "format") == [pytest.approx(2 / 3), 1.0]
    assert group(results, "device", "click_accuracy") == {"mobile": 0.5, "web": 1.0}
    assert group(results, "element", "click_accuracy") == {"icon": 0.5, "text": 1.0}
    assert group(results, "device+element", "click_accuracy") == {"mobile/icon": 0.0, "mobile/text": 1.0,
                                                                   "web/icon": 1.0}


def test_screenspot_pro_annotations_and_groups(tmp_path):
    root = tmp_path / "ScreenSpot-Pro"
    _picture(root / "images" / "vscode_macos" / "shot.png", (560, 280))
    (root / "annotations").mkdir()
    (root / "annotations" / "vscode_macos.json").write_text(json.dumps([
        {"img_filename": "vscode_macos/shot.png", "bbox": [100, 100, 200, 150], "instruction": "run",
         "id": "a", "application": "vscode", "platform": "macos", "img_size": [560, 280], "ui_type": "icon",
         "group": "Dev"},
        {"img_filename": "vscode_macos/shot.png", "bbox": [0, 0, 50, 50], "instruction": "menu",
         "id": "b", "application": "vscode", "platform": "macos", "img_size": [560, 280], "ui_type": "text",
         "group": "Dev"}]))
    results, _ = score(tmp_path, "screenspot_pro", root, {
        "vscode_macos-000000000": '[{"point_2d": [150, 120]}]',  # inside [100, 100, 200, 150] (x1y1x2y2)
        "vscode_macos-000000001": '[{"point_2d": [60, 60]}]'})  # outside [0, 0, 50, 50]
    assert means(results, "click_accuracy") == [0.5]
    assert group(results, "group+element", "click_accuracy") == {"Dev/icon": 1.0, "Dev/text": 0.0}


# -------------------------------------------------------------------------------------------- POPE
def test_pope_question_files_accuracy_f1_and_yes_ratio(tmp_path):
    root = tmp_path / "POPE"
    _picture(root / "val2014" / "COCO_val2014_000000000042.jpg")
    lines = {"random": [("yes", 1), ("no", 2), ("yes", 3), ("no", 4)], "adversarial": [("yes", 1)]}
    for split, qs in lines.items():
        (root / f"coco_pope_{split}.json").write_text("".join(
            json.dumps({"question_id": q, "image": "COCO_val2014_000000000042.jpg",
                        "text": f"Is there a dog in the image? ({q})", "label": label}) + "\n" for label, q in qs))
    results, _ = score(tmp_path, "pope", root, {
        "pope-random-1": "Yes, there is.", "pope-random-2": "No.", "pope-random-3": "no",
        "pope-random-4": "Yes", "pope-adversarial-1": "There is not a dog."})
    # gt  y n y n y / read y n n y n: right 2 of 5; answered yes 2 of 5; precision 1/2 (of the two yes,
    # one is right); recall 1/3 (of three GT yes, one answered yes); F1 = 2 * 1/2 * 1/3 / (1/2 + 1/3) = 0.4
    acc, prec, rec, yes, fmt = means(results, "accuracy", "precision", "recall", "yes_ratio", "format")
    assert (acc, prec, yes, fmt) == (0.4, 0.5, 0.4, 1.0) and rec == pytest.approx(1 / 3)
    assert results["metrics"]["f1"]["mean"] == pytest.approx(0.4)
    assert group(results, "category", "accuracy") == {"adversarial": 0.0, "random": 0.5}
    # random alone: gt y n y n, read y n n y: precision 1/2, recall 1/2 -> F1 1/2
    assert results["breakdown"]["category"]["random"]["f1"]["mean"] == pytest.approx(0.5)


# ------------------------------------------------------------------------------------------ RefCOCO
def test_refcoco_refs_pickle_and_instances(tmp_path):
    root = tmp_path / "refcoco"
    _picture(root / "images" / "COCO_train2014_000000000001.jpg", (280, 280))
    instances = {"images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "width": 280,
                             "height": 280}],
                 "annotations": [{"id": 10, "image_id": 1, "bbox": [28, 28, 84, 56], "category_id": 1},
                                 {"id": 11, "image_id": 1, "bbox": [140, 140, 56, 56], "category_id": 1}],
                 "categories": [{"id": 1, "name": "dog"}]}
    (root / "instances.json").write_text(json.dumps(instances))
    refs = [{"ref_id": 0, "ann_id": 10, "image_id": 1, "split": "val", "category_id": 1,
             "sentences": [{"sent": "left dog", "sent_id": 100}]},
            {"ref_id": 1, "ann_id": 11, "image_id": 1, "split": "val", "category_id": 1,
             "sentences": [{"sent": "right dog", "sent_id": 101}]},
            {"ref_id": 2, "ann_id": 11, "image_id": 1, "split": "train", "category_id": 1,
             "sentences": [{"sent": "not scored", "sent_id": 102}]}]
    (root / "refs(unc).p").write_bytes(pickle.dumps(refs))
    results, samples = score(tmp_path, "refcoco", root, {
        "refs(unc)-000000000": '<answer>{"bbox_2d": [28, 28, 112, 84]}</answer>',  # the GT box: IoU 1
        # GT [140, 140, 196, 196] shifted right by half its width: overlap 28x56 over 84x56 -> IoU 1/3
        "refs(unc)-000000001": '<answer>{"bbox_2d": [168, 140, 224, 196]}</answer>'})
    assert len(samples) == 2  # the train ref is not in the val split
    assert means(results, "acc@0.5", "miou", "format") == [0.5, pytest.approx(2 / 3), 1.0]


# ------------------------------------------------------------------------------------- Charades-STA
def _video(path: Path) -> None:
    from mmreason.modalities.video import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, [np.full((56, 56, 3), 10 * k, np.uint8) for k in range(8)], 4)


def test_charades_sta_text_file_recall_and_miou(tmp_path):
    root = tmp_path / "charades"
    _video(root / "Charades_v1_480" / "3MSZA.mp4")
    _video(root / "Charades_v1_480" / "AO8RW.mp4")
    (root / "charades_sta_test.txt").write_text("3MSZA 24.3 30.4##person turn a light on.\n"
                                                "AO8RW 0.0 10.0##a person is putting a book on a shelf.\n")
    results, _ = score(tmp_path, "charades_sta", root, {
        "charades_sta_test-000000000": "<answer>24.3 to 30.4</answer>",  # IoU 1
        "charades_sta_test-000000001": "<answer>5 to 15</answer>"})  # overlap 5 over union 15: IoU 1/3
    assert means(results, "miou", "r@0.5", "r@0.7") == [pytest.approx(2 / 3), 0.5, 0.5]


# ----------------------------------------------------------------------------------------- VSI-Bench
def test_vsi_bench_parquet_mcq_accuracy_and_mra(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "VSI-Bench"
    _video(root / "scannet" / "scene0001_00.mp4")
    table = pa.Table.from_pylist([
        {"id": 1, "dataset": "scannet", "scene_name": "scene0001_00", "question_type": "object_rel_direction_easy",
         "question": "Is the chair left or right of the table?", "options": ["A. left", "B. right"],
         "ground_truth": "A"},
        {"id": 2, "dataset": "scannet", "scene_name": "scene0001_00", "question_type": "object_abs_distance",
         "question": "How far apart are the chair and the table (in metres)?", "options": None,
         "ground_truth": "2.0"}])
    pq.write_table(table, root / "test-00000-of-00001.parquet")
    gcot = "<think>chair 1 <bbox>(0, 0, 0, 1, 1, 1)</bbox></think>"
    results, samples = score(tmp_path, "vsi_bench", root, {
        "vsi-1": gcot + "<answer>A</answer>", "vsi-2": gcot + "<answer>2.2</answer>"})
    # MRA of 2.2 against 2.0: relative error 0.1 passes threshold t when 0.1 < 1 - t, so t = 0.50..0.85:
    # 8 of the 10 thresholds -> 0.8; overall is the mean of the two samples' scores (1 and 0.8)
    assert means(results, "mc_accuracy", "mra", "format") == [1.0, pytest.approx(0.8), 1.0]
    assert results["metrics"]["overall"]["mean"] == pytest.approx(0.9)
    assert set(results["breakdown"]["question_type"]) == {"object_rel_direction_easy", "object_abs_distance"}
    assert "Options:\nA. left\nB. right" in samples[0]["prompt"]


def test_a_release_missing_its_files_is_one_clear_error(tmp_path, capsys):
    preds = tmp_path / "p.jsonl"
    preds.write_text("")
    assert cli.main(["eval", "--task", "screenspot_v2", "--data", str(tmp_path), "--predictions", str(preds),
                     "--family", FAMILY, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "screenspot_mobile_v2.json" in err and str(tmp_path) in err
