"""Reward terms of a recipe: binding, weighted sums with None left out, routing, step rewards -> token credit."""

import json

import pytest
import torch

from mmreason import rl
from mmreason.config import load_recipe_dict
from mmreason.errors import RecipeError
from mmreason.rewards import build_rewards
from mmreason.rewards.video_com import video_com_steps
from mmreason.rewards.virl import virl_steps
from mmreason.train.grpo_step import step_segments
from mmreason.train.scoring import component_means, score, step_terms

COMPLETIONS = ["<think>a</think><answer>red</answer>", "<answer>blue</answer>", "x"]


def rewards(funcs, routes=None):
    return build_rewards(load_recipe_dict({"rewards": {"funcs": funcs, "route_by_source": routes or {}}}))


def test_weighted_sum_leaves_none_out_and_logs_each_component():
    rs = rewards([{"name": "accuracy", "weight": 2.0}, {"name": "think_answer_format", "weight": 0.5}])
    rows = [{"id": i, "answer": a} for i, a in enumerate(["red", "red", None])]
    s = score(rs, COMPLETIONS, rows)
    assert s.components == {"accuracy": [1.0, 0.0, None], "think_answer_format": [1.0, 0.0, 0.0]}
    assert s.total == [2.5, 0.0, 0.0]  # row 3: accuracy does not apply, only the format term counts
    means = component_means(s)
    assert means["rewards/accuracy"] == 0.5 and means["rewards/accuracy/applicable"] == pytest.approx(2 / 3)
    assert means["rewards/accuracy/answered"] == pytest.approx(2 / 3)  # a sub-score the reward reported


def test_routing_by_source_skips_rewards_a_source_does_not_name():
    rs = rewards(["accuracy", "think_answer_format"], routes={"math": ["think_answer_format"]})
    rows = [{"id": 0, "answer": "red", "source": "math"}, {"id": 1, "answer": "red", "source": "vqa"}]
    s = score(rs, COMPLETIONS[:1] * 2, rows)
    assert s.components["accuracy"] == [None, 1.0] and s.total == [1.0, 2.0]


def test_each_reward_gets_the_traces_of_the_rows_it_scores():
    from mmreason.traces import parse

    rs = rewards(["accuracy", "think_answer_format"], routes={"math": ["think_answer_format"]})
    rows = [{"id": 0, "answer": "red", "source": "math"}, {"id": 1, "answer": "blue", "source": "vqa"}]
    # the parsed traces say otherwise than the text: the step's parse is what the rewards read
    parsed = [parse("<answer>red</answer>"), parse("<answer>blue</answer>")]
    s = score(rs, ["x", "x"], rows, parsed)
    assert s.components["accuracy"] == [None, 1.0]  # row 1 alone, with its own trace
    with pytest.raises(ValueError, match="1 traces"):
        score(rs, ["x", "x"], rows, parsed[:1])


def test_same_reward_twice_gets_two_names_and_bad_options_fail_at_bind():
    rs = rewards([{"name": "accuracy"}, {"name": "accuracy", "kwargs": {"template": "equivalence"}}])
    assert [t.name for t in rs.terms] == ["accuracy", "accuracy_2"]
    with pytest.raises(RecipeError, match="rewards.funcs.0"):
        rewards([{"name": "box_iou", "kwargs": {"where": 3, "nope": 1}}])


ZOOM = '<tool_call>{"name": "zoom", "arguments": {"bbox_2d": [0, 0, 10, 10]}}</tool_call>'


def test_virl_steps_are_char_spans_with_shaped_scores():
    text = f"{ZOOM} then [50, 50, 60, 60] <answer>cat</answer>"
    term = rewards(["virl"]).terms[0]
    row = {"answer": "cat", "rationale_regions": [{"box": [0, 0, 10, 10]}]}
    steps = virl_steps(text, row, **term.kwargs)
    # correct zoom 1.0 + 0.5 * 0.9 (the outcome share of the earlier step), erroneous inline box -0.5 + 0.5
    assert [(text[s:e][:11], round(v, 4)) for s, e, v in steps] == [("<tool_call>", 1.45), ("50, 50, 60,", 0.0)]
    assert virl_steps(text, {"answer": "cat"}, **term.kwargs) == []  # no rationale regions: no steps


def test_video_com_steps_judge_each_manipulation():
    text = "FIND_FRAME(cup) = [12]\nSPATIAL_ZOOM(cup) = [0, 0, 10, 10]\nFIND_SEGMENT(pour) = [3]\nFINAL_ANSWER: B"
    gts = {"valid_segments": [2], "valid_frames": [[10, 20]], "valid_bounding_box": [[12, [0, 0, 10, 12]]]}
    term = rewards(["video_com"]).terms[0]
    row = {"answer": "B", "reasoning_gts": json.dumps(gts)}
    steps = video_com_steps(text, row, **term.kwargs)
    assert [(text[s:e].split("(")[0], v) for s, e, v in steps] == [
        ("FIND_FRAME", 1.0), ("SPATIAL_ZOOM", 1.0), ("FIND_SEGMENT", 0.0)]
    assert [t.spec for t in step_terms(rewards(["accuracy", "video_com"]))] == ["video_com"]


def trajectory(tok, index, text):
    """A real one-turn trajectory built the way the rollout builds it."""
    from mmreason.rollout.tokens import Segment, TrajectoryBuilder

    b = TrajectoryBuilder(index, 0, "s", Segment((1, 2, 3), "", {}))
    b.add_turn(tok(text, add_special_tokens=False).input_ids, "stop", tok)
    return b.finish("answer")


def test_step_rewards_shift_only_the_tokens_of_their_step(tiny_model_dir):
    from transformers import AutoProcessor

    tok = AutoProcessor.from_pretrained(tiny_model_dir("qwen2_5_vl")).tokenizer
    hit, miss = ZOOM, ZOOM.replace("[0, 0, 10, 10]", "[90, 90, 99, 99]")
    trajs = [trajectory(tok, 0, f"<think>look</think>{hit}"), trajectory(tok, 1, f"<think>look</think>{miss}")]
    row = {"id": "s", "answer": "cat", "rationale_regions": [{"box": [0, 0, 10, 10]}]}
    segs = rl.normalize_step_rewards(step_segments(rewards(["virl"]), trajs, [row, row]), 2)
    width = max(len(t.completion_ids) for t in trajs)
    adv = rl.token_advantages(torch.tensor([0.3, -0.3]), width, segs)
    for t, s, a in zip(trajs, segs, adv):
        (seg,) = s
        think = len(tok("<think>look</think>", add_special_tokens=False).input_ids)
        assert seg.start == think and seg.end == len(t.completion_ids)  # the call's tokens, not the think
        assert torch.all(a[:seg.start] == a[0]) and not torch.allclose(a[seg.start:seg.end], a[:1].expand(seg.end - seg.start))
    assert segs[0][0].reward > 0 > segs[1][0].reward  # the correct zoom gains, the erroneous one loses


def test_an_invalid_tool_call_costs_its_trajectory_the_configured_penalty():
    # the zoom tool's invalid-call penalty, from a real tool run, through the step's reward rows to the total
    from PIL import Image

    from mmreason.modalities.image import load_image
    from mmreason.rollout.tokens import Step, Trajectory
    from mmreason.tools import ToolEnv, ToolSettings, run_tool_call
    from mmreason.train.grpo_step import reward_rows

    env = ToolEnv("qwen2_5_vl", images=[load_image(Image.new("RGB", (200, 200)), "qwen2_5_vl")],
                  settings=ToolSettings(coord_frame="pixel", invalid_penalty=-0.05))
    bad = run_tool_call({"name": "image_zoom_in", "arguments": {"bbox_2d": [10, 10, 20, 20]}}, env)
    good = run_tool_call({"name": "image_zoom_in", "arguments": {"bbox_2d": [10, 10, 120, 120]}}, env)
    assert bad.error and not good.error

    def traj(index, observations):
        steps = tuple(Step(k, (0, 1), (0, 1), "t", "stop", call={}, observation=o)
                      for k, o in enumerate(observations))
        return Trajectory(index, 0, "s", (), (1,), (1,), steps, "<answer>red</answer>", "answer",
                          len(steps), 0, 0, ())

    rows = reward_rows([traj(0, [bad, bad]), traj(1, [good]), traj(2, [])], [{"id": "s", "answer": "red"}])
    s = score(rewards(["accuracy"]), ["<answer>red</answer>"] * 3, rows)
    assert s.total == [pytest.approx(0.9), 1.0, 1.0]
    assert s.components["tool_penalty"] == [pytest.approx(-0.1), 0.0, 0.0]
    assert component_means(s)["rewards/tool_penalty"] == pytest.approx(-0.1 / 3)
