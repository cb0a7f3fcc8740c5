"""DeepEyes' data filters on a tiny model's real rollouts.

Fast: the random tiny model with a forced answer (every rollout says red) gives pass rates 1 and 0, both
dropped; the zoom call lands on the ground-truth region; a row without one is named before any rollout.
Slow (a short SFT first, so each outcome comes from the model itself): it answers "What colour?" red or
blue at random (pass rate strictly between 0 and 1: kept), "What shape?" always square (1: dropped), and
"What is in the corner?" blue when it answers at once but red after a zoom (the crop the tool returns)."""

import json

import pytest
from PIL import Image, ImageDraw

from mmreason.rollout import RolloutConfig
from mmreason.schema import write_jsonl
from mmreason.train.filters import difficulty_filter, reward_judge, tool_utility_filter, zoom_call
from mmreason.train.logging import read_jsonl

REGION = [0, 0, 40, 40]
SFT = """model: {{path: {model}, dtype: float32, min_pixels: 3136, max_pixels: 3136}}
data: {{train: [{data}]}}
seed: 0
sft: {{epochs: 100, lr: 5.0e-3, batch_size: 4, warmup: 0, scheduler: linear, max_steps: 150, logging_steps: 50,
      save_steps: 1000}}
"""


def user(image, text):
    return {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}


def said(text):
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    from mmreason.models import load
    from mmreason.train import sft

    root = tmp_path_factory.mktemp("filters")
    image = Image.new("RGB", (56, 56), (200, 200, 200))
    ImageDraw.Draw(image).rectangle((4, 4, 30, 30), fill=(220, 30, 30))
    image.save(root / "scene.png")
    image.crop(REGION).save(root / "crop.png")
    call = "<tool_call>\n" + json.dumps({"name": "image_zoom_in_tool", "arguments": {"bbox_2d": REGION}}) + "\n</tool_call>"
    rows = [[user("scene.png", "What colour?"), said(f"<answer>{c}</answer>")] for c in ["red", "blue"] * 4]
    rows += [[user("scene.png", "What shape?"), said("<answer>square</answer>")]] * 4
    rows += [[user("scene.png", "What is in the corner?"), said("<answer>blue</answer>")]] * 4
    rows += [[user("scene.png", "What is in the corner?"), said(call),
              {"role": "tool", "content": [{"type": "image", "image": "crop.png"}]}, said("<answer>red</answer>")]] * 4
    write_jsonl([{"id": f"s{i}", "task": "vqa", "source": "filters", "messages": m} for i, m in enumerate(rows)],
                root / "sft.jsonl")
    (root / "sft.yaml").write_text(SFT.format(model=tiny_model_dir("qwen2_5_vl"), data=root / "sft.jsonl"))
    assert sft.main([str(root / "sft.yaml"), f"output_dir={root / 'out'}"]) == 0
    assert read_jsonl(root / "out" / "metrics.jsonl")
    model, processor = load(root / "out" / "final")
    return model, processor, str(root / "scene.png")


def question(i, image, text, answer, **extra):
    return {"id": f"q{i}", "answer": answer, "messages": [user(image, text)], **extra}


def test_difficulty_filter_drops_questions_always_or_never_solved(tiny_model, tmp_path):
    model, processor = tiny_model("qwen2_5_vl")
    Image.new("RGB", (56, 56), (220, 30, 30)).save(tmp_path / "a.png")
    rows = [question(0, str(tmp_path / "a.png"), "What colour?", "red"),
            question(1, str(tmp_path / "a.png"), "What colour?", "blue")]
    config = RolloutConfig(max_new_tokens=4, max_completion_tokens=16, seed=0)
    verdicts = difficulty_filter(model, processor, rows, "qwen2_5_vl", k=3, correct=reward_judge(), config=config,
                                 forced={0: "<answer>red</answer>"})
    assert [(v.id, v.pass_rate, v.keep) for v in verdicts] == [("q0", 1.0, False), ("q1", 0.0, False)]


def test_the_zoom_call_lands_on_the_region_and_a_row_without_one_is_named(tiny_model, tmp_path):
    from mmreason.errors import RecipeError
    from mmreason.tools import ToolSettings

    model, processor = tiny_model("qwen2_5_vl")
    Image.new("RGB", (112, 56)).save(tmp_path / "wide.png")
    row = question(0, str(tmp_path / "wide.png"), "What is in the corner?", "red", boxes=[{"box": [56, 0, 112, 56]}])
    options = {"image": {"min_pixels": 3136, "max_pixels": 3136}}  # the 112 x 56 image is shown at 56 x 28
    in_pixels = json.loads(zoom_call(row, "qwen2_5_vl", settings=ToolSettings(coord_frame="pixel"),
                                      media_options=options).split("\n")[1])["arguments"]["bbox_2d"]
    resized = json.loads(zoom_call(row, "qwen2_5_vl", media_options=options).split("\n")[1])["arguments"]["bbox_2d"]
    assert in_pixels == [56, 0, 112, 56] and resized == [28, 0, 56, 28]
    with pytest.raises(RecipeError, match="sample 'q5' has no rationale_regions or boxes"):
        tool_utility_filter(model, processor, [question(5, str(tmp_path / "wide.png"), "Corner?", "red")],
                            "qwen2_5_vl", correct=reward_judge())


@pytest.mark.slow
def test_difficulty_filter_keeps_only_questions_the_model_sometimes_solves(trained):
    model, processor, image = trained
    rows = [question(0, image, "What colour?", "red"), question(1, image, "What colour?", "green"),
            question(2, image, "What shape?", "square")]
    config = RolloutConfig(max_new_tokens=12, max_completion_tokens=12, temperature=0.5, seed=0)
    verdicts = difficulty_filter(model, processor, rows, "qwen2_5_vl", k=12, correct=reward_judge(), config=config)
    assert [v.id for v in verdicts] == ["q0", "q1", "q2"]
    assert 0 < verdicts[0].pass_rate < 1 and verdicts[0].keep  # red or blue: sometimes right
    assert verdicts[1].pass_rate == 0 and not verdicts[1].keep  # never green
    assert verdicts[2].pass_rate == 1 and not verdicts[2].keep  # always square


@pytest.mark.slow
def test_tool_utility_filter_keeps_questions_only_a_zoom_on_the_region_solves(trained):
    model, processor, image = trained
    region = {"rationale_regions": [{"box": REGION, "image": 0}]}
    rows = [question(0, image, "What is in the corner?", "red", **region),
            question(1, image, "What is in the corner?", "blue", **region)]
    assert json.loads(zoom_call(rows[0], "qwen2_5_vl").split("\n")[1])["arguments"]["bbox_2d"] == REGION
    config = RolloutConfig(max_new_tokens=24, max_completion_tokens=96)
    verdicts = tool_utility_filter(model, processor, rows, "qwen2_5_vl", correct=reward_judge(), config=config)
    assert (verdicts[0].pass_rate, verdicts[0].pass_rate_with, verdicts[0].keep) == (0.0, 1.0, True)
    assert (verdicts[1].pass_rate, verdicts[1].pass_rate_with, verdicts[1].keep) == (1.0, 0.0, False)
