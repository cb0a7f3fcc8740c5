"""The canonical sample: validation, helpers, readers from users' formats, Parquet/JSONL round trips."""

from __future__ import annotations

import copy
import io
import json
import math
import tempfile
from pathlib import Path

import datasets
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mmreason import schema as S
from mmreason.errors import MediaError, SchemaError


def _row(**over):
    row = {
        "id": "s1", "task": "grounding", "source": "unit",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Think first."}]},
            {"role": "user", "content": [{"type": "image", "image": "a.png"},
                                         {"type": "text", "text": "Where is the dog?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "<answer>[1,2,30,40]</answer>"}]},
        ],
        "answer": "[1,2,30,40]",
        "boxes": [{"label": "dog", "box": [1, 2, 30, 40], "image": 0}],
    }
    row.update(over)
    return row


def _png(color=(255, 0, 0), size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------- validation
def test_validate_normalises_and_fills_defaults():
    row = _row(messages=[{"role": "user", "content": "plain text"},
                         {"role": "assistant", "content": [{"type": "text", "text": "x", "image": None}]}],
               boxes=None, meta=None)
    out = S.validate(row)
    assert out["messages"][0]["content"] == [{"type": "text", "text": "plain text"}]
    assert out["messages"][1]["content"] == [{"type": "text", "text": "x"}]
    assert out["boxes"] == [] and out["boxes_3d"] == [] and out["time_spans"] == []
    assert out["gui"] is None and out["meta"] == {}
    assert list(out) == list(S.FIELDS)

    out = S.validate(_row())
    assert out["boxes"] == [{"label": "dog", "box": [1.0, 2.0, 30.0, 40.0], "image": 0}]
    assert all(isinstance(v, float) for v in out["boxes"][0]["box"])
    assert S.validate(out) == out  # idempotent
    assert row["boxes"] is None  # the input is not mutated


def _set(path, value):
    def mutate(row):
        target = row
        for key in path[:-1]:
            target = target[key]
        if value is _DEL:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return row
    return mutate


_DEL = object()
BAD_ROWS = [
    (_set(["messages", 1, "content", 1, "type"], "hologram"), "messages[1].content[1].type",
     "unknown content type"),
    (_set(["boxes", 0, "box"], [30, 2, 1, 40]), "boxes[0].box", "x2 must exceed x1"),
    (_set(["boxes", 0, "box"], [1, math.nan, 30, 40]), "boxes[0].box[1]", "not finite"),
    (_set(["boxes", 0, "image"], 1), "boxes[0].image", "out of range"),
    (_set(["messages", 1, "role"], "narrator"), "messages[1].role", "unknown role"),
    (_set(["messages", 1, "content", 0, "image"], ""), "messages[1].content[0].image", "non-empty"),
    (_set(["messages", 1, "content", 0, "fps"], 2), "messages[1].content[0]", "unknown key"),
    (_set(["boxes_3d"], [{"box": [0, 0, 0, 1, 1, 0]}]), "boxes_3d[0].box", "z2 must exceed z1"),
    (_set(["time_spans"], [{"start": 5, "end": 2}]), "time_spans[0]", "start <= end"),
    (_set(["points"], [{"point": [1, 2, 3]}]), "points[0].point", "expected 2 numbers"),
    (_set(["rationale_regions"], [{"box": [0, 0, 1, 1], "image": -1}]), "rationale_regions[0].image", ">= 0"),
    (_set(["gui"], {"action": {"coordinate": [1, 2]}}), "gui.action.action", "non-empty string"),
    (_set(["gui"], {"platform": "toaster"}), "gui.platform", "unknown platform"),
    (_set(["gui"], {"elements": [{"box": [0, 0, 1, 1], "clickable": "yes"}]}), "gui.elements[0].clickable",
     "true/false"),
    (_set(["meta"], {"blob": b"\x00"}), "meta", "JSON"),
    (_set(["solution"], "3"), "solution", "put extras under 'meta'"),
    (_set(["task"], ""), "task", "non-empty"),
    (_set(["answer"], 3), "answer", "expected a string"),
]


@pytest.mark.parametrize("mutate,field,reason", BAD_ROWS, ids=[b[1] for b in BAD_ROWS])
def test_validate_errors_name_row_and_field(mutate, field, reason):
    with pytest.raises(SchemaError) as e:
        S.validate(mutate(_row()), index=7)
    assert e.value.row == "s1" and e.value.field == field
    assert "'s1'" in str(e.value) and field in str(e.value) and reason in str(e.value)


def test_validate_video_options():
    video = {"type": "video", "video": "v.mp4", "fps": 2, "video_start": 1, "video_end": 4.5}
    out = S.validate(_row(messages=[{"role": "user", "content": [video]}], boxes=[]))
    assert out["messages"][0]["content"][0] == {"type": "video", "video": "v.mp4", "fps": 2.0,
                                                "video_start": 1.0, "video_end": 4.5}
    for bad, reason in (({"nframes": 8}, "either fps or nframes"), ({"video_end": 0.5}, "exceeds"),
                        ({"fps": 0}, "positive")):
        with pytest.raises(SchemaError, match=reason):
            S.validate(_row(messages=[{"role": "user", "content": [{**video, **bad}]}], boxes=[]))


def test_validate_accepts_parts_read_back_from_arrow():
    row = _row()
    row["messages"][1]["content"] = [{k: None for k in S.PART_KEYS} | {"type": "image", "image": "a.png"},
                                     {k: None for k in S.PART_KEYS} | {"type": "text", "text": "hi"}]
    assert S.validate(row)["messages"][1]["content"] == [{"type": "image", "image": "a.png"},
                                                         {"type": "text", "text": "hi"}]


def test_missing_id_names_the_index():
    row = _row()
    del row["id"]
    with pytest.raises(SchemaError) as e:
        S.validate(row, index=12)
    assert e.value.row == 12 and e.value.field == "id"


def test_missing_media_names_file_and_sample(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    S.validate(_row(), root=tmp_path, check_media=True)
    row = _row()
    row["messages"][1]["content"][0]["image"] = "missing/b.png"
    with pytest.raises(MediaError) as e:
        S.validate(row, root=tmp_path, check_media=True)
    assert e.value.sample_id == "s1" and e.value.path == str(tmp_path / "missing/b.png")
    assert "missing/b.png" in str(e.value) and "'s1'" in str(e.value)
    S.validate(row, root=tmp_path)  # no file check unless asked


# ---------------------------------------------------------------------------------------- helpers
def test_media_helpers_and_paths(tmp_path):
    msg = S.user_message("Compare.", "a.jpg", "clip.mp4", ("screenshot", "s.png"), "scene.ply", "talk.wav")
    row = S.new_row("m1", [msg], task="spatial_qa", source="unit",
                    boxes=[{"label": None, "box": [0, 0, 2, 2], "image": 1}])
    assert S.media_parts(row) == [("image", "a.jpg"), ("video", "clip.mp4"), ("screenshot", "s.png"),
                                  ("point_cloud", "scene.ply"), ("audio", "talk.wav")]
    assert S.images_of(row) == ["a.jpg", "s.png"]
    assert S.text_of(row["messages"][0]) == "Compare."
    absolute = S.resolve_media(row, tmp_path)
    assert S.images_of(absolute) == [str(tmp_path / "a.jpg"), str(tmp_path / "s.png")]
    assert S.relativize_media(absolute, tmp_path) == row
    with pytest.raises(MediaError, match="outside the dataset root"):
        S.relativize_media(absolute, tmp_path / "elsewhere")
    with pytest.raises(SchemaError, match="extension"):
        S.user_message("?", "notes.txt")
    with pytest.raises(SchemaError, match="unknown ground-truth"):
        S.new_row("m2", [msg], box=[1, 2, 3, 4])


# ---------------------------------------------------------------------------------------- readers
def test_from_trl_prompt_completion_multi_image():
    src = {"id": 5, "prompt": [{"role": "user", "content": [
        {"type": "image", "text": None}, {"type": "text", "text": "Which is bigger?", "image": None},
        {"type": "image"}]}],
        "completion": [{"role": "assistant", "content": "<think>hm</think><answer>left</answer>"}],
        "images": ["l.png", "r.png"], "solution": "<answer> left </answer>", "difficulty": 2}
    row = S.validate(S.from_trl(src))
    assert row["id"] == "5" and row["answer"] == "left" and row["source"] == "trl"
    assert row["messages"][0]["content"] == [{"type": "image", "image": "l.png"},
                                             {"type": "text", "text": "Which is bigger?"},
                                             {"type": "image", "image": "r.png"}]
    assert row["messages"][1] == {"role": "assistant", "content": [
        {"type": "text", "text": "<think>hm</think><answer>left</answer>"}]}
    assert row["meta"] == {"difficulty": 2}


def test_from_trl_string_prompt_single_pil_image(tmp_path):
    src = {"prompt": "How many dots?", "image": Image.new("RGB", (4, 4), "blue"), "solution": "2"}
    rows = list(S.read_rows([src], "trl", id_prefix="dots-", media_dir=tmp_path / "media"))
    (part, text) = rows[0]["messages"][0]["content"]
    assert rows[0]["id"] == "dots-0" and text == {"type": "text", "text": "How many dots?"}
    assert part["image"].startswith("media/") and part["image"].endswith(".png")
    assert Image.open(tmp_path / part["image"]).size == (4, 4)
    with pytest.raises(SchemaError, match="media_dir"):
        list(S.read_rows([src], "trl"))


def test_from_trl_inverts_to_trl(tmp_path):
    row = S.new_row("r1", [S.user_message("Click OK.", ("screenshot", "ui.png"))], task="gui_action",
                    gui={"platform": "web", "width": 800, "height": 600,
                         "action": {"action": "click", "coordinate": [10, 20]}},
                    points=[{"label": "OK", "point": [10, 20], "image": 0}], meta={"split": "train"})
    trl = S.to_trl(row, tmp_path)
    assert trl["prompt"][0]["content"][0] == {"type": "image"} and trl["images"] == [str(tmp_path / "ui.png")]
    back = S.validate(S.from_trl(trl))
    expected = S.resolve_media(row, tmp_path)
    expected["messages"][0]["content"][0] = {"type": "image", "image": str(tmp_path / "ui.png")}
    assert back == expected  # a screenshot comes back as an image part: TRL has no screenshots
    with pytest.raises(SchemaError, match="images only"):
        S.to_trl(S.new_row("v", [S.user_message("?", "a.mp4")]), tmp_path)


def test_from_llava_multi_image_video_and_answer():
    src = {"id": "ll-1", "image": ["1.jpg", "2.jpg"], "conversations": [
        {"from": "human", "value": "<image>\nFirst, then <image>\nsecond: same object?"},
        {"from": "gpt", "value": "<think>both are cats</think><answer>yes</answer>"}],
        "accu_reward_method": "mcq"}
    row = S.validate(S.from_llava(src))
    assert [p["type"] for p in row["messages"][0]["content"]] == ["image", "text", "image", "text"]
    assert row["messages"][0]["content"][1]["text"] == "First, then "
    assert row["messages"][0]["content"][3]["text"] == "second: same object?"
    assert S.images_of(row) == ["1.jpg", "2.jpg"] and row["answer"] == "yes"
    assert row["meta"] == {"accu_reward_method": "mcq"}

    video = S.validate(S.from_llava({"id": "v", "video": "clip.mp4", "conversations": [
        {"from": "system", "value": "Be brief."}, {"from": "human", "value": "What happens?"},
        {"from": "gpt", "value": "A dog runs."}]}))
    assert video["messages"][1]["content"][0] == {"type": "video", "video": "clip.mp4"}  # no tag: goes first
    assert video["answer"] is None and video["messages"][0]["role"] == "system"


def test_image_tag_count_mismatch_names_row_and_column():
    src = {"id": "bad-7", "image": ["1.jpg"],
           "conversations": [{"from": "human", "value": "<image><image>?"}]}
    with pytest.raises(SchemaError) as e:
        S.from_llava(src)
    assert e.value.row == "bad-7" and e.value.field == "image" and "2 <image> placeholder(s)" in str(e.value)
    with pytest.raises(SchemaError, match="input row 1|'images'"):
        list(S.read_rows([{"problem": "<image>x", "answer": "1", "images": ["a.png"]},
                          {"problem": "<image>x", "answer": "1", "images": []}], "easyr1"))


def test_from_swift_objects_boxes_points_and_refs():
    src = {"messages": [{"role": "user", "content": "<image>Find <ref-object> and <ref-object>."},
                        {"role": "assistant", "content": "<bbox> and <bbox>"}],
           "images": ["cats.jpg"],
           "objects": {"ref": ["cat", "bowl"], "bbox": [[10, 20, 110, 220], [50, 60]], "bbox_type": "real"}}
    row = S.validate({**S.from_swift(src), "id": "sw"})
    assert row["task"] == "grounding"
    assert row["messages"][0]["content"][1]["text"] == "Find cat and bowl."
    assert row["messages"][1]["content"][0]["text"] == "<bbox> and <bbox>"
    assert row["boxes"] == [{"label": "cat", "box": [10.0, 20.0, 110.0, 220.0], "image": 0}]
    assert row["points"] == [{"label": "bowl", "point": [50.0, 60.0], "image": 0}]


def test_from_swift_relative_boxes_need_the_image_size():
    src = {"messages": [{"role": "user", "content": "<image><image>Where is <ref-object>?"}],
           "images": ["a.jpg", "b.jpg"],
           "objects": {"ref": ["dog"], "bbox": [[0.1, 0.2, 0.5, 0.6]], "bbox_type": "norm1", "image_id": [1]}}
    unknown = S.validate({**S.from_swift(src), "id": "x"})
    assert unknown["boxes"] == [] and unknown["meta"]["objects"]["bbox_type"] == "norm1"
    assert "image size is unknown" in unknown["meta"]["objects_note"]

    sizes = {"a.jpg": (100, 100), "b.jpg": (1000, 500)}
    known = S.validate({**S.from_swift(src, image_size=sizes.__getitem__), "id": "x"})
    assert known["boxes"] == [{"label": "dog", "box": [100.0, 100.0, 500.0, 300.0], "image": 1}]
    listed = S.validate({**S.from_swift({**src, "width": [10, 1000], "height": [10, 500]}), "id": "x"})
    assert listed["boxes"] == known["boxes"] and listed["meta"] == {"width": [10, 1000], "height": [10, 500]}

    bad = {**src, "objects": {**src["objects"], "bbox_type": "norm1000", "bbox": [[600, 0, 500, 10]]}}
    with pytest.raises(SchemaError) as e:
        list(S.read_rows([src, bad], "swift", image_size=sizes.__getitem__))
    assert "swift input row 1" in str(e.value) and e.value.field == "boxes[0].box"


def test_from_swift_audio_and_legacy_query_format():
    row = S.validate({**S.from_swift({"messages": [{"role": "user", "content": "<audio>What is said?"}],
                                      "audios": ["s.wav"], "solution": "hello"}), "id": "a"})
    assert row["messages"][0]["content"][0] == {"type": "audio", "audio": "s.wav"}
    assert row["answer"] == "hello"
    legacy = S.validate({**S.from_swift({"system": "sys", "history": [["q1", "a1"]], "query": "<image>q2",
                                         "response": "a2", "images": ["i.png"]}), "id": "b"})
    assert [m["role"] for m in legacy["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert legacy["messages"][3]["content"][0] == {"type": "image", "image": "i.png"}


def test_from_easyr1_bytes_remapped_keys_and_video(tmp_path):
    src = {"problem": "<image>Find x in <image>.", "answer": 3, "images": [_png(), {"bytes": _png((0, 9, 0)),
                                                                                   "path": "orig.png"}]}
    row = list(S.read_rows([src], "easyr1", media_dir=tmp_path / "img", root=tmp_path))[0]
    a, b = S.images_of(row)
    assert row["answer"] == "3" and a != b and a.startswith("img/") and b.endswith(".png")
    assert (tmp_path / a).read_bytes() == _png()
    again = list(S.read_rows([src], "easyr1", media_dir=tmp_path / "img", root=tmp_path))[0]
    assert again == row  # content-addressed: same bytes, same file

    remapped = S.validate({**S.from_easyr1({"question": "<video>When does it fall?", "gt": "2.5",
                                            "clips": ["v.mp4"]}, prompt_key="question", answer_key="gt",
                                           video_key="clips", task="temporal_grounding"), "id": "e"})
    assert remapped["messages"][0]["content"][0] == {"type": "video", "video": "v.mp4"}
    assert remapped["task"] == "temporal_grounding" and remapped["answer"] == "2.5"
    r1v = S.validate({**S.from_easyr1({"problem": "How many?", "image": "c.png",
                                       "solution": "<answer>4</answer>"}), "id": "r"})
    assert r1v["answer"] == "4" and S.images_of(r1v) == ["c.png"]


def test_from_verl(tmp_path):
    src = {"data_source": "hiyouga/geometry3k",
           "prompt": [{"role": "user", "content": "<image>Find the angle."}],
           "images": [{"bytes": _png(), "path": None}], "ability": "math",
           "reward_model": {"style": "rule", "ground_truth": "45"},
           "extra_info": {"split": "train", "index": 4}}
    row = list(S.read_rows([src], "verl", media_dir=tmp_path / "m"))[0]
    assert row["source"] == "hiyouga/geometry3k" and row["answer"] == "45" and row["id"] == "0"
    assert row["meta"] == {"split": "train", "index": 4, "ability": "math", "reward_model": {"style": "rule"}}
    assert (tmp_path / S.images_of(row)[0]).exists()


def test_readers_take_pandas_style_arrays_data_urls_and_untagged_media(tmp_path):
    import base64

    import numpy as np

    # pandas-read parquet gives numpy object arrays for list columns
    src = {"data_source": "geo", "prompt": np.array([{"role": "user", "content": "Angle?"}], dtype=object),
           "images": np.array(["a.png"], dtype=object), "videos": np.array(["v.mp4"], dtype=object),
           "reward_model": {"ground_truth": np.int64(30)}, "extra_info": {"index": np.int64(3)}}
    row = S.validate({**S.from_verl(src), "id": "np"})
    assert [p["type"] for p in row["messages"][0]["content"]] == ["image", "video", "text"]
    assert row["answer"] == "30" and row["meta"] == {"index": 3}

    url = "data:image/png;base64," + base64.b64encode(_png()).decode()
    msg = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                       {"type": "text", "text": "Color?"}]}
    row = list(S.read_rows([{"messages": [msg]}], "trl", media_dir=tmp_path / "m"))[0]
    assert (tmp_path / S.images_of(row)[0]).read_bytes() == _png() and S.images_of(row)[0].endswith(".png")


def test_read_rows_rejects_duplicates_and_unknown_format():
    rows = [{"id": "same", "problem": "a", "answer": "1"}, {"id": "same", "problem": "b", "answer": "2"}]
    with pytest.raises(SchemaError, match=r"duplicate id \(input rows 0 and 1\)"):
        list(S.read_rows(rows, "easyr1"))
    with pytest.raises(ValueError, match="unknown format"):
        list(S.read_rows(rows, "alpaca"))
    assert sorted(S.READERS) == ["easyr1", "llava", "swift", "trl", "verl"]


# ------------------------------------------------------------------------------------ disk format
def _rich_rows():
    gui = {"platform": "mobile", "width": 1080, "height": 2400, "goal": "open settings", "instruction": "tap",
           "elements": [{"box": [0, 0, 100, 50], "role": "button", "text": "OK", "clickable": True}],
           "action": {"action": "click", "coordinate": [50, 25]},
           "history": [{"action": "scroll", "direction": "down", "distance": 3}]}
    return [
        S.validate(_row()),
        S.new_row("g", [S.user_message("Open settings.", ("screenshot", "s.png"))], task="gui_action",
                  gui=gui, meta={"app": "settings", "step": 2}),
        S.new_row("t", [S.user_message("When?", {"type": "video", "video": "v.mp4", "nframes": 8})],
                  task="temporal_grounding", time_spans=[{"label": "fall", "start": 1.5, "end": 3}],
                  gui={"action": {"action": "type", "text": "hi"}}),
        S.new_row("p", [S.user_message("Where?", {"type": "point_cloud", "point_cloud": "s.ply",
                                                  "num_points": 4096})], task="spatial_qa",
                  boxes_3d=[{"label": "chair", "box": [0, 0, 0, 1, 1, 1.5]}],
                  meta={"nested": {"x": [1, None]}}),
    ]


def test_parquet_round_trip_and_plain_datasets_view(tmp_path):
    rows = _rich_rows()
    path = S.write_parquet(rows, tmp_path / "ds")
    assert path == tmp_path / "ds" / "data-00000-of-00001.parquet"
    loaded = S.load_rows(tmp_path / "ds", cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == rows and loaded[1] == rows[1]

    plain = datasets.load_dataset("parquet", data_files=str(path), split="train",
                                  cache_dir=str(tmp_path / "c2"))
    assert plain.column_names == list(S.FIELDS) and len(plain) == 4
    part = plain[0]["messages"][1]["content"][0]
    assert part["type"] == "image" and part["image"] == "a.png" and part["fps"] is None
    assert plain[0]["boxes"] == [{"label": "dog", "box": [1.0, 2.0, 30.0, 40.0], "image": 0}]
    assert json.loads(plain[1]["meta"]) == {"app": "settings", "step": 2}
    assert json.loads(plain[2]["gui"]["action"]) == {"action": "type", "text": "hi"}
    assert [S.decode_row(r) for r in plain] == rows


def test_jsonl_round_trip_and_errors(tmp_path):
    rows = _rich_rows()
    path = S.write_jsonl(rows, tmp_path / "d" / "train.jsonl")
    assert [S.validate(json.loads(line)) for line in path.read_text().splitlines()] == rows
    assert list(S.load_rows(path)) == rows and list(S.load_rows(tmp_path / "d")) == rows

    bad = tmp_path / "bad.jsonl"
    good = json.dumps(rows[0])
    bad.write_text(good + "\n{not json\n")
    with pytest.raises(SchemaError, match=r"bad.jsonl line 2.*invalid JSON"):
        S.load_rows(bad)
    broken = copy.deepcopy(rows[0])
    broken["boxes"][0]["box"][2] = -5
    bad.write_text(good.replace('"s1"', '"s0"') + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(SchemaError, match=r"bad.jsonl line 2.*'s1'.*boxes\[0\]\.box"):
        S.load_rows(bad)
    with pytest.raises(SchemaError, match="duplicate id"):
        S.write_jsonl([rows[0], rows[0]], tmp_path / "dup.jsonl")


def test_load_rows_rejects_foreign_parquet_and_empty_dir(tmp_path):
    datasets.Dataset.from_list([{"prompt": "x", "solution": "y"}]).to_parquet(str(tmp_path / "f.parquet"))
    with pytest.raises(SchemaError, match="not a canonical mmreason dataset"):
        S.load_rows(tmp_path / "f.parquet", cache_dir=str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        S.load_rows(tmp_path / "empty")


def test_to_trl_dataset_plugs_into_trl(tmp_path):
    from trl.data_utils import prepare_multimodal_messages

    rows = _rich_rows()[:2]
    ds = S.to_trl_dataset(rows, tmp_path)
    first = ds[0]
    assert first["prompt"][1]["content"] == [{"type": "image"}, {"type": "text", "text": "Where is the dog?"}]
    assert first["images"] == [str(tmp_path / "a.png")] and first["solution"] == "[1,2,30,40]"
    assert ds[1]["gui"]["action"] == {"action": "click", "coordinate": [50.0, 25.0]}
    filled = prepare_multimodal_messages(first["prompt"], images=first["images"])
    assert filled[1]["content"][0]["image"] == str(tmp_path / "a.png")
    sft = S.to_trl_dataset(rows, tmp_path, mode="sft")
    assert [m["role"] for m in sft[0]["messages"]] == ["system", "user", "assistant"]


# ------------------------------------------------------------------------------ property: lossless
_label = st.none() | st.text(max_size=8)
_coord = st.floats(-1e4, 1e4, allow_nan=False)
_size = st.floats(0.5, 1e3, allow_nan=False)
_scalar = st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.text(max_size=6) \
    | st.floats(allow_nan=False, allow_infinity=False)
_json = st.recursive(_scalar, lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=8)


@st.composite
def _box(draw, n=4):
    lo = [draw(_coord) for _ in range(n // 2)]
    return lo + [v + draw(_size) for v in lo]


@st.composite
def _part(draw):
    kind = draw(st.sampled_from(S.CONTENT_TYPES))
    if kind == "text":
        return {"type": "text", "text": draw(st.text(max_size=20))}
    part = {"type": kind, kind: draw(st.text("abc/._-", min_size=1, max_size=12))}
    options = {"image": {"max_pixels": st.integers(1, 10**7)}, "video": {"fps": st.floats(0.1, 30)},
               "point_cloud": {"num_points": st.integers(1, 10**5)}}.get(kind, {})
    for key, strat in options.items():
        if draw(st.booleans()):
            part[key] = draw(strat)
    return part


@st.composite
def _canonical(draw, rid):
    messages = [{"role": draw(st.sampled_from(S.ROLES)), "content": draw(st.lists(_part(), max_size=4))}
                for _ in range(draw(st.integers(1, 3)))]
    n = sum(p["type"] in S.IMAGE_TYPES for m in messages for p in m["content"])
    region = st.fixed_dictionaries({"label": _label, "box": _box(), "image": st.integers(0, max(n - 1, 0))})
    point = st.fixed_dictionaries({"label": _label, "point": st.lists(_coord, min_size=2, max_size=2),
                                   "image": st.integers(0, max(n - 1, 0))})
    action = st.fixed_dictionaries({"action": st.sampled_from(["click", "type", "scroll"])},
                                   optional={"coordinate": st.lists(_coord, min_size=2, max_size=2),
                                             "text": st.text(max_size=5), "distance": st.integers(0, 9)})
    gui = st.none() | st.fixed_dictionaries({}, optional={
        "platform": st.sampled_from(S.GUI_PLATFORMS), "width": st.integers(1, 4000),
        "goal": st.text(max_size=5),
        "elements": st.lists(st.fixed_dictionaries({"box": _box(), "clickable": st.none() | st.booleans()}),
                             max_size=2),
        "action": action, "history": st.lists(action, max_size=2)})
    row = {"id": rid, "messages": messages, "answer": draw(st.none() | st.text(max_size=10)),
           "task": draw(st.sampled_from(["vqa", "grounding", "gui_action"])), "source": "prop",
           "boxes": draw(st.lists(region, max_size=2)) if n else [],
           "rationale_regions": draw(st.lists(region, max_size=2)) if n else [],
           "points": draw(st.lists(point, max_size=2)) if n else [],
           "boxes_3d": draw(st.lists(st.fixed_dictionaries({"label": _label, "box": _box(6)}), max_size=2)),
           "time_spans": [{"label": None, "start": s, "end": s + d} for s, d in
                          draw(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 10)), max_size=2))],
           "gui": draw(gui), "meta": draw(st.dictionaries(st.text(max_size=5), _json, max_size=3))}
    return S.validate(row)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4).flatmap(lambda n: st.tuples(*[_canonical(f"r{i}") for i in range(n)])))
def test_round_trips_are_lossless(rows):
    rows = list(rows)
    with tempfile.TemporaryDirectory() as tmp:
        S.write_parquet(rows, tmp)
        assert list(S.load_rows(tmp, cache_dir=str(Path(tmp) / "cache"))) == rows
        S.write_jsonl(rows, Path(tmp) / "j" / "rows.jsonl")
        assert list(S.load_rows(Path(tmp) / "j")) == rows


def test_docstring_examples_hold():
    import doctest

    from mmreason import schema_io, schema_readers, schema_swift

    for module in (S, schema_io, schema_readers, schema_swift):
        result = doctest.testmod(module)
        assert result.attempted > 3 and result.failed == 0, module.__name__
