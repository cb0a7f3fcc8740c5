"""The audio pipeline chained as shipped, at debug size on CPU: the tiny Omni model trains SFT on play_audio
traces (audio/tiny_sft), GRPO starts from that output with play_audio and the audio rewards (audio/tiny_grpo),
and `mmreason eval` scores the GRPO model on the three audio tasks over clips it did not train on."""

import json

import pytest
import torch

from mmreason import cli
from mmreason.data_builders.speech import espeak_available
from mmreason.train.logging import read_jsonl

pytestmark = pytest.mark.skipif(not espeak_available(), reason="the audio_speech builder needs espeak-ng")


def test_sft_then_grpo_then_eval(tiny_model_dir, tmp_path):
    from mmreason.data_builders import get_builder
    from mmreason.models import load
    from mmreason.train import grpo, sft

    base = tiny_model_dir("qwen2_5_omni")
    assert sft.main(["audio/tiny_sft", f"model.path={base}", f"output_dir={tmp_path / 'sft'}"]) == 0
    assert grpo.main(["audio/tiny_grpo", f"model.path={tmp_path / 'sft' / 'final'}",
                      f"output_dir={tmp_path / 'grpo'}"]) == 0
    logs = read_jsonl(tmp_path / "grpo" / "metrics.jsonl")
    assert [r["step"] for r in logs] == [1, 2] and all("rewards/audio_reasoning" in r for r in logs)
    # the SFT stage changed the weights GRPO started from (LoRA merged into final/)
    before, _ = load(base)
    after, _ = load(tmp_path / "sft" / "final")
    changed = [n for n, p in after.named_parameters() if not torch.equal(p, before.get_parameter(n))]
    assert changed

    clips = get_builder("audio_speech")(tmp_path / "held_out", n=4, seed=3, progress=False)
    out = tmp_path / "eval"
    assert cli.main(["eval", "--model", str(tmp_path / "grpo" / "final"), "--data", str(clips), "--tasks",
                     "audio_grounding,audio_qa,audio_listen", "--out", str(out), "--max-new-tokens", "8",
                     "--quiet"]) == 0
    for name in ("audio_grounding", "audio_qa", "audio_listen"):
        results = json.loads((out / name / "results.json").read_text())
        assert results["model"]["family"] == "qwen2_5_omni" and results["samples"] >= 1
        assert 0.0 <= results["metrics"]["format"]["mean"] <= 1.0
