"""Video-CoM's text protocol in rollouts, without generation: reading manipulation lines into video tool
calls, where a turn stops (stop lines, also as a `transformers` stopping criterion on real token ids),
running manipulations on a generated video, the plain user turn that shows what they return (checked against
every family's chat template), the config, and step spans from `video_com_step_scores` landing on the
tokens of the turn that wrote them."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmreason import rl, traces
from mmreason.config import GRPOConfig, Recipe, ToolsConfig
from mmreason.families import FAMILIES
from mmreason.modalities.guards import token_id
from mmreason.modalities.video import load_video, write_video
from mmreason.rewards.video_com import video_com_step_scores
from mmreason.rollout import RolloutConfig, cut_turn
from mmreason.rollout.tokens import (
    Segment, TrajectoryBuilder, encode_observation, observation_text, segments_from_char_spans,
)
from mmreason.rollout.video_com import (
    STOP_LINES, VIDEO_COM_PROMPTS, line_stop, line_stopper, read_manipulation, run_manipulation,
)
from mmreason.tools import ToolEnv, ToolSettings, resolve_tools, run_tool_call

FPS, FRAMES, W, H = 10, 30, 64, 48
BUDGET = {"image": {"min_pixels": 0, "max_pixels": 48 * 28 * 28}, "video": {"min_pixels": 0, "max_pixels": 64 * 64}}
ALL = resolve_tools(["seek_frame", "clip_segment", "zoom_frame"])


def _frame(i):
    """Grey level 8*i and a white block, rows 4..44, whose left edge is at x = i (34 px wide, clipped)."""
    img = np.full((H, W, 3), 8 * i, np.uint8)
    img[4:44, i:i + 34] = 255
    return img


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("vc-video") / "clip.mp4", [_frame(i) for i in range(FRAMES)], FPS)


def _env(clip, **settings):
    video = load_video(clip, "qwen2_5_vl", nframes=4, min_pixels=0, max_pixels=64 * 64)
    return ToolEnv("qwen2_5_vl", videos=[video], media_options=BUDGET,
                   settings=ToolSettings(coord_frame="pixel", **settings))


# ------------------------------------------------------------------------------------- reading lines
def test_each_manipulation_maps_to_its_tool():
    seg = read_manipulation("I rewatch it. FIND_SEGMENT(the block moves) = [3, 2, 3]\n")
    assert (seg.kind, seg.name, seg.query, seg.error) == ("FIND_SEGMENT", "clip_segment", "the block moves", None)
    assert seg.calls == ({"name": "clip_segment", "arguments": {"segment": 2, "last_segment": 3}},)
    one = read_manipulation("FIND_SEGMENT(x) = [2]")
    assert one.calls == ({"name": "clip_segment", "arguments": {"segment": 2}},)
    frames = read_manipulation("FIND_FRAME(the block) = [4, 9, 4, 1, 2, 7]")
    assert [c["arguments"]["frame"] for c in frames.calls] == [4, 9, 1, 2]  # distinct, the first four
    zoom = read_manipulation("SPATIAL_ZOOM(the block) = [8, 8, 40, 44]\n")
    assert zoom.calls == ({"name": "zoom_frame", "arguments": {"bbox_2d": [8, 8, 40, 44]}},)
    text = "FIND_FRAME(a) = [3]\nSPATIAL_ZOOM(b) = [1, 2, 30, 40]"
    last = read_manipulation(text)
    assert last.kind == "SPATIAL_ZOOM" and text[last.start:last.end] == "SPATIAL_ZOOM(b) = [1, 2, 30, 40]"
    assert read_manipulation("No manipulation here. FINAL_ANSWER: B. red") is None
    assert read_manipulation("") is None and read_manipulation(None) is None


@pytest.mark.parametrize("text, reason", [
    ("FIND_FRAME(x) = [abc]\n", "could not read FIND_FRAME: expected a query in parentheses, then = [frame numbers]"),
    ("FIND_SEGMENT(x) = 3\n", "could not read FIND_SEGMENT"),
    ("SPATIAL_ZOOM(x) = [1, 2, 3]\n", "SPATIAL_ZOOM needs 4 numbers (x1, y1, x2, y2), got 3"),
    ("FIND_FRAME(x) = []\n", "FIND_FRAME lists no frame numbers"),
    ("FIND_SEGMENT(x) = [nan]\n", "could not read FIND_SEGMENT"),
    ("FIND_FRAME(", "could not read FIND_FRAME"),
])
def test_malformed_lines_are_errors_not_exceptions(text, reason):
    call = read_manipulation(text)
    assert call.error is not None and reason in call.error and call.calls == ()
    obs = run_manipulation(call, ToolEnv("qwen2_5_vl", settings=ToolSettings(invalid_penalty=-0.1)), ALL)
    assert obs.error and obs.text.startswith("Error: ") and obs.penalty == -0.1
    assert not traces.parse(obs.text).manipulations  # the model's line is not echoed back


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("FIND_SEGMENTFRAMESPATIALZOOM()=[],.0123456789- \nqx")), max_size=80))
def test_reading_never_raises(text):
    call = read_manipulation(text)
    assert call is None or call.error is not None or call.calls
    line_stop(text, STOP_LINES)


# --------------------------------------------------------------------------------------- stopping
def test_a_turn_stops_after_a_manipulation_or_final_answer_line(processor):
    tok = processor().tokenizer
    eos = [token_id(processor(), "<|im_end|>")]

    def ids(text):
        return tok(text, add_special_tokens=False).input_ids

    def cut(text, limit=500):
        out, finish = cut_turn(ids(text), tok, eos, (), limit, STOP_LINES)
        return tok.decode(out, skip_special_tokens=False), finish

    line = "I look again.\nFIND_FRAME(the block) = [12]\n"
    assert cut(line + "SPATIAL_ZOOM(b) = [1, 2, 3, 4]\nmore") == (line, "stop")
    assert cut("FIND_FRAME(x) = [abc]\nrest") == ("FIND_FRAME(x) = [abc]\n", "stop")  # malformed ends it too
    answer = "So the answer is B.\nFINAL_ANSWER: B. white\n"
    assert cut(answer + "extra") == (answer, "stop")
    assert cut("Next I will use FIND_FRAME(query) to look.\nFINAL_ANSWER:\n") == (
        "Next I will use FIND_FRAME(query) to look.\nFINAL_ANSWER:\n", "length")  # no call, no answer yet
    assert cut("FIND_FRAME(x) = [12]")[1] == "length"  # the line is not finished
    assert cut("FIND_FRAME(x) = [12]<|im_end|>") == ("FIND_FRAME(x) = [12]<|im_end|>", "eos")


def test_stopping_criterion_on_token_ids(processor):
    tok = processor().tokenizer

    def ids(text):
        return tok(text, add_special_tokens=False).input_ids

    prompt = [tok.pad_token_id] * 2 + ids("<|im_start|>user\nFIND_FRAME(q) = [1]\n<|im_end|>\n")  # left padding
    stop = line_stopper(tok, STOP_LINES, len(prompt))  # reads only what was generated, not the prompt's line

    def stops(generated):
        return stop(torch.tensor([prompt + ids(generated)]), None).tolist()[0]

    assert stops("Look.\nFIND_SEGMENT(x) = [2]\n") and stops("FINAL_ANSWER: A. red\n")
    assert not stops("FIND_SEGMENT(x) = [2] and") and not stops("I might use FIND_FRAME later.\n")
    assert not stops("FINAL_ANSWER:\n")
    assert stop(torch.tensor([prompt]), None).tolist() == [False]  # nothing generated yet
    both = torch.tensor([prompt + ids("FIND_FRAME(x) = [3]\n"), prompt + ids("FIND_FRAME(x) = [3] ")])
    assert stop(both, None).tolist() == [True, False]


# ------------------------------------------------------------------------------- running manipulations
def test_find_frame_then_zoom_on_the_frame_shown_last(clip):
    env = _env(clip)
    early = run_manipulation(read_manipulation("SPATIAL_ZOOM(block) = [4, 4, 40, 44]"), env, ALL)
    assert early.error and "find one with FIND_FRAME first" in early.text
    shown = run_manipulation(read_manipulation("FIND_FRAME(the block) = [3, 20]\n"), env, ALL)
    assert not shown.error and shown.text == VIDEO_COM_PROMPTS["FIND_FRAME"] and len(shown.images) == 2
    assert [c["frame"] for c in shown.info["calls"]] == [3, 20] and env.current_frame == (0, 20)
    zoom = run_manipulation(read_manipulation("SPATIAL_ZOOM(the block) = [20, 4, 54, 44]\n"), env, ALL)
    assert not zoom.error and zoom.info["frame"] == 20 and zoom.info["box_pixel"] == (20.0, 4.0, 54.0, 44.0)
    assert np.asarray(zoom.images[0].original).mean() > 230  # the white block at frame 20 spans x 20..54
    assert zoom.text == VIDEO_COM_PROMPTS["SPATIAL_ZOOM"] and zoom.info["manipulation"] == "SPATIAL_ZOOM"


def test_a_failed_frame_leaves_the_frame_in_view(clip):
    env = _env(clip)
    run_manipulation(read_manipulation("FIND_FRAME(a) = [5]"), env, ALL)
    bad = run_manipulation(read_manipulation("FIND_FRAME(a) = [7, 99]"), env, ALL)
    assert bad.error and "frame must be between 0 and 29" in bad.text and not bad.images
    assert env.current_frame == (0, 5)  # frame 7 was decoded but never shown
    assert "whole number" in run_manipulation(read_manipulation("FIND_FRAME(a) = [2.5]"), env, ALL).text


def test_find_segment_rewatches_the_listed_run(clip):
    env = _env(clip, segment_seconds=1.0, segment_frames=8)
    obs = run_manipulation(read_manipulation("FIND_SEGMENT(the block moves) = [3, 2]\n"), env, ALL)
    assert not obs.error and obs.text == VIDEO_COM_PROMPTS["FIND_SEGMENT"] and len(obs.videos) == 1
    assert obs.info["span"] == (1.0, 3.0) and obs.videos[0].frame.num_sampled == 8
    assert all(10 <= f < 30 for f in obs.videos[0].frame.frame_indices)
    assert "segment must be between 1 and 3" in run_manipulation(read_manipulation("FIND_SEGMENT(a) = [4]"), env,
                                                                 ALL).text
    unset = run_manipulation(read_manipulation("FIND_SEGMENT(a) = [1]"), _env(clip), ALL)
    assert unset.error and "not divided into numbered segments" in unset.text


def test_last_segment_argument_of_the_tool(clip):
    env = _env(clip, segment_seconds=1.0)
    assert run_tool_call({"name": "clip_segment", "arguments": {"segment": 1, "last_segment": 2}}, env).info["span"] \
        == (0.0, 2.0)
    for arguments, reason in (({"segment": 2, "last_segment": 1}, "last_segment must be between 2 and 3"),
                              ({"start": 0.0, "end": 1.0, "last_segment": 2}, "goes with segment")):
        obs = run_tool_call({"name": "clip_segment", "arguments": arguments}, env)
        assert obs.error and reason in obs.text, obs.text


def test_a_manipulation_the_config_does_not_allow(clip):
    only_frames = resolve_tools(["seek_frame"])
    obs = run_manipulation(read_manipulation("SPATIAL_ZOOM(a) = [0, 0, 40, 40]"), _env(clip), only_frames)
    assert obs.error and obs.text == "Error: SPATIAL_ZOOM is not available here; available: FIND_FRAME"
    no_video = run_manipulation(read_manipulation("FIND_FRAME(a) = [1]"), ToolEnv("qwen2_5_vl"), ALL)
    assert no_video.error and "no video" in no_video.text


# ------------------------------------------------------------------------------------ the user turn
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_user_observation_turn_is_the_templates_user_message(processor, family):
    proc = processor(family)
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "SENTINEL"}]},
                {"role": "user", "content": [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "Go."}]}]
    rendered = proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered.split("SENTINEL", 1)[1] == observation_text(family, "Go.", images=1, videos=1, role="user")
    with pytest.raises(ValueError, match="role"):
        observation_text(family, "x", role="system")


# ----------------------------------------------------------------------------------------- config
def test_config_call_syntax_and_its_defaults():
    plain = RolloutConfig()
    assert plain.stops == ("</tool_call>", "</answer>") and plain.stop_lines == () and plain.role == "tool"
    vc = RolloutConfig(call_syntax="video_com")
    assert vc.stops == () and vc.stop_lines == STOP_LINES and vc.role == "user"
    assert RolloutConfig(call_syntax="video_com", observation_role="tool", stop_strings=("x",)).role == "tool"
    assert RolloutConfig(call_syntax="video_com", stop_strings=("x",)).stops == ("x",)
    for bad in ({"call_syntax": "json"}, {"observation_role": "system"},
                {"call_syntax": "video_com", "tools": ("image_zoom_in",)}):
        with pytest.raises(ValueError):
            RolloutConfig(**bad)
    recipe = Recipe(tools=ToolsConfig(names=("seek_frame", "zoom_frame"), call_syntax="video_com", max_turns=5),
                    grpo=GRPOConfig(max_completion_length=512))
    config = RolloutConfig.from_recipe(recipe)
    assert (config.call_syntax, config.tools, config.max_turns) == ("video_com", ("seek_frame", "zoom_frame"), 5)


# ------------------------------------------------------------------------------ step credit on tokens
def test_step_score_spans_land_on_the_tokens_of_their_turn(processor, clip):
    """Three manipulation turns with what they return as user turns, then the answer: each step score of
    `video_com_step_scores(traj.completion)` maps onto the tokens of the turn that wrote it, and only there."""
    proc = processor()
    tok, eos = proc.tokenizer, token_id(proc, "<|im_end|>")
    env = _env(clip, segment_seconds=1.0, segment_frames=4)
    builder = TrajectoryBuilder(0, 0, "v", Segment((1, 2, 3), "", {}))
    turns = ["First the part where it moves. FIND_SEGMENT(the block moves) = [2]\n",
             "FIND_FRAME(the block) = [12, 15]\n", "Closer. SPATIAL_ZOOM(the block) = [15, 4, 49, 44]\n",
             "It is white.\nFINAL_ANSWER: B. white\n"]
    for text in turns[:-1]:
        builder.add_turn(tok(text, add_special_tokens=False).input_ids, "stop", tok, [eos])
        call = read_manipulation(text)
        obs = run_manipulation(call, env, ALL)
        assert not obs.error, obs.text
        builder.close_turn(call, obs, encode_observation(obs, proc, "qwen2_5_vl", role="user"))
    builder.add_turn(tok(turns[-1], add_special_tokens=False).input_ids, "stop", tok, [eos])
    traj = builder.finish("answer")
    assert "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Continue solving" in traj.completion
    gts = {"valid_segments": [2], "valid_frames": [[10, 14]], "valid_bounding_box": [[15, [15, 4, 49, 44]]]}
    scores = video_com_step_scores(traj.completion, gts)
    assert [(s.kind, s.score) for s in scores] == [("segment", 1.0), ("frame", 0.5), ("zoom", 1.0)]
    segments = segments_from_char_spans(traj, [(s.start, s.end, s.score) for s in scores])
    assert len(segments) == 3
    for k, (score, seg) in enumerate(zip(scores, segments)):
        lo, hi = traj.steps[k].tokens
        assert lo <= seg.start < seg.end <= hi  # inside turn k, never in an observation
        assert set(traj.loss_mask[seg.start:seg.end]) == {1}
        assert traj.completion[score.start:score.end] in tok.decode(list(traj.completion_ids[seg.start:seg.end]))
    adv = rl.token_advantages(torch.tensor([0.0]), len(traj.completion_ids), [segments])
    assert adv[0, segments[1].start:segments[1].end].unique().tolist() == [0.5]
    assert adv[0, segments[0].end:segments[1].start].abs().max() == 0  # no credit between the steps


@pytest.mark.parametrize("line, reason", [
    ("FIND_FRAME(x) = [1e308]", "frame must be"),
    ("FIND_FRAME(x) = [-3]", "frame must be between 0 and 29"),
    ("FIND_SEGMENT(x) = [" + "9" * 400 + "]", "segment"),
    ("FIND_SEGMENT(x) = [0, 2]", "segment must be between 1 and 3"),
    ("SPATIAL_ZOOM(x) = [40, 40, 0, 0]", "Error"),
    ("SPATIAL_ZOOM(x) = [-1e9, 0, 1e9, 1]", "Error"),
])
def test_hostile_values_come_back_as_errors(clip, line, reason):
    env = _env(clip, segment_seconds=1.0)
    run_manipulation(read_manipulation("FIND_FRAME(a) = [3]"), env, ALL)
    obs = run_manipulation(read_manipulation(line), env, ALL)
    assert obs.error and obs.text.startswith("Error: ") and reason in obs.text, obs.text
    assert not obs.images and not obs.videos and env.current_frame == (0, 3)
