"""Sound events with exact timings: espeak-ng words, sine beeps, noise bursts, laid out on one track.

Words are synthesised one by one (espeak-ng, resampled to the track rate with soxr, trimmed to their
audible extent, peak-normalised), so each word's start and end are sample-exact by construction,
unlike espeak's own timing output which marks phoneme boundaries with padding. Used by `audio_speech`.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+m3")
RATES = (140, 170)  # words per minute
PITCHES = (35, 60)
TRIM = 0.02  # an edge sample is audible when |x| exceeds this share of the word's peak


@dataclass(frozen=True)
class Event:
    kind: str  # "word" | "tone" | "noise"
    start: float  # seconds, sample-exact: start_sample / SAMPLE_RATE
    end: float
    text: str | None = None  # the word
    freq: float | None = None  # the tone's frequency in Hz
    voice: str | None = None  # espeak voice, rate and pitch of a word: enough to synthesise it again
    rate: int | None = None
    pitch: int | None = None


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _espeak_cmd(word: str, voice: str, rate: int, pitch: int) -> list[str]:
    return ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", word]


def _postprocess(raw: bytes, word: str) -> np.ndarray:
    import soundfile as sf
    import soxr

    data, sr = sf.read(io.BytesIO(raw), dtype="float32", always_2d=True)
    x = soxr.resample(data.mean(axis=1), sr, SAMPLE_RATE)
    loud = np.nonzero(np.abs(x) > TRIM * np.abs(x).max())[0] if x.size else []
    if len(loud) == 0:
        raise RuntimeError(f"espeak-ng produced silence for {word!r}")
    x = x[loud[0]:loud[-1] + 1]
    return (x / np.abs(x).max()).astype(np.float32)


_CACHE: dict[tuple[str, str, int, int], np.ndarray] = {}  # builds reuse a small vocabulary
_CACHE_MAX = 4096


def synth_words(specs: list[tuple[str, str, int, int]]) -> list[np.ndarray]:
    """Trimmed, peak-1 waveforms at SAMPLE_RATE for (word, voice, rate, pitch) specs.

    Uncached words run as parallel espeak-ng processes; espeak-ng is deterministic, so the cache
    never changes what a sample contains.
    """
    todo = sorted({s for s in specs if s not in _CACHE})
    if len(_CACHE) + len(todo) > _CACHE_MAX:
        _CACHE.clear()
    procs = {s: subprocess.Popen(_espeak_cmd(*s), stdout=subprocess.PIPE, stderr=subprocess.PIPE) for s in todo}
    for s, p in procs.items():
        raw, err = p.communicate(timeout=60)
        if p.returncode:
            raise RuntimeError(f"espeak-ng failed for {s[0]!r} ({s[1]}): {err.decode(errors='replace').strip()}")
        _CACHE[s] = _postprocess(raw, s[0])
    return [_CACHE[s] for s in specs]


def synth_word(word: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    return synth_words([(word, voice, rate, pitch)])[0]


def tone(freq: float, seconds: float, amp: float) -> np.ndarray:
    """A sine beep with 10 ms raised-cosine fades (no clicks; the span is still the whole beep)."""
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    x = amp * np.sin(2 * np.pi * freq * t)
    k = min(n // 2, int(0.01 * SAMPLE_RATE))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, k))
    x[:k] *= ramp
    x[n - k:] *= ramp[::-1]
    return x.astype(np.float32)


def layout(rng: np.random.Generator, items: list[dict], *,
           floor_db: float | None) -> tuple[np.ndarray, list[Event]]:
    """Place `items` ({"kind", ...}) one after another with random silent gaps; returns (track, events)."""
    specs = [(it["text"], it["voice"], it["rate"], it["pitch"]) for it in items if it["kind"] == "word"]
    waves = iter(synth_words(specs))
    parts, events = [], []
    pos = int(rng.uniform(0.2, 0.5) * SAMPLE_RATE)
    parts.append(np.zeros(pos, np.float32))
    for it in items:
        if it["kind"] == "word":
            x = next(waves) * float(rng.uniform(0.5, 0.8))
        elif it["kind"] == "tone":
            x = tone(it["freq"], it["seconds"], float(rng.uniform(0.25, 0.4)))
        else:
            x = (rng.uniform(-1, 1, int(it["seconds"] * SAMPLE_RATE)) * rng.uniform(0.15, 0.3)).astype(np.float32)
        ev = Event(it["kind"], pos / SAMPLE_RATE, (pos + len(x)) / SAMPLE_RATE, it.get("text"), it.get("freq"),
                   it.get("voice"), it.get("rate"), it.get("pitch"))
        events.append(ev)
        gap = int(rng.uniform(0.25, 0.6) * SAMPLE_RATE)
        parts += [x, np.zeros(gap, np.float32)]
        pos += len(x) + gap
    track = np.concatenate(parts)
    if floor_db is not None:  # a faint hiss, so "silence" is realistic rather than digital zero
        track = track + rng.normal(0, 10 ** (floor_db / 20), track.shape).astype(np.float32)
    return np.clip(track, -1, 1), events
