"""Grounded chat: a picture (photo or screenshot) or a video and a question in, the model's reasoning out,
streamed, with every box and point it writes drawn on the picture in original pixels, every zoom it asks for
executed and shown, and on a video the moments it cites marked on a timeline with their frames
(`demos/video_moments.py`). The prompt, tools, pixel budget and token budget default to what the
checkpoint's saved recipe used (`demos/trained_with.py`), and each can be overridden.

It runs the training code, not a copy: the picture goes through the image adapter (`modalities.image`),
the turns through `mmreason.rollout` (the collator, the family's chat template, the tool loop, the zoom
tool of `mmreason.tools`), the text through `mmreason.traces`, and coordinates from the family's output
frame (or the frame chosen) to original pixels through `mmreason.geometry`. Streaming is a rollout
backend that wraps the HF one and reports tokens and returned pictures as they arrive.

    mmreason demo grounded_chat --model tiny:qwen2_5_vl --port 7860

`chat_stream` is what the Gradio event calls; `build_demo` returns the Blocks without launching them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Sequence

from PIL import Image, ImageDraw, ImageFont

from mmreason import traces
from mmreason.families import get_family
from mmreason.demos.streaming import chat_row, stream_rollout  # noqa: F401  (chat_row: part of this API)
from mmreason.geometry import ImageFrame, clip_box, convert_box, convert_point, model_frame

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine

COLOURS = {"answer": (0, 190, 60), "tool_call": (255, 140, 0), "reasoning": (40, 110, 255)}


@dataclass(frozen=True)
class ChatConfig:
    """Generation and drawing settings. `coord_frame` is the frame the model writes coordinates in (None:
    the family's output frame); tool boxes are read in the same frame."""

    max_new_tokens: int = 256
    max_turns: int = 4
    tools: tuple[str, ...] = ("image_zoom_in",)
    coord_frame: str | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    do_sample: bool = False
    temperature: float = 1.0
    question_first: bool = False  # the question before the picture, as a model trained that way expects
    prompt: str = "none"  # the method prompt (mmreason.prompts.PROMPTS) wrapped around the question
    style: Any = None  # its PromptStyle with a recipe's overrides (None: PROMPTS[prompt])
    video_frames: int = 8  # frames sampled from an uploaded video


@dataclass(frozen=True)
class Mark:
    """One box or point the trace holds, in original pixels, and where in the trace it was written."""

    kind: str  # "box" | "point"
    where: str  # "answer" | "tool_call" | "reasoning"
    pixels: tuple[float, ...]
    label: str | None


@dataclass(frozen=True)
class Update:
    """What the interface shows at one moment: the annotated picture, the trace so far, the parsed
    marks, the pictures tools returned, and whether the answer is complete."""

    image: Image.Image
    trace: str
    marks: tuple[Mark, ...]
    crops: tuple[Image.Image, ...] = ()
    done: bool = False
    stop_reason: str | None = None
    answer: str | None = None
    issues: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> dict:
        return {"answer": self.answer, "stop_reason": self.stop_reason,
                "marks": [{"kind": m.kind, "in": m.where, "pixels": [round(v, 1) for v in m.pixels],
                           "label": m.label} for m in self.marks],
                "zooms": len(self.crops), "issues": list(self.issues)}


# -------------------------------------------------------------------------------------- drawing
def _where(trace: traces.Trace, start: int) -> str:
    for block in trace.blocks:
        if block.start <= start < block.end and block.tag in ("answer", "tool_call"):
            return block.tag
    return "reasoning"


def marks_of(text: str, frame: ImageFrame, src_frame: str) -> tuple[Mark, ...]:
    """Every 2D box and point of a trace, mapped from `src_frame` to the picture's original pixels.

    >>> f = ImageFrame(width=200, height=100, resized_width=56, resized_height=28)
    >>> marks_of('<answer>{"bbox_2d": [100, 100, 500, 900]}</answer>', f, "norm1000")[0].pixels
    (20.0, 10.0, 100.0, 90.0)
    """
    trace = traces.parse(text)
    out = [Mark("box", _where(trace, b.start),
                clip_box(convert_box(b.box, src_frame, "pixel", frame), frame.width, frame.height), b.label)
           for b in trace.boxes]
    out += [Mark("point", _where(trace, p.start), convert_point(p.point, src_frame, "pixel", frame), p.label)
            for p in trace.points]
    return tuple(out)


def annotate(image: Image.Image, marks: Sequence[Mark]) -> Image.Image:
    """A copy of `image` (original pixels) with each mark drawn in its colour, numbered in trace order."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 250))
    font = ImageFont.load_default(size=max(12, round(max(out.size) / 40)))
    for n, m in enumerate(marks, 1):
        colour = COLOURS[m.where]
        if m.kind == "box":
            x1, y1, x2, y2 = m.pixels
            if x2 > x1 and y2 > y1:
                draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
                anchor = (x1 + width, y1 + width)
            else:
                continue
        else:
            x, y = m.pixels
            r = 3 * width
            draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=width)
            draw.line((x - 2 * r, y, x + 2 * r, y), fill=colour, width=max(1, width // 2))
            draw.line((x, y - 2 * r, x, y + 2 * r), fill=colour, width=max(1, width // 2))
            anchor = (x + r, y + r)
        draw.text(anchor, f"{n}" + (f" {m.label}" if m.label else ""), fill=colour, font=font)
    return out


# ----------------------------------------------------------------------------------------- chat
def chat_stream(model: Any, processor: Any, family: str, image: Image.Image | str, question: str, *,
                config: ChatConfig = ChatConfig(), prefill: str = "", kind: str = "image",
                ) -> Iterator[Update]:
    """Answer `question` about `image`, yielding an `Update` as tokens and tool results arrive; the last
    one has ``done=True`` and the trajectory's exact text. Errors in the model's output never raise."""
    from mmreason.modalities.image import load_image
    from mmreason.rollout import RolloutConfig
    from mmreason.tools import ToolSettings

    if not question or not question.strip():
        raise ValueError("ask a question about the picture")
    fam = get_family(family)
    loaded = load_image(image, fam, min_pixels=config.min_pixels, max_pixels=config.max_pixels)
    frame, original = loaded.frame, loaded.original or loaded.image
    src = config.coord_frame or model_frame(fam)
    turns = config.max_turns if config.tools else 1
    picture_tokens = (config.max_pixels or fam.max_pixels) // fam.factor**2 + 64  # the most a zoom can cost
    rollout_config = RolloutConfig(
        tools=tuple(config.tools), max_turns=turns, max_new_tokens=config.max_new_tokens,
        max_completion_tokens=(config.max_new_tokens + picture_tokens) * turns, do_sample=config.do_sample,
        temperature=config.temperature, seed=0)
    row = chat_row(loaded, question.strip(), config.tools, kind=kind, question_first=config.question_first,
                   style=prompt_of(config))
    for step in stream_rollout(model, processor, family, row, rollout_config, prefill=prefill,
                               tool_settings=ToolSettings(coord_frame=config.coord_frame)):
        if step.trajectory is not None:
            yield final_update(step.trajectory, original, frame, src)
            return
        marks = marks_of(step.text, frame, src)
        yield Update(annotate(original, marks), step.text, marks, step.pictures)


def final_update(traj: Any, original: Image.Image, frame: ImageFrame, src: str) -> Update:
    """The finished trajectory: assistant turns with each tool result in between, the marks of the
    assistant text only (observations hold no model coordinates), the returned pictures."""
    parts, crops = [], []
    for step in traj.steps:
        parts.append(step.text)
        if step.call is not None:
            obs = step.observation
            if obs is None:
                parts.append(f"\n[tool {step.call.name}: not run ({traj.stop_reason})]\n")
            else:
                crops += [im.original or im.image for im in obs.images] if not obs.error else []
                info = obs.info.get("box_pixel")
                where = f" on {[round(v) for v in info]} px" if info else ""
                parts.append(f"\n[tool {step.call.name}{where}: {obs.text}]\n")
    assistant = "\n".join(s.text for s in traj.steps)
    marks = marks_of(assistant, frame, src)
    trace = traces.parse(assistant)
    return Update(annotate(original, marks), "".join(parts), marks, tuple(crops), True, traj.stop_reason,
                  trace.answer, trace.issues)


def prompt_of(config: ChatConfig) -> Any:
    """The method prompt to wrap questions in: the config's style (a recipe's, overrides included) when it
    is for the chosen prompt name, else that name's shipped style; None for no prompt."""
    from mmreason.prompts import PROMPTS

    if config.style is not None:
        return config.style
    return None if config.prompt == "none" else PROMPTS[config.prompt]


# -------------------------------------------------------------------------------------- the app
def example_picture() -> Image.Image:
    """A picture to try without uploading one: a red square and a blue disc on grey."""
    image = Image.new("RGB", (480, 320), (200, 200, 200))
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 80, 180, 200), fill=(220, 30, 30))
    draw.ellipse((300, 150, 380, 230), fill=(30, 60, 220))
    return image


def build_demo(model: Any, processor: Any, family: str, *, config: ChatConfig = ChatConfig(),
               title: str = "mmreason grounded chat", max_upload_bytes: int | None = None,
               trained_note: str = "") -> Any:
    """The Gradio Blocks (not launched): a picture, or a video, + question -> streamed trace; on a picture
    the marks drawn and the zooms shown, on a video the cited moments on a timeline with their frames."""
    import gradio as gr

    from mmreason.demos import app_temp_dir, upload_limit
    from mmreason.demos.uploads import check_upload
    from mmreason.demos.video_moments import video_stream
    from mmreason.errors import MMReasonError
    from mmreason.prompts import PROMPTS

    app_temp_dir()  # before any component is made: Gradio stores (and later serves) files only there
    limit = max_upload_bytes or upload_limit()

    def settings(prompt, allow_zoom, max_new_tokens) -> ChatConfig:
        style = config.style if prompt == config.prompt else None  # a recipe's overrides go with its prompt
        return replace(config, max_new_tokens=int(max_new_tokens), tools=config.tools if allow_zoom else (),
                       prompt=prompt, style=style)

    def respond(image, video, question, prefill, prompt, allow_zoom, max_new_tokens):
        cfg = settings(prompt, allow_zoom, max_new_tokens)
        try:
            if video:  # a video takes the turn; the picture stays for the next question
                path = check_upload(video, "video", max_bytes=limit)
                for u in video_stream(model, processor, family, path, question, max_new_tokens=cfg.max_new_tokens,
                                      frames=cfg.video_frames, max_pixels=cfg.max_pixels, prefill=prefill or "",
                                      style=prompt_of(cfg)):
                    yield None, u.trace, json.dumps(u.summary(), indent=1), [], list(u.pictures)
                return
            if image is None:
                raise gr.Error("upload a picture or a video first")
            for update in chat_stream(model, processor, family, image, question, config=cfg,
                                      prefill=prefill or ""):
                yield (update.image, update.trace, json.dumps(update.summary(), indent=1), list(update.crops),
                       [])
        except (ValueError, RuntimeError, MMReasonError) as exc:  # bad input or a failed run: say why
            raise gr.Error(str(exc)) from exc

    with gr.Blocks(title=title) as demo:
        frame = config.coord_frame or get_family(family).box_frame
        gr.Markdown(f"## {title}\nModel family **{family}**: coordinates are read in its **{frame}** frame "
                    "and drawn in original pixels (green: answer, orange: tool call, blue: reasoning); on a "
                    f"video, the moments the answer cites are shaded on its timeline.{trained_note}")
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="pil", label="picture or screenshot", elem_id="picture")
                example = app_temp_dir() / "example_shapes.png"
                example_picture().save(example)
                gr.Examples([[str(example)]], [image], label="or try this picture")
                video = gr.Video(label="or a video (takes the turn when given)", sources=["upload"],
                                 elem_id="video")
                question = gr.Textbox(label="question", value="Where is the red square? Give its bbox_2d.")
                prefill = gr.Textbox(label="start the answer with (optional)", value="")
                prompt = gr.Dropdown(list(PROMPTS), value=config.prompt, label="method prompt (default: what "
                                     "the checkpoint was trained with)")
                with gr.Row():
                    allow_zoom = gr.Checkbox(value=bool(config.tools), label="allow zooming in")
                    max_new = gr.Slider(8, 2048, value=config.max_new_tokens, step=8, label="tokens per turn")
                ask = gr.Button("Ask", variant="primary")
            with gr.Column():
                shown = gr.Image(type="pil", format="png", label="grounding (original pixels)",
                                 elem_id="annotated")
                trace = gr.Textbox(label="reasoning trace", lines=12, elem_id="trace")
                parsed = gr.Code(label="parsed", language="json", elem_id="parsed")
                zooms = gr.Gallery(label="zoomed views", columns=4, height=200, format="png")
                moments = gr.Gallery(label="cited moments (video)", columns=3, height=260, format="png",
                                     elem_id="moments")
        ask.click(respond, [image, video, question, prefill, prompt, allow_zoom, max_new],
                  [shown, trace, parsed, zooms, moments], api_name="ask")
    return demo


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from mmreason.demos import add_model_args, add_serve_args, default_model, load_model, serve, upload_limit
    from mmreason.demos.trained_with import trained_with
    from mmreason.models import resolve_checkpoint
    from mmreason.prompts import PROMPTS

    parser = argparse.ArgumentParser(prog="mmreason demo grounded_chat", description=__doc__.split("\n\n")[0])
    add_model_args(parser)
    parser.add_argument("--coord-frame", choices=("pixel", "resized", "norm1000", "norm1"),
                        help="frame the model writes coordinates in (default: the saved recipe's tools', else "
                        "its family's)")
    parser.add_argument("--max-pixels", type=int, help="image pixel budget (default: the saved recipe's, else "
                        "the family's)")
    parser.add_argument("--max-new-tokens", type=int, help="tokens per turn (default: the saved recipe's "
                        "completion length, else 256)")
    parser.add_argument("--prompt", choices=list(PROMPTS), help="method prompt around the question (default: "
                        "the saved recipe's data.prompt, else none)")
    parser.add_argument("--question-first", action="store_true",
                        help="put the question before the picture (as the quickstart's model is trained)")
    parser.add_argument("--no-tools", action="store_true", help="offer the model no tools")
    add_serve_args(parser)
    args = parser.parse_args(argv)
    model, processor, family = load_model(args.model, device=args.device)
    saved = trained_with(resolve_checkpoint(args.model or default_model()))
    tools = saved.tools if saved is not None and saved.tools else ChatConfig.tools
    config = ChatConfig(
        max_new_tokens=args.max_new_tokens or (saved and saved.max_new_tokens) or ChatConfig.max_new_tokens,
        coord_frame=args.coord_frame or (saved and saved.coord_frame) or None,
        max_pixels=args.max_pixels or (saved and saved.max_pixels) or None, question_first=args.question_first,
        tools=() if args.no_tools else tools,
        prompt=args.prompt or (saved.prompt if saved else "none"),
        style=saved.style() if saved is not None and args.prompt in (None, saved.prompt) else None)
    note = (f"\n\nDefaults from the checkpoint's saved recipe ({saved.source.name}): prompt "
            f"**{saved.prompt}**, tools {', '.join(saved.tools) or 'none'}." if saved is not None else "")
    return serve(build_demo(model, processor, family, config=config, max_upload_bytes=upload_limit(args),
                            trained_note=note), args)
