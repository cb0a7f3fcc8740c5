"""Listener reward and the local-model judge backend, on the offline tiny Qwen2.5-VL checkpoint."""

import math

import pytest
import torch

from mmreason.errors import RecipeError
from mmreason.rewards import bind_reward
from mmreason.rewards import listener as L
from mmreason.rewards.judge import JudgeConfig, JudgeItem, judge


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return str(tiny_model_dir("qwen2_5_vl"))


def test_mask_answer_hides_every_answer_block():
    text = "<think>the left one is red</think><answer>A</answer> again <answer>A"
    masked = "<think>the left one is red</think><answer>[?]</answer> again <answer>[?]"
    assert L.mask_answer(text, "[?]") == masked
    assert L.mask_answer("no answer here") == "no answer here"


def test_candidates_and_correct_index():
    cfg = L.ListenerConfig(model="m")
    assert L.candidates({}, "C", cfg) == ["A", "B", "C"]
    assert L.candidates({}, "A", cfg) == ["A", "B"]
    assert L.candidates({"choices": ["left", "right"]}, "right", cfg) == ["left", "right"]
    assert L.candidates({"meta": {"options": ["x", "y"]}}, "y", cfg) == ["x", "y"]
    assert L.candidates({}, "red", cfg) is None
    assert L.correct_index(["Image 1", "Image 2"], "image 2") == 1
    assert L.correct_index(["A. cat", "B. dog"], "B") == 1


def test_choice_probabilities_match_a_direct_forward_pass(model_dir):
    cfg = L.ListenerConfig(model=model_dir, batch_size=3)
    probs = L.choice_probabilities(["<think>it is the first</think><answer>[hidden]</answer>"], ["Which?"],
                                   [["A", "B", "C"]], cfg)[0]
    assert len(probs) == 3 and sum(probs) == pytest.approx(1.0) and all(0 < p < 1 for p in probs)
    # the same numbers from one un-batched forward pass per option
    tokenizer, model = L._load(cfg)
    reasoning = "<think>it is the first</think><answer>[hidden]</answer>"
    user = cfg.prompt.format(question="Which?", reasoning=reasoning)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                           tokenize=True, return_dict=True)["input_ids"]
    scores = []
    for option in ["A", "B", "C"]:
        ids = list(prompt) + tokenizer(option, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits.float(), -1)[0]
        k = len(ids) - len(prompt)
        scores.append(sum(float(logp[len(ids) - k - 1 + j, ids[len(ids) - k + j]]) for j in range(k)))
    top = max(scores)
    direct = [math.exp(s - top) for s in scores]
    assert probs == pytest.approx([d / sum(direct) for d in direct], abs=1e-4)


def test_listener_reward_mixes_format_exact_match_and_listener(model_dir):
    reward = bind_reward("listener", listener={"model": model_dir})
    comps = ["<think>the left image is sharper</think><answer>A</answer>",
             "<think>the left image is sharper</think><answer>B</answer>",
             "no tags, answer A"]
    out = reward(comps, answer=["A", "A", "A"])
    cfg = L.ListenerConfig(model=model_dir)
    masked = [L.mask_answer(c, cfg.mask) for c in comps]
    p = [row[0] for row in L.choice_probabilities(masked, ["", "", ""], [["A", "B"]] * 3, cfg)]
    # format 1 + 0.5 · EM 1 + 0.5 · p;  format 1 + 0.5 · 0 + 0.5 · p;  format 0 + EM 0 (no <answer>) + 0.5 · p
    assert out == pytest.approx([1 + 0.5 + 0.5 * p[0], 1 + 0.5 * p[1], 0.5 * p[2]], abs=1e-5)
    # the answer is masked, so the two completions that differ only in their answer get the same listener term
    assert p[0] == pytest.approx(p[1], abs=1e-6)
    # a row whose truth is not a letter and has no choices has no listener term
    assert reward(["<think>x</think><answer>red</answer>"], answer=["red"]) == [pytest.approx(1.5)]
    assert reward(["x"], answer=[None]) == [None]


def test_listener_config_errors(tmp_path):
    with pytest.raises(RecipeError):
        bind_reward("listener")
    with pytest.raises(RecipeError):
        bind_reward("listener", listener={"modell": "x"})
    with pytest.raises(RecipeError, match="cannot load"):
        L.listener(["<answer>A</answer>"], answer=["A"], listener={"model": str(tmp_path / "missing")})


def test_local_model_judge_backend(model_dir, tmp_path):
    """The HF backend runs a real local model; a random tiny model's reply is unparseable, which is a
    verdict (None, counted), not an error; a parsed reply is cached, an unparseable one is asked again next
    time (so a judge's bad reply never sticks to a row for the whole run)."""
    cfg = JudgeConfig(hf_model=model_dir, max_tokens=4, cache_path=str(tmp_path / "hf.sqlite"))
    [v] = judge([JudgeItem("q", "a", "a")], cfg, "deepeyes")
    assert v.status in ("ok", "unparseable") and isinstance(v.reply, str)
    [again] = judge([JudgeItem("q", "a", "a")], cfg, "deepeyes")
    assert again.cached == (v.status == "ok")
    assert again.reply == v.reply  # greedy decoding: the same model gives the same reply


def test_a_lone_surrogate_costs_its_own_row_only(model_dir):
    reward = bind_reward("listener", listener={"model": model_dir})
    good = "<think>the left image is sharper</think><answer>A</answer>"
    bad = "<think>the left \ud83d image</think><answer>A</answer>"  # half an emoji, as decoding can leave
    together = reward([good, bad, good], answer=["A", "A", "A"])
    assert together[0] == together[2] == pytest.approx(reward([good], answer=["A"])[0], abs=1e-5)
    assert together[1] == pytest.approx(reward([bad.replace("\ud83d", "\ufffd")], answer=["A"])[0], abs=1e-5)


def test_a_failing_row_costs_itself_not_its_batch():
    from mmreason.rewards._common import reward_function

    @reward_function
    def picky(completions, *, scale: float = 1.0, **columns):
        if any("boom" in c for c in completions):
            raise ValueError("cannot read this completion")
        return [scale * (c == a) for c, a in zip(completions, columns["answer"])]

    seen = {}
    out = picky(["x", "boom", "y"], answer=["x", "x", "y"], scale=2.0,
                log_metric=lambda k, v: seen.__setitem__(k, seen.get(k, 0) + v))
    assert out == [2.0, 0.0, 2.0] and seen == {"picky/errors": 1.0}
