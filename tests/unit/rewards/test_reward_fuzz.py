"""Every reward, on anything: random and adversarial completions and wrong-typed columns never raise,
every score is a finite float or None, and the score is the same from a trainer's parsed traces."""

import logging
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmreason.eval.metrics import FORMATS
from mmreason.rewards import REWARDS, bind_reward
from mmreason.rewards._common import completion_text
from mmreason.rewards.judge import PARSERS, parse_reply
from mmreason.rewards.video_com import video_com_step_scores
from mmreason.rewards.virl import virl_step_scores
from mmreason.traces import parse

FRAGMENTS = [
    "<think>", "</think>", "<answer>", "</answer>", "<rethink>", "</rethink>", "<tool_call>", "</tool_call>",
    "<action>", "</action>", "<step>", "</step>", "<bbox>", "</bbox>", "(1, 2, 3, 4, 5, 6)",
    "(0, 0, 0, nan, 1, 1)", '{"bbox_2d": [', '"bbox_2d": [1e308, -1e308, 5, 6]', "]", "}", "{", "[", ",",
    "1e308", "-1e308", "nan", "NaN", "inf", "-5", "0", "12", "3.5", '"coordinate": [', '"point_2d": [1, 2]',
    '"action": "click"', '"action": "swipe"',
    '{"name": "mobile_use", "arguments": {', '"name": "image_zoom_in_tool"', "\\boxed{", "\\frac{1}{2}",
    "FINAL_ANSWER:", "FIND_FRAME(x) = [", "SPATIAL_ZOOM(y) = [", "FIND_SEGMENT(z) = [",
    "<|vision_start|><|image_pad|>", "<|image_pad|><|vision_end|>", "<|box_start|>(1,2),(3,4)<|box_end|>",
    "<|object_ref_start|>dog<|object_ref_end|>", "chair 2 ", " ", "\n", "A", "B. cat", "[75,75]", "[1, 2]",
    "10, 20, 30, 40", "Judgement: 1", "'action': 'click', 'position': [0.5, 0.5]", "99999999999999999999",
]
text_strategy = st.one_of(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=30).map("".join),
    st.text(max_size=200),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),  # deeply nested JSON
    st.integers(1, 2000).map(lambda n: '<tool_call>{"name": "x", "arguments": '
                             + '{"a": ' * n + "1" + "}" * n),
    st.integers(1, 300).map(lambda n: "<think>" * n + "<answer>" * n),
)
completion_strategy = st.one_of(
    text_strategy,
    text_strategy.map(lambda t: [{"role": "assistant", "content": t}]),
    st.tuples(text_strategy, text_strategy).map(lambda p: [
        {"role": "assistant", "content": [{"type": "text", "text": p[0]}]},
        {"role": "tool", "content": [{"type": "image", "image": "x.png"}]},
        {"role": "assistant", "content": p[1]}]),
    st.sampled_from([None, 5, {"role": "assistant"}, [{"content": None}], [1, 2]]),
)

num = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6),
                st.sampled_from([0, 1, 10, 100, 1e300, -1.0]), st.text(max_size=3), st.none())
junk = st.one_of(st.none(), st.text(max_size=10), st.integers(), st.floats(allow_nan=True),
                 st.lists(st.integers(), max_size=3))


def box_list(key, n):
    entry = st.one_of(
        st.fixed_dictionaries({key: st.lists(num, min_size=n, max_size=n)},
                              optional={"label": st.one_of(st.none(), st.sampled_from(["chair", "a b"]),
                                                           st.integers()),
                                        "image": st.one_of(st.integers(-2, 3), st.text(max_size=2))}),
        st.fixed_dictionaries({key: st.lists(st.integers(0, 50), min_size=n, max_size=n).map(sorted)}),
        junk)
    return st.one_of(st.lists(entry, max_size=3), junk, st.just("[1, 2"))


action = st.fixed_dictionaries(
    {"action": st.one_of(st.sampled_from(["click", "swipe", "type", "open", "system_button", "wait", "fly"]),
                         junk)},
    optional={"coordinate": st.lists(num, max_size=3), "coordinate2": st.lists(num, max_size=3),
              "text": junk, "button": junk, "direction": junk,
              "candidate_boxes": st.lists(st.lists(num, max_size=4))})
gui = st.one_of(junk, action.map(lambda a: '{"action": "click"}'), st.fixed_dictionaries({}, optional={
    "width": num, "height": num,
    "action": st.one_of(action, junk, st.just('{"action": "click", "coordinate": [1, 2]}')),
    "elements": st.one_of(st.lists(st.fixed_dictionaries({"box": st.lists(num, max_size=4)})), junk),
    "instruction": junk, "goal": junk}))
frames = st.one_of(junk, st.lists(st.one_of(junk, st.fixed_dictionaries({}, optional={
    k: num for k in ("width", "height", "resized_width", "resized_height")})), max_size=2))
reasoning = st.one_of(junk, st.fixed_dictionaries({}, optional={
    "valid_segments": st.lists(num, max_size=3),
    "valid_frames": st.lists(st.lists(num, max_size=3), max_size=2),
    "valid_bounding_box": st.lists(st.one_of(st.tuples(num, st.lists(num, max_size=5)), junk), max_size=2)}))

COLUMNS = {
    "answer": st.one_of(junk, st.sampled_from(["B", "2", "0.5", "red", "B. cat", "1/2", "", "nan"])),
    "solution": st.one_of(junk, st.sampled_from(["<answer>3</answer>", "x"])),
    "boxes": box_list("box", 4), "rationale_regions": box_list("box", 4), "boxes_3d": box_list("box", 6),
    "points": box_list("point", 2), "gui": gui, "image_frames": frames,
    "image_sizes": st.one_of(junk, st.lists(st.lists(num, max_size=3), max_size=2)),
    "meta": st.one_of(junk, st.fixed_dictionaries({}, optional={
        "reasoning_gts": reasoning, "question": junk, "choices": junk, "objects": box_list("box", 4)})),
    "reasoning_gts": reasoning,
    "data_source": st.one_of(junk, st.sampled_from(["vstar", "geoguessr", "thinklite_eureka", "chart"])),
    "source": st.one_of(junk, st.sampled_from(["tallyqa", "ovd", "vsr"])),
    "task": st.one_of(junk, st.sampled_from(["counting", "gui_grounding", "grounding", "vqa"])),
    "completion_ids": st.one_of(junk, st.lists(st.integers(-5, 151643 + 5), max_size=40)),
    "prompts": st.one_of(junk, st.just([{"role": "user", "content": "What?"}])),
}


@st.composite
def batches(draw):
    n = draw(st.integers(1, 3))
    completions = draw(st.lists(completion_strategy, min_size=n, max_size=n))
    columns = {}
    for name in draw(st.sets(st.sampled_from(sorted(COLUMNS)))):
        if draw(st.booleans()) or draw(st.booleans()):
            columns[name] = draw(st.lists(COLUMNS[name], min_size=n, max_size=n))
        else:  # a column of the wrong shape altogether
            columns[name] = draw(st.one_of(junk, st.lists(COLUMNS[name], max_size=4)))
    return completions, columns


# Every built-in, with defaults and with the frame options that take other code paths.
CASES = [(name, {}) for name in REWARDS if name != "listener"] + [
    ("box_iou", {"family": "qwen2_5_vl"}), ("box_iou", {"coord_frame": "norm1000"}),
    ("box_map", {"match_labels": True}),
    ("click_distance", {"family": "qwen3_vl", "shape": "linear"}), ("infigui", {"family": "qwen2_5_vl"}),
    ("infigui", {"coord_frame": "pixel"}), ("ui_ins", {"coord_frame": "norm1000"}),
    ("grit", {"variant": "paper"}),
    ("virl", {"coord_frame": "resized", "family": "qwen2_vl"}), ("deepeyes", {"tool_evidence": "calls"}),
    ("gui_action_match", {"coord_frame": "pixel"}), ("box_iou_3d", {"threshold": 0.25}),
    ("length_penalty", {"max_length": 8, "cache_length": 4, "unit": "chars"}),
    ("referring_iou", {"family": "qwen2_5_vl", "margin_weight": 0.5}),
    # the eval's metrics share the contract: the wrong-object rate and every format the format rate reads
    ("mmreason.eval.metrics:wrong_object", {"family": "qwen2_5_vl"}),
] + [("mmreason.eval.metrics:output_format", {"kind": kind}) for kind in FORMATS]
# More examples for a deeper search: MMREASON_FUZZ_EXAMPLES=500 pytest tests/unit/rewards/test_reward_fuzz.py
EXAMPLES = int(os.environ.get("MMREASON_FUZZ_EXAMPLES", "15"))
# llm_judge points at a closed local port: every request fails fast, which must still score (0.0).
DEAD_JUDGE = {"base_url": "http://127.0.0.1:9/v1", "retries": 0, "timeout": 0.5, "cache_path": ""}
OPTIONS_REQUIRED = {"length_penalty": {"max_length": 16, "cache_length": 4},
                    "llm_judge": {"judge": DEAD_JUDGE}}


def case_id(name: str, options: dict) -> str:
    """The function's name, then its option names (output_format's: the kind)."""
    return "-".join([name.rsplit(":", 1)[-1], *([options["kind"]] if "kind" in options else options)])


IDS = [case_id(n, o) for n, o in CASES]


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_reward_never_raises_and_is_finite(name, options, caplog):
    reward = bind_reward(name, **{**OPTIONS_REQUIRED.get(name, {}), **options})

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(batches())
    def check(batch):
        completions, columns = batch
        metrics = {}
        with caplog.at_level(logging.ERROR, logger="mmreason.rewards"):
            caplog.clear()
            out = reward(completions, **columns, log_metric=lambda k, v: metrics.__setitem__(k, v))
        assert isinstance(out, list) and len(out) == len(completions)
        for v in out:
            assert v is None or (isinstance(v, float) and math.isfinite(v)), (name, v)
        # The guards that keep training alive must not be what makes this pass: no internal error at all.
        assert not [k for k in metrics if k.endswith("/errors")], metrics
        assert not caplog.records, caplog.records[0].getMessage()

    check()


@pytest.mark.parametrize("name,options", [c for c in CASES if c[0] != "llm_judge"],
                         ids=[i for i, c in zip(IDS, CASES) if c[0] != "llm_judge"])
def test_reward_scores_the_same_from_the_trainers_parsed_traces(name, options):
    reward = bind_reward(name, **{**OPTIONS_REQUIRED.get(name, {}), **options})

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(batches())
    def check(batch):
        completions, columns = batch
        parsed = [parse(completion_text(c)) for c in completions]
        assert reward(completions, **columns, traces=parsed) == reward(completions, **columns)

    check()


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=200), st.sampled_from(sorted(PARSERS)))
def test_judge_reply_parsing_never_raises(reply, rule):
    v = parse_reply(reply, rule)
    assert v is None or 0.0 <= v <= 1.0


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(completion_strategy, COLUMNS["rationale_regions"], frames, st.one_of(st.none(), st.booleans()))
def test_virl_step_scores_never_raise(completion, regions, image_frames, correct):
    frames_ = image_frames if isinstance(image_frames, list) else None
    regions_ = regions if isinstance(regions, list) else []
    for step in virl_step_scores(completion, regions_, correct=correct, coord_frame="resized",
                                 image_frames=frames_):
        assert math.isfinite(step.score) and math.isfinite(step.shaped)
        assert 0 <= step.start <= step.end


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(completion_strategy, reasoning)
def test_video_com_step_scores_never_raise(completion, gts):
    for step in video_com_step_scores(completion, gts):
        assert 0.0 <= step.score <= 1.0 and 0 <= step.start <= step.end
