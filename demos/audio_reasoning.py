"""Audio reasoning: an audio clip (uploaded or recorded) and a question in; the waveform and the log-mel
spectrogram with the time spans the answer cites highlighted, the evidence the reasoning gives, the answer.

A vision-language model hears through the spectrogram the audio adapter renders for it
(`mmreason.modalities.audio.audio_to_vision_parts`: the image, how to read its axes, as in training); the
same spectrogram is what the page shows, so a span the model cites falls where it looked. Spans are read
from the text as the audio builder's traces write them (``3.26-3.79 s``, ``from 1 to 2 s``) and from the
answer by the temporal-grounding reader (`mmreason.eval.metrics.predicted_span`).

    mmreason demo audio_reasoning --port 7863
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from PIL import Image

from mmreason import traces
from mmreason.demos.drawing import shade_spans

# "3.26-3.79 s", "1 to 2 s", "from 0.5 s to 1.5 s": a span in seconds, as the audio traces write them
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*s?\s*(?:-|–|to)\s*(\d+(?:\.\d+)?)\s*(?:s\b|sec|seconds)")


@dataclass(frozen=True)
class AudioUpdate:
    trace: str
    spans: tuple[dict, ...]
    pictures: tuple[tuple[Image.Image, str], ...] = ()
    done: bool = False
    answer: str | None = None
    stop_reason: str | None = None

    def summary(self) -> dict:
        return {"answer": self.answer, "stop_reason": self.stop_reason, "cited_spans": list(self.spans)}


def cited_spans(text: str, duration: float) -> tuple[dict, ...]:
    """Every span the text cites, in order, clipped to the clip; the answer's own span (or moment) last.

    >>> cited_spans("<think>speech 3.26-3.79 s</think><answer>2 to 3</answer>", 6.0)
    ({'start': 3.26, 'end': 3.79, 'label': 'evidence'}, {'start': 2.0, 'end': 3.0, 'label': 'answer'})
    """
    from mmreason.eval.metrics import predicted_span

    trace = traces.parse(text)
    body = trace.think if trace.think is not None else text
    out = [(float(a), float(b), "evidence") for a, b in _SPAN.findall(body or "")]
    span = predicted_span(text) if trace.answer is not None else None
    if span is not None:
        out.append((span[0], span[1], "answer"))
    clip = lambda t: min(max(t, 0.0), duration)  # noqa: E731
    return tuple({"start": clip(min(a, b)), "end": clip(max(a, b)), "label": label} for a, b, label in out)


def audio_pictures(audio: Any, spans: Sequence[dict]) -> list[tuple[Image.Image, str]]:
    """The waveform and the spectrogram (the image the model saw) with `spans` shaded."""
    from mmreason.data_builders.card import waveform
    from mmreason.modalities.audio import log_mel_image

    spec = log_mel_image(audio)
    out = []
    wave = waveform(audio.source, width=max(400, spec.image.width), height=140) if audio.source else None
    if wave is not None:
        image, duration = wave
        out.append((shade_spans(image, spans, lambda t: t / max(duration, 1e-6) * image.width),
                    f"waveform 0-{duration:.2f} s"))
    out.append((shade_spans(spec.image, spans, spec.x_at), f"log-mel spectrogram, {spec.seconds_per_pixel:.3g} s "
                "per column"))
    return out


def audio_stream(model: Any, processor: Any, family: str, path: str | Path, question: str, *,
                 max_new_tokens: int = 256, prefill: str = "") -> Iterator[AudioUpdate]:
    """Answer `question` about the audio file, yielding the trace as it streams; the last update has the
    waveform and spectrogram with the cited spans."""
    from mmreason.demos.streaming import stream_rollout
    from mmreason.modalities.audio import audio_to_vision_parts, load_audio
    from mmreason.rollout import RolloutConfig

    if not question or not question.strip():
        raise ValueError("ask a question about the audio")
    audio = load_audio(str(path))
    parts = audio_to_vision_parts(audio, family=family)
    row = {"id": "demo", "messages": [{"role": "user", "content": [
        *parts, {"type": "text", "text": "\n" + question.strip()}]}]}
    config = RolloutConfig(max_turns=1, max_new_tokens=max_new_tokens, max_completion_tokens=max_new_tokens,
                           do_sample=False, seed=0)
    for step in stream_rollout(model, processor, family, row, config, prefill=prefill):
        if step.trajectory is None:
            yield AudioUpdate(step.text, cited_spans(step.text, audio.duration))
            continue
        text = step.trajectory.completion
        spans = cited_spans(text, audio.duration)
        yield AudioUpdate(text, spans, tuple(audio_pictures(audio, spans)), True, traces.parse(text).answer,
                          step.trajectory.stop_reason)


def example_audio(folder: str | Path) -> Path:
    """A clip to try without uploading one: one sample of the audio builder (spoken words, beeps, noise)."""
    from mmreason import schema
    from mmreason.data_builders import get_builder
    from mmreason.schema.io import load_rows

    out = Path(get_builder("audio_speech")(str(folder), n=1, seed=0, progress=False))
    row = next(iter(load_rows(out)))
    return out / next(p for kind, p in schema.media_parts(row) if kind == "audio")


def build_demo(model: Any, processor: Any, family: str, *, title: str = "mmreason audio reasoning",
               max_upload_bytes: int | None = None, example: str | Path | None = None) -> Any:
    """The Gradio Blocks (not launched): audio + question -> waveform and spectrogram with cited spans."""
    import gradio as gr

    from mmreason.demos import app_temp_dir, upload_limit
    from mmreason.demos.uploads import check_upload
    from mmreason.errors import MMReasonError

    app_temp_dir()  # before any component is made: Gradio stores (and later serves) files only there
    limit = max_upload_bytes or upload_limit()

    def respond(clip, question, prefill, max_new_tokens):
        if not clip:
            raise gr.Error("upload or record an audio clip first")
        try:
            path = check_upload(clip, "audio", max_bytes=limit)
            for u in audio_stream(model, processor, family, path, question, prefill=prefill or "",
                                  max_new_tokens=int(max_new_tokens)):
                yield list(u.pictures), u.trace, json.dumps(u.summary(), indent=1), u.answer or ""
        except (ValueError, RuntimeError, MMReasonError) as exc:  # bad input or a failed run: say why
            raise gr.Error(str(exc)) from exc

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {title}\nModel family **{family}** hears through the spectrogram shown below; the "
                    "spans its reasoning and answer cite are shaded in yellow.")
        with gr.Row():
            with gr.Column():
                clip = gr.Audio(value=str(example) if example else None, sources=["upload", "microphone"],
                                type="filepath", label="audio (.wav, .flac, .ogg, .mp3)", elem_id="clip")
                question = gr.Textbox(label="question", value="Which word is spoken, and when?")
                prefill = gr.Textbox(label="start the answer with (optional)", value="")
                max_new = gr.Slider(8, 2048, value=256, step=8, label="tokens")
                ask = gr.Button("Ask", variant="primary")
            with gr.Column():
                pictures = gr.Gallery(label="waveform and spectrogram, cited spans shaded", columns=1,
                                      object_fit="contain", height="auto", format="png", elem_id="pictures")
                answer = gr.Textbox(label="answer", elem_id="answer")
                trace = gr.Textbox(label="reasoning (evidence)", lines=8, elem_id="trace")
                parsed = gr.Code(label="cited spans", language="json", elem_id="parsed")
        ask.click(respond, [clip, question, prefill, max_new], [pictures, trace, parsed, answer], api_name="ask")
    return demo


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from mmreason.demos import add_model_args, add_serve_args, app_temp_dir, load_model, serve, upload_limit

    parser = argparse.ArgumentParser(prog="mmreason demo audio_reasoning", description=__doc__.split("\n\n")[0])
    add_model_args(parser)
    add_serve_args(parser)
    args = parser.parse_args(argv)
    model, processor, family = load_model(args.model, device=args.device)
    example = example_audio(app_temp_dir() / "example_audio")
    return serve(build_demo(model, processor, family, max_upload_bytes=upload_limit(args), example=example), args)
