"""DeepEyes: the released code's scoring on worked examples, offline rule as the judge.

The scoring is verl/utils/reward_score/vl_agent.py in github.com/Visual-Agent/DeepEyes.
"""

import pytest

from mmreason.errors import RecipeError
from mmreason.rewards import deepeyes as D

IMG = "<|vision_start|><|image_pad|><|vision_end|>"
CALL = '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 10, 60, 60]}}</tool_call>'
TOOL_RIGHT = f"<think>zoom in</think>{CALL}{IMG}<think>it is red</think><answer>red</answer>"

# (completion, data_source, ground truth, expected) — each row computed from
# main: 0.8·acc + 0.2·fmt + 1.2·tool; math: 1.2·acc + 0.4·fmt
TABLE = [
    (TOOL_RIGHT, "vstar", "red", 0.8 + 1.2),  # right, one returned image: 2.0 (the maximum)
    ("<think>look</think><answer>red</answer>", "vstar", "red", 0.8),  # right without a tool
    (TOOL_RIGHT.replace("<answer>red", "<answer>blue"), "vstar", "red", 0.0),  # tool but wrong: no bonus
    ("<think>x<answer>red</answer>", "chart", "red", 0.8 - 0.2),  # #<think> != #</think>
    ("<think>x</think><answer>red</answer></answer>", "vl_agent", "red", 0.8 - 0.2),  # answer tags unbalanced
    ("<think>x</think><answer>" + "red " * 300 + "</answer>", "vstar", "red", -0.2),  # >= 1000 chars
    # no <answer>: the whole text is judged, and it is not "red"
    ("<think>x</think>red", "vstar", "red", 0.0),
    (f"<think>x</think>{CALL}<|vision_start|><|image_pad|><answer>red</answer>", "vstar", "red",
     0.8 - 0.2 + 1.2),  # image start/end placeholders unbalanced, still one returned image
    ("<think>y</think><answer>Paris</answer>", "geoguessr", "paris", 0.8),
    ("<think>y</think><answer>Paris", "geoguessr", "paris", -0.2),  # common branch needs a closed answer
    (r"<think>half</think> so \boxed{\frac{1}{2}}", "thinklite_eureka", "0.5", 1.2),
    (r"<think>t</think> \boxed{1} or \boxed{0.5}", "thinklite_eureka", "0.5", 1.2 - 0.4),  # two boxes
    ("<think>t</think> the answer is 0.5", "xince", "0.5", -0.4),  # no \boxed{}
    (r"<think>a<think>t</think> \boxed{0.5}", "thinklite_eureka", "0.5", 1.2 - 0.4),  # think mismatch
    (TOOL_RIGHT, "thinklite_eureka", "red", -0.4),  # math branch: no tool bonus, no box
]


@pytest.mark.parametrize("completion,source,answer,expected", TABLE)
def test_deepeyes_table(completion, source, answer, expected):
    assert D.deepeyes([completion], answer=[answer], data_source=[source]) == [pytest.approx(expected)]


def test_routing_falls_back_to_source_and_unknown_is_none():
    assert D.deepeyes([TOOL_RIGHT], answer=["red"], source=["vstar"]) == [pytest.approx(2.0)]
    assert D.deepeyes([TOOL_RIGHT], answer=["red"], source=["refcoco"]) == [None]
    out = D.deepeyes([TOOL_RIGHT], answer=["red"], source=["refcoco"], default_branch="main")
    assert out == [pytest.approx(2.0)]
    out = D.deepeyes([TOOL_RIGHT], answer=["red"], source=["mine"], routes={"mine": "math"})
    assert out == [pytest.approx(-0.4)]
    with pytest.raises(RecipeError):
        D.deepeyes([], routes={"x": "maths"})


def test_tool_evidence_in_conversational_trajectories():
    traj = [
        {"role": "assistant", "content": f"<think>zoom</think>{CALL}"},
        {"role": "tool", "content": [{"type": "image", "image": "crop.png"}]},
        {"role": "assistant", "content": "<think>red</think><answer>red</answer>"},
    ]
    assert D.deepeyes([traj], answer=["red"], data_source=["vstar"]) == [pytest.approx(2.0)]
    # single-turn text with a tool call but no image back: the code's rule gives no bonus ...
    text = f"<think>zoom</think>{CALL}<think>red</think><answer>red</answer>"
    assert D.deepeyes([text], answer=["red"], data_source=["vstar"]) == [pytest.approx(0.8)]
    # ... unless the calls themselves are taken as evidence
    out = D.deepeyes([text], answer=["red"], data_source=["vstar"], tool_evidence="calls")
    assert out == [pytest.approx(2.0)]


def test_metrics_are_logged():
    seen = {}
    D.deepeyes([TOOL_RIGHT, "<answer>no</answer>"], answer=["red", "red"], data_source=["vstar"] * 2,
               log_metric=lambda k, v: seen.__setitem__(k, v))
    assert seen["deepeyes/acc"] == 0.5 and seen["deepeyes/tool"] == 0.5 and seen["deepeyes/fmt"] == 0.0


IMG = "<|vision_start|><|image_pad|><|vision_end|>"
CALL = '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 40, 50]}}</tool_call>'


@pytest.mark.parametrize("completion,expected,code", [
    # the FIRST answer is judged (the released code judges the last one)
    ("<think>a</think><answer>red</answer><answer>blue</answer>", 0.8, 0.0),
    # a missing answer is a format error, and the text after </think> is judged (the code judges the whole
    # completion, without a format error)
    ("<think>a</think>red", 0.6, 0.0),
    # tool use read from the call text, with no returned image in the decoded text
    (f"<think>a</think>{CALL}<think>b</think><answer>red</answer>", 2.0, 0.8),
    # and a returned image without any call text is no tool use for the recipe
    (f"<think>a</think>{IMG}<think>b</think><answer>red</answer>", 0.8, 2.0),
    # the 1,000-character guard: acc 0 and a format error
    ("<answer>" + "red " * 260 + "</answer>", -0.2, -0.2),
])
def test_verl_recipe_variant(completion, expected, code):
    kw = {"answer": ["red"], "data_source": ["vstar"]}
    assert D.deepeyes([completion], variant="verl", **kw) == [pytest.approx(expected)]
    assert D.deepeyes([completion], **kw) == [pytest.approx(code)]


def test_verl_variant_scores_every_source_and_bad_options_fail():
    out = D.deepeyes(["<answer>4</answer>"], variant="verl", answer=["4"], data_source=["unrouted"])
    assert out == [pytest.approx(0.8)]
    with pytest.raises(RecipeError, match="variant"):
        D.deepeyes(["x"], variant="paper", answer=["4"])
    with pytest.raises(RecipeError, match="judge_attempts"):
        D.deepeyes(["x"], judge_attempts=0, answer=["4"])
