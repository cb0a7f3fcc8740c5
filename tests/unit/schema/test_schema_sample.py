"""The canonical sample (`mmreason.schema.sample`): validation and the helpers that build and read rows."""

from __future__ import annotations

import math

import pytest

from mmreason import schema as S
from mmreason.errors import MediaError, SchemaError


# ------------------------------------------------------------------------------------- validation
def test_validate_normalises_and_fills_defaults(make_row):
    row = make_row(messages=[{"role": "user", "content": "plain text"},
                         {"role": "assistant", "content": [{"type": "text", "text": "x", "image": None}]}],
               boxes=None, meta=None)
    out = S.validate(row)
    assert out["messages"][0]["content"] == [{"type": "text", "text": "plain text"}]
    assert out["messages"][1]["content"] == [{"type": "text", "text": "x"}]
    assert out["boxes"] == [] and out["boxes_3d"] == [] and out["time_spans"] == []
    assert out["gui"] is None and out["meta"] == {}
    assert list(out) == list(S.FIELDS)

    out = S.validate(make_row())
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
def test_validate_errors_name_row_and_field(mutate, field, reason, make_row):
    with pytest.raises(SchemaError) as e:
        S.validate(mutate(make_row()), index=7)
    assert e.value.row == "s1" and e.value.field == field
    assert "'s1'" in str(e.value) and field in str(e.value) and reason in str(e.value)


def test_validate_video_options(make_row):
    video = {"type": "video", "video": "v.mp4", "fps": 2, "video_start": 1, "video_end": 4.5}
    out = S.validate(make_row(messages=[{"role": "user", "content": [video]}], boxes=[]))
    assert out["messages"][0]["content"][0] == {"type": "video", "video": "v.mp4", "fps": 2.0,
                                                "video_start": 1.0, "video_end": 4.5}
    for bad, reason in (({"nframes": 8}, "either fps or nframes"), ({"video_end": 0.5}, "exceeds"),
                        ({"fps": 0}, "positive")):
        with pytest.raises(SchemaError, match=reason):
            S.validate(make_row(messages=[{"role": "user", "content": [{**video, **bad}]}], boxes=[]))


def test_validate_accepts_parts_read_back_from_arrow(make_row):
    row = make_row()
    row["messages"][1]["content"] = [{k: None for k in S.PART_KEYS} | {"type": "image", "image": "a.png"},
                                     {k: None for k in S.PART_KEYS} | {"type": "text", "text": "hi"}]
    assert S.validate(row)["messages"][1]["content"] == [{"type": "image", "image": "a.png"},
                                                         {"type": "text", "text": "hi"}]


def test_missing_id_names_the_index(make_row):
    row = make_row()
    del row["id"]
    with pytest.raises(SchemaError) as e:
        S.validate(row, index=12)
    assert e.value.row == 12 and e.value.field == "id"


def test_missing_media_names_file_and_sample(tmp_path, make_row, png):
    (tmp_path / "a.png").write_bytes(png())
    S.validate(make_row(), root=tmp_path, check_media=True)
    row = make_row()
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
    # raw AAC (ADTS) is audio, as lmms-eval's model class reads it (tests/unit/eval/test_lmms_eval_model.py)
    assert S.user_message("Who speaks?", "talk.aac")["content"][0] == {"type": "audio", "audio": "talk.aac"}
    absolute = S.resolve_media(row, tmp_path)
    assert S.images_of(absolute) == [str(tmp_path / "a.jpg"), str(tmp_path / "s.png")]
    assert S.relativize_media(absolute, tmp_path) == row
    with pytest.raises(MediaError, match="outside the dataset root"):
        S.relativize_media(absolute, tmp_path / "elsewhere")
    with pytest.raises(SchemaError, match="extension"):
        S.user_message("?", "notes.txt")
    with pytest.raises(SchemaError, match="unknown ground-truth"):
        S.new_row("m2", [msg], box=[1, 2, 3, 4])
