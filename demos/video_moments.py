"""Grounded chat on a video: the moments an answer cites, read and shown on a timeline with the frame at each.

A moment is what the evaluation reads from the text: the answer's span (`mmreason.eval.metrics.predicted_span`,
the temporal-grounding reader, one number giving a moment) and every Video-CoM ``FIND_SEGMENT`` step the
trace takes (`mmreason.traces`). The timeline and frames are the dataset card's (`timeline`, `video_frame`),
so a model's moments and a dataset's ground truth look the same. The run itself is the grounded chat's
streamed rollout with a video part, sampled by the video adapter as in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from PIL import Image

from mmreason import traces

MAX_FRAMES_SHOWN = 6


@dataclass(frozen=True)
class VideoUpdate:
    """The trace so far, the moments it cites (seconds), the timeline and frames once the answer is
    complete, and how the run ended."""

    trace: str
    moments: tuple[dict, ...]
    pictures: tuple[tuple[Image.Image, str], ...] = ()
    done: bool = False
    answer: str | None = None
    stop_reason: str | None = None
    issues: tuple[str, ...] = ()

    def summary(self) -> dict:
        return {"answer": self.answer, "stop_reason": self.stop_reason, "moments": list(self.moments),
                "issues": list(self.issues)}


def cited_moments(text: str, duration: float | None = None) -> tuple[dict, ...]:
    """``{"start", "end", "label"}`` of each moment the text cites, clipped to [0, duration] when known;
    model text never raises here.

    >>> cited_moments("FIND_SEGMENT(the dog runs) = [1.5, 3] <answer>2.0 to 2.5</answer>")
    ({'start': 1.5, 'end': 3.0, 'label': 'FIND_SEGMENT: the dog runs'}, {'start': 2.0, 'end': 2.5, 'label': 'answer'})
    """
    from mmreason.eval.metrics import predicted_span

    trace = traces.parse(text)
    out = [{"start": float(m.values[0]), "end": float(m.values[1]), "label": f"FIND_SEGMENT: {m.query}"}
           for m in trace.manipulations if m.kind == "FIND_SEGMENT" and len(m.values) >= 2]
    span = predicted_span(text) if trace.answer is not None else None
    if span is not None:
        out.append({"start": span[0], "end": span[1], "label": "answer"})
    if duration is not None:
        out = [{**m, "start": min(max(m["start"], 0.0), duration), "end": min(max(m["end"], 0.0), duration)}
               for m in out]
    return tuple(m for m in out if m["end"] >= m["start"])


def video_duration(path: str | Path) -> float:
    """Seconds, from the video adapter's reader (a `MediaError` naming the file when it cannot decode)."""
    from mmreason.modalities.video import read_video

    _, _, _, total, fps, _ = read_video(path, lambda total, fps: [0])
    return total / fps if fps else 0.0


def moment_pictures(path: str | Path, moments: Sequence[dict], duration: float) -> list[tuple[Image.Image, str]]:
    """The timeline with every moment shaded, then the frame at each moment's start."""
    from mmreason.data_builders.card import timeline, video_frame

    out = [(timeline(duration, moments, width=640, height=32), f"0-{duration:.2f} s, cited moments shaded")]
    for m in list(moments)[:MAX_FRAMES_SHOWN]:
        frame = video_frame(path, m["start"])
        if frame is not None:
            out.append((frame, f"{m['start']:.2f}-{m['end']:.2f} s · {m['label']}"))
    return out


def video_stream(model: Any, processor: Any, family: str, video: str | Path, question: str, *,
                 max_new_tokens: int = 256, frames: int = 8, max_pixels: int | None = None,
                 prefill: str = "", style: Any = None) -> Iterator[VideoUpdate]:
    """Answer `question` about the video file, yielding the trace as it streams; the last update carries
    the cited moments drawn."""
    from mmreason.demos.streaming import chat_row, stream_rollout
    from mmreason.rollout import RolloutConfig

    if not question or not question.strip():
        raise ValueError("ask a question about the video")
    duration = video_duration(video)
    row = chat_row(str(video), question.strip(), (), kind="video", style=style)
    config = RolloutConfig(max_turns=1, max_new_tokens=max_new_tokens, max_completion_tokens=max_new_tokens,
                           do_sample=False, seed=0)
    options = {"nframes": frames, **({"max_pixels": max_pixels} if max_pixels else {})}
    for step in stream_rollout(model, processor, family, row, config, prefill=prefill, prompt_pictures=0,
                               media_options={"video": options}):
        if step.trajectory is None:
            yield VideoUpdate(step.text, cited_moments(step.text, duration))
            continue
        text = step.trajectory.completion
        moments = cited_moments(text, duration)
        trace = traces.parse(text)
        yield VideoUpdate(text, moments, tuple(moment_pictures(video, moments, duration)), True, trace.answer,
                          step.trajectory.stop_reason, trace.issues)
