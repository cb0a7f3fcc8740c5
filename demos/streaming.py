"""Streaming a demo's answer: one rollout of `mmreason.rollout` (the collator, the family's chat template, the
tool loop) run in a worker thread, its tokens and the pictures tools return reported as they arrive. Every
model app streams through `stream_rollout`; `chat_row` builds the row it runs (media, question, method
prompt, tool declarations).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, replace
from typing import Any, Iterator, Sequence

END_TOKENS = ("<|im_end|>", "<|endoftext|>")  # cut from the streamed text: the chat template's turn ends

# ------------------------------------------------------------------------------------ streaming
class _Streamer:
    """A `generate` streamer: skips the prompt, sends the decoded text of each new token to `events`."""

    def __init__(self, tokenizer: Any, events: queue.Queue):
        self.tokenizer, self.events = tokenizer, events
        self.prompt_seen, self.ids, self.sent = False, [], ""

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.ids += [int(t) for t in value.reshape(-1).tolist()]
        text = self.tokenizer.decode(self.ids, skip_special_tokens=False)
        if not text.endswith("\ufffd") and len(text) > len(self.sent):  # wait for a whole UTF-8 character
            self.events.put(("text", text[len(self.sent):]))
            self.sent = text

    def end(self) -> None:
        self.events.put(("turn_end", None))


class _StreamingModel:
    """The model, with a fresh streamer handed to each `generate` call; everything else passes through."""

    def __new__(cls, model: Any, tokenizer: Any, events: queue.Queue):
        # the rollout reads the model class's `forward` signature (which cache keyword it takes): the
        # wrapper's class carries the model's own
        wrapper = type(cls.__name__, (cls,), {"forward": type(model).forward})
        return object.__new__(wrapper)

    def __init__(self, model: Any, tokenizer: Any, events: queue.Queue):
        self._model, self._tokenizer, self._events = model, tokenizer, events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self._model.generate(*args, streamer=_Streamer(self._tokenizer, self._events), **kwargs)


class StreamingBackend:
    """`rollout.HFBackend` on the streaming model; before each turn it reports the pictures tools returned."""

    def __init__(self, model: Any, processor: Any, family: str, events: queue.Queue, *,
                 prompt_pictures: int = 1, max_new_tokens: int | None = None):
        from mmreason.rollout import HFBackend

        self.hf = HFBackend(_StreamingModel(model, processor.tokenizer, events), processor, family)
        self.events, self.seen, self.max_new_tokens = events, prompt_pictures, max_new_tokens

    def generate(self, inputs: Sequence[Any], params: Any) -> list[list[int]]:
        pictures = list(inputs[0].images)
        for picture in pictures[self.seen:]:
            self.events.put(("picture", picture))
        self.seen = len(pictures)
        if self.max_new_tokens is not None and params.max_new_tokens > self.max_new_tokens:
            params = replace(params, max_new_tokens=self.max_new_tokens)  # the user's budget, generated only
        return self.hf.generate(inputs, params)


def chat_row(picture: Any, question: str, tools: Sequence[str], *, kind: str = "image",
             question_first: bool = False, style: Any = None) -> dict:
    """The rollout row: the picture (or video) and the question, wrapped in the method prompt `style`
    (`mmreason.prompts`) when given, with the tools' declarations as the system turn when tools are
    allowed (a style's own system turn takes them in place of ``{tools}``)."""
    from mmreason.prompts import apply_prompt
    from mmreason.tools import tools_prompt

    parts = [{"type": kind, kind: picture}, {"type": "text", "text": question}]
    if question_first:
        parts.reverse()
    row = {"id": "demo", "messages": [{"role": "user", "content": parts}]}
    declared = tools_prompt(list(tools)) if tools else ""
    if style is not None:
        row = apply_prompt(row, style, tools_text=declared)
    if declared and not any(m["role"] == "system" for m in row["messages"]):
        row["messages"].insert(0, {"role": "system", "content": [{"type": "text", "text": declared}]})
    return row


@dataclass(frozen=True)
class Progress:
    """A moment of a streamed rollout: the text so far (end-of-turn tokens removed), the pictures tools
    returned so far, and the finished trajectory once there is one."""

    text: str
    pictures: tuple[Any, ...] = ()
    trajectory: Any = None


def stream_rollout(model: Any, processor: Any, family: str, row: dict, config: Any, *, prefill: str = "",
                   tool_settings: Any = None, prompt_pictures: int | None = None,
                   media_options: Any = None, vision_extras: Any = None) -> Iterator[Progress]:
    """`mmreason.rollout.rollout` of one row in a worker thread, reported token by token; the last
    `Progress` carries the trajectory. ``config.max_new_tokens`` counts generated tokens only, never the
    `prefill`. A failure in the run is raised here, in the caller's thread.
    `prompt_pictures` is how many pictures the prompt holds (default: its image and screenshot parts), so
    that only those tools return are reported. `vision_extras` is the rollout's (inputs beside the pictures:
    the spatial model's 3D points)."""
    from mmreason.rollout import rollout

    if prompt_pictures is None:
        parts = [p for m in row["messages"] for p in m["content"]]
        prompt_pictures = sum(p.get("type") in ("image", "screenshot") for p in parts)
    events: queue.Queue = queue.Queue()
    backend = StreamingBackend(model, processor, family, events, prompt_pictures=prompt_pictures,
                               max_new_tokens=config.max_new_tokens)
    if prefill:
        # The rollout counts forced text as generated (right for training); here the user's token budget is
        # for the model's own tokens, so the prefill rides on top and the backend caps what is generated.
        n = len(processor.tokenizer(prefill, add_special_tokens=False).input_ids)
        config = replace(config, max_new_tokens=config.max_new_tokens + n,
                         max_completion_tokens=config.max_completion_tokens + n)

    def work() -> None:
        try:
            trajs = rollout(model, processor, [row], family, config=config, backend=backend,
                            media_options=media_options, tool_settings=tool_settings,
                            forced={0: prefill} if prefill else None, vision_extras=vision_extras)
            events.put(("done", trajs[0]))
        except Exception as exc:  # shown to the user; the interface must outlive a failed run
            events.put(("error", exc))

    threading.Thread(target=work, daemon=True).start()
    text, pictures = prefill, []  # forced text is part of the prompt the streamer skips
    while True:
        kind, value = events.get()
        if kind == "error":
            raise RuntimeError(f"generation failed: {type(value).__name__}: {value}") from value
        if kind == "done":
            yield Progress(text, tuple(pictures), value)
            return
        if kind == "text":
            text += value
        elif kind == "turn_end":
            text += "\n"
        elif kind == "picture":
            pictures.append(value)
            text += "[tool result: picture]\n"
        for token in END_TOKENS:
            text = text.replace(token, "")
        yield Progress(text, tuple(pictures))
