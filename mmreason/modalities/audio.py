"""Audio: any common file -> mono 16 kHz float32, with duration limits and a time axis kept.

Two ways into a model:

- audio backbones (the Omni family): the waveform goes to the processor as ``audio=[waveform]``;
  :func:`audio_for_processor` refuses clips that the feature extractor would silently cut (Whisper-style
  extractors pad or truncate to a fixed window), and :func:`num_audio_tokens` predicts the placeholder
  count so a collator can check it;
- vision-only backbones: :func:`audio_to_vision_parts` turns the clip into a log-mel spectrogram *image*
  whose time axis is known exactly (:class:`Spectrogram` maps pixel columns to seconds and back), plus an
  optional transcript text part, so any VLM can take an audio question.

Decoding goes through soundfile (libsndfile: wav, flac, ogg, and mp3 from libsndfile 1.1); formats that
libsndfile does not know (m4a, aac, or mp3 on an old libsndfile) fall back to audioread (ffmpeg).
Resampling is soxr's (librosa's default resampler). Every failure is a
:class:`~mmreason.errors.MediaError` naming the file and the sample.
"""

from __future__ import annotations

import io
import math
import os
import struct
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import numpy as np

from mmreason.errors import MediaError
from mmreason.families import Family, as_family
from mmreason.modalities.image import resolve_media_path

SAMPLE_RATE = 16_000
MAX_SECONDS = 600.0  # ten minutes; longer clips need an explicit span or a raised limit
_BYTES = "<bytes>"
_ARRAY = "<array>"


@dataclass(frozen=True)
class AudioFrame:
    """Where a clip sits in its source: clip time t is source time ``start + t``."""

    start: float
    duration: float
    sample_rate: int
    source_sample_rate: int


@dataclass(frozen=True, eq=False)
class Audio:
    """A decoded clip: mono float32 waveform at `sample_rate`, and where it came from.

    `start` is the source time (seconds) of ``waveform[0]``, so a time found in this clip maps back to
    the source file with :meth:`source_time`. `transcript` (optional, from the content part) is shown
    to vision-only backbones next to the spectrogram.
    """

    waveform: np.ndarray
    sample_rate: int
    source: str
    source_sample_rate: int
    source_channels: int
    start: float = 0.0
    transcript: str | None = None

    @property
    def duration(self) -> float:
        return len(self.waveform) / self.sample_rate

    @property
    def frame(self) -> AudioFrame:
        return AudioFrame(self.start, self.duration, self.sample_rate, self.source_sample_rate)

    def source_time(self, seconds: float) -> float:
        """Clip time -> time in the source file."""
        return self.start + seconds

    def as_parts(self, family: str | Family | None = None) -> list[dict]:
        """The chat parts this clip becomes: itself for an audio backbone, else spectrogram + text."""
        fam = as_family(family)
        if fam is not None and "audio" in fam.modalities:
            return [{"type": "audio", "audio": self}]
        return audio_to_vision_parts(self, transcript=self.transcript, family=fam)


# ------------------------------------------------------------------------------------------ decoding

def _wav_truncation(head: bytes, total_size: int) -> str | None:
    """Why a RIFF/WAVE file is shorter than its header says, or None.

    libsndfile reads a truncated WAV without complaint (it trims the frame count), so a half-copied
    file would otherwise pass as a shorter clip.
    """
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if chunk == b"data":
            if size in (0, 0xFFFFFFFF):  # streamed WAV or RF64: size lives elsewhere
                return None
            have = total_size - (pos + 8)
            if have >= size:
                return None
            return f"truncated: header declares {size} bytes of audio, file holds {have}"
        pos += 8 + size + (size & 1)
    return None


def _read_soundfile(src: Any) -> tuple[np.ndarray, int, int]:
    import soundfile as sf

    with sf.SoundFile(src) as f:
        declared, sr, channels = f.frames, f.samplerate, f.channels
        data = f.read(dtype="float32", always_2d=True)
    # Compressed formats (mp3, ogg) report the header's frame count; a short read means a cut file.
    # Encoder padding makes small differences normal, so only a clear shortfall counts.
    if declared > 0 and len(data) < declared - max(4096, 0.01 * declared):
        raise ValueError(f"truncated: header declares {declared} frames, decoded {len(data)}")
    return data, sr, channels


def _read_audioread(path: os.PathLike) -> tuple[np.ndarray, int, int]:
    import audioread

    with audioread.audio_open(str(path)) as f:
        sr, channels = f.samplerate, f.channels
        raw = b"".join(bytes(buf) for buf in f)
    pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return pcm.reshape(-1, channels), sr, channels


def _decode(value: Any, root: Any, sample_id: Any) -> tuple[np.ndarray, int, int, str]:
    """(frames x channels float32, sample rate, channels, source name) for a path, bytes or array."""
    if isinstance(value, dict) and "array" in value:  # the `datasets` Audio feature's decoded form
        data = np.asarray(value["array"], dtype=np.float32)
        data = data[:, None] if data.ndim == 1 else data
        return data, int(value["sampling_rate"]), data.shape[1], str(value.get("path") or _ARRAY)
    if isinstance(value, (bytes, bytearray)):
        reason = _wav_truncation(bytes(value[:4096]), len(value))
        if reason:
            raise MediaError(_BYTES, reason, sample_id=sample_id)
        try:
            return (*_read_soundfile(io.BytesIO(value)), _BYTES)
        except Exception as e:
            raise MediaError(_BYTES, f"cannot decode audio: {e}", sample_id=sample_id) from None
    if not isinstance(value, (str, os.PathLike)):
        raise MediaError(repr(value)[:80], f"unsupported audio value of type {type(value).__name__}",
                         sample_id=sample_id)
    path = resolve_media_path(value, root, sample_id=sample_id)
    if not path.is_file():
        raise MediaError(path, "file not found", sample_id=sample_id)
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file", sample_id=sample_id)
    with open(path, "rb") as fh:
        reason = _wav_truncation(fh.read(4096), path.stat().st_size)
    if reason:
        raise MediaError(path, reason, sample_id=sample_id)
    try:
        return (*_read_soundfile(path), str(path))
    except Exception as e:
        first = str(e)
        if "not recognised" not in first and "unimplemented format" not in first:
            raise MediaError(path, f"cannot decode audio: {first}", sample_id=sample_id) from None
    try:  # a container libsndfile does not know: let ffmpeg (through audioread) try
        return (*_read_audioread(path), str(path))
    except Exception as e:
        second = str(e) or type(e).__name__
        raise MediaError(path, f"cannot decode audio (soundfile: {first}; audioread: {second})",
                         sample_id=sample_id) from None


def load_audio(
    part_value: Any, *, root: str | os.PathLike | None = None, sample_id: Any = None,
    sample_rate: int = SAMPLE_RATE, max_seconds: float | None = MAX_SECONDS,
    audio_start: float | None = None, audio_end: float | None = None, **options: Any,
) -> Audio:
    """Decode an audio part (path, bytes, or ``{"array", "sampling_rate"}``) to mono `sample_rate` Hz.

    `audio_start`/`audio_end` (seconds) take a span of the source before the duration limit applies;
    other part options are for other modalities and are ignored. Channels are averaged.

    >>> import numpy as np
    >>> a = load_audio({"array": np.zeros(44100), "sampling_rate": 44100})
    >>> (a.sample_rate, len(a.waveform), a.duration)
    (16000, 16000, 1.0)
    """
    data, sr, channels, source = _decode(part_value, root, sample_id)
    if data.size == 0 or sr <= 0:
        raise MediaError(source, "no audio samples", sample_id=sample_id)
    if not np.isfinite(data).all():
        raise MediaError(source, "audio holds NaN or infinite samples", sample_id=sample_id)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    total = len(mono) / sr
    start = float(audio_start or 0.0)
    end = total if audio_end is None else min(float(audio_end), total)
    if not (0.0 <= start < end):
        raise MediaError(source, f"audio span {audio_start}-{audio_end} s is empty for a {total:.3f} s clip",
                         sample_id=sample_id)
    mono = mono[int(round(start * sr)):int(round(end * sr))]
    if max_seconds is not None and len(mono) / sr > max_seconds:
        raise MediaError(source, f"audio is {len(mono) / sr:.1f} s long, over the {max_seconds:g} s limit "
                         "(take a span with audio_start/audio_end, or raise max_seconds)",
                         sample_id=sample_id)
    if sr != sample_rate:
        import soxr  # librosa's own resampler ("soxr_hq"), called directly: librosa.resample pulls in scipy

        mono = soxr.resample(mono, sr, sample_rate, quality="HQ")
    return Audio(np.ascontiguousarray(mono, dtype=np.float32), sample_rate, source, sr, channels, start)


# ------------------------------------------------------------------------------ audio backbones
def audio_for_processor(audio: Audio, feature_extractor: Any = None, *, sample_id: Any = None) -> np.ndarray:
    """The waveform an Omni-family processor takes as ``audio=[...]``, checked against its extractor.

    Whisper-style feature extractors pad or cut every clip to ``n_samples`` (30 s by default), so a
    longer clip would lose its end without a word; this raises instead.
    """
    if feature_extractor is not None:
        want = int(getattr(feature_extractor, "sampling_rate", audio.sample_rate))
        if want != audio.sample_rate:
            raise MediaError(audio.source, f"audio is at {audio.sample_rate} Hz but the processor expects "
                             f"{want} Hz", sample_id=sample_id)
        limit = getattr(feature_extractor, "n_samples", None)
        if limit is not None and len(audio.waveform) > limit:
            raise MediaError(audio.source, f"audio is {audio.duration:.1f} s long; the processor's feature "
                             f"extractor keeps only {limit / want:g} s (take a span with audio_start/"
                             "audio_end)",
                             sample_id=sample_id)
    return audio.waveform


def num_audio_tokens(num_samples: int, *, hop_length: int = 160, max_frames: int | None = None) -> int:
    """Audio placeholder tokens the Omni family gives a clip of `num_samples` samples.

    Mel frames are ``ceil(n / hop)`` (capped at the extractor's window); the audio encoder then halves
    twice (a stride-2 convolution, ``(f - 1) // 2 + 1``, and a 2x pooling, ``(f - 2) // 2 + 1``).

    >>> num_audio_tokens(16000)  # one second at 16 kHz
    25
    """
    frames = math.ceil(num_samples / hop_length)
    if max_frames is not None:
        frames = min(frames, max_frames)
    frames = (frames - 1) // 2 + 1
    return (frames - 2) // 2 + 1


# ----------------------------------------------------------------------- vision-only backbones
@dataclass(frozen=True, eq=False)
class Spectrogram:
    """A log-mel spectrogram image and its axes.

    Pixel column ``i`` covers clip time ``[i, i + 1) * seconds_per_pixel`` (plus `start`), so a
    continuous x coordinate maps linearly to time; frequency rises from bottom (0 Hz) to top (`max_hz`).
    """

    image: Any  # PIL.Image.Image, RGB
    seconds_per_pixel: float
    start: float
    duration: float
    max_hz: float
    n_mels: int

    def time_at(self, x: float) -> float:
        """Image x (pixels, continuous) -> source time in seconds."""
        return self.start + float(x) * self.seconds_per_pixel

    def x_at(self, seconds: float) -> float:
        """Source time in seconds -> image x (pixels, continuous)."""
        return (float(seconds) - self.start) / self.seconds_per_pixel


def log_mel_image(
    audio: Audio, *, pixels_per_second: float = 50.0, n_mels: int = 128, max_width: int = 4096,
    top_db: float = 80.0, colormap: str | None = "magma",
) -> Spectrogram:
    """Render `audio` as a log-mel spectrogram image (height `n_mels`, one column per hop).

    The hop is ``round(sample_rate / pixels_per_second)`` samples, lowered so the image is at most
    `max_width` wide (long clips would otherwise break the 200:1 aspect limit of Qwen-VL resizing).
    `colormap` is a matplotlib colormap name, or None for grey.
    """
    import librosa
    from PIL import Image

    sr = audio.sample_rate
    hop = max(1, int(round(sr / pixels_per_second)), math.ceil(len(audio.waveform) / max_width))
    # Shift by half a hop so frame i (centred at sample i * hop by librosa) is centred on column i's
    # middle: column i then covers [i, i + 1) hops exactly.
    y = audio.waveform[hop // 2:]
    if len(y) < hop:
        y = np.pad(y, (0, hop - len(y)))
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=max(400, 2 * hop), hop_length=hop, n_mels=n_mels,
                                         fmax=sr / 2)
    db = librosa.power_to_db(mel, ref=np.max, top_db=top_db)  # in [-top_db, 0]
    level = np.flipud((db + top_db) / top_db).clip(0.0, 1.0)
    if colormap is None:
        rgb = np.repeat((level * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    else:
        from matplotlib import colormaps

        rgb = (colormaps[colormap](level)[..., :3] * 255).round().astype(np.uint8)
    return Spectrogram(Image.fromarray(rgb, "RGB"), hop / sr, audio.start, audio.duration, sr / 2, n_mels)


def spectrogram_caption(spec: Spectrogram) -> str:
    """The text that tells a VLM how to read the spectrogram image."""
    return (f"The image is a log-mel spectrogram of a {spec.duration:.2f} s audio clip: time runs left to "
            f"right, {spec.seconds_per_pixel:.4g} s per pixel column, starting at {spec.start:.2f} s; "
            f"frequency rises from 0 Hz at the bottom to {spec.max_hz / 1000:g} kHz at the top; brighter "
            "means louder.")


def audio_to_vision_parts(
    part_value: Any, *, root: str | os.PathLike | None = None, sample_id: Any = None,
    transcript: str | Callable[[Audio], str] | None = None, family: str | Family | None = None,
    pixels_per_second: float = 50.0, n_mels: int = 128, colormap: str | None = "magma", **options: Any,
) -> list[dict]:
    """Content parts that let a vision-only VLM take an audio part: spectrogram image, how to read it,
    and (when given, or when `transcript` is a callable such as an ASR model) the transcript.

    `part_value` is anything :func:`load_audio` takes, or an :class:`Audio`. With a `family` the image
    part holds a ``LoadedImage`` resized for it; without, the PIL image.
    """
    audio = part_value if isinstance(part_value, Audio) else load_audio(
        part_value, root=root, sample_id=sample_id, **options)
    spec = log_mel_image(audio, pixels_per_second=pixels_per_second, n_mels=n_mels, colormap=colormap)
    image: Any = spec.image
    if family is not None:
        from mmreason.modalities.image import load_image

        image = load_image(spec.image, family, sample_id=sample_id, path=audio.source)
    parts = [{"type": "image", "image": image}, {"type": "text", "text": spectrogram_caption(spec)}]
    text = transcript(audio) if callable(transcript) else transcript
    if text:
        parts.append({"type": "text", "text": f"Transcript of the audio: {text.strip()}"})
    return parts


def load_part(
    part: Mapping[str, Any], *, root: str | os.PathLike | None = None, family: str | Family | None = None,
    sample_id: Any = None, defaults: Mapping[str, Any] | None = None,
) -> Audio:
    """Registry loader for ``{"type": "audio", "audio": path, ...}`` parts.

    Options (the part's, else the recipe's `defaults`): ``audio_start``, ``audio_end``, ``max_seconds``,
    ``sample_rate``, and ``transcript`` (text shown to vision-only families).
    """
    value = part.get("audio")
    if value is None:
        raise MediaError("<missing>", "audio part has no 'audio' value", sample_id=sample_id)
    if isinstance(value, Audio):
        return value
    opts = {**(defaults or {}), **{k: v for k, v in part.items() if k not in ("type", "audio")}}
    keys = ("audio_start", "audio_end", "max_seconds", "sample_rate")
    audio = load_audio(value, root=root, sample_id=sample_id, **{k: opts[k] for k in keys if k in opts})
    return replace(audio, transcript=opts.get("transcript"))
