"""Audio builder: each event's span matches the audio energy, words are what the row says was spoken,
answers follow from the events, and the coarse-to-fine traces parse and cite the right times."""

import re

import numpy as np
import pytest
import soundfile as sf

from mmreason import schema
from mmreason.data_builders import audio_speech
from mmreason.data_builders.speech import SAMPLE_RATE, espeak_available, synth_word
from mmreason.traces import parse

pytestmark = pytest.mark.skipif(not espeak_available(), reason="needs the espeak-ng program")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("audio")
    audio_speech.build(out, n=16, seed=6, chunk_size=8, progress=False)  # seed 6: all 8 qtypes
    rows = list(schema.load_rows(out))
    tracks = {r["id"]: sf.read(str(out / schema.media_parts(r)[0][1]), dtype="float32") for r in rows}
    return out, rows, tracks


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def _cut(x, start, end):
    return x[max(0, int(round(start * SAMPLE_RATE))):max(0, int(round(end * SAMPLE_RATE)))]


def test_rows_validate_and_audio_is_as_described(built):
    root, rows, tracks = built
    assert len(rows) == 16 and {r["meta"]["qtype"] for r in rows} == set(audio_speech.QTYPES)
    for r in rows:
        assert schema.validate(r, root=root, check_media=True) == r
        x, sr = tracks[r["id"]]
        assert sr == SAMPLE_RATE == r["meta"]["sample_rate"] and x.ndim == 1
        assert len(x) / sr == pytest.approx(r["meta"]["duration"])


def test_every_span_matches_the_audio_energy(built):
    _, rows, tracks = built
    for r in rows:
        x, _ = tracks[r["id"]]
        for ev in r["meta"]["events"]:
            s, e = ev["start"], ev["end"]
            assert _rms(_cut(x, s, e)) > 0.03, (r["id"], ev)  # loud inside
            assert _rms(_cut(x, s - 0.06, s - 0.01)) < 0.01, (r["id"], ev)  # silent just before ...
            assert _rms(_cut(x, e + 0.01, e + 0.06)) < 0.01, (r["id"], ev)  # ... and just after
            # the span is tight: its first and last 10 ms already carry sound above the floor
            assert np.abs(_cut(x, s, s + 0.01)).max() > 0.01 and np.abs(_cut(x, e - 0.01, e)).max() > 0.01
        for span in r["time_spans"]:
            assert any(ev["start"] == span["start"] and ev["end"] == span["end"] for ev in r["meta"]["events"])


def test_words_are_the_words_said_and_tones_have_their_pitch(built):
    _, rows, tracks = built
    checked = 0
    for r in rows:
        x, _ = tracks[r["id"]]
        for ev in r["meta"]["events"]:
            seg = _cut(x, ev["start"], ev["end"])
            if ev["kind"] == "word":  # the span holds exactly that word, spoken by that voice
                ref = synth_word(ev["text"], ev["voice"], ev["rate"], ev["pitch"])
                assert len(ref) == len(seg)
                corr = float(np.dot(ref, seg) / (np.linalg.norm(ref) * np.linalg.norm(seg)))
                assert corr > 0.98, (r["id"], ev["text"], corr)
                checked += 1
            elif ev["kind"] == "tone":
                spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
                peak = np.fft.rfftfreq(len(seg), 1 / SAMPLE_RATE)[int(spec.argmax())]
                assert peak == pytest.approx(ev["freq"], abs=8)
    assert checked >= 16


def test_answers_follow_from_the_events(built):
    _, rows, _ = built
    for r in rows:
        q, a, qt = schema.text_of(r["messages"][0]), r["answer"], r["meta"]["qtype"]
        evs = r["meta"]["events"]
        words = [e for e in evs if e["kind"] == "word"]
        tones = [e for e in evs if e["kind"] == "tone"]
        if qt == "word_after_tone":
            assert len(tones) == 1 and evs[evs.index(tones[0]) + 1]["text"] == a
        elif qt == "word_at":
            t = float(re.search(r"at ([\d.]+) seconds", q).group(1))
            assert [w["text"] for w in words if w["start"] <= t <= w["end"]] == [a]
        elif qt == "word_time":
            w = next(w for w in words if f'"{w["text"]}"' in q)
            assert a == f"{w['start']:.2f} to {w['end']:.2f}"
        elif qt == "nth_word":
            k = audio_speech.ORDINALS.index(re.search(r"the (\w+) word", q).group(1))
            assert words[k]["text"] == a
        elif qt == "count_tones":
            assert int(a) == len(tones) == len(r["time_spans"])
        elif qt == "tone_pitch":
            assert a == ("higher" if tones[1]["freq"] > tones[0]["freq"] else "lower")
        elif qt == "transcript":
            assert a == " ".join(w["text"] for w in words)


def test_coarse_to_fine_traces_parse_and_cite_the_evidence(built):
    _, rows, _ = built
    for r in rows:
        text = r["messages"][1]["content"][0]["text"]
        t = parse(text)
        assert not t.issues and t.answer == r["answer"] and t.think
        ev = r["meta"]["evidence"]
        lo, hi = ev["window"]
        coarse_at, window_at, fine_at = t.think.index("Coarse pass"), t.think.index(f"{lo:.1f}-{hi:.1f} s"), \
            t.think.index("Fine pass")
        assert coarse_at < window_at < fine_at  # locate the window first, then the content
        for span in r["time_spans"]:
            assert lo <= span["start"] and span["end"] <= hi  # the window holds the evidence
            assert f"{span['start']:.2f}-{span['end']:.2f} s" in t.think[fine_at:]
        dur = r["meta"]["duration"]
        assert ev["coarse"][0][0] == 0 and ev["coarse"][-1][1] == pytest.approx(dur, abs=1e-3)


def test_card_and_options(built, tmp_path):
    root, _, _ = built
    card = (root / "README.md").read_text()
    assert "audio 16" in card and "Time span length" in card
    with pytest.raises(ValueError, match="qtypes"):
        audio_speech.build(tmp_path, n=1, qtypes=["lyrics"])


def test_listen_traces_call_play_audio_and_show_what_it_returns(tmp_path):
    """trace=listen: the coarse pass ends in a play_audio call on the evidence window, the tool turn holds what
    the tool returns for that call on the row's own clip (caption and picture), and the fine pass answers."""
    from PIL import Image

    from mmreason.rewards import bind_reward
    from mmreason.tools import ToolEnv, run_tool_call

    out = audio_speech.build(tmp_path / "listen", n=4, seed=6, trace="listen", progress=False)
    for row in schema.load_rows(out):
        assert schema.validate(row, root=out, check_media=True) == row
        first, back, last = row["messages"][1:]
        assert [first["role"], back["role"], last["role"]] == ["assistant", "tool", "assistant"]
        [call] = parse(first["content"][0]["text"]).tool_calls
        lo, hi = row["meta"]["evidence"]["window"]
        assert call.name == "play_audio" and call.arguments == {"start": lo, "end": hi}
        heard = run_tool_call({"name": call.name, "arguments": call.arguments},
                              ToolEnv.from_row(row, "qwen2_5_omni", root=out), ["play_audio"])
        picture, caption = back["content"]
        assert not heard.error and caption == {"type": "text", "text": heard.text}
        assert Image.open(out / picture["image"]).size == heard.images[0].original.size
        assert parse(last["content"][0]["text"]).answer == row["answer"]
        # the call plays the evidence back closer up: audio_evidence credits it where the window is short
        text = "".join(m["content"][0]["text"] for m in (first, last))
        [evidence] = bind_reward("audio_evidence")([text], time_spans=[row["time_spans"]], max_seconds=10.0)
        assert evidence == 1.0
