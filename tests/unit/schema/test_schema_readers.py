"""Readers from users' formats (`mmreason.schema.readers`): TRL, LLaVA, ms-swift, EasyR1, verl rows."""

from __future__ import annotations

import pytest
from PIL import Image

from mmreason import schema as S
from mmreason.errors import SchemaError
from mmreason.schema.readers import (
    READERS, from_easyr1, from_llava, from_swift, from_trl, from_verl, read_rows,
)


# ---------------------------------------------------------------------------------------- readers
def test_from_trl_prompt_completion_multi_image():
    src = {"id": 5, "prompt": [{"role": "user", "content": [
        {"type": "image", "text": None}, {"type": "text", "text": "Which is bigger?", "image": None},
        {"type": "image"}]}],
        "completion": [{"role": "assistant", "content": "<think>hm</think><answer>left</answer>"}],
        "images": ["l.png", "r.png"], "solution": "<answer> left </answer>", "difficulty": 2}
    row = S.validate(from_trl(src))
    assert row["id"] == "5" and row["answer"] == "left" and row["source"] == "trl"
    assert row["messages"][0]["content"] == [{"type": "image", "image": "l.png"},
                                             {"type": "text", "text": "Which is bigger?"},
                                             {"type": "image", "image": "r.png"}]
    assert row["messages"][1] == {"role": "assistant", "content": [
        {"type": "text", "text": "<think>hm</think><answer>left</answer>"}]}
    assert row["meta"] == {"difficulty": 2}


def test_from_trl_string_prompt_single_pil_image(tmp_path):
    src = {"prompt": "How many dots?", "image": Image.new("RGB", (4, 4), "blue"), "solution": "2"}
    rows = list(read_rows([src], "trl", id_prefix="dots-", media_dir=tmp_path / "media"))
    (part, text) = rows[0]["messages"][0]["content"]
    assert rows[0]["id"] == "dots-0" and text == {"type": "text", "text": "How many dots?"}
    assert part["image"].startswith("media/") and part["image"].endswith(".png")
    assert Image.open(tmp_path / part["image"]).size == (4, 4)
    with pytest.raises(SchemaError, match="media_dir"):
        list(read_rows([src], "trl"))


def test_from_trl_inverts_to_trl(tmp_path):
    row = S.new_row("r1", [S.user_message("Click OK.", ("screenshot", "ui.png"))], task="gui_action",
                    gui={"platform": "web", "width": 800, "height": 600,
                         "action": {"action": "click", "coordinate": [10, 20]}},
                    points=[{"label": "OK", "point": [10, 20], "image": 0}], meta={"split": "train"})
    trl = S.to_trl(row, tmp_path)
    assert trl["prompt"][0]["content"][0] == {"type": "image"} and trl["images"] == [str(tmp_path / "ui.png")]
    back = S.validate(from_trl(trl))
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
    row = S.validate(from_llava(src))
    assert [p["type"] for p in row["messages"][0]["content"]] == ["image", "text", "image", "text"]
    assert row["messages"][0]["content"][1]["text"] == "First, then "
    assert row["messages"][0]["content"][3]["text"] == "second: same object?"
    assert S.images_of(row) == ["1.jpg", "2.jpg"] and row["answer"] == "yes"
    assert row["meta"] == {"accu_reward_method": "mcq"}

    video = S.validate(from_llava({"id": "v", "video": "clip.mp4", "conversations": [
        {"from": "system", "value": "Be brief."}, {"from": "human", "value": "What happens?"},
        {"from": "gpt", "value": "A dog runs."}]}))
    assert video["messages"][1]["content"][0] == {"type": "video", "video": "clip.mp4"}  # no tag: goes first
    assert video["answer"] is None and video["messages"][0]["role"] == "system"


def test_image_tag_count_mismatch_names_row_and_column():
    src = {"id": "bad-7", "image": ["1.jpg"],
           "conversations": [{"from": "human", "value": "<image><image>?"}]}
    with pytest.raises(SchemaError) as e:
        from_llava(src)
    assert e.value.row == "bad-7" and e.value.field == "image" and "2 <image> placeholder(s)" in str(e.value)
    with pytest.raises(SchemaError, match="input row 1|'images'"):
        list(read_rows([{"problem": "<image>x", "answer": "1", "images": ["a.png"]},
                          {"problem": "<image>x", "answer": "1", "images": []}], "easyr1"))


def test_from_swift_objects_boxes_points_and_refs():
    src = {"messages": [{"role": "user", "content": "<image>Find <ref-object> and <ref-object>."},
                        {"role": "assistant", "content": "<bbox> and <bbox>"}],
           "images": ["cats.jpg"],
           "objects": {"ref": ["cat", "bowl"], "bbox": [[10, 20, 110, 220], [50, 60]], "bbox_type": "real"}}
    row = S.validate({**from_swift(src), "id": "sw"})
    assert row["task"] == "grounding"
    assert row["messages"][0]["content"][1]["text"] == "Find cat and bowl."
    assert row["messages"][1]["content"][0]["text"] == "<bbox> and <bbox>"
    assert row["boxes"] == [{"label": "cat", "box": [10.0, 20.0, 110.0, 220.0], "image": 0}]
    assert row["points"] == [{"label": "bowl", "point": [50.0, 60.0], "image": 0}]


def test_from_swift_relative_boxes_need_the_image_size():
    src = {"messages": [{"role": "user", "content": "<image><image>Where is <ref-object>?"}],
           "images": ["a.jpg", "b.jpg"],
           "objects": {"ref": ["dog"], "bbox": [[0.1, 0.2, 0.5, 0.6]], "bbox_type": "norm1", "image_id": [1]}}
    unknown = S.validate({**from_swift(src), "id": "x"})
    assert unknown["boxes"] == [] and unknown["meta"]["objects"]["bbox_type"] == "norm1"
    assert "image size is unknown" in unknown["meta"]["objects_note"]

    sizes = {"a.jpg": (100, 100), "b.jpg": (1000, 500)}
    known = S.validate({**from_swift(src, image_size=sizes.__getitem__), "id": "x"})
    assert known["boxes"] == [{"label": "dog", "box": [100.0, 100.0, 500.0, 300.0], "image": 1}]
    listed = S.validate({**from_swift({**src, "width": [10, 1000], "height": [10, 500]}), "id": "x"})
    assert listed["boxes"] == known["boxes"] and listed["meta"] == {"width": [10, 1000], "height": [10, 500]}

    bad = {**src, "objects": {**src["objects"], "bbox_type": "norm1000", "bbox": [[600, 0, 500, 10]]}}
    with pytest.raises(SchemaError) as e:
        list(read_rows([src, bad], "swift", image_size=sizes.__getitem__))
    assert "swift input row 1" in str(e.value) and e.value.field == "boxes[0].box"


def test_from_swift_audio_and_legacy_query_format():
    row = S.validate({**from_swift({"messages": [{"role": "user", "content": "<audio>What is said?"}],
                                      "audios": ["s.wav"], "solution": "hello"}), "id": "a"})
    assert row["messages"][0]["content"][0] == {"type": "audio", "audio": "s.wav"}
    assert row["answer"] == "hello"
    legacy = S.validate({**from_swift({"system": "sys", "history": [["q1", "a1"]], "query": "<image>q2",
                                         "response": "a2", "images": ["i.png"]}), "id": "b"})
    assert [m["role"] for m in legacy["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert legacy["messages"][3]["content"][0] == {"type": "image", "image": "i.png"}


def test_from_easyr1_bytes_remapped_keys_and_video(tmp_path, png):
    src = {"problem": "<image>Find x in <image>.", "answer": 3, "images": [png(), {"bytes": png((0, 9, 0)),
                                                                                   "path": "orig.png"}]}
    row = list(read_rows([src], "easyr1", media_dir=tmp_path / "img", root=tmp_path))[0]
    a, b = S.images_of(row)
    assert row["answer"] == "3" and a != b and a.startswith("img/") and b.endswith(".png")
    assert (tmp_path / a).read_bytes() == png()
    again = list(read_rows([src], "easyr1", media_dir=tmp_path / "img", root=tmp_path))[0]
    assert again == row  # content-addressed: same bytes, same file

    remapped = S.validate({**from_easyr1({"question": "<video>When does it fall?", "gt": "2.5",
                                            "clips": ["v.mp4"]}, prompt_key="question", answer_key="gt",
                                           video_key="clips", task="temporal_grounding"), "id": "e"})
    assert remapped["messages"][0]["content"][0] == {"type": "video", "video": "v.mp4"}
    assert remapped["task"] == "temporal_grounding" and remapped["answer"] == "2.5"
    r1v = S.validate({**from_easyr1({"problem": "How many?", "image": "c.png",
                                       "solution": "<answer>4</answer>"}), "id": "r"})
    assert r1v["answer"] == "4" and S.images_of(r1v) == ["c.png"]


def test_from_verl(tmp_path, png):
    src = {"data_source": "hiyouga/geometry3k",
           "prompt": [{"role": "user", "content": "<image>Find the angle."}],
           "images": [{"bytes": png(), "path": None}], "ability": "math",
           "reward_model": {"style": "rule", "ground_truth": "45"},
           "extra_info": {"split": "train", "index": 4}}
    row = list(read_rows([src], "verl", media_dir=tmp_path / "m"))[0]
    assert row["source"] == "hiyouga/geometry3k" and row["answer"] == "45" and row["id"] == "0"
    assert row["meta"] == {"split": "train", "index": 4, "ability": "math", "reward_model": {"style": "rule"}}
    assert (tmp_path / S.images_of(row)[0]).exists()


def test_readers_take_pandas_style_arrays_data_urls_and_untagged_media(tmp_path, png):
    import base64

    import numpy as np

    # pandas-read parquet gives numpy object arrays for list columns
    src = {"data_source": "geo", "prompt": np.array([{"role": "user", "content": "Angle?"}], dtype=object),
           "images": np.array(["a.png"], dtype=object), "videos": np.array(["v.mp4"], dtype=object),
           "reward_model": {"ground_truth": np.int64(30)}, "extra_info": {"index": np.int64(3)}}
    row = S.validate({**from_verl(src), "id": "np"})
    assert [p["type"] for p in row["messages"][0]["content"]] == ["image", "video", "text"]
    assert row["answer"] == "30" and row["meta"] == {"index": 3}

    url = "data:image/png;base64," + base64.b64encode(png()).decode()
    msg = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                       {"type": "text", "text": "Color?"}]}
    row = list(read_rows([{"messages": [msg]}], "trl", media_dir=tmp_path / "m"))[0]
    assert (tmp_path / S.images_of(row)[0]).read_bytes() == png() and S.images_of(row)[0].endswith(".png")


def test_read_rows_rejects_duplicates_and_unknown_format():
    rows = [{"id": "same", "problem": "a", "answer": "1"}, {"id": "same", "problem": "b", "answer": "2"}]
    with pytest.raises(SchemaError, match=r"duplicate id \(input rows 0 and 1\)"):
        list(read_rows(rows, "easyr1"))
    with pytest.raises(ValueError, match="unknown format"):
        list(read_rows(rows, "alpaca"))
    assert sorted(READERS) == ["easyr1", "llava", "swift", "trl", "verl"]
