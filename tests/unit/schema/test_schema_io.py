"""The canonical dataset on disk (`mmreason.schema.io`): Parquet/JSONL round trips and the TRL export."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import datasets
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmreason import schema as S
from mmreason.errors import SchemaError


# ------------------------------------------------------------------------------------ disk format
def _rich_rows(make_row):
    gui = {"platform": "mobile", "width": 1080, "height": 2400, "goal": "open settings", "instruction": "tap",
           "elements": [{"box": [0, 0, 100, 50], "role": "button", "text": "OK", "clickable": True}],
           "action": {"action": "click", "coordinate": [50, 25]},
           "history": [{"action": "scroll", "direction": "down", "distance": 3}]}
    return [
        S.validate(make_row()),
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


def test_parquet_round_trip_and_plain_datasets_view(tmp_path, make_row):
    rows = _rich_rows(make_row)
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


def test_jsonl_round_trip_and_errors(tmp_path, make_row):
    rows = _rich_rows(make_row)
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


def test_to_trl_dataset_plugs_into_trl(tmp_path, make_row):
    from trl.data_utils import prepare_multimodal_messages

    rows = _rich_rows(make_row)[:2]
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
        S.write_parquet(rows, tmp)  # drawn paths may point anywhere: this test is about the encoding
        assert list(S.load_rows(tmp, cache_dir=str(Path(tmp) / "cache"), allow_outside_root=True)) == rows
        S.write_jsonl(rows, Path(tmp) / "j" / "rows.jsonl")
        assert list(S.load_rows(Path(tmp) / "j", allow_outside_root=True)) == rows


def _row(rid, image):
    return {"id": rid, "task": "grounding", "source": "s", "answer": "x", "boxes": [{"box": [1, 1, 5, 5]}],
            "messages": [{"role": "user", "content": [{"type": "image", "image": image},
                                                      {"type": "text", "text": "Where is it?"}]}]}


def test_media_outside_the_dataset_root_are_refused_unless_allowed(tmp_path, monkeypatch):
    import subprocess
    import sys

    from PIL import Image

    from mmreason.errors import MediaError

    (tmp_path / "ds").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "ds" / "a.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "secret.png")  # a file beside, not inside, the dataset
    for name, image in (("climbs", "../secret.png"), ("absolute", str(tmp_path / "secret.png"))):
        data = tmp_path / name
        data.mkdir()
        (data / "a.png").write_bytes((tmp_path / "ds" / "a.png").read_bytes())
        S.write_jsonl([_row("ok", "a.png"), _row("sneaky", image)], data / "rows.jsonl")
        with pytest.raises(MediaError, match=r"sample 'sneaky'.*secret\.png: outside the dataset root.*"
                                             r"allow_outside_root=True or set MMREASON_ALLOW_MEDIA_OUTSIDE_ROOT=1"):
            list(S.load_rows(data))
        assert len(list(S.load_rows(data, allow_outside_root=True))) == 2
    proc = subprocess.run([sys.executable, "-m", "mmreason", "eval", "--model", "tiny:qwen2_5_vl", "--data",
                           str(tmp_path / "climbs"), "--task", "grounding", "--out", str(tmp_path / "ev")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "sample 'sneaky'" in proc.stderr and "MMREASON_ALLOW_MEDIA_OUTSIDE_ROOT" \
        in proc.stderr
    monkeypatch.setenv("MMREASON_ALLOW_MEDIA_OUTSIDE_ROOT", "1")
    assert len(list(S.load_rows(tmp_path / "climbs"))) == 2
