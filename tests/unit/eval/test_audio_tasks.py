"""The audio eval tasks score fixed outputs to the numbers worked out by hand (`mmreason eval --predictions`),
select only rows that carry audio, and send the clip to the model in the prompt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmreason import cli
from mmreason.eval.tasks import TASKS, prompt_messages
from mmreason.schema import load_rows, write_jsonl

CALL = '<tool_call>\n{"name": "play_audio", "arguments": {"start": %s, "end": %s}}\n</tool_call>'


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory):
    """Audio rows as the audio_speech builder writes them (a real 16 kHz wav), plus one video row whose task
    value is also temporal_grounding: the audio tasks must not take it."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("audio-rows")
    t = np.arange(4 * 16000) / 16000
    sf.write(root / "clip.wav", (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)

    def row(rid, task, qtype, question, spans, answer=None):
        user = {"role": "user", "content": [{"type": "audio", "audio": "clip.wav"}, {"type": "text", "text": question}]}
        out = {"id": rid, "task": task, "source": "audio_speech", "messages": [user], "meta": {"qtype": qtype},
               "time_spans": [{"label": "e", "start": a, "end": b} for a, b in spans]}
        return out if answer is None else {**out, "answer": answer}

    rows = [
        row("g-word", "temporal_grounding", "word_time", 'When is "tiger" spoken?', [(1.0, 2.0)], "1.00 to 2.00"),
        row("g-noise", "temporal_grounding", "noise_time", "When is the noise?", [(3.0, 4.0)], "3.00 to 4.00"),
        row("g-none", "temporal_grounding", "word_time", 'When is "apple" spoken?', [(0.5, 1.0)], "0.50 to 1.00"),
        row("q-word", "audio_qa", "word_after_tone", "Which word follows the beep?", [(1.0, 2.0)], "tiger"),
        row("q-count", "counting", "count_tones", "How many beeps?", [(0.2, 0.4), (2.0, 2.2)], "3"),
        row("q-pitch", "audio_qa", "tone_pitch", "Higher or lower?", [(0.2, 0.4), (2.0, 2.2)], "higher"),
        row("q-words", "audio_qa", "transcript", "Which words?", [(0.0, 1.0), (1.5, 2.5)], "apple river"),
        {"id": "video", "task": "temporal_grounding", "source": "t", "answer": "1 to 2",
         "messages": [{"role": "user", "content": [{"type": "video", "video": "clip.mp4"},
                                                   {"type": "text", "text": "when?"}]}],
         "time_spans": [{"label": "e", "start": 1.0, "end": 2.0}]},
    ]
    write_jsonl(rows, root / "rows.jsonl")
    return root / "rows.jsonl"


def rescore(rows_file, tmp_path, task, outputs):
    """Means, per-sample scores and the results record of re-scoring `outputs` ({id: output or record})."""
    preds = tmp_path / f"{task}.jsonl"
    preds.write_text("".join(json.dumps({"id": k, **(v if isinstance(v, dict) else {"output": v})}) + "\n"
                             for k, v in outputs.items()))
    out = tmp_path / task
    assert cli.main(["eval", "--task", task, "--data", str(rows_file), "--predictions", str(preds),
                     "--family", "qwen2_5_omni", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return {k: v["mean"] for k, v in results["metrics"].items()}, {s["id"]: s["scores"] for s in samples}, results


def test_audio_grounding_scores_tiou_recall_and_hits_by_hand(rows_file, tmp_path):
    means, per, results = rescore(rows_file, tmp_path, "audio_grounding", {
        "g-word": "<answer>1.5 to 2.5</answer>",  # IoU 0.5 / 1.5 = 1/3; centre 2.0 is inside [1, 2]
        "g-noise": "<think>the hiss</think><answer>3.1 to 3.9</answer>",  # IoU 0.8 / 1.0
        "g-none": "I could not hear it.",  # no span: 0 on every metric, and not in the format rate
    })
    assert per["g-word"] == pytest.approx({"miou": 1 / 3, "r@0.3": 1.0, "r@0.5": 0.0, "r@0.7": 0.0, "hit": 1.0,
                                           "format": 1.0})
    assert per["g-noise"] == pytest.approx({"miou": 0.8, "r@0.3": 1.0, "r@0.5": 1.0, "r@0.7": 1.0, "hit": 1.0,
                                            "format": 1.0})
    assert per["g-none"] == {"miou": 0.0, "r@0.3": 0.0, "r@0.5": 0.0, "r@0.7": 0.0, "hit": 0.0, "format": 0.0}
    assert means == pytest.approx({"miou": (1 / 3 + 0.8) / 3, "r@0.3": 2 / 3, "r@0.5": 1 / 3, "r@0.7": 1 / 3,
                                   "hit": 2 / 3, "format": 2 / 3})
    by_qtype = results["breakdown"]["qtype"]
    assert by_qtype["word_time"]["miou"]["mean"] == pytest.approx(1 / 6) and by_qtype["word_time"]["miou"]["n"] == 2
    assert by_qtype["noise_time"]["r@0.7"]["mean"] == 1.0
    assert results["headline"] == "miou" and results["model"]["family"] == "qwen2_5_omni"


def test_audio_qa_scores_accuracy_and_exact_match_by_hand(rows_file, tmp_path):
    means, per, _ = rescore(rows_file, tmp_path, "audio_qa", {
        "q-word": "<think>beep, then a word</think><answer>Tiger.</answer>",  # same after normalising
        "q-count": "<answer>3 beeps</answer>",  # the number is right (accuracy), the text is not the truth
        "q-pitch": "<answer>lower</answer>",  # read, and wrong
        "q-words": "apple river",  # right words, but no <answer>: unread
    })
    assert per == {"q-word": {"accuracy": 1.0, "exact_match": 1.0, "format": 1.0},
                   "q-count": {"accuracy": 1.0, "exact_match": 0.0, "format": 1.0},
                   "q-pitch": {"accuracy": 0.0, "exact_match": 0.0, "format": 1.0},
                   "q-words": {"accuracy": 0.0, "exact_match": 0.0, "format": 0.0}}
    assert means == {"accuracy": 0.5, "exact_match": 0.25, "format": 0.75}


def test_audio_listen_scores_the_answer_the_close_listen_and_the_calls_by_hand(rows_file, tmp_path):
    obs = "<tool_response>The audio from %s s to %s s, played again closer up.</tool_response>"
    means, per, results = rescore(rows_file, tmp_path, "audio_listen", {
        # a 1.5 s listen covering all of [1, 2]; the answer's IoU with it 0.8 / 1.0
        "g-word": {"output": CALL % (1.0, 2.5) + obs % (1.0, 2.5) + "<answer>1.2 to 2.0</answer>",
                   "num_tool_calls": 1},
        # the whole clip played again is no closer listen (over 2 s): evidence 0; the answer is right
        "q-word": {"output": CALL % (0.0, 3.0) + obs % (0.0, 3.0) + "<answer>tiger</answer>",
                   "num_tool_calls": 1},
        # half of the second beep [2.0, 2.2] heard (the best span covered); a wrong count
        "q-count": {"output": CALL % (2.1, 2.6) + obs % (2.1, 2.6) + "<answer>2</answer>", "num_tool_calls": 1},
        "q-pitch": {"output": "<answer>higher</answer>", "num_tool_calls": 0},  # right without listening
    })
    assert per["g-word"] == pytest.approx({"answer": 0.8, "evidence": 1.0, "tool_calls": 1.0, "format": 1.0})
    assert per["q-word"] == {"answer": 1.0, "evidence": 0.0, "tool_calls": 1.0, "format": 1.0}
    assert per["q-count"] == pytest.approx({"answer": 0.0, "evidence": 0.5, "tool_calls": 1.0, "format": 1.0})
    assert per["q-pitch"] == {"answer": 1.0, "evidence": 0.0, "tool_calls": 0.0, "format": 1.0}
    assert means == pytest.approx({"answer": 2.8 / 4, "evidence": 1.5 / 4, "tool_calls": 0.75, "format": 1.0})
    assert results["prompt"]["tools"] == ["play_audio"] and results["generation"]["max_turns"] == 4


def test_audio_tasks_take_audio_rows_only_and_send_the_clip(rows_file):
    from mmreason.eval.task_rows import select_rows

    rows = load_rows(rows_file)
    chosen, _ = select_rows(rows, TASKS["audio_grounding"], None)
    assert [r["id"] for r in chosen] == ["g-word", "g-noise", "g-none"]  # not the video row
    assert [r["id"] for r in select_rows(rows, TASKS["audio_qa"], None)[0]] == ["q-word", "q-count", "q-pitch",
                                                                               "q-words"]
    for family in ("qwen2_5_omni", "qwen2_5_vl"):  # Omni hears it; a vision-only family sees its spectrogram
        [user] = prompt_messages(chosen[0], TASKS["audio_grounding"], family)
        assert [p["type"] for p in user["content"]] == ["audio", "text"]
        assert user["content"][1]["text"].startswith('When is "tiger" spoken?\nAnswer inside <answer>')
    system, user = prompt_messages(chosen[0], TASKS["audio_listen"], "qwen2_5_omni")
    assert "play_audio" in system["content"][0]["text"] and user["content"][0]["type"] == "audio"
