"""Video-CoM's text protocol for rollouts: where a turn ends, and how a manipulation line runs.

Video-CoM writes its manipulations as plain lines, not ``<tool_call>`` JSON:

    FIND_SEGMENT(query) = [segment ids]     -> the segment re-watched (``clip_segment``, 16 frames)
    FIND_FRAME(query) = [frame numbers]     -> the frame(s) as pictures (``seek_frame``)
    SPATIAL_ZOOM(query) = [x1, y1, x2, y2]  -> a crop of the frame shown last (``zoom_frame``)
    FINAL_ANSWER: <letter>. <text>          -> the episode ends

A turn ends after the first complete line that `STOP_LINES` finds (`line_stop`; `line_stopper` is the
same rule as a `transformers` stopping criterion), or at an end-of-turn token. `read_manipulation` reads the
turn's last manipulation into tool calls, `run_manipulation` runs them in the trajectory's `ToolEnv`; what
the model wrote never raises, it comes back as an ``Error: ...`` observation. `mmreason.rollout.loop` drives
these when ``RolloutConfig(call_syntax="video_com")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from mmreason import traces
from mmreason.tools import Observation, ToolEnv, run_tool_call

__all__ = ["FINAL_RE", "MAX_FRAMES_SHOWN", "STOP_LINES", "VIDEO_COM_PROMPTS", "VIDEO_COM_TOOLS", "ManipulationCall",
           "line_stop", "line_stopper", "read_manipulation", "run_manipulation"]

# A manipulation line (well formed or not: an unreadable one must end the turn too, to get its error back)
# and a final-answer line with something after the colon.
STOP_LINES = (r"\b(?:FIND_SEGMENT|FIND_FRAME|SPATIAL_ZOOM)\s*\(.*\)\s*=\s*\S", r"FINAL_ANSWER\s*:\s*\S")
VIDEO_COM_TOOLS = {"FIND_SEGMENT": "clip_segment", "FIND_FRAME": "seek_frame", "SPATIAL_ZOOM": "zoom_frame"}
# The release's follow-up texts (Video-CoM train/manipulation_model.py), so its checkpoints read the turns they
# were trained on; None: a round that wrote no manipulation.
VIDEO_COM_PROMPTS = {"FIND_SEGMENT": "Continue solving the question after rewatching the selected segment.",
                     "FIND_FRAME": "Continue solving the question with the selected frame.",
                     "SPATIAL_ZOOM": "Continue solving the question by focusing on the zoomed region.",
                     None: "Choose the final answer from the provided options."}
MAX_FRAMES_SHOWN = 4  # FIND_FRAME pictures per turn, as the video_clips builder's traces show them
_KEY_RE = re.compile(r"\b(FIND_SEGMENT|FIND_FRAME|SPATIAL_ZOOM)\s*\(")
FINAL_RE = re.compile(r"FINAL_ANSWER\s*:")
_SHAPES = {"FIND_SEGMENT": "segment numbers", "FIND_FRAME": "frame numbers", "SPATIAL_ZOOM": "x1, y1, x2, y2"}


@dataclass(frozen=True)
class ManipulationCall:
    """A Video-CoM manipulation line read for running: its `kind`, the tool it maps to (`name`), the query and
    values as written, the tool calls it makes (``{"name", "arguments"}`` each, run in order), its characters
    in the turn's text, and `error` (the ``Error:`` text) when the line cannot run as written."""

    kind: str
    name: str
    query: str
    values: tuple[float, ...]
    calls: tuple[Mapping[str, Any], ...]
    start: int
    end: int
    error: str | None = None


def read_manipulation(text: str) -> ManipulationCall | None:
    """The LAST manipulation written in a turn, as tool calls; None when the turn writes none. Never raises.

    Segment ids re-watch the span from the first to the last listed segment (one ``clip_segment``); frames
    show each listed frame (the first `MAX_FRAMES_SHOWN`) with ``seek_frame``, the last one staying current;
    a box zooms into the current frame with ``zoom_frame``. Frames are numbered from 0, segments from 1
    (`mmreason.tools.video`); boxes are read in the tool env's coordinate frame.

    >>> read_manipulation("I look closer. FIND_FRAME(the red cup) = [12, 40]\\n").calls
    ({'name': 'seek_frame', 'arguments': {'frame': 12}}, {'name': 'seek_frame', 'arguments': {'frame': 40}})
    >>> read_manipulation("FIND_SEGMENT(the pour) = [3, 2]").calls[0]["arguments"]
    {'segment': 2, 'last_segment': 3}
    >>> read_manipulation("SPATIAL_ZOOM(cup) = [1, 2, 3]").error
    'SPATIAL_ZOOM needs 4 numbers (x1, y1, x2, y2), got 3'
    """
    keys = list(_KEY_RE.finditer(text)) if isinstance(text, str) else []
    if not keys:
        return None
    key = keys[-1]
    kind, name = key.group(1), VIDEO_COM_TOOLS[key.group(1)]
    found = [m for m in traces.parse(text).manipulations if m.start == key.start()]
    if not found:
        line_end = text.find("\n", key.start())
        return ManipulationCall(kind, name, "", (), (), key.start(), len(text) if line_end < 0 else line_end,
                                f"could not read {kind}: expected a query in parentheses, then = [{_SHAPES[kind]}]")
    m = found[0]
    error, calls = None, ()
    values = list(dict.fromkeys(m.values))
    if kind == "SPATIAL_ZOOM":
        if len(m.values) != 4:
            error = f"SPATIAL_ZOOM needs 4 numbers (x1, y1, x2, y2), got {len(m.values)}"
        calls = ({"name": name, "arguments": {"bbox_2d": list(m.values)}},)
    elif not values:
        error = f"{kind} lists no {_SHAPES[kind]}"
    elif kind == "FIND_SEGMENT":
        ordered = sorted(values)
        arguments = {"segment": ordered[0]} | ({"last_segment": ordered[-1]} if len(ordered) > 1 else {})
        calls = ({"name": name, "arguments": arguments},)
    else:
        calls = tuple({"name": name, "arguments": {"frame": f}} for f in values[:MAX_FRAMES_SHOWN])
    return ManipulationCall(kind, name, m.query, tuple(m.values), () if error else calls, m.start, m.end, error)


def run_manipulation(call: ManipulationCall, env: ToolEnv, tools: Mapping[str, Any]) -> Observation:
    """Run a read manipulation in `env` with the allowed `tools` (`resolve_tools` output): the pictures and
    clips its calls return, under the release's follow-up text, or an ``Error: ...`` observation (then the
    frame in view is left as it was). Never raises on what the model wrote."""
    penalty = env.settings.invalid_penalty
    if call.error:
        return Observation.failure(call.error, penalty=penalty, manipulation=call.kind)
    if call.name not in tools:
        usable = ", ".join(k for k, v in VIDEO_COM_TOOLS.items() if v in tools) or "none"
        return Observation.failure(f"{call.kind} is not available here; available: {usable}", penalty=penalty,
                                   manipulation=call.kind)
    if call.kind == "SPATIAL_ZOOM" and env.videos and env.current_frame is None:
        return Observation.failure("SPATIAL_ZOOM zooms into the frame shown last; find one with FIND_FRAME first",
                                   penalty=penalty, manipulation=call.kind)
    before = env.current_frame
    results = []
    for c in call.calls:
        results.append(run_tool_call(c, env, tools=tools))
        if results[-1].error:
            env.current_frame = before
            return replace(results[-1], info={**results[-1].info, "manipulation": call.kind})
    return Observation(VIDEO_COM_PROMPTS[call.kind], images=tuple(im for r in results for im in r.images),
                       videos=tuple(v for r in results for v in r.videos),
                       info={**results[-1].info, "manipulation": call.kind, "calls": tuple(r.info for r in results)})


def line_stop(text: str, patterns: Sequence[str]) -> int | None:
    """End (after its newline) of the first complete line of `text` that a regex in `patterns` finds, or None.

    >>> line_stop("I look.\\nFIND_FRAME(cup) = [3]\\nmore", [r"FIND_FRAME\\(.*\\)\\s*="])
    30
    """
    start = 0
    for newline in re.finditer("\n", text):
        if any(re.search(p, text[start:newline.start()]) for p in patterns):
            return newline.end()
        start = newline.end()
    return None


def line_stopper(tokenizer: Any, patterns: Sequence[str], start: int) -> Any:
    """A `transformers.StoppingCriteria` ending each sequence (generated from column `start` on) once
    `line_stop` finds a line; the text is decoded only when the newest token holds a newline."""
    import torch
    from transformers import StoppingCriteria

    class LineStop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            if input_ids.shape[1] <= start:
                return done
            last = tokenizer.batch_decode([[t] for t in input_ids[:, -1].tolist()], skip_special_tokens=False)
            for b, piece in enumerate(last):
                if "\n" in piece:  # a line can only have ended here
                    text = tokenizer.decode(input_ids[b, start:].tolist(), skip_special_tokens=False,
                                            clean_up_tokenization_spaces=False)
                    done[b] = line_stop(text, patterns) is not None
            return done

    return LineStop()
