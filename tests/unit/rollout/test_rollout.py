"""Rollout bookkeeping without generation: observation turns per family, offsets of decoded tokens,
loss masks and step boundaries on synthetic sequences, character spans to tokens (ViRL's step spans),
the training batch, turn cutting at stops, and the backend plumbing that needs no model."""

import importlib.util

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mmreason import rl, traces
from mmreason.config import GRPOConfig, Recipe, ToolsConfig
from mmreason.families import FAMILIES
from mmreason.modalities.guards import expected_tokens, token_id
from mmreason.modalities.image import load_image
from mmreason.modalities.video import load_video, write_video
from mmreason.rewards.deepeyes import deepeyes
from mmreason.rewards.virl import virl_step_scores
from mmreason.rollout import RolloutConfig, VLLMBackend, collapse_placeholders, cut_turn
from mmreason.rollout.tokens import (
    TOKEN_TYPES, Segment, TrajectoryBuilder, collate_trajectories, decode_with_offsets, encode_observation,
    model_inputs, observation_text, segments_from_char_spans, step_token_segments,
)
from mmreason.tools import Observation

FAMILY_NAMES = sorted(FAMILIES)
CALL = ('<think>the cup is small</think><tool_call>{"name": "image_zoom_in", "arguments": {"bbox_2d": [10, 20, 90, 80]}}'
        "</tool_call>")


def _picture(family, size=(120, 90)):
    return load_image(Image.new("RGB", size, (200, 30, 30)), family, min_pixels=0, max_pixels=64 * 64)


# ------------------------------------------------------------------------------- observation layout
def test_observation_turn_is_deepeyes_layout():
    expected = ("<|im_end|>\n<|im_start|>user\n<tool_response>\n<|vision_start|><|image_pad|><|vision_end|>"
                "Zoomed.\n</tool_response><|im_end|>\n<|im_start|>assistant\n")
    assert observation_text("qwen2_5_vl", "Zoomed.", images=1) == expected
    assert observation_text("qwen2_vl", "Zoomed.", images=1) == expected
    omni = observation_text("qwen2_5_omni", "x", images=1, videos=1)
    assert "<|vision_bos|><|IMAGE|><|vision_eos|><|vision_bos|><|VIDEO|><|vision_eos|>x" in omni
    assert observation_text("qwen2_5_vl", "Error: no.").count("<|vision_start|>") == 0


def test_qwen3_template_renders_a_tool_turn_the_same_way(processor):
    proc = processor("qwen3_vl")
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "SENTINEL"}]},
                {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": "Zoomed."}]}]
    rendered = proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered.split("SENTINEL", 1)[1] == observation_text("qwen3_vl", "Zoomed.", images=1)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_observation_tokens_expand_to_the_pixels(processor, family, tmp_path):
    proc = processor(family)
    fam = FAMILIES[family]
    write_video(tmp_path / "c.mp4", [np.full((48, 64, 3), i * 20, np.uint8) for i in range(6)], 5)
    clip = load_video(tmp_path / "c.mp4", family, nframes=4, min_pixels=0, max_pixels=64 * 64)
    obs = Observation("Frames.", images=(_picture(family),), videos=(clip,))
    seg = encode_observation(obs, proc, family)
    image_id, video_id = token_id(proc, fam.image_token), token_id(proc, fam.video_token)
    assert seg.ids.count(image_id) == sum(expected_tokens(seg.vision["image_grid_thw"], fam.merge_size))
    assert seg.ids.count(video_id) == sum(expected_tokens(seg.vision["video_grid_thw"], fam.merge_size))
    assert seg.ids[0] == token_id(proc, "<|im_end|>")
    assert proc.tokenizer.decode(list(seg.ids[-3:])).endswith("<|im_start|>assistant\n")
    if seg.token_types is not None:  # the mRoPE marks: exactly the placeholders
        for kind, tid in ((1, image_id), (2, video_id)):
            assert [i for i, t in enumerate(seg.token_types) if t == kind] == [i for i, t in enumerate(seg.ids) if t == tid]
    if family != "qwen3_vl":  # Qwen3-VL writes frame timestamps into the text; the others keep it as is
        assert collapse_placeholders(seg.ids, [image_id, video_id]) == proc.tokenizer(seg.text).input_ids


# ------------------------------------------------------------------------------------ decoding
@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_decode_offsets_concatenate_to_the_decoded_text(processor, text):
    tok = processor().tokenizer
    ids = tok(text + "<tool_call>é🙂</tool_call>", add_special_tokens=False).input_ids
    decoded, ends = decode_with_offsets(tok, ids)
    assert decoded == tok.decode(ids, skip_special_tokens=False)
    assert len(ends) == len(ids) and ends == sorted(ends) and ends[-1] == len(decoded)
    for k in range(len(ids)):
        assert tok.decode(ids[:k + 1], skip_special_tokens=False).startswith(decoded[:ends[k]])


# ------------------------------------------------------------------------------- bookkeeping
def _trajectory(proc, family="qwen2_5_vl", answer="<answer>red</answer>", index=0):
    tok = proc.tokenizer
    eos = token_id(proc, "<|im_end|>")
    prompt = Segment((11, 12, 13), "", {}, token_types=(0, 0, 0))
    builder = TrajectoryBuilder(index, 0, "s0", prompt)
    first = tok(CALL, add_special_tokens=False).input_ids
    builder.add_turn(first, "stop", tok, [eos])
    call = traces.parse(CALL).tool_calls[-1]
    obs = Observation("Zoomed in on the cup.", images=(_picture(family),))
    seg = encode_observation(obs, proc, family)
    builder.close_turn(call, obs, seg)
    second = tok(answer, add_special_tokens=False).input_ids + [eos]
    builder.add_turn(second, "eos", tok, [eos])
    return builder.finish("answer"), first, seg, second


def test_loss_mask_and_step_boundaries(processor):
    proc = processor()
    traj, first, seg, second = _trajectory(proc)
    n1, no, n2 = len(first), len(seg.ids), len(second)
    assert traj.completion_ids == tuple(first) + seg.ids + tuple(second)
    assert traj.loss_mask == (1,) * n1 + (0,) * no + (1,) * n2
    s0, s1 = traj.steps
    assert s0.tokens == (0, n1) and s0.observation_tokens == (n1, n1 + no) and s0.finish == "stop"
    assert s1.tokens == (n1 + no, n1 + no + n2) and s1.observation is None and s1.finish == "eos"
    assert s0.call.name == "image_zoom_in" and traj.tool_calls == [s0.call] and traj.num_tool_calls == 1
    assert traj.num_images_returned == 1 and traj.stop_reason == "answer"
    # the text rewards get: assistant text, the observation with ONE marker per image, no end-of-turn token
    assert traj.completion == CALL + seg.text + "<answer>red</answer>"
    for s in traj.steps:
        assert traj.completion[s.chars[0]:s.chars[1]] == s.text
    assert traj.completion[slice(*s0.observation_chars)] == seg.text
    assert traj.token_types == (0, 0, 0) + (0,) * n1 + seg.token_types + (0,) * n2
    assert deepeyes([traj.completion], answer=["red"], data_source=["vstar"]) == [2.0]  # acc + tool bonus


def test_character_spans_map_to_the_tokens_that_wrote_them(processor):
    proc = processor()
    traj, first, seg, _ = _trajectory(proc)
    call = traces.parse(traj.completion).tool_calls[0]
    a, b = traj.char_span_to_tokens(call.start, call.end)
    assert 0 <= a < b <= len(first)
    assert proc.tokenizer.decode(list(traj.completion_ids[a:b])) == traj.completion[call.start:call.end]
    inside = traj.completion.index("Zoomed in")
    assert traj.char_span_to_tokens(inside, inside + 3) == traj.steps[0].observation_tokens
    assert traj.char_span_to_tokens(10**6, 10**6 + 1) is None
    # ViRL's step scores come as character spans: they land on the call's tokens
    steps = virl_step_scores(traj.completion, [{"box": [10, 20, 90, 80]}], correct=1, coord_frame="pixel")
    segments = segments_from_char_spans(traj, [(s.start, s.end, s.shaped) for s in steps])
    assert [(g.start, g.end) for g in segments] == [(a, b)] and segments[0].reward > 1
    adv = rl.token_advantages(torch.tensor([0.5]), len(traj.completion_ids), [segments])
    assert adv[0, a:b].min() > 1.5 and adv[0, b:].max() == 0.5  # credit only on the tokens of the step


def test_step_token_segments(processor):
    traj, first, seg, second = _trajectory(processor())
    segments = step_token_segments(traj, [0.25, -1.0])
    assert [(g.start, g.end, g.reward) for g in segments] == [
        (0, len(first), 0.25), (len(first) + len(seg.ids), len(traj.completion_ids), -1.0)]
    assert [g.reward for g in step_token_segments(traj)] == [0.0, 0.0]
    with pytest.raises(ValueError, match="2 steps"):
        step_token_segments(traj, [1.0])


def test_collated_batch_lines_up(processor):
    proc = processor()
    long, *_ = _trajectory(proc)
    short, *_ = _trajectory(proc, answer="<answer>a</answer>", index=1)
    trajs = [long, short, long]
    pad = proc.tokenizer.pad_token_id
    batch = collate_trajectories(trajs, pad)
    lengths = [len(t.prompt_ids) + len(t.completion_ids) for t in trajs]
    assert batch["input_ids"].shape == (3, max(lengths))
    for b, t in enumerate(trajs):
        row = batch["input_ids"][b]
        assert row[:lengths[b]].tolist() == list(t.prompt_ids + t.completion_ids)
        assert (row[lengths[b]:] == pad).all() and batch["attention_mask"][b].sum() == lengths[b]
        assert batch["completion_mask"][b].sum() == sum(t.loss_mask)
        c = len(t.completion_ids)
        picked = row.gather(0, batch["completion_index"][b][:c])
        assert picked.tolist() == list(t.completion_ids) == batch["completion_ids"][b][:c].tolist()
        assert batch["completion_loss_mask"][b][:c].tolist() == list(t.loss_mask)
        full_mask = batch["completion_mask"][b][batch["completion_index"][b][:c]]
        assert full_mask.tolist() == list(t.loss_mask)
    assert batch["image_grid_thw"].shape[0] == 3
    assert batch["pixel_values"].shape[0] == int(batch["image_grid_thw"].prod(-1).sum())
    image_id = token_id(proc, "<|image_pad|>")
    assert ((batch[TOKEN_TYPES] == 1) == (batch["input_ids"] == image_id)).all()
    assert set(model_inputs(batch)) == {"input_ids", "attention_mask", "pixel_values", "image_grid_thw", TOKEN_TYPES}


def test_builder_misuse_is_caught(processor):
    tok = processor().tokenizer
    builder = TrajectoryBuilder(0, 0, "s", Segment((1,), "", {}))
    with pytest.raises(RuntimeError, match="no open turn"):
        builder.close_turn()
    builder.add_turn([5, 6], "length", tok)
    with pytest.raises(RuntimeError, match="close the previous turn"):
        builder.add_turn([7], "length", tok)
    assert builder.finish("max_tokens").steps[0].tokens == (0, 2)


# ---------------------------------------------------------------------------------- turn cutting
def test_cut_turn_at_the_first_stop_or_end(processor):
    tok = processor().tokenizer
    eos = [token_id(processor(), "<|im_end|>")]
    stops = ("</tool_call>", "</answer>")

    def ids(text):
        return tok(text, add_special_tokens=False).input_ids

    call = ids("x<tool_call>{}</tool_call>")
    assert cut_turn(call + ids(" more words"), tok, eos, stops, 100) == (call, "stop")
    answer = ids("<answer>yes</answer>")  # "</answer>" is not one token: the stop is found in the text
    assert len(ids("</answer>")) > 1
    assert cut_turn(answer + ids("junk") + eos, tok, eos, stops, 100) == (answer, "stop")
    assert cut_turn(ids("no call") + eos + ids("</answer>"), tok, eos, stops, 100) == (ids("no call") + eos, "eos")
    assert cut_turn(call, tok, eos, stops, 3) == (call[:3], "length")
    assert cut_turn(ids("still thinking"), tok, eos, stops, 100) == (ids("still thinking"), "length")


# ------------------------------------------------------------------------------------- config
def test_config_from_a_recipe_and_its_checks():
    recipe = Recipe(tools=ToolsConfig(names=("image_zoom_in",), max_turns=3, max_images=6, max_tool_calls=2),
                    grpo=GRPOConfig(max_completion_length=64, temperature=0.7, top_p=0.9))
    config = RolloutConfig.from_recipe(recipe, seed=3)
    assert (config.tools, config.max_turns, config.max_images, config.max_tool_calls) == (("image_zoom_in",), 3, 6, 2)
    assert (config.max_completion_tokens, config.temperature, config.top_p, config.seed) == (64, 0.7, 0.9, 3)
    for bad in ({"max_turns": 0}, {"max_tool_calls": -1}, {"temperature": 0.0}):
        with pytest.raises(ValueError):
            RolloutConfig(**bad)
    assert RolloutConfig(temperature=0.0, do_sample=False).temperature == 0.0


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_backend_says_how_to_install_it(processor):
    with pytest.raises(ImportError, match=r"mmreason\[vllm\]"):
        VLLMBackend(processor(), "qwen2_5_vl", model="some/checkpoint")


def test_vllm_backend_arguments(processor):
    with pytest.raises(ValueError, match="server_url"):
        VLLMBackend(processor(), "qwen2_5_vl", mode="server")
    with pytest.raises(ValueError, match="colocate"):
        VLLMBackend(processor(), "qwen2_5_vl", mode="remote")
