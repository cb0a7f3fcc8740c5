"""The HF backend's key/value cache across turns against re-encoding every turn, on tiny models of each
Qwen-VL family: greedy decoding must pick the same tokens both ways.

The backend is driven turn by turn as the rollout loop drives it, with what a random tiny model cannot be
made to do by itself: trajectories of different lengths in one left-padded batch, a turn kept shorter
than generation ran (the rollout cuts at the first stop), a trajectory that ends early and drops out of
the batch, the order of the batch changing, and tool observations (crops, an error text) appended. A
forward hook checks the cached path really fed only the new tokens. Then whole rollouts, both ways.
"""

import pytest
import torch
from PIL import Image, ImageDraw

from mmreason import traces
from mmreason.modalities.guards import placeholder_token_ids
from mmreason.rollout import GenerationParams, HFBackend, RolloutConfig, TurnInput, prepare_prompt, rollout
from mmreason.rollout.tokens import encode_observation
from mmreason.tools import ToolSettings, run_tool_call

FAMILIES = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"]
BUDGET = {"image": {"min_pixels": 0, "max_pixels": 48 * 28 * 28}}
ZOOM = '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox_2d": [90, 70, 230, 170]}}</tool_call>'
TINY = '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox_2d": [10, 10, 20, 20]}}</tool_call>'


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("cache-media")
    img = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(img).rectangle((100, 80, 220, 160), fill=(220, 30, 30))
    img.save(d / "box.png")
    Image.new("RGB", (160, 320), (30, 30, 220)).save(d / "tall.png")
    return d


def _row(name, image=None, question="What colour is the box?"):
    content = ([{"type": "image", "image": image}] if image else []) + [{"type": "text", "text": question}]
    return {"id": name, "messages": [{"role": "user", "content": content}]}


ROWS = [_row("r0", "box.png"), _row("r1", "tall.png", "Is the tall thing blue? Answer in a word."),
        _row("r2", None, "Name a colour.")]


class _Trajectory:
    """A trajectory's growing sequence, as `TrajectoryBuilder` keeps it for the loop."""

    def __init__(self, key, prompt, env):
        self.key, self.env = key, env
        self.ids, self.vision, self.types = list(prompt.ids), [prompt.vision], list(prompt.token_types)

    def turn_input(self):
        return TurnInput(tuple(self.ids), tuple(self.vision), token_types=tuple(self.types), key=self.key)

    def add(self, generated, call_text, proc, family):
        """Keep `generated` (the turn as cut), then the observation of running `call_text`."""
        self.turn_start = len(self.ids)
        self.ids += generated
        self.types += [0] * len(generated)
        observation = run_tool_call(traces.parse(call_text).tool_calls[-1], self.env, tools=None)
        segment = encode_observation(observation, proc, family)
        self.ids += segment.ids
        self.types += segment.token_types
        self.vision.append(segment.vision)


def _fed_widths(model):
    widths = []
    hook = model.register_forward_pre_hook(lambda m, a, k: widths.append(k["input_ids"].shape[1]), with_kwargs=True)
    return widths, hook


@pytest.mark.parametrize("family", FAMILIES)
def test_cache_continues_each_trajectory_with_the_same_tokens(tiny_model, root, family):
    model, proc = tiny_model(family)
    trajs = []
    for r, row in enumerate(ROWS):
        env, prompt, _ = prepare_prompt(row, proc, family, root=root, media_options=BUDGET,
                                        tool_settings=ToolSettings(coord_frame="pixel"))
        trajs += [_Trajectory(2 * r + g, prompt, env.fork()) for g in range(2)]
    cached, plain = HFBackend(model, proc, family), HFBackend(model, proc, family, cache=False)
    assert cached.cache_reason is None and plain.cache_reason == "cache=False"
    eos = (proc.tokenizer.convert_tokens_to_ids("<|im_end|>"),)
    params = GenerationParams(6, do_sample=False, eos_ids=eos, forbidden_ids=tuple(placeholder_token_ids(proc, family)))

    def both(batch):
        inputs = [t.turn_input() for t in batch]
        widths, hook = _fed_widths(model)
        try:
            got = cached.generate(inputs, params)
        finally:
            hook.remove()
        want = plain.generate(inputs, params)
        assert got == want  # the same tokens, token for token
        return got, widths[0]

    first, _ = both(trajs)  # prompts of three lengths (one without a picture), left-padded together
    for t, new, keep in zip(trajs, first, [6, 3, 1, 6, 2, 5]):  # the rollout keeps as much of a turn as it cut
        t.add(new[:keep], ZOOM if t.key != 3 else TINY, proc, family)  # trajectory 3 gets an error text back
    order = [trajs[k] for k in (4, 0, 3, 1, 5)]  # trajectory 2 ended: it drops out; the batch order changes
    second, width = both(order)
    assert width <= max(len(t.ids) - t.turn_start for t in order)  # only the new tokens: not the prompt again
    for t, new in zip(order, second):
        t.add(new[:4], ZOOM, proc, family)  # a second crop
    third, width = both([trajs[k] for k in (0, 3)])
    assert width <= max(len(trajs[k].ids) - trajs[k].turn_start for k in (0, 3))
    assert cached.turn_cache.cache is not None
    cached.release()
    assert cached.turn_cache.cache is None


@pytest.mark.parametrize("family", FAMILIES)
def test_rollouts_with_and_without_the_cache_agree(tiny_model, root, family):
    model, proc = tiny_model(family)
    config = RolloutConfig(tools=("image_zoom_in",), max_new_tokens=48, max_completion_tokens=512, do_sample=False,
                           max_turns=3)
    # The forced call is the whole first turn; after the crop the model writes on from a forced "<think>".
    kw = dict(root=root, media_options=BUDGET, config=config, tool_settings=ToolSettings(coord_frame="pixel"),
              forced={0: ZOOM, 1: "<think>"})
    backend = HFBackend(model, proc, family)
    with_cache = rollout(model, proc, ROWS, family, group_size=2, backend=backend, **kw)
    without = rollout(model, proc, ROWS, family, group_size=2, backend=HFBackend(model, proc, family, cache=False),
                      **kw)
    assert [t.completion_ids for t in with_cache] == [t.completion_ids for t in without]
    assert [t.stop_reason for t in with_cache] == [t.stop_reason for t in without]
    assert sum(t.num_images_returned for t in with_cache) == 4  # the two rows with a picture zoomed
    assert backend.turn_cache.cache is None  # released when the rollout ended
