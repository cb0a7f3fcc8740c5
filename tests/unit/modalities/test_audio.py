"""Audio adapter: real files made with espeak-ng, sox and ffmpeg; resampling, spans, limits, bad files,
the spectrogram's time axis, and the Omni processor + tiny thinker."""

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from mmreason.errors import MediaError
from mmreason.modalities import load_part
from mmreason.modalities.audio import (
    Audio, audio_for_processor, audio_to_vision_parts, load_audio, log_mel_image, num_audio_tokens,
)
from mmreason.modalities.image import LoadedImage

pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("sox", "espeak-ng", "ffmpeg")),
                                reason="needs sox, espeak-ng and ffmpeg")


def _run(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    _run("espeak-ng", "-w", str(d / "speech.wav"), "the red cube is left of the ball")  # 22050 Hz mono
    _run("sox", "-n", "-r", "44100", "-c", "2", str(d / "stereo.flac"), "synth", "1.5", "sine", "440", "sine",
         "1000")
    _run("sox", "-n", "-r", "22050", str(d / "tone.ogg"), "synth", "1.0", "sine", "880")
    _run("sox", "-n", "-r", "16000", str(d / "noise.wav"), "synth", "3.0", "whitenoise")
    # 1 s silence, 0.5 s of 2 kHz, 1 s silence: the burst's place on the spectrogram is known exactly.
    _run("sox", "-n", "-r", "16000", str(d / "burst.wav"), "synth", "0.5", "sine", "2000", "pad", "1", "1")
    _run("ffmpeg", "-loglevel", "error", "-y", "-i", str(d / "speech.wav"), str(d / "speech.mp3"))
    _run("ffmpeg", "-loglevel", "error", "-y", "-i", str(d / "speech.wav"), str(d / "speech.m4a"))
    _run("ffmpeg", "-loglevel", "error", "-y", "-i", str(d / "speech.wav"), str(d / "speech.aac"))  # raw ADTS
    for name in ("speech.wav", "stereo.flac", "speech.mp3", "tone.ogg"):
        data = (d / name).read_bytes()
        (d / f"cut_{name}").write_bytes(data[: len(data) // 2])
    (d / "garbage.wav").write_bytes(bytes(range(256)) * 8)
    (d / "empty.flac").write_bytes(b"")
    sf.write(d / "nan.wav", np.array([0.1, np.nan, 0.2] * 1000, dtype=np.float32), 16000, subtype="FLOAT")
    return d


def _peak_hz(y, sr):
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spec)]


@pytest.mark.parametrize("name,rate,channels,seconds", [
    ("speech.wav", 22050, 1, None), ("stereo.flac", 44100, 2, 1.5), ("tone.ogg", 22050, 1, 1.0),
    ("speech.mp3", 22050, 1, None), ("speech.m4a", 22050, 1, None),  # m4a: libsndfile cannot, audioread can
])
def test_formats_decode_to_mono_16k(clips, name, rate, channels, seconds):
    a = load_audio(name, root=clips, sample_id="s")
    assert a.sample_rate == 16000 and a.waveform.ndim == 1 and a.waveform.dtype == np.float32
    assert (a.source_sample_rate, a.source_channels) == (rate, channels)
    expected = seconds if seconds is not None else sf.info(clips / "speech.wav").duration
    assert abs(a.duration - expected) < 0.05  # codecs pad a frame or two
    assert np.abs(a.waveform).max() > 0.05


def test_raw_aac_decodes(clips):
    """The schema reads .aac as audio, so it must decode (audioread, as m4a). Raw AAC (ADTS) has no edit
    list to drop the encoder's priming samples: the clip comes out up to two AAC frames (2 x 1024 samples)
    longer than the source."""
    a = load_audio("speech.aac", root=clips, sample_id="s")
    assert (a.sample_rate, a.source_sample_rate, a.source_channels) == (16000, 22050, 1)
    assert 0 <= a.duration - sf.info(clips / "speech.wav").duration < 2 * 1024 / 22050
    assert np.abs(a.waveform).max() > 0.05


def test_resampling_keeps_pitch_and_stereo_is_averaged(clips):
    tone = load_audio(clips / "tone.ogg")
    assert abs(_peak_hz(tone.waveform, 16000) - 880) < 3
    both = load_audio(clips / "stereo.flac").waveform
    spec = np.abs(np.fft.rfft(both))
    freqs = np.fft.rfftfreq(len(both), 1 / 16000)
    top2 = sorted(freqs[np.argsort(spec)[-2:]])
    assert abs(top2[0] - 440) < 3 and abs(top2[1] - 1000) < 3  # both channels survive the mono mix


def test_span_and_time_mapping(clips):
    a = load_audio("noise.wav", root=clips, audio_start=0.5, audio_end=1.25)
    assert a.duration == pytest.approx(0.75, abs=1e-3)
    assert a.frame.start == 0.5 and a.source_time(0.25) == pytest.approx(0.75)
    with pytest.raises(MediaError, match="span"):
        load_audio(clips / "noise.wav", audio_start=5.0, sample_id="s9")


def test_duration_limit_is_a_clear_error(clips):
    with pytest.raises(MediaError) as err:
        load_audio(clips / "noise.wav", max_seconds=2.0, sample_id="row-7")
    msg = str(err.value)
    assert "row-7" in msg and "noise.wav" in msg and "3.0 s" in msg and "2 s limit" in msg
    assert load_audio(clips / "noise.wav", max_seconds=2.0, audio_end=1.5).duration == pytest.approx(1.5)


@pytest.mark.parametrize("name,reason", [
    ("cut_speech.wav", "truncated"), ("cut_stereo.flac", "cannot decode"), ("cut_speech.mp3", "truncated"),
    ("cut_tone.ogg", "cannot decode"), ("garbage.wav", "cannot decode"), ("empty.flac", "empty file"),
    ("missing.wav", "not found"), ("nan.wav", "NaN"),
])
def test_bad_files_name_file_and_sample(clips, name, reason):
    with pytest.raises(MediaError, match=reason) as err:
        load_audio(name, root=clips, sample_id="bad-1")
    assert err.value.sample_id == "bad-1" and name in str(err.value) and "bad-1" in str(err.value)


def test_bytes_and_datasets_dict_inputs(clips):
    from_bytes = load_audio((clips / "tone.ogg").read_bytes())
    assert from_bytes.source == "<bytes>" and abs(from_bytes.duration - 1.0) < 0.01
    with pytest.raises(MediaError, match="truncated"):
        load_audio((clips / "cut_speech.wav").read_bytes(), sample_id="b")
    y, sr = sf.read(clips / "stereo.flac", dtype="float32")
    as_dict = load_audio({"array": y, "sampling_rate": sr, "path": "x.flac"})
    assert as_dict.source_channels == 2 and as_dict.duration == pytest.approx(1.5, abs=1e-3)


def test_spectrogram_time_and_frequency_axes(clips):
    import librosa

    spec = log_mel_image(load_audio(clips / "burst.wav"), pixels_per_second=50, colormap=None)
    assert spec.seconds_per_pixel == pytest.approx(0.02) and spec.image.size == (125, 128)
    level = np.asarray(spec.image)[..., 0].astype(float)
    loud = np.nonzero(level.mean(0) > 0.5 * level.mean(0).max())[0]
    # The burst occupies 1.0-1.5 s; its columns map back to that span within a column (window spill).
    assert abs(spec.time_at(loud[0]) - 1.0) <= 0.03 and abs(spec.time_at(loud[-1] + 1) - 1.5) <= 0.03
    assert spec.x_at(spec.time_at(37.5)) == pytest.approx(37.5)
    row = int(np.argmax(level[:, int(spec.x_at(1.25))]))
    mel_hz = librosa.mel_frequencies(n_mels=128, fmax=8000)[127 - row]  # row 0 is the top (highest band)
    assert abs(mel_hz - 2000) < 100


def test_long_clips_fit_qwen_aspect_limit(clips):
    long = Audio(np.zeros(16000 * 200, np.float32), 16000, "<array>", 16000, 1)
    spec = log_mel_image(long, max_width=4096)
    assert spec.image.width <= 4096 and spec.image.width / spec.image.height <= 200
    assert spec.time_at(spec.image.width) == pytest.approx(200, abs=spec.seconds_per_pixel)


def test_vision_parts_for_image_only_families(clips):
    parts = audio_to_vision_parts("speech.wav", root=clips, transcript="the red cube is left of the ball",
                                  family="qwen2_5_vl")
    assert [p["type"] for p in parts] == ["image", "text", "text"]
    assert isinstance(parts[0]["image"], LoadedImage) and parts[0]["image"].frame.resized_width % 28 == 0
    assert "0.02 s per pixel column" in parts[1]["text"] and "red cube" in parts[2]["text"]
    asr = audio_to_vision_parts(clips / "tone.ogg", transcript=lambda a: f"{a.duration:.1f} seconds of tone")
    assert asr[-1]["text"].endswith("1.0 seconds of tone") and not isinstance(asr[0]["image"], LoadedImage)


def test_registry_part_goes_to_audio_or_vision_by_family(clips):
    part = {"type": "audio", "audio": "speech.wav", "transcript": "hello", "audio_end": 1.0}
    loaded = load_part(part, root=clips, family="qwen2_5_omni", sample_id="r1")
    assert loaded.duration == pytest.approx(1.0) and loaded.transcript == "hello"
    assert loaded.as_parts("qwen2_5_omni") == [{"type": "audio", "audio": loaded}]
    assert [p["type"] for p in loaded.as_parts("qwen3_vl")] == ["image", "text", "text"]
    with pytest.raises(MediaError, match="r2"):
        load_part({"type": "audio", "audio": "nope.wav"}, root=clips, sample_id="r2")


def test_omni_processor_features_and_tiny_thinker_loss(clips, tiny_model):
    import copy

    import torch

    model, processor = tiny_model("qwen2_5_omni")
    audio = load_audio(clips / "speech.wav")
    messages = [{"role": "user", "content": [{"type": "audio", "audio": "speech.wav"},
                                             {"type": "text", "text": "What is said?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "the red cube"}]}]
    text = processor.apply_chat_template(messages, tokenize=False)
    batch = processor(text=[text], audio=[audio_for_processor(audio, processor.feature_extractor)],
                      return_tensors="pt", padding=True)
    assert batch["input_features"].shape[1] == 128  # mel bins
    audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    assert int((batch["input_ids"] == audio_id).sum()) == num_audio_tokens(len(audio.waveform))
    model = copy.deepcopy(model).train()
    out = model(**batch, labels=batch["input_ids"])
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "audio_tower" in n and p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)  # the audio reached the loss


def test_processor_window_is_enforced(tiny_model):
    _, processor = tiny_model("qwen2_5_omni")
    fe = processor.feature_extractor
    long = Audio(np.zeros(fe.n_samples + 16000, np.float32), 16000, "long.wav", 16000, 1)
    with pytest.raises(MediaError, match="keeps only 30 s"):
        audio_for_processor(long, fe, sample_id="s")
    with pytest.raises(MediaError, match="expects 16000 Hz"):
        audio_for_processor(Audio(np.zeros(800, np.float32), 8000, "x.wav", 8000, 1), fe)
