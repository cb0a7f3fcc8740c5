"""play_audio on real speech clips (espeak-ng, through the audio_speech builder): the span played back is
the span asked for, a spoken word looks louder than a silent gap, bad spans are errors; and in a rollout
the tiny model's call comes back as a picture, which the audio rewards then score."""

import numpy as np
import pytest

from mmreason import schema
from mmreason.data_builders import audio_speech
from mmreason.data_builders.speech import espeak_available
from mmreason.rewards import bind_reward
from mmreason.tools import ToolEnv, run_tool_call

pytestmark = pytest.mark.skipif(not espeak_available(), reason="needs espeak-ng")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    out = audio_speech.build(tmp_path_factory.mktemp("speech") / "clips", n=1, seed=0, qtypes=["word_time"],
                             progress=False)
    row = schema.load_rows(out)[0]
    return out, row


def _onset(row):
    """How much silence comes right before the asked word (seconds, up to 0.3)."""
    start = row["time_spans"][0]["start"]
    before = [e["end"] for e in row["meta"]["events"] if e["end"] <= start]
    return min(0.3, start - max(before, default=0.0) - 0.05)


def _gap(row, length):
    """A silent stretch of `length` seconds between two events of the clip."""
    events = sorted((e["start"], e["end"]) for e in row["meta"]["events"])
    for (_, end), (start, _) in zip(events, events[1:]):
        if start - end > length + 0.1:
            return end + 0.05, end + 0.05 + length
    pytest.skip("no silent gap long enough in this clip")


def play(env, start, end, **extra):
    return run_tool_call({"name": "play_audio", "arguments": {"start": start, "end": end, **extra}}, env,
                         ["play_audio"])


def test_the_span_played_back_is_the_one_asked_for(clip):
    out, row = clip
    env = ToolEnv.from_row(row, "qwen2_5_vl", root=out)
    word = row["time_spans"][0]
    a, b = word["start"], word["end"]
    heard = play(env, a, b)
    assert not heard.error and heard.info["start"] == pytest.approx(a) and heard.info["end"] == pytest.approx(b)
    assert f"from {a:.2f} s to {b:.2f} s" in heard.text
    picture = heard.images[0].original
    # closer up than the prompt's overview (50 columns a second): about 400 columns across the span (the hop
    # is a whole number of samples)
    assert abs(picture.width - 400) <= 25 and heard.info["seconds_per_pixel"] < 1 / 50
    # a span from silence into the word: the word starts in its middle, so its right half is the louder
    # (one picture, one loudness scale)
    lead = _onset(row)
    assert lead > 0.1
    onset = np.asarray(play(env, a - lead, a + lead).images[0].original.convert("L"), dtype=float)
    width = onset.shape[1]
    calm, loud = onset[:, : int(width * 0.4)].mean(), onset[:, int(width * 0.6):].mean()
    assert loud > calm + 20, (loud, calm)


def test_bad_spans_are_errors_not_crashes(clip):
    out, row = clip
    env = ToolEnv.from_row(row, "qwen2_5_vl", root=out)
    duration = env.audios[0].duration
    for start, end in ((1.0, 0.5), (0.0, duration + 1), (-1, 0.5), ("a", 1.0), (0.5, 0.52)):
        obs = play(env, start, end)
        assert obs.error and obs.text.startswith("Error:"), (start, end, obs.text)
    assert play(env, 0.0, 0.5, audio_index=1).error
    assert play(ToolEnv("qwen2_5_vl"), 0.0, 0.5).text == "Error: this sample has no audio"


def test_in_a_rollout_the_call_comes_back_as_a_picture_and_the_rewards_read_it(clip, tiny_model):
    from mmreason.rollout import RolloutConfig, rollout

    out, row = clip
    model, processor = tiny_model("qwen2_5_vl")
    word = row["time_spans"][0]
    prompt = {"id": row["id"], "messages": [m for m in schema.resolve_media(row, out)["messages"]
                                            if m["role"] != "assistant"]}
    calls = {"on_word": (word["start"] - 0.2, word["end"] + 0.2), "elsewhere": _gap(row, 0.3)}
    completions = {}
    for name, (a, b) in calls.items():
        call = f'<tool_call>\n{{"name": "play_audio", "arguments": {{"start": {a:.2f}, "end": {b:.2f}}}}}\n</tool_call>'
        # the forced call's tokens count as generated: the turn's budget holds them and a few more; the whole
        # completion also holds the observation (the picture's tokens and its caption)
        budget = len(processor.tokenizer(call, add_special_tokens=False).input_ids) + 8
        config = RolloutConfig(tools=("play_audio",), max_turns=2, max_new_tokens=budget,
                               max_completion_tokens=budget + 512, seed=0)
        [traj] = rollout(model, processor, [prompt], "qwen2_5_vl", config=config, forced={0: call})
        assert traj.num_tool_calls == 1 and traj.num_images_returned == 1
        [obs] = traj.observations
        assert not obs.error and obs.info["tool"] == "play_audio" and obs.info["start"] == pytest.approx(a, abs=0.01)
        completions[name] = traj.completion
    spans = [row["time_spans"]] * 2
    evidence = bind_reward("audio_evidence")([completions["on_word"], completions["elsewhere"]], time_spans=spans)
    assert evidence == [1.0, 0.0]
    # the answer term: the span the answer cites, against the word's span
    answer = f"<answer>{word['start']:.2f} to {word['end']:.2f}</answer>"
    total = bind_reward("audio_reasoning")([completions["on_word"] + answer, answer], time_spans=spans,
                                           task=["temporal_grounding"] * 2)
    assert total[0] == pytest.approx(total[1] + 0.5, abs=1e-6) and total[1] > 0.95
