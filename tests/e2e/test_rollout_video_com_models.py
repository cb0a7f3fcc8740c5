"""Video-CoM rollouts on tiny models: manipulation lines forced into the turns (a random tiny model never
writes one), each run as a video tool and shown back as a user turn, `FINAL_ANSWER:` ending the episode;
the trajectory's masks, pixel tensors and step credit checked on the collated batch; the model going on
after a shown frame, reproduced by one forward; malformed lines, a turn without a manipulation, the limits;
and `transformers` generation stopping at the end of a manipulation line.

Forcing: `rollout(forced={turn: text})` makes every trajectory's turn start with `text` (its tokens count
as generated); a forced line ending in a newline is a complete turn.
"""

import numpy as np
import pytest
import torch

from mmreason import rl
from mmreason.modalities.guards import check_vision_tokens, placeholder_token_ids, token_id
from mmreason.modalities.video import write_video
from mmreason.rewards.video_com import video_com, video_com_step_scores
from mmreason.rollout import RolloutConfig, collate_trajectories, model_inputs, rollout, segments_from_char_spans
from mmreason.rollout.video_com import STOP_LINES, VIDEO_COM_PROMPTS, line_stopper
from mmreason.tools import ToolSettings

BUDGET = {"image": {"min_pixels": 0, "max_pixels": 48 * 28 * 28},
          "video": {"min_pixels": 0, "max_pixels": 64 * 64}}
SEGMENT = "I rewatch the part where it moves. FIND_SEGMENT(the block moves) = [2, 3]\n"
FRAME = "FIND_FRAME(the block) = [12, 15]\n"
ZOOM = "Closer. SPATIAL_ZOOM(the block) = [15, 4, 49, 44]\n"
ANSWER = "The block is white.\nFINAL_ANSWER: B. white\n"
GTS = {"valid_segments": [2], "valid_frames": [[10, 14]], "valid_bounding_box": [[15, [15, 4, 49, 44]]]}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("vc-rollout")
    frames = []
    for i in range(30):  # 3 s at 10 fps: grey 8*i, a white block whose left edge is at x = i
        img = np.full((48, 64, 3), 8 * i, np.uint8)
        img[4:44, i:i + 34] = 255
        frames.append(img)
    write_video(d / "clip.mp4", frames, 10)
    return d


ROW = {"id": "v", "messages": [{"role": "user", "content": [
    {"type": "video", "video": "clip.mp4", "nframes": 4},
    {"type": "text", "text": "What colour is the block? Options: A. grey B. white. Frames are numbered from 0, "
                             "segments of 1 s from 1."}]}]}
SETTINGS = ToolSettings(coord_frame="pixel", segment_seconds=1.0, segment_frames=4)


def _config(**kw):
    base = dict(call_syntax="video_com", max_new_tokens=64, max_completion_tokens=2048, do_sample=False, max_turns=5)
    return RolloutConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def run(root):
    """`run(model, proc, family, forced, group_size=1, settings=SETTINGS, **config) -> trajectories`."""
    def go(model, proc, family, forced, group_size=1, settings=SETTINGS, **kw):
        return rollout(model, proc, [ROW], family, group_size=group_size, root=root, media_options=BUDGET,
                       config=_config(**kw), tool_settings=settings, forced=forced)

    return go


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_manipulations_run_and_the_answer_ends_the_episode(tiny_model, run, family):
    model, proc = tiny_model(family)
    trajs = run(model, proc, family, {0: SEGMENT, 1: FRAME, 2: ZOOM, 3: ANSWER}, group_size=2)
    for t in trajs:
        assert t.stop_reason == "answer" and len(t.steps) == 4 and t.num_tool_calls == 3
        assert [s.call.name for s in t.steps[:3]] == ["clip_segment", "seek_frame", "zoom_frame"]
        seg, frame, zoom = (s.observation for s in t.steps[:3])
        assert seg.info["span"] == (1.0, 3.0) and len(seg.videos) == 1 and seg.text == VIDEO_COM_PROMPTS["FIND_SEGMENT"]
        assert [c["frame"] for c in frame.info["calls"]] == [12, 15] and len(frame.images) == 2
        assert zoom.info["frame"] == 15 and zoom.info["box_pixel"] == (15.0, 4.0, 49.0, 44.0)
        assert np.asarray(zoom.images[0].original).mean() > 230  # the white block, cut from frame 15
        assert (t.num_videos_returned, t.num_images_returned) == (1, 3) and t.steps[3].observation is None
        # plain user turns, no tool-response wrapper; observation tokens are masked out of the loss
        assert "<|im_start|>user\n" + "<|vision_start|><|image_pad|><|vision_end|>" * 2 + \
            VIDEO_COM_PROMPTS["FIND_FRAME"] + "<|im_end|>" in t.completion
        assert "<tool_response>" not in t.completion and t.completion.endswith(ANSWER)
        for s in t.steps[:3]:
            a, b = s.observation_tokens
            assert set(t.loss_mask[a:b]) == {0} and set(t.loss_mask[s.tokens[0]:s.tokens[1]]) == {1}
            assert t.completion[s.chars[0]:s.chars[1]] == s.text
    batch = collate_trajectories(trajs, proc.tokenizer.pad_token_id)
    check_vision_tokens(batch, proc, family)  # placeholders == pixel tensors over prompts, clips, frames, crops
    assert batch["video_grid_thw"].shape[0] == 4 and batch["image_grid_thw"].shape[0] == 6
    with torch.no_grad():
        assert torch.isfinite(model(**model_inputs(batch)).logits).all()
    # the sequence reward reads the same text: the right letter, and 3 of 5 distinct ids right (segment 2 of
    # 2 and 3, frame 12 of 12 and 15, the zoom on frame 15)
    rewards = video_com([t.completion for t in trajs], answer=["B. white"] * 2, reasoning_gts=[GTS] * 2)
    assert rewards == pytest.approx([1.6, 1.6])


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_step_scores_land_on_the_tokens_of_their_turn(tiny_model, run, family):
    model, proc = tiny_model(family)
    t = run(model, proc, family, {0: SEGMENT, 1: FRAME, 2: ZOOM, 3: ANSWER})[0]
    scores = video_com_step_scores(t.completion, GTS)
    assert [(s.kind, s.score) for s in scores] == [("segment", 0.5), ("frame", 0.5), ("zoom", 1.0)]
    segments = segments_from_char_spans(t, [(s.start, s.end, s.score) for s in scores])
    assert len(segments) == 3
    for k, (score, seg) in enumerate(zip(scores, segments)):
        lo, hi = t.steps[k].tokens
        assert lo <= seg.start < seg.end <= hi  # the tokens of turn k, not its observation, not another turn
        text = proc.tokenizer.decode(list(t.completion_ids[seg.start:seg.end]))
        assert t.completion[score.start:score.end] in text
    adv = rl.token_advantages(torch.tensor([0.25]), len(t.completion_ids), [segments])
    zoom = segments[2]
    assert adv[0, zoom.start:zoom.end].unique().tolist() == [1.25]
    assert adv[0, t.steps[3].tokens[0]:].unique().tolist() == [0.25]  # the answer turn: the outcome only


def test_the_model_goes_on_after_a_shown_frame(tiny_model, run):
    family = "qwen2_5_vl"
    model, proc = tiny_model(family)
    trajs = run(model, proc, family, {0: FRAME}, group_size=2, max_turns=2, max_new_tokens=40)
    forced = len(proc.tokenizer(FRAME, add_special_tokens=False).input_ids)
    for t in trajs:
        first, second = t.steps
        assert first.finish == "stop" and first.tokens == (0, forced) and t.num_images_returned == 2
        assert second.tokens[0] == first.observation_tokens[1] and second.tokens[1] > second.tokens[0]
        assert t.stop_reason in ("max_tokens", "max_turns", "answer")
        assert not set(t.completion_ids[second.tokens[0]:]) & set(placeholder_token_ids(proc, family))
    assert trajs[0].completion_ids == trajs[1].completion_ids  # greedy
    batch = collate_trajectories(trajs, proc.tokenizer.pad_token_id)
    with torch.no_grad():
        predicted = model(**model_inputs(batch)).logits.argmax(-1)
    for b, t in enumerate(trajs):  # one forward over the interleaved sequence reproduces what greedy chose
        generated = [j for j in range(len(t.completion_ids)) if t.loss_mask[j] and j >= forced]
        positions = batch["completion_index"][b, generated]
        assert predicted[b, positions - 1].tolist() == [t.completion_ids[j] for j in generated]


def test_bad_lines_and_turns_without_a_manipulation_go_on(tiny_model, run):
    family = "qwen2_5_vl"
    model, proc = tiny_model(family)
    forced = {0: "FIND_FRAME(the block) = [abc]\n", 1: "SPATIAL_ZOOM(the block) = [0, 0, 40, 40]\n",
              2: "I am not sure yet.<|im_end|>", 3: "FIND_FRAME(the block) = [99]\n", 4: ANSWER}
    t = run(model, proc, family, forced, settings=ToolSettings(coord_frame="pixel", invalid_penalty=-0.05))[0]
    assert t.stop_reason == "answer" and len(t.steps) == 5
    obs = [s.observation for s in t.steps[:4]]
    assert obs[0].error and obs[0].text.startswith("Error: could not read FIND_FRAME") and obs[0].penalty == -0.05
    assert obs[1].error and "FIND_FRAME first" in obs[1].text
    assert t.steps[2].call is None and obs[2].text == VIDEO_COM_PROMPTS[None] and not obs[2].error
    assert t.steps[2].finish == "eos"
    assert obs[3].error and "frame must be between 0 and 29" in obs[3].text
    assert t.num_tool_calls == 3 and t.num_images_returned == 0 and t.num_videos_returned == 0
    assert t.completion.count("Error: ") == 3 and VIDEO_COM_PROMPTS[None] in t.completion


def test_limits(tiny_model, run):
    family = "qwen2_5_vl"
    model, proc = tiny_model(family)

    def one(forced, **kw):
        return run(model, proc, family, forced, **kw)[0]

    assert one({0: FRAME}, max_turns=1).stop_reason == "max_turns"
    capped = one({0: FRAME, 1: ZOOM}, max_tool_calls=1)
    assert capped.stop_reason == "max_tool_calls" and capped.num_tool_calls == 1
    full = one({0: FRAME}, max_images=2)  # the prompt's video and two frames do not fit
    assert full.stop_reason == "max_images" and full.num_images_returned == 0 and full.steps[0].observation is None
    assert one({0: "FIND_FRAME(the block) = [1"}, max_new_tokens=20).stop_reason == "max_tokens"
    assert one({0: "FINAL_ANSWER: A. grey<|im_end|>"}).stop_reason == "answer"
    tool_call = run(model, proc, family, {0: FRAME}, call_syntax="tool_call", tools=("seek_frame",))[0]
    assert tool_call.stop_reason in ("max_tokens", "no_call") and tool_call.num_tool_calls == 0  # other syntax


def test_generation_stops_at_the_end_of_a_manipulation_line(tiny_model):
    """`transformers` generation with the rollout's stopping criterion, the next tokens scripted by a logits
    processor (a random model writes no manipulation): it stops on the newline closing the line."""
    from transformers import LogitsProcessor, LogitsProcessorList

    model, proc = tiny_model("qwen2_5_vl")
    tok = proc.tokenizer
    script = tok("Look. FIND_FRAME(the block) = [12]\nand then more text here", add_special_tokens=False).input_ids
    prompt = torch.tensor([tok("<|im_start|>user\nWhere?<|im_end|>\n<|im_start|>assistant\n",
                               add_special_tokens=False).input_ids])

    class Script(LogitsProcessor):
        def __call__(self, input_ids, scores):
            k = input_ids.shape[1] - prompt.shape[1]
            forced = torch.full_like(scores, -float("inf"))
            forced[:, script[min(k, len(script) - 1)]] = 0.0
            return forced

    def generate(stopping):
        out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                             max_new_tokens=len(script), logits_processor=LogitsProcessorList([Script()]),
                             stopping_criteria=stopping, pad_token_id=tok.pad_token_id,
                             eos_token_id=token_id(proc, "<|im_end|>"))
        return tok.decode(out[0, prompt.shape[1]:].tolist())

    assert generate(None) == "Look. FIND_FRAME(the block) = [12]\nand then more text here"
    assert generate([line_stopper(tok, STOP_LINES, prompt.shape[1])]) == "Look. FIND_FRAME(the block) = [12]\n"
