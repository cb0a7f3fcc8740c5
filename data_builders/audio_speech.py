"""Audio clips of spoken words (espeak-ng), beeps and noise bursts, with what was said and when.

Each sample lays out a few events on a 16 kHz mono track (`speech.layout`: sample-exact word spans,
silent gaps, a faint noise floor) and asks a question that needs the content, the timing, or both:
the word after the beep, when a word is said, what is said at t, the n-th word, how many beeps,
which beep is higher, when the noise is, the transcript. GT spans are in ``time_spans``; every
event is in ``meta["events"]`` (words with the voice that spoke them).

The target reasons coarse-to-fine (trace ``coarse_to_fine``): a coarse evidence document (what is
heard in each 1-second window), then the window the question needs, then a fine evidence document
(each event in that window with exact times and content), then the answer. Both documents are also
in ``meta["evidence"]``. Trace ``listen`` says the same in three turns with the ``play_audio`` tool: the
coarse pass ends in a call that plays the window back, a tool turn holds what the tool returns (the
window's spectrogram picture and its caption, as `tools.audio.close_listen` makes them), and the fine
pass and the answer follow.
"""

from __future__ import annotations

import math
from pathlib import Path

from mmreason.data_builders.common import DEFAULT_CHUNK_SIZE, SampleContext, build_dataset, check_options, \
    phase, save_image, save_wav
from mmreason.data_builders.gcot import text_turn
from mmreason.data_builders.speech import PITCHES, RATES, SAMPLE_RATE, VOICES, Event, espeak_available, layout
from mmreason.traces import render_block, render_tool_call

NAME = "audio_speech"
TRACES = ("coarse_to_fine", "listen", "none")
WORDS = ("apple", "river", "cloud", "tiger", "lemon", "piano", "rocket", "garden", "silver", "candle", "maple",
         "ocean", "pepper", "violin", "meadow", "falcon", "copper", "harbor", "thunder", "willow", "orange",
         "window", "basket", "dragon", "pencil", "marble", "jacket", "turtle", "button", "castle")
FREQS = (330.0, 440.0, 660.0, 880.0, 1320.0)
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
QTYPES = {"word_after_tone": "audio_qa", "word_time": "temporal_grounding", "word_at": "audio_qa",
          "nth_word": "audio_qa", "count_tones": "counting", "tone_pitch": "audio_qa",
          "noise_time": "temporal_grounding", "transcript": "audio_qa"}
DEFAULTS = {"qtypes": sorted(QTYPES), "trace": "coarse_to_fine", "floor_db": [-60, -50], "coarse_seconds": 1.0}


# ------------------------------------------------------------------------------------------- plans
def _words(rng, k, voice):
    return [{"kind": "word", "text": w, **voice} for w in rng.permutation(WORDS)[:k].tolist()]


def _tone(rng, freq=None):
    return {"kind": "tone", "freq": float(freq or FREQS[int(rng.integers(len(FREQS)))]),
            "seconds": float(rng.uniform(0.15, 0.4))}


def _noise(rng):
    return {"kind": "noise", "seconds": float(rng.uniform(0.2, 0.5))}


def _shuffle_in(rng, items, extra):
    """Insert `extra` items at random positions of `items` (keeps `items`' order)."""
    out = list(items)
    for e in extra:
        out.insert(int(rng.integers(len(out) + 1)), e)
    return out


def plan(rng, qtype: str) -> list[dict]:
    """The events of a clip built so that `qtype` has exactly one right answer."""
    voice = {"voice": VOICES[int(rng.integers(len(VOICES)))], "rate": int(RATES[int(rng.integers(len(RATES)))]),
             "pitch": int(PITCHES[int(rng.integers(len(PITCHES)))])}
    if qtype == "word_after_tone":  # exactly one beep, a word right after it, noise only at the end
        k_before, k_after = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        ws = _words(rng, k_before + 1 + k_after, voice)
        return ws[:k_before] + [_tone(rng)] + ws[k_before:] + ([_noise(rng)] if rng.random() < 0.4 else [])
    if qtype == "count_tones":
        return _shuffle_in(rng, _words(rng, int(rng.integers(1, 4)), voice),
                           [_tone(rng) for _ in range(int(rng.integers(1, 5)))])
    if qtype == "tone_pitch":
        f1, f2 = rng.permutation(FREQS)[:2].tolist()
        return _shuffle_in(rng, [_tone(rng, f1), _tone(rng, f2)], _words(rng, int(rng.integers(1, 4)), voice))
    if qtype == "noise_time":
        return _shuffle_in(rng, _words(rng, int(rng.integers(1, 4)), voice),
                           [_noise(rng)] + ([_tone(rng)] if rng.random() < 0.5 else []))
    extra = [_tone(rng)] if rng.random() < 0.5 else []
    extra += [_noise(rng)] if rng.random() < 0.3 else []
    n = int(rng.integers(2, 5)) if qtype == "transcript" else int(rng.integers(3, 6))
    return _shuffle_in(rng, _words(rng, n, voice), extra)


def _s(t: float) -> str:
    return f"{t:.2f}"


def question(rng, qtype: str, events: list[Event]) -> tuple[str, str, list[Event], str, str]:
    """(question, answer, evidence events, what the question needs, conclusion)."""
    words = [e for e in events if e.kind == "word"]
    tones = [e for e in events if e.kind == "tone"]
    if qtype == "word_after_tone":
        w = events[events.index(tones[0]) + 1]
        return ("What word is spoken right after the beep?", w.text, [tones[0], w], "the word after the beep",
                f'The beep ends at {_s(tones[0].end)} s and the next word, "{w.text}", starts at {_s(w.start)} s')
    if qtype in ("word_time", "word_at"):
        w = words[int(rng.integers(len(words)))]
        if qtype == "word_time":
            ans = f"{_s(w.start)} to {_s(w.end)}"
            return (f'When is the word "{w.text}" spoken? Give the start and end in seconds.', ans, [w],
                    f'where "{w.text}" is said', f'"{w.text}" is spoken from {_s(w.start)} s to {_s(w.end)} s')
        t = round((w.start + w.end) / 2, 2)
        return (f"Which word is being spoken at {t:.2f} seconds?", w.text, [w], f"what is said at {t:.2f} s",
                f'At {t:.2f} s the word "{w.text}" is being spoken ({_s(w.start)}-{_s(w.end)} s)')
    if qtype == "nth_word":
        k = int(rng.integers(len(words)))
        w = words[k]
        return (f"What is the {ORDINALS[k]} word spoken in the clip?", w.text, words[:k + 1],
                f"the first {k + 1} word{'s' if k else ''}",
                f'Counting words in order, the {ORDINALS[k]} is "{w.text}"')
    if qtype == "count_tones":
        n = len(tones)
        return ("How many beeps are there in the clip?", str(n), tones, "every beep",
                f"There {'is' if n == 1 else 'are'} {n} beep{'s' if n != 1 else ''}: " +
                ", ".join(f"{_s(t.start)}-{_s(t.end)} s" for t in tones))
    if qtype == "tone_pitch":
        a, b = tones
        ans = "higher" if b.freq > a.freq else "lower"
        return ("Is the second beep higher or lower in pitch than the first one?", ans, [a, b], "both beeps",
                f"The first beep is {a.freq:g} Hz and the second {b.freq:g} Hz, so the second is {ans}")
    if qtype == "noise_time":
        z = next(e for e in events if e.kind == "noise")
        ans = f"{_s(z.start)} to {_s(z.end)}"
        return ("When does the burst of noise happen? Give the start and end in seconds.", ans, [z],
                "the noise burst", f"The noise burst lasts from {_s(z.start)} s to {_s(z.end)} s")
    if qtype == "transcript":
        ans = " ".join(w.text for w in words)
        return ("Which words are spoken in the clip, in order?", ans, words, "every word",
                f"In order, the words are: {ans}")
    raise ValueError(f"unknown audio qtype {qtype!r}")


# --------------------------------------------------------------------------------------- evidence
def _describe(e: Event) -> str:
    if e.kind == "word":
        return f'speech "{e.text}" {_s(e.start)}-{_s(e.end)} s'
    if e.kind == "tone":
        return f"beep {e.freq:g} Hz {_s(e.start)}-{_s(e.end)} s"
    return f"noise {_s(e.start)}-{_s(e.end)} s"


def evidence(events: list[Event], relevant: list[Event], duration: float, coarse: float) -> dict:
    """Coarse windows (what kind of sound each holds) and the fine window the question needs."""
    label = {"word": "speech", "tone": "beep", "noise": "noise"}
    windows = []
    for i in range(int(math.ceil(duration / coarse - 1e-9))):
        lo, hi = i * coarse, min((i + 1) * coarse, duration)
        kinds = sorted({label[e.kind] for e in events if e.start < hi and e.end > lo})
        windows.append([round(lo, 3), round(hi, 3), kinds or ["silence"]])
    lo = max(0.0, math.floor((min(e.start for e in relevant) - 0.1) * 10) / 10)
    hi = min(duration, math.ceil((max(e.end for e in relevant) + 0.1) * 10) / 10)
    fine = [e for e in events if e.start < hi and e.end > lo]
    return {"coarse": windows, "window": [lo, hi], "fine": [_describe(e) for e in fine]}


def coarse_to_fine(ev: dict, need: str, conclusion: str, answer: str) -> str:
    coarse = "; ".join(f"{lo:g}-{hi:g} s: {', '.join(k)}" for lo, hi, k in ev["coarse"])
    lo, hi = ev["window"]
    think = (f"Coarse pass, {len(ev['coarse'])} windows: {coarse}. The question needs {need}, "
             f"so I listen closely to {lo:.1f}-{hi:.1f} s. Fine pass: {'; '.join(ev['fine'])}. {conclusion}.")
    return render_block("think", think) + "\n" + render_block("answer", answer)


def listen_turns(ev: dict, need: str, conclusion: str, answer: str, track, save_picture) -> list[dict]:
    """The coarse-to-fine trace as play_audio turns: coarse pass and the call, the tool's return, fine pass and
    answer. `save_picture(image)` writes the returned spectrogram and gives its dataset-relative path."""
    from mmreason.modalities.audio import Audio
    from mmreason.tools.audio import close_listen

    lo, hi = ev["window"]
    coarse = "; ".join(f"{a:g}-{b:g} s: {', '.join(k)}" for a, b, k in ev["coarse"])
    clip = Audio(waveform=track, sample_rate=SAMPLE_RATE, source="", source_sample_rate=SAMPLE_RATE, source_channels=1)
    caption, spec = close_listen(clip, lo, hi)
    call = render_tool_call("play_audio", {"start": lo, "end": hi})
    first = render_block("think", f"Coarse pass, {len(ev['coarse'])} windows: {coarse}. The question needs {need}, "
                                  f"so I listen again to {lo:.1f}-{hi:.1f} s.")
    back = [{"type": "image", "image": save_picture(spec.image)}, {"type": "text", "text": caption}]
    last = render_block("think", f"Fine pass: {'; '.join(ev['fine'])}. {conclusion}.") + "\n" + \
        render_block("answer", answer)
    return [text_turn("assistant", first + "\n" + call), {"role": "tool", "content": back},
            text_turn("assistant", last)]


# ------------------------------------------------------------------------------------------ builder
def make_sample(ctx: SampleContext) -> dict:
    opts, rng = ctx.options, ctx.rng
    qtype = opts["qtypes"][int(rng.integers(len(opts["qtypes"])))]
    floor = opts["floor_db"]
    with phase("render"):
        floor_db = None if floor is None else float(rng.uniform(*floor))
        track, events = layout(rng, plan(rng, qtype), floor_db=floor_db)
        q, answer, relevant, need, conclusion = question(rng, qtype, events)
    duration = len(track) / SAMPLE_RATE
    audio = save_wav(track, SAMPLE_RATE, ctx.media("audio", "wav"))
    ev = evidence(events, relevant, duration, float(opts["coarse_seconds"]))
    traces = {"coarse_to_fine": [text_turn("assistant", coarse_to_fine(ev, need, conclusion, answer))]}
    chosen = opts["trace"]
    if chosen == "listen":  # pictures are written for the chosen trace only
        traces["listen"] = listen_turns(ev, need, conclusion, answer, track,
                                        lambda image: save_image(image, ctx.media("listen", "png")))
    user = {"role": "user", "content": [{"type": "audio", "audio": audio}, {"type": "text", "text": q}]}
    return {
        "id": ctx.id, "messages": [user] + (traces[chosen] if chosen != "none" else []), "answer": answer,
        "task": QTYPES[qtype], "source": NAME,
        "time_spans": [{"label": _describe(e).rsplit(" ", 2)[0], "start": e.start, "end": e.end}
                       for e in relevant],
        "meta": {"qtype": qtype, "trace": chosen, "traces": traces, "sample_rate": SAMPLE_RATE,
                 "duration": duration, "evidence": ev,
                 "events": [{k: v for k, v in e.__dict__.items() if v is not None} for e in events]},
    }


def build(out_dir: str | Path, *, n: int, seed: int = 0, shard: tuple[int, int] = (0, 1), workers: int = 1,
          chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True, **options) -> Path:
    """Spoken words (espeak-ng), beeps and noise with exact timings; coarse-to-fine evidence traces."""
    opts = {**DEFAULTS, **options}
    check_options("audio_speech", opts, QTYPES, TRACES)
    if not espeak_available():
        raise RuntimeError("audio_speech needs the espeak-ng program (Debian/Ubuntu: apt-get install espeak-ng)")
    return build_dataset(out_dir, name=NAME, make_sample=make_sample, n=n, seed=seed, shard=shard, options=opts,
                         workers=workers, chunk_size=chunk_size, progress=progress)
