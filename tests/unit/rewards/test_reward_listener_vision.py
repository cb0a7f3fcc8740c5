"""The listener as a VLM that sees the row's picture, on the offline tiny Qwen2.5-VL checkpoint."""

import math

import pytest
import torch
from PIL import Image

from mmreason.errors import RecipeError
from mmreason.rewards import bind_reward
from mmreason.rewards import listener as L

REASONING = "<think>the shape on the left is the red one</think><answer>[hidden]</answer>"


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return str(tiny_model_dir("qwen2_5_vl"))


@pytest.fixture()
def pictures(tmp_path):
    paths = []
    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        Image.new("RGB", (56, 56), colour).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    return paths


def row_with(image, answer="A"):
    return {"id": f"r-{image}", "answer": answer, "messages": [{"role": "user", "content": [
        {"type": "image", "image": image}, {"type": "text", "text": "Which side is red? A. left B. right"}]}]}


def test_what_the_listener_says_depends_on_the_picture_it_sees(model_dir, pictures):
    seeing = L.ListenerConfig(model=model_dir)
    red, blue = L.choice_probabilities([REASONING] * 2, ["Which side is red?"] * 2, [["A", "B"]] * 2, seeing,
                                       [[pictures[0]], [pictures[1]]])
    assert sum(red) == pytest.approx(1.0) and red != pytest.approx(blue, abs=1e-6)
    # without pictures (the text-only listener) the two rows are the same question: the same answer
    blind = L.choice_probabilities([REASONING] * 2, ["Which side is red?"] * 2, [["A", "B"]] * 2, seeing)
    assert blind[0] == pytest.approx(blind[1], abs=1e-7) and blind[0] != pytest.approx(red, abs=1e-6)


def test_option_scores_match_a_direct_forward_pass_over_the_picture(model_dir, pictures):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    cfg = L.ListenerConfig(model=model_dir, batch_size=2)
    options = ["A", "B. right"]
    probs = L.choice_probabilities([REASONING], ["Which?"], [options], cfg, [[pictures[0]]])[0]
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    user = cfg.prompt.format(question="Which?", reasoning=REASONING)
    prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user}]}]
    image = Image.open(pictures[0]).convert("RGB")  # 56 px: a multiple of 28, so no resizing either way
    head = processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    scores = []
    for option in options:
        inputs = processor(text=[head + option], images=[image], return_tensors="pt")
        ids = inputs["input_ids"][0]
        k = len(processor.tokenizer(option, add_special_tokens=False)["input_ids"])
        with torch.inference_mode():
            logp = torch.log_softmax(model(**inputs).logits.float(), -1)[0]
        n = len(ids)
        scores.append(sum(float(logp[n - k - 1 + j, ids[n - k + j]]) for j in range(k)))
    top = max(scores)
    direct = [math.exp(s - top) for s in scores]
    assert probs == pytest.approx([d / sum(direct) for d in direct], abs=1e-4)


def test_the_reward_shows_the_rows_picture_from_a_path_or_trl_images(model_dir, pictures, tmp_path):
    seen = {}
    reward = bind_reward("listener", listener={"model": model_dir})
    comp = "<think>the shape on the left is the red one</think><answer>A</answer>"
    by_path = reward([comp], messages=[row_with(pictures[0])["messages"]], answer=["A"],
                     log_metric=lambda k, v: seen.__setitem__(k, v))
    assert seen["listener/saw_images"] == 1.0
    question_only = [{"role": "user", "content": [row_with(pictures[0])["messages"][0]["content"][1]]}]
    by_trl = reward([comp], images=[[Image.open(pictures[0]).convert("RGB")]], messages=[question_only],
                    answer=["A"])
    assert by_path == pytest.approx(by_trl, abs=1e-5)
    blue = reward([comp], messages=[row_with(pictures[1])["messages"]], answer=["A"])
    assert blue != pytest.approx(by_path, abs=1e-6)
    # the text-only listener is still there: it ignores the picture
    text_only = bind_reward("listener", listener={"model": model_dir, "sees_images": False})
    assert text_only([comp], messages=[row_with(pictures[0])["messages"]], answer=["A"]) == pytest.approx(
        text_only([comp], messages=[row_with(pictures[1])["messages"]], answer=["A"]), abs=1e-7)
    # a relative path is read under image_root
    relative = bind_reward("listener", listener={"model": model_dir, "image_root": str(tmp_path)})
    assert relative([comp], messages=[row_with("red.png")["messages"]], answer=["A"]) == pytest.approx(by_path,
                                                                                                     abs=1e-5)


def test_a_missing_picture_names_the_sample_and_the_file(model_dir, tmp_path):
    reward = bind_reward("listener", listener={"model": model_dir})
    row = row_with(str(tmp_path / "gone.png"))
    with pytest.raises(RecipeError, match=r"sample 'r-[^']*gone.png': image \S*gone.png not found"):
        reward(["<think>x</think><answer>A</answer>"], id=[row["id"]], messages=[row["messages"]], answer=["A"])
    with pytest.raises(RecipeError, match="image_root"):
        reward(["<think>x</think><answer>A</answer>"], id=["q7"], messages=[row_with("rel.png")["messages"]],
               answer=["A"])
