"""`mmreason eval` on the audio tasks: a tiny Omni checkpoint hears espeak-ng clips of the audio_speech builder,
answers every matching row (the listening task with play_audio in its system prompt), and the saved outputs
re-score to the same numbers. The tiny model is random, so its scores are 0; the scores themselves are
checked on hand-written outputs in tests/unit/eval/test_audio_tasks.py."""

from __future__ import annotations

import json

import pytest

from mmreason import cli
from mmreason.data_builders.speech import espeak_available
from mmreason.eval.tasks import TASKS, prompt_messages
from mmreason.schema import load_rows

pytestmark = pytest.mark.skipif(not espeak_available(), reason="needs espeak-ng")

AUDIO_TASKS = ("audio_grounding", "audio_qa", "audio_listen")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from mmreason.data_builders import get_builder

    out = tmp_path_factory.mktemp("eval-audio") / "clips"
    return get_builder("audio_speech")(out, n=6, seed=4, progress=False,
                                       qtypes=["word_time", "noise_time", "word_at", "count_tones", "tone_pitch"])


def test_tiny_omni_is_evaluated_on_every_audio_task(tiny_model_dir, clips, tmp_path, capsys):
    model = tiny_model_dir("qwen2_5_omni")
    out = tmp_path / "audio"
    assert cli.main(["eval", "--model", str(model), "--data", str(clips), "--tasks", ",".join(AUDIO_TASKS),
                     "--out", str(out), "--max-new-tokens", "8", "--batch-size", "3", "--quiet"]) == 0
    rows = load_rows(clips)
    for name in AUDIO_TASKS:
        task = TASKS[name]
        results = json.loads((out / name / "results.json").read_text())
        samples = [json.loads(line) for line in (out / name / "samples.jsonl").read_text().splitlines()]
        wanted = [r for r in rows if r["task"] in task.row_tasks]
        assert wanted and [s["id"] for s in samples] == [r["id"] for r in wanted]
        assert results["model"]["family"] == "qwen2_5_omni" and results["samples"] == len(wanted)
        assert set(results["metrics"]) == set(task.metrics) and results["metrics"]["format"]["n"] == len(wanted)
        assert set(results["breakdown"]["qtype"]) == {r["meta"]["qtype"] for r in wanted}
        assert results["prompt"]["template"] == task.prompt and results["prompt"]["tools"] == list(task.tools)
        for s, row in zip(samples, wanted):
            assert s["prompt"] == task.prompt.format(question=row["messages"][0]["content"][-1]["text"])
            assert isinstance(s["output"], str) and set(s["scores"]) == set(task.metrics)
        # the saved outputs re-score to the same numbers, with no model
        again = tmp_path / f"{name}-again"
        assert cli.main(["eval", "--task", name, "--data", str(clips), "--predictions",
                         str(out / name / "samples.jsonl"), "--out", str(again)]) == 0
        assert json.loads((again / "results.json").read_text())["metrics"] == results["metrics"]
    assert "audio_listen" in capsys.readouterr().out  # the table of each task


def test_the_omni_prompt_carries_the_clip_as_audio_features(tiny_model, clips):
    """What the eval sends an Omni model: the clip's Whisper features and its audio tokens, not a picture."""
    from mmreason.modalities.collate import collate

    _, processor = tiny_model("qwen2_5_omni")
    row = next(r for r in load_rows(clips) if r["task"] == "temporal_grounding")
    messages = prompt_messages(row, TASKS["audio_grounding"], "qwen2_5_omni")
    batch = collate([{"id": row["id"], "messages": messages}], processor, "qwen2_5_omni", root=clips,
                    mode="generate")
    audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    assert batch["input_features"].shape[0] == 1 and int((batch["input_ids"] == audio_id).sum()) > 10
    assert "pixel_values" not in batch
