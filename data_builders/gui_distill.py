"""InfiGUI-R1's stage 1, Spatial Reasoning Distillation (arXiv 2504.14239): a teacher writes GUI reasoning and the
next action from the screenshot and a compressed list of the screen's elements; only traces whose action
matches the ground truth are kept, as that stage's SFT data.

For each row of ``src`` (a canonical GUI dataset with a ``gui`` column holding ``action`` and ``elements``,
e.g. ``gui_pages`` agent steps or converted AndroidControl), the teacher sees the screenshot, the row's own
query (goal, step instruction, earlier actions) and `compress_elements` of its element list: one line per
element with text or a click target, top to bottom, with its box in screenshot pixels. The paper has a
32B VLM describe the accessibility tree and a reasoning model write the trace; here one OpenAI-compatible
endpoint (``base_url``, e.g. vLLM) or a local checkpoint (``hf_model``) does both, through the teacher
clients of `mmreason.data_builders.teacher`.

A reply is kept when it parses (`mmreason.traces`) with a non-empty ``<think>`` and an action after it, and
that action matches ``gui.action`` by `mmreason.rewards.gui.match_action` (InfiGUI-R1's AndroidControl
rules: type and every parameter). Each row gets up to ``k`` tries (rejection sampling, try t seeded by
(seed, index, t)); the kept target is the teacher's thought and action, re-rendered as ``<think>`` and a
``mobile_use`` (``computer_use`` on desktop pages) tool call, coordinates in original screenshot pixels
(``meta["coord_frame"]``). Rows without a verified trace are dropped; the card counts kept, rejected and
every rejection reason (``format``, ``no_action``, ``type``, ``params``) and teacher errors.

Not done here: the paper first selects "reasoning-bottleneck" steps (the base model fails from the goal
alone but succeeds given the sub-goal); pass such steps as ``src``.

>>> compress_elements([{"box": [0, 40, 50, 60], "role": "button", "text": "OK", "clickable": True},
...                    {"box": [0, 0, 90, 20], "role": "heading", "text": "Settings", "clickable": False},
...                    {"box": [5, 70, 9, 74], "role": "generic", "text": "", "clickable": False}])
'heading "Settings" [0, 0, 90, 20]\\nbutton "OK" [0, 40, 50, 60] clickable'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image

from mmreason import schema, traces
from mmreason.data_builders import teacher as teachers
from mmreason.data_builders.common import DEFAULT_CHUNK_SIZE, SampleContext, build_dataset, merge_options, \
    phase, source_rows
from mmreason.data_builders.converters_base import Skip
from mmreason.data_builders.converters_base import media as link_media
from mmreason.data_builders.gcot import text_turn
from mmreason.data_builders.sharding import sample_rng
from mmreason.geometry import ImageFrame
from mmreason.rewards.gui import match_action, predicted_action

NAME = "gui_distill"
DEFAULTS = {"src": None, "base_url": None, "model": "teacher", "api_key_env": None, "hf_model": None, "k": 3,
            "temperature": 0.7, "max_tokens": 1024, "max_elements": 60, "timeout": 120.0, "retries": 2,
            "media": "link", "on_missing": "error"}
ACTIONS = ("click, long_press (coordinate); swipe (coordinate, coordinate2); type (text); system_button (button: "
           "Back, Home, Menu or Enter); open (text: the app); wait; terminate (status: success or failure)")


def compress_elements(elements: Sequence[Mapping], limit: int = 60) -> str:
    """One line per element that has text or takes a click, top to bottom then left to right: role, text,
    box in screenshot pixels (integers), and whether it is clickable; at most `limit` lines."""
    kept = []
    for el in elements:
        if not isinstance(el, Mapping) or not isinstance(el.get("box"), (list, tuple)) or len(el["box"]) != 4:
            continue
        text = " ".join(str(el.get("text") or "").split())[:60]
        if not text and not el.get("clickable"):
            continue  # layout containers say nothing about where things are
        box = [int(round(float(v))) for v in el["box"]]
        line = f'{el.get("role") or "element"} "{text}" {box}' + (" clickable" if el.get("clickable") else "")
        kept.append(((box[1], box[0]), line))
    return "\n".join(line for _, line in sorted(kept, key=lambda kl: kl[0])[:limit])


def tool_name(gui: Mapping) -> str:
    return "mobile_use" if gui.get("platform", "mobile") == "mobile" else "computer_use"


def distill_prompt(query: str, gui: Mapping, size: tuple[int, int], limit: int) -> str:
    """What the teacher is asked: the screen's elements, the row's query, the reasoning and action format."""
    w, h = size
    return (f"The screenshot shows a {gui.get('platform') or 'mobile'} screen of {w}x{h} pixels. Its interface "
            f"elements, each with its box [x1, y1, x2, y2] in screen pixels:\n{compress_elements(gui['elements'], limit)}"
            f"\n\n{query.strip()}\n\nReason about the layout first: where the relevant elements are, what the "
            "current step must achieve, and which element or action achieves it, inside <think> </think>. Then "
            f"give exactly one next action as <tool_call>{{\"name\": \"{tool_name(gui)}\", \"arguments\": "
            "{\"action\": ..., ...}}</tool_call>, coordinates in pixels of this screen. "
            f"Actions and their arguments: {ACTIONS}.")


def verify(reply: str, row: Mapping, size: tuple[int, int]) -> tuple[str | None, str, dict | None]:
    """(None, thought, action) when the reply's action matches ``gui.action``, else (reason, "", None).
    Never raises on what the teacher wrote."""
    trace = traces.parse(reply)
    thought = (trace.think or "").strip()
    if not thought or any(b.tag == "think" and not b.closed for b in trace.blocks):
        return "format", "", None
    action = predicted_action(trace)
    if action is None:
        return "no_action", "", None
    gui = row["gui"]
    result = match_action(action, gui["action"], gui, "pixel", ImageFrame.identity(*size))
    if result is None or not result[0]:
        return "type", "", None
    return (None, thought, action) if result[1] else ("params", "", None)


def _linked(ctx: SampleContext, row: dict, root: Path) -> list[dict]:
    where = f"{ctx.options['src']} row {ctx.index}"
    return [{**m, "content": [{**p, p["type"]: link_media(ctx, root / p[p["type"]], where)}
                              if p["type"] in schema.MEDIA_TYPES else p for p in m["content"]]}
            for m in row["messages"]]


def make_sample(ctx: SampleContext) -> dict | None:
    opts = ctx.options
    root = schema.dataset_root(opts["src"])
    row = dict(source_rows(opts["src"])[ctx.index])
    gui = row.get("gui") or {}
    users = [m for m in row["messages"] if m["role"] == "user"]
    if not isinstance(gui.get("action"), Mapping) or not gui.get("elements") or len(users) != 1 \
            or not schema.images_of(row):
        ctx.count("skipped_not_a_gui_step")  # a step needs its GT action, its elements and one screenshot
        return None
    try:  # media first: a missing screenshot fails (or skips) before any teacher call
        messages = _linked(ctx, row, root)
    except Skip as s:
        ctx.count(s.reason)
        return None
    image = root / schema.images_of(row)[0]
    with Image.open(image) as im:
        size = im.size
    prompt = distill_prompt(schema.text_of(users[0]), gui, size, int(opts["max_elements"]))
    teacher = teachers.make_teacher({**teachers.DEFAULTS, **opts})
    kept, reasons = None, []
    for t in range(int(opts["k"])):
        seed = int(sample_rng(ctx.seed, ctx.index, t).integers(2**31 - 1))
        with phase("render"):
            try:
                reply = teacher(prompt, image, seed=seed, temperature=float(opts["temperature"]))
            except Exception as e:  # a failing teacher is a rejected try, never a crashed build
                ctx.count("teacher_errors")
                reasons.append(f"error: {type(e).__name__}")
                continue
        ctx.count("tries")
        reason, thought, action = verify(reply, row, size)
        if reason is None:
            kept = traces.render_block("think", thought) + "\n" + traces.render_tool_call(tool_name(gui), action)
            break
        ctx.count(f"rejected_{reason}")
        reasons.append(reason)
    ctx.count("kept" if kept is not None else "rejected")
    if kept is None:
        return None
    messages = [m for m in messages if m["role"] != "assistant" and m["role"] != "tool"] + \
        [text_turn("assistant", kept)]
    meta = {k: v for k, v in (row.get("meta") or {}).items() if k != "traces"}
    meta.update(trace="gui_distill", coord_frame="pixel", image_size=list(size), source_id=row["id"],
                teacher={"model": opts["hf_model"] or f"{opts['base_url']}#{opts['model']}",
                         "tries": len(reasons) + 1, "rejections": reasons})
    out = {k: v for k, v in row.items() if k in schema.FIELDS}
    return {**out, "id": ctx.id, "messages": messages, "meta": meta}


def build(out_dir: str | Path, *, n: int = 0, seed: int = 0, shard: tuple[int, int] = (0, 1), workers: int = 1,
          chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True, **options) -> Path:
    """Teacher GUI reasoning + action for each step of ``src``, kept when the action matches (n <= 0: all)."""
    opts = merge_options(NAME, DEFAULTS, options)
    if not opts["src"]:
        raise ValueError(f"{NAME}: give the GUI steps to distil with --set src=DIR (rows with a gui column)")
    if bool(opts["base_url"]) == bool(opts["hf_model"]):
        raise ValueError(f"{NAME}: set exactly one of base_url (OpenAI-compatible server) and hf_model")
    if int(opts["k"]) < 1 or int(opts["max_elements"]) < 1:
        raise ValueError(f"{NAME}: need k >= 1 and max_elements >= 1")
    opts["src"] = str(Path(opts["src"]).expanduser().absolute())
    if not Path(opts["src"]).exists():
        raise ValueError(f"{NAME}: src {opts['src']} does not exist (a canonical dataset folder or file)")
    if opts["hf_model"]:
        opts["hf_model"] = str(Path(opts["hf_model"]).expanduser().absolute())
    total = len(source_rows(opts["src"]))
    count = total if n <= 0 else min(int(n), total)
    return build_dataset(out_dir, name=NAME, make_sample=make_sample, n=count, seed=seed, shard=shard,
                         options=opts, workers=workers, chunk_size=chunk_size, progress=progress)
