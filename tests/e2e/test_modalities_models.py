"""Images, videos and audio through the collator into a tiny model of every family: loss, gradients into
the vision tower, generation without placeholder tokens, GRPO-style prompt/completion batches, and box
coordinates that survive the resize the processor actually applied."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mmreason.families import FAMILIES
from mmreason.geometry import box_from_model, convert_box, model_frame
from mmreason.modalities.collate import IGNORE_INDEX, collate
from mmreason.modalities.guards import forbid_placeholder_tokens, placeholder_token_ids
from mmreason.modalities.video import write_video

FAMILY_NAMES = sorted(FAMILIES)
SMALL = {"image": {"min_pixels": 0, "max_pixels": 64 * 64}, "video": {"min_pixels": 0, "max_pixels": 64 * 64}}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e-media")
    Image.new("RGB", (64, 48), (220, 40, 40)).save(d / "red.png")
    rng = np.random.default_rng(0)
    write_video(d / "clip.mp4", [rng.integers(0, 255, (48, 64, 3), np.uint8) for _ in range(20)], 10)
    import soundfile as sf

    t = np.arange(16000) / 16000
    sf.write(d / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    return d


def user(*parts):
    return {"role": "user", "content": list(parts)}


def said(text):
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def q(text):
    return {"type": "text", "text": text}


ROWS = [
    {"id": "img", "messages": [user({"type": "image", "image": "red.png"}, q("Colour?")), said("red")]},
    {"id": "vid", "messages": [user({"type": "video", "video": "clip.mp4", "nframes": 4}, q("What moves?")),
                               said("noise")]},
]


def tensors(batch):
    return {k: v for k, v in batch.items() if k not in ("ids", "frames")}


def vision_params(model):
    return [p for n, p in model.named_parameters() if "visual" in n]


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_sft_batch_trains_the_vision_tower_and_generation_stays_clean(tiny_model, root, family):
    model, proc = tiny_model(family)
    batch = collate(ROWS, proc, family, root=root, media_options=SMALL)
    out = model(**tensors(batch))
    assert torch.isfinite(out.loss)
    model.zero_grad(set_to_none=True)
    out.loss.backward()
    grads = [p.grad for p in vision_params(model)]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)  # the pixels reached the loss
    model.zero_grad(set_to_none=True)

    gen = tensors(collate(ROWS, proc, family, root=root, media_options=SMALL, mode="generate"))
    with torch.no_grad():
        new = model.generate(**gen, max_new_tokens=3, do_sample=False,
                             logits_processor=forbid_placeholder_tokens(proc, family))
        new = new[:, gen["input_ids"].shape[1]:]
        assert not torch.isin(new, torch.tensor(placeholder_token_ids(proc, family))).any()
        # Left padding is right: each prompt generates the same tokens alone as in the batch.
        for i, row in enumerate(ROWS):
            one = tensors(collate([row], proc, family, root=root, media_options=SMALL, mode="generate"))
            alone = model.generate(**one, max_new_tokens=3, do_sample=False,
                                   logits_processor=forbid_placeholder_tokens(proc, family))
            assert alone[0, one["input_ids"].shape[1]:].tolist() == new[i].tolist()


class _WantsPlaceholders:
    """A policy gone wrong: pushes every placeholder token to the top."""

    def __init__(self, ids):
        self.ids = ids

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, self.ids] = scores.max() + 100.0
        return scores


def test_forbidding_placeholders_stops_a_policy_that_wants_them(tiny_model, root):
    from transformers import LogitsProcessorList

    family = "qwen2_5_vl"
    model, proc = tiny_model(family)
    ids = placeholder_token_ids(proc, family)
    gen = tensors(collate(ROWS[:1], proc, family, root=root, media_options=SMALL, mode="generate"))
    start = gen["input_ids"].shape[1]
    with torch.no_grad():
        bad = model.generate(**gen, max_new_tokens=2, do_sample=False,
                             logits_processor=LogitsProcessorList([_WantsPlaceholders(ids)]))
        both = LogitsProcessorList([_WantsPlaceholders(ids), *forbid_placeholder_tokens(proc, family)])
        good = model.generate(**gen, max_new_tokens=2, do_sample=False, logits_processor=both)
    assert bad[0, start] in ids
    assert not torch.isin(good[0, start:], torch.tensor(ids)).any()


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_grpo_video_prompts_then_completions(tiny_model, root, family):
    """A rollout batch with videos, then the training batch of prompt + completion from the same rows."""
    model, proc = tiny_model(family)
    prompts = [ROWS[1], {**ROWS[0], "id": "img2"}]
    gen = tensors(collate(prompts, proc, family, root=root, media_options=SMALL, mode="generate"))
    with torch.no_grad():
        out = model.generate(**gen, max_new_tokens=4, do_sample=False,
                             logits_processor=forbid_placeholder_tokens(proc, family))
    completions = proc.tokenizer.batch_decode(out[:, gen["input_ids"].shape[1]:], skip_special_tokens=True)
    rows = [{**row, "messages": [row["messages"][0], said(c or "x")]} for row, c in zip(prompts, completions)]
    train = collate(rows, proc, family, root=root, media_options=SMALL)
    assert torch.isfinite(model(**tensors(train)).loss)
    for i, c in enumerate(completions):
        lab = train["labels"][i]
        assert proc.tokenizer.decode(lab[lab != IGNORE_INDEX], skip_special_tokens=True) == (c or "x")


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_mixed_image_video_audio_batch(tiny_model, root, family):
    model, proc = tiny_model(family)
    audio = {"id": "aud", "messages": [user({"type": "audio", "audio": "tone.wav"}, q("Pitch?")), said("A4")]}
    rows = [*ROWS, audio]
    batch = collate(rows, proc, family, root=root, media_options=SMALL)
    kinds = [k for f in batch["frames"] for k, _ in f.media]
    assert kinds == ["image", "video", "audio"]
    if "audio" in FAMILIES[family].modalities:
        assert batch["input_features"].shape[0] == 1  # the waveform itself
    else:
        assert batch["image_grid_thw"].shape[0] == 2  # the audio became a spectrogram picture
    assert torch.isfinite(model(**tensors(batch)).loss)


def _seen_image(batch, proc, index=0):
    """Rebuild image `index` as the processor handed it to the model, from its patches."""
    ip = proc.image_processor
    t, gh, gw = batch["image_grid_thw"][index].tolist()
    start = int(batch["image_grid_thw"][:index].prod(dim=-1).sum())
    patches = batch["pixel_values"][start:start + t * gh * gw]
    p, m, tp = ip.patch_size, ip.merge_size, ip.temporal_patch_size
    x = patches.reshape(t, gh // m, gw // m, m, m, 3, tp, p, p).permute(0, 6, 5, 1, 3, 7, 2, 4, 8)
    x = x.reshape(t * tp, 3, gh * p, gw * p)[0]
    mean = torch.tensor(ip.image_mean).view(3, 1, 1)
    std = torch.tensor(ip.image_std).view(3, 1, 1)
    return (x * std + mean).clamp(0, 1)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_drawn_box_round_trips_through_the_resize_the_model_saw(tiny_model, tmp_path, family):
    _, proc = tiny_model(family)
    drawn = (37, 22, 101, 71)  # x1, y1, x2, y2 in original pixels (exclusive right/bottom)
    img = Image.new("RGB", (150, 100), "black")
    ImageDraw.Draw(img).rectangle((drawn[0], drawn[1], drawn[2] - 1, drawn[3] - 1), fill="white")
    img.save(tmp_path / "box.png")
    row = {"id": "box", "messages": [user({"type": "image", "image": "box.png"}, q("Where?")), said("there")]}
    batch = collate([row], proc, family, root=tmp_path)  # the family's own pixel budget
    frame = batch["frames"][0].images[0]
    seen = _seen_image(batch, proc)
    assert tuple(seen.shape[1:]) == (frame.resized_height, frame.resized_width)
    ys, xs = torch.nonzero(seen.mean(dim=0) > 0.5, as_tuple=True)
    located = (xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1)  # resized pixels
    expected = convert_box(drawn, "pixel", "resized", frame)
    assert max(abs(a - b) for a, b in zip(located, expected)) <= 1.0
    # What the model would write for the box it saw, as integers in its own frame.
    emitted = [round(v) for v in convert_box(located, "resized", model_frame(family), frame)]
    back = box_from_model(emitted, family, frame)
    assert max(abs(a - b) for a, b in zip(back, drawn)) <= 1.0, (family, located, emitted, back)
