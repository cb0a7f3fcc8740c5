"""The collator on real tiny processors: labels, padding, truncation guard, placeholder checks, policies."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from mmreason.errors import MediaError, SchemaError
from mmreason.families import FAMILIES
from mmreason.geometry import ImageFrame
from mmreason.modalities.collate import IGNORE_INDEX, Collator, CollateStats, assistant_markers, collate
from mmreason.modalities.guards import (
    bad_words_ids, check_vision_tokens, forbid_placeholder_tokens, media_overflow, placeholder_token_ids,
)
from mmreason.modalities.video import VideoFrame, write_video

SMALL = {"image": {"min_pixels": 0, "max_pixels": 64 * 64}, "video": {"min_pixels": 0, "max_pixels": 64 * 64}}


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = AutoProcessor.from_pretrained(tiny_model_dir(family))
        return cache[family]

    return get


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("collate-data")
    Image.new("RGB", (64, 48), (200, 30, 30)).save(d / "red.png")
    Image.new("RGB", (48, 64), (30, 30, 200)).save(d / "blue.png")
    frames = [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(30)]
    write_video(d / "clip10.mp4", frames, 10)  # 3 s at 10 fps
    write_video(d / "clip5.mp4", frames[:15], 5)  # 3 s at 5 fps
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return d


def user(*parts):
    return {"role": "user", "content": list(parts)}


def text(t):
    return {"type": "text", "text": t}


def said(t):
    return {"role": "assistant", "content": [text(t)]}


def img(name):
    return {"type": "image", "image": name}


def labelled_text(proc, batch, i):
    lab = batch["labels"][i]
    return proc.tokenizer.decode(lab[lab != IGNORE_INDEX])


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen3_vl"])
def test_labels_cover_assistant_turns_only(processor, root, family):
    proc = processor(family)
    row = {"id": "t1", "messages": [
        {"role": "system", "content": [text("Be brief.")]},
        user(img("red.png"), text("Zoom in?")),
        said('<tool_call>{"name": "zoom"}</tool_call>'),
        {"role": "tool", "content": [img("blue.png"), text("OBSERVED")]},
        said("It is blue."),
    ]}
    batch = collate([row], proc, family, root=root, media_options=SMALL)
    got = labelled_text(proc, batch, 0)
    assert got == '<tool_call>{"name": "zoom"}</tool_call><|im_end|>It is blue.<|im_end|>'
    assert "OBSERVED" not in got and "Zoom" not in got
    fam = FAMILIES[family]
    image_id = proc.tokenizer.convert_tokens_to_ids(fam.image_token)
    assert not (batch["labels"] == image_id).any()
    assert [f.width for f in batch["frames"][0].images] == [64, 48]  # the observation image counts too


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_a_tool_turn_is_collated_as_the_observation_rollouts_append(processor, root, family):
    from mmreason.rollout.tokens import observation_text

    proc = processor(family)
    call = '<tool_call>{"name": "zoom"}</tool_call>'
    row = {"id": "t2", "messages": [user(img("red.png"), text("Zoom in?")), said(call),
                                    {"role": "tool", "content": [img("blue.png"), text("Zoomed in.")]},
                                    said("It is blue.")]}
    batch = collate([row], proc, family, root=root, media_options=SMALL)
    rendered = proc.tokenizer.decode(batch["input_ids"][0])
    fam = FAMILIES[family]
    # the run of image pads the processor expanded, back to the one marker the observation text holds
    rendered = re.sub(f"({re.escape(fam.image_token)})+", fam.image_token, rendered)
    assert call + observation_text(family, "Zoomed in.", images=1) + "It is blue." in rendered
    assert "<|im_start|>tool" not in rendered


def test_padding_sides_and_generation_prompts(processor, root):
    proc = processor("qwen2_5_vl")
    rows = [{"id": "short", "messages": [user(text("Hi")), said("Hello")]},
            {"id": "long",
             "messages": [user(img("red.png"), text("What colour is this picture?")), said("Red")]}]
    train = collate(rows, proc, "qwen2_5_vl", root=root, media_options=SMALL)
    assert train["attention_mask"][0, 0] == 1 and train["attention_mask"][0, -1] == 0  # right-padded
    gen = collate(rows, proc, "qwen2_5_vl", root=root, media_options=SMALL, mode="generate")
    assert "labels" not in gen
    assert gen["attention_mask"][0, 0] == 0 and gen["attention_mask"][:, -1].all()  # left-padded
    header, _ = assistant_markers(proc)
    for i in range(2):  # every prompt ends with the assistant header, and the answer is gone
        assert gen["input_ids"][i, -len(header):].tolist() == header
    assert "Red" not in proc.tokenizer.decode(gen["input_ids"][1])
    # The rollout prompt is exactly the start of the training sequence (the GRPO invariant).
    for i in range(2):
        g = gen["input_ids"][i][gen["attention_mask"][i].bool()].tolist()
        t = train["input_ids"][i][train["attention_mask"][i].bool()].tolist()
        assert t[:len(g)] == g


def test_overflow_never_cuts_media(processor, root):
    proc = processor("qwen2_5_vl")
    late_image = {"id": "late", "messages": [user(text("word " * 40), img("red.png"), text("?")), said("ok")]}
    long_answer = {"id": "chatty", "messages": [user(img("red.png"), text("?")), said("blah " * 60)]}
    fine = {"id": "fine", "messages": [user(img("blue.png"), text("?")), said("blue")]}
    with pytest.raises(ValueError, match="'late'.*max_length=40"):
        collate([late_image, fine], proc, "qwen2_5_vl", root=root, media_options=SMALL, max_length=40)
    stats = CollateStats()
    batch = collate([late_image, fine, long_answer], proc, "qwen2_5_vl", root=root, media_options=SMALL,
                    max_length=40, on_overflow="drop", stats=stats)
    assert batch["ids"] == ["fine", "chatty"] and stats.dropped_overflow == 1
    assert stats.truncated == 1 and batch["input_ids"].shape[1] == 40  # text after the image may go
    assert (batch["labels"][1] != IGNORE_INDEX).sum() > 0
    check_vision_tokens(batch, proc, "qwen2_5_vl")
    with pytest.raises(ValueError, match="cut the prompt"):
        collate([long_answer], proc, "qwen2_5_vl", root=root, media_options=SMALL, max_length=10,
                mode="generate")
    assert media_overflow([1, 5, 5, 2], 2, [5]) and not media_overflow([1, 5, 5, 2], 3, [5])


def test_placeholder_check_catches_lost_or_extra_vision_tokens(processor, root):
    proc = processor("qwen2_vl")
    rows = [{"id": "a", "messages": [user(img("red.png"), text("?")), said("x")]},
            {"id": "b", "messages": [user(text("no image")), said("y")]}]
    batch = collate(rows, proc, "qwen2_vl", root=root, media_options=SMALL)
    check_vision_tokens(batch, proc, "qwen2_vl")
    image_id = proc.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    cut = dict(batch, input_ids=batch["input_ids"].clone())
    pos = (cut["input_ids"][0] == image_id).nonzero()[0, 0]
    cut["input_ids"][0, pos] = proc.tokenizer.pad_token_id
    with pytest.raises(ValueError, match="image placeholders do not match"):
        check_vision_tokens(cut, proc, "qwen2_vl", ids=["a", "b"])
    fewer = dict(batch, pixel_values=batch["pixel_values"][:-4])
    with pytest.raises(ValueError, match="pixel_values has"):
        check_vision_tokens(fewer, proc, "qwen2_vl")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_forbidden_placeholder_tokens(processor, family):
    proc = processor(family)
    fam = FAMILIES[family]
    ids = placeholder_token_ids(proc, family)
    for token in fam.placeholder_tokens:
        assert proc.tokenizer.convert_tokens_to_ids(token) in ids
    assert [[i] for i in ids] == bad_words_ids(proc, family)
    scores = torch.zeros(2, len(proc.tokenizer))
    out = forbid_placeholder_tokens(proc, family)(torch.zeros(2, 3, dtype=torch.long), scores)
    assert torch.isinf(out[:, ids]).all()
    assert torch.isfinite(out).sum() == 2 * (len(proc.tokenizer) - len(ids))


def test_media_errors_raise_or_skip_with_count(processor, root):
    proc = processor("qwen2_vl")
    bad = {"id": "bad-1", "messages": [user(img("broken.png"), text("?")), said("x")]}
    good = {"id": "good", "messages": [user(img("red.png"), text("?")), said("y")]}
    with pytest.raises(MediaError, match="bad-1.*broken.png"):
        collate([good, bad], proc, "qwen2_vl", root=root, media_options=SMALL)
    collator = Collator(proc, "qwen2_vl", root=root, media_options=SMALL, on_error="skip")
    batch = collator([good, bad])
    assert batch["ids"] == ["good"] and collator.stats.skipped_media == 1 and collator.stats.samples == 1
    with pytest.raises(MediaError, match="every sample"):
        collator([bad])
    with pytest.raises(SchemaError, match="assistant"):
        collate([{"id": "q", "messages": [user(text("?"))]}], proc, "qwen2_vl")
    with pytest.raises(ValueError, match="mode"):
        collate([good], proc, "qwen2_vl", mode="eval")


def test_frames_follow_ground_truth_image_order(processor, root):
    proc = processor("qwen2_5_vl")
    video = {"type": "video", "video": "clip10.mp4", "nframes": 4}
    shot = {"type": "screenshot", "screenshot": "blue.png"}
    row = {"id": "m", "messages": [user(img("red.png"), video, shot, text("?")), said("z")]}
    batch = collate([row], proc, "qwen2_5_vl", root=root, media_options=SMALL)
    frames = batch["frames"][0]
    assert [type(f) for f in frames.images] == [ImageFrame, ImageFrame]
    assert (frames.images[0].width, frames.images[1].width) == (64, 48)
    assert isinstance(frames.videos[0], VideoFrame)
    assert [k for k, _ in frames.media] == ["image", "video", "screenshot"]
    grid = batch["image_grid_thw"].tolist()  # the processor saw exactly the recorded sizes
    assert grid == [[1, f.resized_height // 14, f.resized_width // 14] for f in frames.images]


def test_video_timing_reaches_each_processor(processor, root):
    first = {"type": "video", "video": "clip10.mp4", "nframes": 4}
    second = {"type": "video", "video": "clip5.mp4", "nframes": 6}
    row = {"id": "v", "messages": [user(first, second, text("?")), said("z")]}
    # Qwen3-VL writes each temporal patch's time into the prompt, from our sampled indices.
    proc = processor("qwen3_vl")
    batch = collate([row], proc, "qwen3_vl", root=root, media_options=SMALL)
    rendered = proc.tokenizer.decode(batch["input_ids"][0])
    for f in batch["frames"][0].videos:
        ts = f.timestamps
        for k in range(0, len(ts), 2):
            assert f"<{(ts[k] + ts[k + 1]) / 2:.1f} seconds>" in rendered
    # Qwen2.5-VL and the Omni family turn each video's own sampled rate into seconds per temporal patch.
    for family, key in (("qwen2_5_vl", "second_per_grid_ts"), ("qwen2_5_omni", "video_second_per_grid")):
        proc = processor(family)
        batch = collate([row], proc, family, root=root, media_options=SMALL)
        want = [2 / f.sampled_fps for f in batch["frames"][0].videos]
        assert batch[key].tolist() == pytest.approx(want)
        assert want[0] != pytest.approx(want[1])  # the two clips differ, and so must their timing


def test_rows_read_back_from_parquet_collate_like_in_memory_rows(processor, root, tmp_path):
    from mmreason.schema import load_rows, new_row, write_parquet

    proc = processor("qwen2_5_vl")
    rows = [new_row("p1", [user(img("red.png"), text("Colour?")), said("red")], answer="red"),
            new_row("p2", [user({"type": "video", "video": "clip10.mp4", "nframes": 4}, text("?")),
                           said("grey")])]
    write_parquet(rows, tmp_path)
    read = list(load_rows(tmp_path))
    a = collate(rows, proc, "qwen2_5_vl", root=root, media_options=SMALL)
    b = collate(read, proc, "qwen2_5_vl", root=root, media_options=SMALL)
    assert a["ids"] == b["ids"] and a["frames"] == b["frames"]
    for key in ("input_ids", "labels", "pixel_values", "pixel_values_videos", "video_grid_thw"):
        assert torch.equal(a[key], b[key])


def test_overflow_that_would_leave_no_answer_is_not_cut(processor, root):
    proc = processor("qwen2_vl")
    long_question = {"id": "wordy", "messages": [user(img("red.png"), text("why " * 60)), said("because")]}
    with pytest.raises(ValueError, match="'wordy'.*every answer token"):
        collate([long_question], proc, "qwen2_vl", root=root, media_options=SMALL, max_length=40)
    with pytest.raises(ValueError, match="every sample in the batch exceeds"):
        collate([long_question], proc, "qwen2_vl", root=root, media_options=SMALL, max_length=40,
                on_overflow="drop")


@pytest.mark.parametrize("options,reason", [
    ({"min_pixels": 1e10}, r"min_pixels 10000000000 is over the ceiling of 4096 pixels"),
    ({"max_pixels": 10**9}, r"max_pixels 1000000000 is over the ceiling"),
    ({"min_pixels": 2000, "max_pixels": 1000}, r"min_pixels 2000 exceeds max_pixels 1000"),
    ({"min_pixels": "lots"}, r"min_pixels must be a whole number of pixels, got 'lots'"),
])
def test_a_rows_own_pixel_budget_is_bounded_by_the_recipes(processor, root, options, reason):
    # one row asking for 1e10 pixels grew the collator to 24 GB; now it is a named error costing that row
    proc = processor("qwen2_vl")
    greedy = {"id": "greedy-7", "messages": [user({**img("red.png"), **options}, text("?")), said("x")]}
    good = {"id": "good", "messages": [user(img("red.png"), text("?")), said("y")]}
    with pytest.raises(MediaError, match=r"greedy-7.*red\.png: .*" + reason):
        collate([good, greedy], proc, "qwen2_vl", root=root, media_options=SMALL)
    collator = Collator(proc, "qwen2_vl", root=root, media_options=SMALL, on_error="skip")
    assert collator([good, greedy])["ids"] == ["good"] and collator.stats.skipped_media == 1


@pytest.mark.parametrize("value", [5, {"path": "red.png"}])
def test_an_image_value_that_is_no_path_names_the_sample(processor, root, value):
    proc = processor("qwen2_vl")
    odd = {"id": "odd-3", "messages": [user({"type": "image", "image": value}, text("?")), said("x")]}
    kind = type(value).__name__
    with pytest.raises(MediaError, match=f"sample 'odd-3'.*must be a path, bytes or a PIL image, not {kind}"):
        collate([odd], proc, "qwen2_vl", root=root, media_options=SMALL)
