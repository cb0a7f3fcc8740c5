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


def test_a_play_audio_call_of_the_omni_model_comes_back_as_a_picture(tiny_model, clips):
    """The loop audio_listen and the audio GRPO recipe run: Omni's call is executed on its own clip and the
    span's spectrogram becomes the next turn, in Omni's vision markers; the rewards read the call."""
    from mmreason.rewards import bind_reward
    from mmreason.rollout import RolloutConfig, rollout
    from mmreason.schema import resolve_media

    model, processor = tiny_model("qwen2_5_omni")
    row = next(r for r in load_rows(clips) if r["task"] == "temporal_grounding")
    prompt = {"id": row["id"], "messages": prompt_messages(resolve_media(row, clips), TASKS["audio_listen"],
                                                           "qwen2_5_omni")}
    span = row["time_spans"][0]
    args = json.dumps({"start": round(span["start"] - 0.1, 2), "end": round(span["end"] + 0.1, 2)})
    call = f'<tool_call>\n{{"name": "play_audio", "arguments": {args}}}\n</tool_call>'
    budget = len(processor.tokenizer(call, add_special_tokens=False).input_ids) + 4
    config = RolloutConfig(tools=("play_audio",), max_turns=2, max_new_tokens=budget,
                           max_completion_tokens=budget + 512, seed=0)
    [traj] = rollout(model, processor, [prompt], "qwen2_5_omni", config=config, forced={0: call})
    [obs] = traj.observations
    assert traj.num_tool_calls == 1 and traj.num_images_returned == 1 and not obs.error
    assert "<|vision_bos|><|IMAGE|><|vision_eos|>The audio from" in traj.completion
    [evidence] = bind_reward("audio_evidence")([traj.completion], time_spans=[row["time_spans"]])
    assert evidence == 1.0
