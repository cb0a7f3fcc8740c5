"""Audio tool: play a time span of the clip back to the model, closer up (coarse-to-fine audio evidence).

``play_audio(start, end)`` cuts ``[start, end]`` seconds out of the sample's clip (the source waveform, at
its decoded rate) and returns it as a new observation the model reads as it read the clip in the prompt
on a vision-only backbone: a log-mel spectrogram picture (`modalities.audio.log_mel_image`) and the text
saying how to read it, its time axis in seconds of the whole clip. The span is drawn at a finer time
resolution than the prompt's (``PIXELS_ACROSS`` columns across it, at least the prompt's 50 per second),
so a word that was a few pixel columns in the overview becomes a picture of its own: the coarse-to-fine
listening that AudioGenie-style agents and the ``coarse_to_fine`` traces of the ``audio_speech`` builder
describe. The picture goes through the environment's returned-image budget like any tool picture.

Spans are validated like any model-written argument (``Error: ...`` observations, never a crash): both
times inside the clip, ``end > start``, at least ``MIN_SECONDS`` long. ``info`` records the span played
(seconds of the clip and of the source file), which rewards read from the tool call itself.

Not done here: an audio backbone (the Omni family) gets the span as a picture too; giving it back as a
waveform needs audio observation turns in the rollout, which it does not have yet.
"""

from __future__ import annotations

from dataclasses import replace

from mmreason.tools.env import Observation, ToolEnv, ToolInputError, as_number, tool

MIN_SECONDS = 0.05
PIXELS_ACROSS = 400  # columns of the returned spectrogram across the span (finer than the overview)
BASE_PIXELS_PER_SECOND = 50.0  # the overview's resolution (`audio_to_vision_parts`' default)


def cut_span(audio, start: float, end: float):
    """The clip's ``[start, end]`` seconds as an `Audio` whose ``start`` keeps source time."""
    sr = audio.sample_rate
    lo, hi = int(round(start * sr)), int(round(end * sr))
    return replace(audio, waveform=audio.waveform[lo:hi], start=audio.start + lo / sr, transcript=None)


def close_listen(audio, start: float, end: float):
    """What play_audio returns for ``[start, end]`` seconds of `audio` (validated times): its caption and the
    span's spectrogram (`modalities.audio.Spectrogram`), at least ``PIXELS_ACROSS`` columns across. The
    audio_speech builder writes its ``listen`` traces with it, so SFT targets show what a rollout shows."""
    from mmreason.modalities.audio import log_mel_image

    spec = log_mel_image(cut_span(audio, start, end),
                         pixels_per_second=max(BASE_PIXELS_PER_SECOND, PIXELS_ACROSS / (end - start)))
    text = (f"The audio from {start:.2f} s to {end:.2f} s, played again closer up. The image is its log-mel "
            f"spectrogram: time runs left to right from {start:.2f} s to {end:.2f} s of the clip, "
            f"{spec.seconds_per_pixel:.4g} s per pixel column; frequency rises from 0 Hz at the bottom to "
            f"{spec.max_hz / 1000:g} kHz at the top; brighter means louder.")
    return text, spec


@tool
def play_audio(env: ToolEnv, start: float, end: float, audio_index: int = 0) -> Observation:
    """Listen again, closer up, to a time span of the audio clip.

    Args:
        start: Start of the span in seconds from the beginning of the clip.
        end: End of the span in seconds (after start).
        audio_index: Which input audio clip, counting from 0 (default 0).
    """
    index, audio = env.pick(env.audios, audio_index, "audio")
    duration = audio.duration
    a = as_number(start, "start", 0.0, duration)
    b = as_number(end, "end", 0.0, duration)
    if b - a < MIN_SECONDS:
        raise ToolInputError(f"end must come at least {MIN_SECONDS:g} s after start; got {a:g} to {b:g} "
                             f"(the clip is {duration:.2f} s long)")
    text, spec = close_listen(audio, a, b)
    return Observation(text, images=(env.picture(spec.image),),
                       info={"tool": "play_audio", "audio_index": index, "start": a, "end": b,
                             "source_start": spec.start, "seconds_per_pixel": spec.seconds_per_pixel})
