"""Tiny checkpoints load with the stock HF classes and take every modality through forward and generate."""

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from mmreason.families import FAMILIES, get_family
from mmreason.geometry import ImageFrame

ALL = sorted(FAMILIES)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A small image, a 16-frame clip and a 2 s tone, written by the test."""
    import av
    import soundfile as sf

    root = tmp_path_factory.mktemp("tiny-media")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (90, 130, 3), dtype=np.uint8)).save(root / "img.png")
    with av.open(str(root / "clip.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(16):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 15, dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    t = np.arange(32000) / 16000
    sf.write(root / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32"), 16000)
    return root


def _loaded(tiny_model_dir, family):
    import transformers as tf

    path = tiny_model_dir(family)
    processor = tf.AutoProcessor.from_pretrained(path)
    model = getattr(tf, get_family(family).auto_class).from_pretrained(path)
    return model, processor


def _forward_and_generate(model, processor, inputs):
    out = model(**inputs, labels=inputs["input_ids"])
    assert torch.isfinite(out.loss), out.loss
    generated = model.generate(**inputs, max_new_tokens=3)
    assert inputs["input_ids"].shape[1] < generated.shape[1] <= inputs["input_ids"].shape[1] + 3
    return out


@pytest.mark.parametrize("family", ALL)
def test_image_chat_template_forward_generate(tiny_model_dir, media, family):
    model, processor = _loaded(tiny_model_dir, family)
    assert type(model).__name__ == get_family(family).model_class
    assert type(processor).__name__ == get_family(family).processor_class
    chat = [{"role": "user", "content": [{"type": "image", "image": str(media / "img.png")},
                                         {"type": "text", "text": "Where is the box?"}]}]
    inputs = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    fam = get_family(family)
    image_id = processor.tokenizer.convert_tokens_to_ids(fam.image_token)
    t, h, w = inputs["image_grid_thw"][0].tolist()
    # the placeholder expands to one token per merged patch, and the grid follows the family's resize rule
    assert int((inputs["input_ids"] == image_id).sum()) == t * h * w // fam.merge_size ** 2
    size = processor.image_processor.size
    frame = ImageFrame.for_family(130, 90, family, min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"])
    assert (h * fam.patch_size, w * fam.patch_size) == (frame.resized_height, frame.resized_width)
    _forward_and_generate(model, processor, inputs)


@pytest.mark.parametrize("family", ALL)
def test_video_with_metadata_forward_generate(tiny_model_dir, media, family):
    from qwen_vl_utils import process_vision_info

    model, processor = _loaded(tiny_model_dir, family)
    chat = [{"role": "user", "content": [{"type": "video", "video": str(media / "clip.mp4")},
                                         {"type": "text", "text": "What changes?"}]}]
    text = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    _, videos, video_kwargs = process_vision_info(chat, return_video_kwargs=True, return_video_metadata=True,
                                                  image_patch_size=get_family(family).patch_size)
    frames, metadata = zip(*videos)
    if family == "qwen2_5_omni":
        # Omni's processor class carries its own video size (128-768 tokens a frame) that outranks the video
        # processor's; passing the tiny budget explicitly keeps the clip small.
        video_kwargs["size"] = dict(processor.video_processor.size)
    inputs = processor(text=[text], videos=list(frames), video_metadata=list(metadata), return_tensors="pt",
                       **video_kwargs)
    t, h, w = inputs["video_grid_thw"][0].tolist()
    if family != "qwen3_vl":  # per-frame budget of the tiny processor: at most 16 merged tokens per frame
        assert h * w // 4 <= 16
    else:  # Qwen3-VL budgets the whole clip
        assert (t * 2) * (h * 16) * (w * 16) <= 128 * 32 * 32
    _forward_and_generate(model, processor, inputs)


def test_omni_audio_forward_generate(tiny_model_dir, media):
    import soundfile as sf

    model, processor = _loaded(tiny_model_dir, "qwen2_5_omni")
    chat = [{"role": "user", "content": [{"type": "audio", "audio": "tone.wav"}, {"type": "text", "text": "What is it?"}]}]
    text = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    wave, rate = sf.read(media / "tone.wav", dtype="float32")
    inputs = processor(text=[text], audio=[wave], sampling_rate=rate, return_tensors="pt")
    audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    assert int((inputs["input_ids"] == audio_id).sum()) > 0
    _forward_and_generate(model, processor, inputs)


@pytest.mark.parametrize("family", ALL)
def test_tiny_config_facts(tiny_model_dir, family):
    config = json.loads((tiny_model_dir(family) / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    head_dim = text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]
    assert sum(text["rope_parameters"]["mrope_section"]) == head_dim // 2
    assert text["num_hidden_layers"] == 2 and text["hidden_size"] <= 128
    assert vision.get("out_hidden_size", vision.get("hidden_size")) == text["hidden_size"]
    assert vision["patch_size"] == get_family(family).patch_size
    if family == "qwen3_vl":
        assert text["rope_parameters"]["mrope_interleaved"] is True
        assert int(vision["num_position_embeddings"] ** 0.5) ** 2 == vision["num_position_embeddings"]
        assert max(vision["deepstack_visual_indexes"]) < vision["depth"]
    gen = json.loads((tiny_model_dir(family) / "generation_config.json").read_text())
    tok = json.loads((tiny_model_dir(family) / "tokenizer_config.json").read_text())
    assert tok["eos_token"] == "<|im_end|>" and tok["pad_token"] == "<|endoftext|>"
    assert text["vocab_size"] % 64 == 0
    assert gen["pad_token_id"] in gen["eos_token_id"]


def _weights_digest(path):
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path):
    from mmreason.models.tiny import build_tiny, is_tiny_build

    a = build_tiny("qwen2_5_vl", tmp_path / "a", seed=7)
    b = build_tiny("qwen2_5_vl", tmp_path / "b", seed=7)
    c = build_tiny("qwen2_5_vl", tmp_path / "c", seed=8)
    assert _weights_digest(a) == _weights_digest(b)
    assert _weights_digest(a) != _weights_digest(c)
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()  # vocabulary is seed-free
    assert is_tiny_build(a, family="qwen2_5_vl", seed=7) and not is_tiny_build(a, seed=8)
    assert not is_tiny_build(tmp_path / "missing")


def test_build_does_not_disturb_callers_random_stream(tmp_path):
    from mmreason.models.tiny import build_tiny

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny("qwen2_vl", tmp_path / "m", seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_cli_main_writes_a_loadable_checkpoint(tmp_path, capsys):
    from mmreason.models.loading import load
    from mmreason.models.tiny import main

    assert main(["--family", "qwen3_vl", "--out", str(tmp_path / "q3"), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "tiny qwen3_vl (seed 3)" in out and str(tmp_path / "q3") in out
    model, processor = load(tmp_path / "q3")
    assert model.config.model_type == "qwen3_vl" and processor.tokenizer.eos_token == "<|im_end|>"


def test_cli_rejects_unknown_family(tmp_path, capsys):
    from mmreason.models.tiny import main

    with pytest.raises(SystemExit):
        main(["--family", "llava", "--out", str(tmp_path)])
    assert "invalid choice" in capsys.readouterr().err
