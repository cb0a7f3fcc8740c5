"""`mmreason quickstart` end to end: build, ask, fine-tune, parse, map back, score; files where it says."""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest


def test_quickstart_cli_runs_and_reports(tmp_path):
    out = tmp_path / "qs"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "mmreason", "quickstart", "--out", str(out), "--steps", "2",
                           "--held-out", "2"],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout
    for line in ("prompt       :", "raw output   :", "parsed boxes :", "ground truth :", "IoU          :",
                 "fine-tuned   : 2 steps", "summary      :"):
        assert line in printed, (line, printed)
    assert "<|vision_start|><|image_pad|><|vision_end|>" in printed

    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 2 and len(result["losses"]) == 2
    assert all(math.isfinite(loss) and loss > 0 for loss in result["losses"])
    after = result["after"][0]
    # what was printed is what was measured: the parsed boxes and IoU of the first held-out image
    assert f"IoU          : {after['iou']:.3f}" in printed
    assert 0.0 <= result["mean_iou"] <= 1.0
    assert (out / "held_out.png").is_file()
    assert (out / "finetuned" / "model.safetensors").is_file()
    assert (out / "tiny-qwen2_5_vl" / "mmreason_tiny.json").is_file()


def test_quickstart_reuses_the_tiny_model_and_fine_tuned_checkpoint_loads(tmp_path, capsys, tiny_model_dir):
    from mmreason.models import load
    from mmreason.train.quickstart import main

    out = tmp_path / "qs"
    shutil.copytree(tiny_model_dir("qwen2_5_vl"), out / "tiny-qwen2_5_vl")  # the same build: seed 0
    assert main(["--out", str(out), "--steps", "1", "--held-out", "1"]) == 0
    assert "reused" in capsys.readouterr().out
    model, processor = load(out / "finetuned")
    assert model.config.model_type == "qwen2_5_vl" and processor.tokenizer.eos_token == "<|im_end|>"


def test_answer_in_resized_pixels_maps_back_to_the_original_box():
    from mmreason.geometry import ImageFrame
    from mmreason.train.quickstart import Example, answer_for, score

    example = Example(image=None, box=(75.0, 30.0, 150.0, 90.0))
    frame = ImageFrame(width=150, height=120, resized_width=140, resized_height=112)
    target = answer_for(example, frame)
    assert target == '{"bbox_2d": [70, 28, 140, 84]}'
    result = score("<think>right half</think>" + target, example, frame)
    assert result["boxes"] == [(70, 28, 140, 84)]
    assert result["box_pixels"] == pytest.approx((75.0, 30.0, 150.0, 90.0))
    assert result["iou"] == pytest.approx(1.0)
    assert score("no box here", example, frame)["iou"] == 0.0


@pytest.mark.slow
def test_quickstart_default_run_beats_a_blind_guess(tmp_path, capsys):
    from mmreason.train.quickstart import main

    assert main(["--out", str(tmp_path / "qs")]) == 0
    result = json.loads((tmp_path / "qs" / "result.json").read_text())
    assert all(r["boxes"] for r in result["after"])  # every answer parses to a box
    assert result["mean_iou"] > result["centre_guess_iou"]
