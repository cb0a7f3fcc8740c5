"""GUI agent: a screenshot (uploaded, or a page from a loopback URL) and an instruction in; the action the model
predicts drawn on the screenshot (click point, swipe arrow, typed text) with the sub-goals its reasoning
states. In multi-step mode the page is a real headless Chromium (`data_builders/browser.py`): each predicted
action is applied to it and the next screenshot goes back to the model, as an agent runs.

The prompt is InfiGUI-R1's (`mmreason.modalities.gui.infigui_messages`: the reasoning system prompt, the
``mobile_use`` tool declared in the frame the family writes, the earlier steps as history), the action is
read by `mmreason.modalities.gui.parse_action` and moved to screenshot pixels by `action_from_model`, the
readers the GUI rewards use.

    mmreason demo gui_agent --port 7862

Only loopback pages (127.0.0.1, localhost) are opened: the demo browses nothing else.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlparse

from PIL import Image

from mmreason import traces
from mmreason.demos.drawing import PREDICTED, draw_action

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
VIEWPORT = (1024, 640)
MAX_PIXELS = 640 * 28 * 28  # a screenshot's budget on CPU; InfiGUI-R1's own is larger


@dataclass(frozen=True)
class AgentStep:
    """One step: the screenshot with the action drawn, the model's text, the action in screenshot pixels
    (None when the text holds no usable action), the sub-goals its reasoning states and what the parser
    flagged."""

    image: Image.Image
    trace: str
    action: dict | None
    subgoals: tuple[str, ...] = ()
    issues: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> dict:
        return {"action": self.action, "subgoals": list(self.subgoals), "issues": list(self.issues)}


def check_loopback(url: str) -> str:
    """`url` when it is an http(s) address on this machine; else a `ValueError` naming it."""
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or parsed.hostname not in LOOPBACK:
        raise ValueError(f"{url!r}: only pages on this machine are opened (http://127.0.0.1:PORT/...)")
    return url.strip()


def subgoals_of(text: str) -> tuple[str, ...]:
    """The sentences of the reasoning (`<think>`), which is where InfiGUI-R1 plans its sub-goals.

    >>> subgoals_of("<think>Open the menu. Then tap Settings.</think><tool_call>{}</tool_call>")
    ('Open the menu.', 'Then tap Settings.')
    """
    think = traces.parse(text).think or ""
    return tuple(s.strip() for s in re.split(r"(?<=[.;!?])\s+", think) if s.strip())


def agent_step(model: Any, processor: Any, family: str, screenshot: Image.Image, instruction: str, *,
               history: Sequence[Any] = (), max_new_tokens: int = 128, max_pixels: int = MAX_PIXELS,
               prefill: str = "") -> AgentStep:
    """Ask for the next action on `screenshot` toward `instruction`; model text never raises here."""
    from mmreason.demos.streaming import stream_rollout
    from mmreason.geometry import ImageFrame
    from mmreason.modalities.gui import action_from_model, infigui_messages, parse_action
    from mmreason.modalities.gui_actions import action_to_dict
    from mmreason.rollout import RolloutConfig

    if not instruction or not instruction.strip():
        raise ValueError("give the agent an instruction")
    screenshot = screenshot.convert("RGB")
    from mmreason.demos import app_temp_dir

    with tempfile.NamedTemporaryFile(suffix=".png", delete=False, dir=app_temp_dir()) as fh:
        screenshot.save(fh, format="PNG")
    size = screenshot.size
    row = {"id": "demo", "messages": infigui_messages(instruction.strip(), fh.name, family=family, size=size,
                                                      max_pixels=max_pixels, history=history)}
    config = RolloutConfig(max_turns=1, max_new_tokens=max_new_tokens, max_completion_tokens=max_new_tokens,
                           do_sample=False, seed=0)
    text = ""
    for step in stream_rollout(model, processor, family, row, config, prefill=prefill):
        text = step.trajectory.completion if step.trajectory is not None else step.text
    Path(fh.name).unlink(missing_ok=True)
    parsed = parse_action(text)
    if parsed.action is None:
        return AgentStep(screenshot, text, None, subgoals_of(text), parsed.issues or ("no action found",))
    frame = ImageFrame.for_family(size[0], size[1], family, max_pixels=max_pixels)
    action = action_from_model(parsed.action, family, frame)
    drawn = action_to_dict(action, integer=False)
    return AgentStep(draw_action(screenshot, drawn, PREDICTED), text, drawn, subgoals_of(text), parsed.issues)


def screenshot_of(page: Any) -> Image.Image:
    import io

    return Image.open(io.BytesIO(page.screenshot())).convert("RGB")


def apply_action(page: Any, action: dict) -> bool:
    """Do `action` (screenshot pixels = CSS pixels at scale 1) on the Playwright page; False for an action
    that ends the episode or that a page cannot take."""
    kind, point = action.get("action"), action.get("coordinate")
    if kind in ("click", "long_press", "double_click", "right_click") and point:
        button = "right" if kind == "right_click" else "left"
        page.mouse.click(point[0], point[1], button=button, click_count=2 if kind == "double_click" else 1,
                         delay=600 if kind == "long_press" else 0)
    elif kind == "type" and action.get("text"):
        page.keyboard.type(str(action["text"]))
    elif kind == "key" and action.get("text"):
        page.keyboard.press(str(action["text"]))
    elif kind in ("swipe", "scroll"):
        dx, dy = {"up": (0, 300), "down": (0, -300), "left": (300, 0), "right": (-300, 0)}.get(
            str(action.get("direction", "")).lower(), (0, 0))
        if kind == "scroll":  # scrolling names where the view moves; a swipe names where the finger moves
            dx, dy = -dx, -dy
        page.mouse.wheel(dx, dy)
    else:
        return False
    page.wait_for_timeout(300)  # let the page react before the next screenshot
    return True


def run_episode(model: Any, processor: Any, family: str, url: str, instruction: str, *, steps: int = 3,
                max_new_tokens: int = 128, prefill: str = "") -> Iterator[tuple[AgentStep, Image.Image | None]]:
    """Open `url` in headless Chromium and run up to `steps` agent steps, yielding each step and the
    screenshot after its action was applied (None when the action ended the episode). `prefill` starts
    only the first step's answer."""
    from mmreason.data_builders.browser import Session
    from mmreason.modalities.gui import parse_action

    url = check_loopback(url)
    session = Session()  # its own Chromium: Playwright's sync API stays on the thread that started it
    try:
        with session.page(*VIEWPORT) as page:
            page.goto(url)
            history: list = []
            for n in range(steps):
                step = agent_step(model, processor, family, screenshot_of(page), instruction, history=history,
                                  max_new_tokens=max_new_tokens, prefill=prefill if n == 0 else "")
                applied = step.action is not None and apply_action(page, step.action)
                yield step, screenshot_of(page) if applied else None
                if not applied:
                    return
                history.append(parse_action(step.action).action)
    finally:
        session.close()


def fetch_screenshot(url: str) -> Image.Image:
    """A screenshot of a loopback page, taken in headless Chromium."""
    from mmreason.data_builders.browser import Session

    url = check_loopback(url)
    session = Session()
    try:
        with session.page(*VIEWPORT) as page:
            page.goto(url)
            return screenshot_of(page)
    finally:
        session.close()


def build_demo(model: Any, processor: Any, family: str, *, title: str = "mmreason GUI agent",
               max_upload_bytes: int | None = None) -> Any:
    """The Gradio Blocks (not launched): screenshot or loopback URL + instruction -> the action drawn."""
    import gradio as gr

    from mmreason.demos import app_temp_dir, upload_limit
    from mmreason.demos.uploads import check_upload
    from mmreason.errors import MMReasonError

    app_temp_dir()  # before any component is made: Gradio stores (and later serves) files only there
    limit = max_upload_bytes or upload_limit()

    def respond(upload, url, instruction, prefill, steps, max_new_tokens):
        try:
            if url and url.strip() and int(steps) > 1:
                shots, notes = [], []
                for n, (step, after) in enumerate(run_episode(model, processor, family, url, instruction,
                                                              steps=int(steps), prefill=prefill or "",
                                                              max_new_tokens=int(max_new_tokens)), 1):
                    shots.append((step.image, f"step {n}: {step.action and step.action['action']}"))
                    if after is not None:
                        shots.append((after, f"after step {n}"))
                    notes.append(step.summary())
                    yield step.image, step.trace, json.dumps(notes, indent=1), list(shots)
                return
            if upload:
                with Image.open(check_upload(upload, "image", max_bytes=limit)) as im:
                    screenshot = im.convert("RGB")
            elif url and url.strip():
                screenshot = fetch_screenshot(url)
            else:
                raise gr.Error("upload a screenshot or give a loopback URL")
            step = agent_step(model, processor, family, screenshot, instruction, prefill=prefill or "",
                              max_new_tokens=int(max_new_tokens))
            yield step.image, step.trace, json.dumps(step.summary(), indent=1), []
        except (ValueError, RuntimeError, OSError, MMReasonError) as exc:  # bad input or a failed run
            raise gr.Error(str(exc)) from exc

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {title}\nModel family **{family}**, InfiGUI-R1's prompt and `mobile_use` actions; the "
                    "predicted action is drawn in magenta in screenshot pixels.")
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="screenshot (.png, .jpg, .webp)", file_types=[".png", ".jpg", ".jpeg",
                                 ".webp"], type="filepath", elem_id="screenshot")
                url = gr.Textbox(label="or a page on this machine (http://127.0.0.1:PORT/...)", elem_id="url")
                instruction = gr.Textbox(label="instruction", value="Click the Submit button")
                prefill = gr.Textbox(label="start the answer with (optional)", value="")
                with gr.Row():
                    steps = gr.Slider(1, 8, value=1, step=1, label="steps (more than 1: runs in Chromium)")
                    max_new = gr.Slider(16, 1024, value=128, step=16, label="tokens per step")
                run = gr.Button("Run", variant="primary")
            with gr.Column():
                shown = gr.Image(type="pil", format="png", label="predicted action", elem_id="action")
                trace = gr.Textbox(label="reasoning", lines=8, elem_id="trace")
                parsed = gr.Code(label="action and sub-goals", language="json", elem_id="parsed")
                episode = gr.Gallery(label="episode", columns=2, format="png", elem_id="episode")
        run.click(respond, [upload, url, instruction, prefill, steps, max_new], [shown, trace, parsed, episode],
                  api_name="run")
    return demo


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from mmreason.demos import add_model_args, add_serve_args, load_model, serve, upload_limit

    parser = argparse.ArgumentParser(prog="mmreason demo gui_agent", description=__doc__.split("\n\n")[0])
    add_model_args(parser)
    add_serve_args(parser)
    args = parser.parse_args(argv)
    model, processor, family = load_model(args.model, device=args.device)
    return serve(build_demo(model, processor, family, max_upload_bytes=upload_limit(args)), args)
