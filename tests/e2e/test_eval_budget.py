"""`mmreason eval`'s pixel budgets: a checkpoint is evaluated at the image and video budgets its processor
was saved with (not the family's released default, which gave a tiny model 16k vision tokens per picture),
the user's flag still wins, and a row over the budget is an error naming its file and sample."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import AutoProcessor

from mmreason import cli
from mmreason.families import get_family
from mmreason.schema import write_jsonl

SIDE = 1400  # ~2M pixels: 2500 merged tokens at the family's default budget, 256 at the tiny one's


def _rows(root: Path, part_extra: dict | None = None, task: str = "grounding") -> Path:
    pixels = np.random.default_rng(0).integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "big.png")
    part = {"type": "image", "image": "big.png", **(part_extra or {})}
    row = {"id": "big-0", "task": task, "source": "t", "answer": "[1, 1, 9, 9]",
           "messages": [{"role": "user", "content": [part, {"type": "text", "text": "Where is the square?"}]}],
           "boxes": [{"box": [1, 1, 9, 9]}]}
    write_jsonl([row], root / "rows.jsonl")
    return root / "rows.jsonl"


def _eval(*argv) -> int:
    return cli.main(["eval", *map(str, argv), "--max-new-tokens", "2", "--quiet"])


def _tokens(out: Path) -> int:
    sample = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    frame = sample["image_frames"][0]
    return frame["resized_width"] * frame["resized_height"] // get_family("qwen2_5_vl").factor ** 2


def test_eval_feeds_a_large_image_at_the_checkpoint_processors_budget(tiny_model_dir, tmp_path):
    model = tiny_model_dir("qwen2_5_vl")
    data = _rows(tmp_path)
    saved = AutoProcessor.from_pretrained(model).image_processor.size["longest_edge"]  # as transformers reads it
    assert saved < get_family("qwen2_5_vl").max_pixels  # the tiny model's budget is not the family's

    assert _eval("--model", model, "--data", data, "--task", "grounding", "--out", tmp_path / "a") == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["image_budget"]["max_pixels"] == saved and results["media"]["image"]["max_pixels"] == saved
    # what the model saw (the collator does not resize again): at most the checkpoint's budget in tokens
    assert _tokens(tmp_path / "a") <= saved // 28 ** 2 < math.ceil(SIDE / 28) ** 2

    # the user's flag wins over the checkpoint
    assert _eval("--model", model, "--data", data, "--task", "grounding", "--out", tmp_path / "b",
                 "--max-pixels", 50176) == 0
    assert _tokens(tmp_path / "b") <= 64


def test_the_saved_budget_is_read_from_either_processor_file(tmp_path):
    from mmreason.eval.run_setup import checkpoint_image_budget

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "preprocessor_config.json").write_text(json.dumps({"min_pixels": 3136,
                                                                         "max_pixels": 200704}))
    assert checkpoint_image_budget(tmp_path / "old") == {"min_pixels": 3136, "max_pixels": 200704}
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "processor_config.json").write_text(json.dumps(
        {"image_processor": {"size": {"shortest_edge": 65536, "longest_edge": 16777216}}}))
    assert checkpoint_image_budget(tmp_path / "new") == {"min_pixels": 65536, "max_pixels": 16777216}
    assert checkpoint_image_budget(tmp_path) == {}  # nothing saved: the family's default applies


@pytest.mark.parametrize("how", ["generate", "rescore"])
def test_a_row_over_the_budget_is_an_error_naming_file_and_sample(tiny_model_dir, tmp_path, capsys, how):
    data = _rows(tmp_path, {"max_pixels": 50_000_000}, task="gui_grounding" if how == "generate" else "grounding")
    if how == "generate":  # screenspot's prompt states the screen size, so the budget is read before the model
        argv = ["--model", tiny_model_dir("qwen2_5_vl"), "--task", "screenspot"]
    else:  # re-scoring outputs saved without their frames recomputes them at the budget
        preds = tmp_path / "preds.jsonl"
        preds.write_text(json.dumps({"id": "big-0", "output": "[1, 1, 9, 9]"}) + "\n")
        argv = ["--predictions", preds, "--family", "qwen2_5_vl", "--task", "grounding"]
    assert _eval(*argv, "--data", data, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "sample 'big-0'" in err and str(tmp_path / "big.png") in err and "max_pixels 50000000" in err


def test_eval_feeds_video_frames_at_the_checkpoint_processors_video_budget(tiny_model_dir, tmp_path):
    from mmreason.eval.run_setup import checkpoint_image_budget
    from mmreason.modalities.video import write_video

    model = tiny_model_dir("qwen2_5_vl")
    video = AutoProcessor.from_pretrained(model).video_processor  # as transformers reads it back
    saved = {"min_pixels": video.size["shortest_edge"], "max_pixels": video.size["longest_edge"]}
    assert checkpoint_image_budget(model, "video") == saved
    assert saved["max_pixels"] < get_family("qwen2_5_vl").max_pixels  # not the family's default
    frames = [np.full((224, 224, 3), 20 * k, np.uint8) for k in range(8)]
    write_video(tmp_path / "clip.mp4", frames, 4)
    row = {"id": "v-0", "task": "temporal_grounding", "source": "t", "answer": "0.5 to 1.0",
           "messages": [{"role": "user", "content": [{"type": "video", "video": "clip.mp4"},
                                                     {"type": "text", "text": "When does it brighten?"}]}],
           "time_spans": [{"start": 0.5, "end": 1.0}]}
    write_jsonl([row], tmp_path / "rows.jsonl")
    assert _eval("--model", model, "--data", tmp_path / "rows.jsonl", "--task", "temporal_grounding",
                 "--out", tmp_path / "v") == 0
    results = json.loads((tmp_path / "v" / "results.json").read_text())
    assert results["media"]["video"] == {"fps": 2.0, **saved}  # the task's fps pin, the checkpoint's frames
    # an image task never gains a video budget
    image_rows = _rows(tmp_path)
    assert _eval("--model", model, "--data", image_rows, "--task", "grounding", "--out", tmp_path / "i") == 0
    assert "video" not in json.loads((tmp_path / "i" / "results.json").read_text())["media"]
