"""Clips padded to the batch's longest clip (plus one FFT window) give the model what the extractor's 30-s
window gives it: the same valid frames, the same tokens, the same logits."""

import numpy as np
import pytest
import soundfile as sf
import torch

from mmreason.modalities import collate as collate_module
from mmreason.modalities.collate import collate


@pytest.fixture
def rows(tmp_path):
    rng = np.random.default_rng(0)
    for name, seconds, pitch in (("a.wav", 2.0, 220), ("b.wav", 1.37, 330)):
        t = np.arange(int(seconds * 16000)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * pitch * t) + 0.02 * rng.standard_normal(len(t))
        sf.write(tmp_path / name, wave.astype(np.float32), 16000)
    return tmp_path, [{"id": f"r{i}", "messages": [
        {"role": "user", "content": [{"type": "audio", "audio": name}, {"type": "text", "text": "What is it?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a tone"}]}]} for i, name in enumerate(("a.wav", "b.wav"))]


def test_short_window_keeps_valid_frames_tokens_and_logits(rows, tiny_model, monkeypatch):
    root, batch_rows = rows
    model, processor = tiny_model("qwen2_5_omni")
    short = collate(batch_rows, processor, "qwen2_5_omni", root=root, return_meta=False)
    monkeypatch.setattr(collate_module, "_padded_window", lambda audios, extractor: {})
    full = collate(batch_rows, processor, "qwen2_5_omni", root=root, return_meta=False)
    assert full["input_features"].shape[-1] == processor.feature_extractor.nb_max_frames  # the 30-s window
    assert short["input_features"].shape[-1] < full["input_features"].shape[-1] // 10
    assert torch.equal(short["input_ids"], full["input_ids"])
    mask = short["feature_attention_mask"]
    assert torch.equal(mask.sum(1), full["feature_attention_mask"].sum(1))
    for i, n in enumerate(mask.sum(1).tolist()):
        torch.testing.assert_close(short["input_features"][i, :, :n], full["input_features"][i, :, :n],
                                   rtol=0, atol=1e-5)
    keys = ("input_ids", "attention_mask", "input_features", "feature_attention_mask")
    with torch.no_grad():
        a = model(**{k: short[k] for k in keys}).logits
        b = model(**{k: full[k] for k in keys}).logits
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


def test_clips_as_long_as_the_window_keep_the_extractor_behaviour(tiny_model):
    _, processor = tiny_model("qwen2_5_omni")
    fe = processor.feature_extractor
    assert collate_module._padded_window([np.zeros(fe.n_samples - 10, np.float32)], fe) == {}
    assert collate_module._padded_window([np.zeros(16000, np.float32)], None) == {}
    window = collate_module._padded_window([np.zeros(16000, np.float32), np.zeros(100, np.float32)], fe)
    assert window["padding"] == "max_length" and window["max_length"] % fe.hop_length == 0
    assert window["max_length"] >= 16000 + fe.n_fft
