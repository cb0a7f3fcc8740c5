"""Converters: a small fixture in each public format, written here, becomes the expected canonical rows."""

import io
import json
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mmreason import schema, traces
from mmreason.data_builders import converters, main
from mmreason.errors import MediaError, SchemaError
from mmreason.modalities.gui import parse_action


def _rows(out):
    return sorted(schema.load_rows(out), key=lambda r: r["id"])


def _image(path, size, colour=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def _coco(tmp_path):
    _image(tmp_path / "imgs" / "a.jpg", (640, 480))
    _image(tmp_path / "imgs" / "b.jpg", (320, 240))
    def ann(i, image, cat, bbox, area, crowd=0):
        return {"id": i, "image_id": image, "category_id": cat, "bbox": bbox, "area": area, "iscrowd": crowd}

    inst = {"images": [{"id": 7, "file_name": "a.jpg", "width": 640, "height": 480},
                       {"id": 3, "file_name": "b.jpg", "width": 320, "height": 240}],
            "categories": [{"id": 1, "name": "dog", "supercategory": "animal"},
                           {"id": 2, "name": "cat", "supercategory": "animal"}],
            "annotations": [ann(10, 7, 2, [10, 20, 100, 50], 5000),
                            ann(11, 7, 1, [300.5, 200, 40, 60.25], 2400),
                            ann(12, 7, 1, [0, 0, 640, 480], 1, crowd=1), ann(13, 3, 1, [5, 5, 10, 10], 100),
                            ann(14, 7, 1, [50, 60, 20, 20], 400)]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(inst))
    return path


def test_coco_grounding_and_counting(tmp_path):
    src = _coco(tmp_path)
    imgs = str(tmp_path / "imgs")
    out = converters.build_coco(tmp_path / "g", n=0, src=str(src), images=imgs, progress=False)
    rows = _rows(out)
    # (image 7, dog), (image 7, cat), (image 3, dog): file order of images, then category id; crowd dropped
    got = [(r["meta"]["image_id"], r["boxes"][0]["label"]) for r in rows]
    assert got == [(7, "dog"), (7, "cat"), (3, "dog")]
    dog7 = rows[0]
    assert [b["box"] for b in dog7["boxes"]] == [[300.5, 200.0, 340.5, 260.25], [50.0, 60.0, 70.0, 80.0]]
    assert dog7["answer"] == "[[300.5, 200, 340.5, 260.25], [50, 60, 70, 80]]" and dog7["task"] == "grounding"
    assert dog7["meta"]["ann_ids"] == [11, 14]
    with Image.open(out / schema.images_of(dog7)[0]) as im:  # the link resolves to the source image
        assert im.size == (640, 480)
    assert schema.images_of(rows[0]) == schema.images_of(rows[1])  # one media entry per source image
    cnt = _rows(converters.build_coco(tmp_path / "c", n=2, src=str(src), images=str(tmp_path / "imgs"),
                                      mode="counting", media="copy", progress=False))
    assert [(r["answer"], r["task"]) for r in cnt] == [("2", "counting"), ("1", "counting")]
    assert not (tmp_path / "c" / schema.images_of(cnt[0])[0]).is_symlink()


def test_refcoco_one_row_per_sentence(tmp_path):
    inst = _coco(tmp_path)
    refs = [{"ref_id": 0, "ann_id": 11, "image_id": 7, "split": "val", "category_id": 1,
             "sentences": [{"sent": "the dog on the right", "sent_id": 100},
                           {"sent": "brown dog", "sent_id": 101}]},
            {"ref_id": 1, "ann_id": 10, "image_id": 7, "split": "train", "category_id": 2,
             "sentences": [{"sent": "cat at the top left", "sent_id": 102}]}]
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    opts = {"instances": str(inst), "images": str(tmp_path / "imgs"), "progress": False}
    rows = _rows(converters.build_refcoco(tmp_path / "r", n=0, src=str(tmp_path / "refs.json"), **opts))
    labels = [r["boxes"][0]["label"] for r in rows]
    assert labels == ["the dog on the right", "brown dog", "cat at the top left"]
    assert rows[0]["boxes"][0]["box"] == [300.5, 200.0, 340.5, 260.25]
    assert rows[2]["answer"] == "[10, 20, 110, 70]"
    assert rows[1]["meta"]["sent_id"] == 101 and '"brown dog"' in rows[1]["messages"][0]["content"][1]["text"]
    with open(tmp_path / "refs(unc).p", "wb") as fh:  # the official pickled refs, one split kept
        pickle.dump(refs, fh)
    val = _rows(converters.build_refcoco(tmp_path / "p", n=0, src=str(tmp_path / "refs(unc).p"),
                                         split="train", **opts))
    assert [r["meta"]["ref_id"] for r in val] == [1]


def test_screenspot_v1_and_pro_boxes(tmp_path):
    _image(tmp_path / "s" / "m.png", (400, 800))
    _image(tmp_path / "s" / "d.png", (1000, 600))
    v1 = [{"img_filename": "m.png", "bbox": [40, 100, 80, 30], "instruction": "open settings",
           "data_type": "icon", "data_source": "android"}]
    pro = [{"img_filename": "d.png", "bbox": [100, 50, 180, 90], "instruction": "refresh the explorer",
            "img_size": [1000, 600], "platform": "windows", "ui_type": "icon", "application": "vscode",
            "group": "Dev", "id": "vscode_0"}]
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    (tmp_path / "pro.json").write_text(json.dumps(pro))
    opts = {"images": str(tmp_path / "s"), "progress": False}
    [a] = _rows(converters.build_screenspot(tmp_path / "a", n=0, src=str(tmp_path / "v1.json"),
                                            with_target=True, **opts))
    assert a["boxes"][0]["box"] == [40, 100, 120, 130] and a["gui"]["platform"] == "mobile"
    assert a["points"][0]["point"] == [80, 115] and a["answer"] == "[80, 115]"
    user = a["messages"][1]["content"]
    assert user[1]["type"] == "screenshot" and "open settings" in user[0]["text"]
    call = traces.parse(a["messages"][-1]["content"][0]["text"]).tool_calls[0]
    assert call.name == "mobile_use" and parse_action(call.arguments).action.coordinate == (80.0, 115.0)
    [b] = _rows(converters.build_screenspot(tmp_path / "b", n=0, src=str(tmp_path / "pro.json"), **opts))
    assert b["boxes"][0]["box"] == [100, 50, 180, 90] and b["gui"]["platform"] == "desktop"
    assert b["source"] == "screenspot_pro" and b["meta"]["application"] == "vscode"
    assert len(b["messages"]) == 2  # no target turn unless asked
    v1[0]["bbox"] = [390, 100, 80, 30]  # runs off the right edge read as xywh
    (tmp_path / "bad.json").write_text(json.dumps(v1))
    with pytest.raises(SchemaError, match=r"bad\.json record 0.*bbox"):
        converters.build_screenspot(tmp_path / "c", n=0, src=str(tmp_path / "bad.json"), **opts)


def test_androidcontrol_steps(tmp_path):
    shots = [str(_image(tmp_path / "ac" / f"s{i}.png", (540, 1200), (i * 40, 0, 0)).name) for i in range(4)]
    elements = [[{"bbox_pixels": {"x_min": 0, "y_min": 0, "x_max": 540, "y_max": 1200}, "class_name":
                  "android.widget.FrameLayout", "is_clickable": False},
                 {"bbox_pixels": {"x_min": 100, "y_min": 300, "x_max": 300, "y_max": 360}, "text": "Search",
                  "class_name": "android.widget.Button", "is_clickable": True},
                 {"bbox_pixels": {"x_min": -50, "y_min": 2000, "x_max": 10, "y_max": 2100},
                  "text": "offscreen"}],
                [], []]
    ep = {"episode_id": 42, "goal": "Search for pizza places", "screenshots": shots,
          "screenshot_widths": [540] * 4, "screenshot_heights": [1200] * 4,
          "actions": [json.dumps({"action_type": "click", "x": 200, "y": 330}),
                      {"action_type": "input_text", "text": "pizza"},
                      {"action_type": "scroll", "direction": "down"}],
          "step_instructions": ["Tap the search button", "Type pizza", "Scroll down the results"],
          "accessibility_elements": elements}
    (tmp_path / "ac.jsonl").write_text(json.dumps({"episode": ep}) + "\n")
    opts = {"images": str(tmp_path / "ac"), "progress": False}
    rows = _rows(converters.build_androidcontrol(tmp_path / "o", n=0, src=str(tmp_path / "ac.jsonl"),
                                                 level="low", with_target=True, **opts))
    assert [r["gui"]["action"]["action"] for r in rows] == ["click", "type", "swipe"]
    click, typed, swipe = rows
    assert click["boxes"][0]["box"] == [100, 300, 300, 360]  # the smallest element under the point
    assert len(click["gui"]["elements"]) == 2  # the off-screen node is dropped
    assert swipe["gui"]["action"]["direction"] == "up"  # "scroll down" = the finger swipes up
    assert [h["action"] for h in swipe["gui"]["history"]] == ["click", "type"]
    query = swipe["messages"][1]["content"][0]["text"]
    assert "Current step query: Scroll down the results" in query
    assert 'Step 2: {"action": "type", "text": "pizza"}' in query
    call = traces.parse(typed["messages"][-1]["content"][0]["text"]).tool_calls[0]
    assert parse_action(call.arguments).action.text == "pizza"
    ep["actions"][1] = {"action_type": "teleport"}
    (tmp_path / "bad.jsonl").write_text(json.dumps(ep) + "\n")
    with pytest.raises(SchemaError, match="episode 42 step 1.*teleport"):
        converters.build_androidcontrol(tmp_path / "bad", n=0, src=str(tmp_path / "bad.jsonl"), **opts)


def _scene(tmp_path):
    import open3d as o3d

    rng = np.random.default_rng(0)
    pts = rng.uniform([0, 0, 0], [4, 3, 2.5], size=(500, 3))
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    (tmp_path / "scans").mkdir()
    o3d.io.write_point_cloud(str(tmp_path / "scans" / "scene0000_00.ply"), pc)
    (tmp_path / "boxes").mkdir()
    # ScanRefer's preprocessed table: cx, cy, cz, dx, dy, dz, class, object id
    np.save(tmp_path / "boxes" / "scene0000_00_aligned_bbox.npy",
            np.array([[1.0, 1.0, 0.5, 1.0, 0.8, 1.0, 5, 3], [3.0, 2.0, 0.4, 0.5, 0.5, 0.8, 7, 8]]))
    (tmp_path / "meta.txt").write_text("axisAlignment = " + " ".join(map(str, np.eye(4).ravel())) + "\n")
    return {"boxes": str(tmp_path / "boxes"), "clouds": str(tmp_path / "scans" / "{scene_id}.ply"),
            "progress": False}


def test_scanrefer_and_scanqa(tmp_path):
    opts = _scene(tmp_path)
    refer = [{"scene_id": "scene0000_00", "object_id": "3", "object_name": "coffee_table", "ann_id": "0",
              "description": "the low table in front of the sofa."}]
    (tmp_path / "refer.json").write_text(json.dumps(refer))
    [r] = _rows(converters.build_scanrefer(tmp_path / "r", n=0, src=str(tmp_path / "refer.json"),
                                           axis_align=str(tmp_path / "meta.txt"), **opts))
    assert r["boxes_3d"] == [{"label": "coffee table", "box": [0.5, 0.6, 0.0, 1.5, 1.4, 1.0]}]
    [m] = traces.parse(r["answer"]).boxes_3d
    assert m.name == "coffee_table" and m.count == 1 and m.box == (0.5, 0.6, 0.0, 1.5, 1.4, 1.0)
    assert r["meta"]["axis_align"] == np.eye(4).tolist() and r["task"] == "grounding_3d"
    from mmreason.modalities.point_cloud import load_point_cloud

    cloud = load_point_cloud(r["messages"][0]["content"][0]["point_cloud"], root=tmp_path / "r")
    assert cloud.num_points == 500
    qa = [{"scene_id": "scene0000_00", "question_id": "q1", "question": "What is next to the table?",
           "answers": ["a lamp", "lamp"], "object_ids": [8, 99], "object_names": ["lamp", "ghost"]}]
    (tmp_path / "qa.json").write_text(json.dumps(qa))
    [q] = _rows(converters.build_scanqa(tmp_path / "q", n=0, src=str(tmp_path / "qa.json"), **opts))
    assert q["answer"] == "a lamp" and q["meta"]["answers"] == ["a lamp", "lamp"]
    # object 99 is not in the box table: left out and counted
    assert q["boxes_3d"] == [{"label": "lamp", "box": [2.75, 1.75, 0.0, 3.25, 2.25, 0.8]}]
    assert "missing_box" in (tmp_path / "q" / "README.md").read_text()


def test_charades_grit_and_deepeyes(tmp_path):
    from mmreason.data_builders.video_clips import encode_mp4

    (tmp_path / "v").mkdir()
    encode_mp4([Image.new("RGB", (64, 48), (0, 0, 200))] * 4, 2, (tmp_path / "v" / "3MSZA.mp4", "3MSZA.mp4"))
    (tmp_path / "sta.txt").write_text("3MSZA 24.3 30.4##person turn a light on.\n\n3MSZA 0 6.9##a person is "
                                      "putting a book on a shelf.\n")
    rows = _rows(converters.build_charades(tmp_path / "c", n=0, src=str(tmp_path / "sta.txt"),
                                           videos=str(tmp_path / "v"), progress=False))
    assert [(s["start"], s["end"]) for r in rows for s in r["time_spans"]] == [(24.3, 30.4), (0.0, 6.9)]
    assert rows[0]["answer"] == "24.3 to 30.4"
    assert "person turn a light on" in rows[0]["messages"][0]["content"][1]["text"]
    (tmp_path / "bad.txt").write_text("3MSZA 24.3##no end time\n")
    with pytest.raises(SchemaError, match=r"bad\.txt line 1"):
        converters.build_charades(tmp_path / "cb", n=0, src=str(tmp_path / "bad.txt"), progress=False)

    _image(tmp_path / "g" / "vsr1.jpg", (200, 100))
    grit = [{"question": "Is the cat left of the dog?", "answer": "yes", "image": "vsr1.jpg", "width": 200,
             "height": 100, "bboxs": [[10, 10, 50, 60], [120, 20, 190, 90]], "dataset": "vsr",
             "split": "train"},
            {"question": "How many cats?", "answer": "2", "image": "vsr1.jpg", "width": 200, "height": 100,
             "bboxs": [[0, 0, 20, 20]], "dataset": "tallyqa", "split": "train"}]
    (tmp_path / "grit.jsonl").write_text("\n".join(json.dumps(g) for g in grit))
    g = _rows(converters.build_grit(tmp_path / "gr", n=0, src=str(tmp_path / "grit.jsonl"),
                                    images=str(tmp_path / "g"), progress=False))
    assert [r["task"] for r in g] == ["vqa", "counting"] and g[0]["boxes"][1]["box"] == [120, 20, 190, 90]
    assert g[0]["meta"]["dataset"] == "vsr" and g[1]["source"] == "grit_tallyqa"

    png = io.BytesIO()
    Image.new("RGB", (32, 16), (1, 2, 3)).save(png, format="PNG")
    table = pa.Table.from_pylist([{
        "data_source": "vstar",
        "prompt": [{"role": "system", "content": "You are helpful."},
                   {"role": "user", "content": "<image>\nWhat colour is the cup?"}],
        "images": [{"bytes": png.getvalue(), "path": "cup.png"}],
        "reward_model": {"style": "model", "ground_truth": "red"},
        "extra_info": {"question": "What colour is the cup?", "answer": "red", "index": 0, "split": "train"},
        "env_name": "visual_toolbox_v2"}])
    pq.write_table(table, tmp_path / "deepeyes.parquet")
    [d] = _rows(converters.build_deepeyes(tmp_path / "d", n=0, src=str(tmp_path / "deepeyes.parquet"),
                                          progress=False))
    assert d["answer"] == "red" and d["source"] == "vstar" and d["meta"]["env_name"] == "visual_toolbox_v2"
    assert [m["role"] for m in d["messages"]] == ["system", "user"]
    with Image.open(tmp_path / "d" / schema.images_of(d)[0]) as im:
        assert im.getpixel((5, 5)) == (1, 2, 3)


def test_missing_media_and_cli(tmp_path):
    src = _coco(tmp_path)
    (tmp_path / "imgs" / "b.jpg").unlink()
    with pytest.raises(MediaError, match=r"b\.jpg.*file not found.*image 3") as err:
        converters.build_coco(tmp_path / "m", n=0, src=str(src), images=str(tmp_path / "imgs"),
                              progress=False)
    assert err.value.sample_id == "convert_coco-000000002"
    code = main(["convert_coco", "--out", str(tmp_path / "cli"), "--n", "0", "--no-progress",
                 "--set", f"src={src}", "--set", f"images={tmp_path / 'imgs'}", "--set", "on_missing=skip"])
    assert code == 0 and len(_rows(tmp_path / "cli")) == 2
    assert "missing_media" in (tmp_path / "cli" / "README.md").read_text()
    with pytest.raises(ValueError, match="unknown option"):
        converters.build_coco(tmp_path / "x", n=0, src=str(src), colour="blue")
    with pytest.raises(ValueError, match="src=PATH"):
        converters.build_grit(tmp_path / "y", n=0)


class _Opens:
    """A pickle that, when loaded, opens (creates) a file: stands in for code a downloaded file could run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_refcoco_pickle_that_would_run_code_is_refused(tmp_path):
    import subprocess
    import sys

    inst = _coco(tmp_path)
    ran = tmp_path / "code-ran"
    with open(tmp_path / "refs(unc).p", "wb") as fh:
        pickle.dump([{"ref_id": 0, "ann_id": 11, "split": "val", "sentences": [], "x": _Opens(ran)}], fh)
    proc = subprocess.run([sys.executable, "-m", "mmreason", "build", "convert_refcoco", "--out",
                           str(tmp_path / "out"), "--n", "0", "--no-progress", "--set",
                           f"src={tmp_path / 'refs(unc).p'}", "--set", f"instances={inst}"],
                          capture_output=True, text=True, timeout=300)
    assert not ran.exists(), "loading the pickle ran its code"
    assert proc.returncode == 2, proc.stderr
    assert "refs(unc).p" in proc.stderr and "names io.open" in proc.stderr and "JSON" in proc.stderr
