"""Datasets from the recipe (canonical, other formats, builders) and the collator's media options."""

import io
import json

import pytest
from PIL import Image

from mmreason.config import load_recipe_dict
from mmreason.errors import RecipeError
from mmreason.schema import write_jsonl
from mmreason.train.data import build_finished, build_once, load_data, media_options


def recipe(tmp_path, **sections):
    return load_recipe_dict({"output_dir": str(tmp_path / "out"), **sections})


def test_datasets_of_every_kind_load_with_absolute_media(tmp_path):
    canon = tmp_path / "canon"
    canon.mkdir()
    Image.new("RGB", (8, 8)).save(canon / "a.png")
    write_jsonl([{"id": "c0", "task": "vqa", "source": "s", "messages": [
        {"role": "user", "content": [{"type": "image", "image": "a.png"}, {"type": "text", "text": "?"}]}]}],
        canon / "rows.jsonl")
    easy = tmp_path / "easy"
    easy.mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buf, format="PNG")
    (easy / "train.jsonl").write_text(json.dumps({"problem": "<image>Colour?", "answer": "red",
                                                 "images": [{"bytes": list(buf.getvalue())}]}) + "\n")
    rows = load_data(recipe(tmp_path, data={"train": [str(canon)]})).rows
    assert rows[0]["messages"][0]["content"][0]["image"] == str(canon / "a.png")
    rows = load_data(recipe(tmp_path, data={"train": [str(easy)], "format": "easyr1"})).rows
    (part,) = [p for p in rows[0]["messages"][0]["content"] if p["type"] == "image"]
    assert rows[0]["answer"] == "red" and Image.open(part["image"]).getpixel((0, 0)) == (255, 0, 0)
    assert str(tmp_path / "out" / "data") in part["image"]  # in-memory media go to output_dir, not the dataset


def test_builder_data_is_built_once_into_output_dir(tmp_path):
    r = recipe(tmp_path, data={"train": ["builder:image_scenes?n=2&seed=1&qtypes=[color]"]})
    first = load_data(r)
    assert len(first) == 2 and all(row["source"] == "image_scenes" for row in first.rows)
    assert load_data(r).rows == first.rows  # the second call reuses the finished build
    with pytest.raises(RecipeError, match=r"a builder needs n="):
        load_data(recipe(tmp_path, data={"train": ["builder:image_scenes?seed=1"]}))
    with pytest.raises(RecipeError, match="data.train is empty"):
        load_data(recipe(tmp_path))
    with pytest.raises(RecipeError, match="does not exist"):
        load_data(recipe(tmp_path, data={"train": [str(tmp_path / "nope")]}))


def test_media_options():
    r = load_recipe_dict({"model": {"min_pixels": 3136, "max_pixels": 50176}, "data": {"video": {"nframes": 8}}})
    assert media_options(r) == {"image": {"min_pixels": 3136, "max_pixels": 50176}, "video": {"nframes": 8}}


def test_a_finished_build_is_read_untouched_and_an_unfinished_one_resumes(tmp_path):
    out = tmp_path / "scenes"
    build = dict(n=2, seed=1, options={"qtypes": ["color"]})
    assert build_once("builder:image_scenes?n=2&seed=1", out, "image_scenes", **build) is True
    manifest = out / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    assert build_once("builder:image_scenes?n=2&seed=1", out, "image_scenes", **build) is False
    assert manifest.stat().st_mtime_ns == stamp  # nothing rewritten while another process may read it
    assert build_finished(out, 2, 1) and not build_finished(out, 3, 1) and not build_finished(out, 2, 0)
    manifest.unlink()  # what a build killed before its last write leaves
    assert build_once("builder:image_scenes?n=2&seed=1", out, "image_scenes", **build) is True
    assert build_finished(out, 2, 1)


def test_sft_targets_move_into_the_model_frame_video_rows_stay(tmp_path):
    from mmreason.schema import text_of
    from mmreason.train.data import in_model_frame

    Image.new("RGB", (560, 280), "white").save(tmp_path / "a.png")
    answer = '<think>{"bbox_2d": [280, 140, 560, 280]}</think><answer>1</answer>'
    question = {"type": "text", "text": "q"}
    rows = [{"id": "pic", "task": "counting", "source": "s", "messages": [
                {"role": "user", "content": [{"type": "image", "image": "a.png"}, question]},
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}],
             "meta": {"coord_frame": "pixel", "image_size": [560, 280]}},
            {"id": "clip", "task": "counting", "source": "s", "messages": [
                {"role": "user", "content": [{"type": "video", "video": "a.mp4"}, question]},
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}],
             "meta": {"coord_frame": "pixel", "image_size": [560, 280]}}]
    write_jsonl(rows, tmp_path / "rows.jsonl")
    sft = recipe(tmp_path, model={"path": "tiny:qwen2_5_vl", "max_pixels": 140 * 70},
                 data={"train": [str(tmp_path / "rows.jsonl")]})
    framed = in_model_frame(sft, load_data(sft))
    # 560x280 at a 140x70 budget: Qwen2.5-VL answers in pixels of the 140x56 (multiples of 28) picture
    assert text_of(framed.rows[0]["messages"][1]).startswith('<think>{"bbox_2d": [70, 28, 140, 56]}')
    assert text_of(framed.rows[1]["messages"][1]) == answer
