"""Multi-turn rollouts on tiny models: a first turn forced to call the zoom tool, the crop shown back as a
picture, the model going on; the trajectory's masks, steps and pixel tensors checked by one forward over
the collated batch, which must reproduce every token greedy generation chose. Then every stop reason,
tool errors, seeded sampling, batched against one at a time, a video tool, and the OpenAI-compatible
server backend against a real HTTP server on 127.0.0.1.

Forcing: `rollout(forced={turn: text})` makes every trajectory's turn start with `text` (forced decoding:
the tokens count as generated). A random tiny model never writes a valid call by itself; forcing the call
and letting the model write everything after it is the honest way to exercise the tool path here.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mmreason.modalities.guards import check_vision_tokens, placeholder_token_ids, token_id
from mmreason.modalities.video import write_video
from mmreason.rollout import RolloutConfig, VLLMBackend, collate_trajectories, model_inputs, rollout
from mmreason.tools import ToolSettings

BUDGET = {"image": {"min_pixels": 0, "max_pixels": 48 * 28 * 28},
          "video": {"min_pixels": 0, "max_pixels": 64 * 64}}
ZOOM = '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox_2d": [90, 70, 230, 170], "label": "box"}}</tool_call>'


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("rollout-media")
    img = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(img).rectangle((100, 80, 220, 160), fill=(220, 30, 30))
    img.save(d / "box.png")
    Image.new("RGB", (160, 320), (30, 30, 220)).save(d / "tall.png")
    write_video(d / "clip.mp4", [np.full((48, 64, 3), 12 * i, np.uint8) for i in range(20)], 10)
    return d


def _row(name, image="box.png", question="What colour is the box?"):
    return {"id": name, "messages": [{"role": "user", "content": [{"type": "image", "image": image},
                                                                    {"type": "text", "text": question}]}]}


ROWS = [_row("r0"), _row("r1", "tall.png", "Is the tall thing blue? Answer in a word.")]


def _greedy(**kw):
    base = dict(tools=("image_zoom_in",), max_new_tokens=48, max_completion_tokens=512, do_sample=False, max_turns=3)
    return RolloutConfig(**{**base, **kw})


def _forced_token_count(proc, texts):
    return [len(proc.tokenizer(t, add_special_tokens=False).input_ids) for t in texts]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_forced_zoom_then_the_model_goes_on(tiny_model, root, family):
    model, proc = tiny_model(family)
    trajs = rollout(model, proc, ROWS, family, group_size=2, root=root, media_options=BUDGET,
                    config=_greedy(max_turns=2, max_new_tokens=64),
                    tool_settings=ToolSettings(coord_frame="pixel"), forced={0: ZOOM})
    assert [t.group for t in trajs] == [0, 0, 1, 1]  # grouped contiguously, as rl.py expects
    image_id = token_id(proc, "<|image_pad|>")
    for t in trajs:
        first, second = t.steps
        assert first.call.name == "image_zoom_in" and not first.observation.error
        assert first.observation.info["box_pixel"] == ((90.0, 70.0, 230.0, 170.0) if t.group == 0
                                                       else (90.0, 70.0, 160.0, 170.0))  # clamped to 160 px
        assert t.num_images_returned == 1 and t.num_tool_calls == 1
        assert t.completion.count("<|vision_start|><|image_pad|><|vision_end|>") == 1
        a, b = first.observation_tokens
        assert set(t.loss_mask[a:b]) == {0} and set(t.loss_mask[:a]) == {1} and set(t.loss_mask[b:]) == {1}
        crop_grid = t.vision[1]["image_grid_thw"]
        assert t.completion_ids[a:b].count(image_id) == int(crop_grid.prod()) // 4
        assert second.tokens[0] == b and second.tokens[1] > b  # the model continued after the observation
        assert t.stop_reason in ("max_tokens", "answer", "no_call", "max_turns")
        assert not set(t.completion_ids[second.tokens[0]:]) & set(placeholder_token_ids(proc, family))
    batch = collate_trajectories(trajs, proc.tokenizer.pad_token_id)
    check_vision_tokens(batch, proc, family)  # placeholder tokens == pixel tensors, over prompts and crops
    assert batch["image_grid_thw"].shape[0] == 8  # 4 prompts + 4 crops, in sequence order
    with torch.no_grad():
        logits = model(**model_inputs(batch)).logits
    # One forward over the whole interleaved sequence reproduces what greedy generation picked: positions,
    # mRoPE and pixel order are the same as during the rollout.
    forced = _forced_token_count(proc, [ZOOM])[0]
    predicted = logits.argmax(-1)
    for b, t in enumerate(trajs):
        generated = [j for j in range(len(t.completion_ids)) if t.loss_mask[j] and j >= forced]
        positions = batch["completion_index"][b, generated]
        assert predicted[b, positions - 1].tolist() == [t.completion_ids[j] for j in generated]


def test_every_stop_reason(tiny_model, root):
    family = "qwen2_5_vl"
    model, proc = tiny_model(family)

    def run(forced, **kw):
        return rollout(model, proc, ROWS[:1], family, root=root, media_options=BUDGET, config=_greedy(**kw),
                       tool_settings=ToolSettings(coord_frame="pixel"), forced=forced)[0]

    assert run({0: "<think>red</think><answer>red</answer>"}).stop_reason == "answer"
    no_call = run({0: "I cannot tell.<|im_end|>"})
    assert no_call.stop_reason == "no_call" and no_call.steps[0].finish == "eos"
    assert no_call.completion == "I cannot tell."  # the end-of-turn token is kept in ids, not in the text
    assert no_call.completion_ids[-1] == token_id(proc, "<|im_end|>") and no_call.loss_mask[-1] == 1
    last_turn = run({0: ZOOM, 1: ZOOM}, max_turns=2)
    assert last_turn.stop_reason == "max_turns" and last_turn.num_tool_calls == 1  # the last call is not run
    assert run({0: ZOOM}, max_tool_calls=0).stop_reason == "max_tool_calls"
    full = run({0: ZOOM}, max_images=1)  # the prompt's picture fills the budget
    assert full.stop_reason == "max_images" and full.num_images_returned == 0 and full.steps[0].observation is None
    assert full.num_tool_calls == 1 and full.loss_mask == (1,) * len(full.completion_ids)
    assert run({0: ZOOM}, max_new_tokens=10).stop_reason == "max_tokens"
    tight = run({0: ZOOM}, max_completion_tokens=70)  # the call fits, the observation does not
    assert tight.stop_reason == "max_tokens" and tight.num_images_returned == 0


def test_a_bad_call_gets_an_error_turn_and_the_episode_goes_on(tiny_model, root):
    family = "qwen2_5_vl"
    model, proc = tiny_model(family)
    bad = '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox_2d": [10, 10, 20, 20]}}</tool_call>'
    t = rollout(model, proc, ROWS[:1], family, root=root, media_options=BUDGET, config=_greedy(max_turns=2),
                tool_settings=ToolSettings(coord_frame="pixel", invalid_penalty=-0.05), forced={0: bad})[0]
    first = t.steps[0]
    assert first.observation.error and first.observation.penalty == -0.05 and "too small" in first.observation.text
    assert t.num_images_returned == 0 and len(t.vision) == 2 and not t.vision[1].get("image_grid_thw")
    assert "Error: bbox_2d is too small" in t.completion and len(t.steps) == 2


def test_seeded_sampling_is_reproducible(tiny_model, root):
    family = "qwen2_5_vl"
    model, proc = tiny_model(family)

    def run(seed):
        config = RolloutConfig(max_new_tokens=8, max_turns=1, temperature=1.5, seed=seed)
        return [t.completion_ids for t in rollout(model, proc, ROWS[:1], family, group_size=3, root=root,
                                                  media_options=BUDGET, config=config)]

    once, again, other = run(7), run(7), run(8)
    assert once == again and once != other
    assert len(set(once)) > 1  # a group samples different continuations


def test_batched_rollout_equals_one_trajectory_at_a_time(tiny_model, root):
    family = "qwen2_5_vl"
    model, proc = tiny_model(family)
    kw = dict(root=root, media_options=BUDGET, config=_greedy(max_turns=2, max_new_tokens=56),
              tool_settings=ToolSettings(coord_frame="pixel"), forced={0: ZOOM})
    batched = rollout(model, proc, ROWS, family, **kw)
    alone = [rollout(model, proc, [row], family, **kw)[0] for row in ROWS]
    assert [t.completion_ids for t in batched] == [t.completion_ids for t in alone]  # left padding is right


def test_video_tool_rollout(tiny_model, root):
    family = "qwen3_vl"
    model, proc = tiny_model(family)
    row = {"id": "v", "messages": [{"role": "user", "content": [{"type": "video", "video": "clip.mp4", "nframes": 4},
                                                                 {"type": "text", "text": "What changes?"}]}]}
    seek = '<tool_call>{"name": "seek_frame", "arguments": {"time": 1.5}}</tool_call>'
    clip = '<tool_call>{"name": "clip_segment", "arguments": {"start": 0.5, "end": 1.5}}</tool_call>'
    t = rollout(model, proc, [row], family, root=root, media_options=BUDGET, forced={0: seek, 1: clip},
                config=_greedy(tools=("seek_frame", "clip_segment"), max_turns=3, max_new_tokens=48))[0]
    assert t.steps[0].observation.info["frame"] == 15 and t.num_images_returned == 1
    assert t.steps[1].observation.videos and t.num_videos_returned == 1
    batch = collate_trajectories([t], proc.tokenizer.pad_token_id)
    check_vision_tokens(batch, proc, family)
    assert batch["video_grid_thw"].shape[0] == 2 and batch["image_grid_thw"].shape[0] == 1
    with torch.no_grad():
        assert torch.isfinite(model(**model_inputs(batch)).logits).all()


# ------------------------------------------------------------------- OpenAI-compatible server backend
def _serve(model, proc):
    """A minimal OpenAI-compatible /v1/completions endpoint over the tiny model (greedy, token-id prompts),
    answering with token ids as a vLLM server does when asked for them."""
    from transformers import LogitsProcessorList, SuppressTokensLogitsProcessor

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/v1/completions" and body["temperature"] == 0.0 and body["return_token_ids"]
            ids = torch.tensor([body["prompt"]])
            banned = [int(k) for k, v in (body.get("logit_bias") or {}).items() if v <= -100]
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                     max_new_tokens=body["max_tokens"], eos_token_id=body["stop_token_ids"],
                                     stop_strings=body["stop"], tokenizer=proc.tokenizer,
                                     pad_token_id=proc.tokenizer.pad_token_id,
                                     logits_processor=LogitsProcessorList([SuppressTokensLogitsProcessor(banned)]))
            new = out[0, ids.shape[1]:].tolist()
            data = json.dumps({"choices": [{"text": proc.tokenizer.decode(new), "token_ids": new}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_server_backend_matches_local_generation(tiny_model, root):
    family = "qwen2_5_vl"
    model, proc = tiny_model(family)
    server = _serve(model, proc)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        backend = VLLMBackend(proc, family, mode="server", server_url=url, served_model="tiny")
        rows = [{"id": "t", "messages": [{"role": "user", "content": "Zoom into the box, then answer."}]}]
        kw = dict(root=root, config=_greedy(max_turns=2, max_new_tokens=56), forced={0: ZOOM})
        remote = rollout(model, proc, rows, family, backend=backend, **kw)[0]
        local = rollout(model, proc, rows, family, **kw)[0]
        assert remote.steps[0].observation.text == "Error: this sample has no image"  # a text-only sample
        assert remote.completion_ids == local.completion_ids and len(remote.steps) == 2
        with pytest.raises(ValueError, match="carries no pictures"):
            rollout(model, proc, ROWS[:1], family, backend=backend, media_options=BUDGET, **kw)
    finally:
        server.shutdown()
        server.server_close()
