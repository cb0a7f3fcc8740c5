"""GUI sources: ScreenSpot / ScreenSpot-Pro grounding JSON and AndroidControl episodes.

- ``screenspot``: a JSON list of ``{img_filename, bbox, instruction, data_type | ui_type, ...}``, one record
  each. ScreenSpot (v1/v2) boxes are [x, y, width, height]; ScreenSpot-Pro's (records with ``img_size``)
  are [x1, y1, x2, y2]; ``bbox_format=auto|xywh|xyxy`` decides. The platform comes from ``platform``
  (Pro: macos/windows/linux -> desktop) or ``data_source`` (ios/android -> mobile, windows/macos ->
  desktop, else web), unless the ``platform`` option forces one.
- ``androidcontrol``: a JSON list (or JSON lines) of episodes ``{episode_id, goal, screenshots |
  screenshot_paths, actions, step_instructions, [screenshot_widths, screenshot_heights],
  [accessibility_elements | elements]}`` (an ``{"episode": {...}}`` wrapper is unwrapped); one record per
  step, screenshot i being the screen before action i. Actions (dicts or JSON strings, AndroidControl's
  ``action_type``) map onto Qwen's ``mobile_use`` space: click, long_press, input_text -> type, open_app ->
  open, navigate_back/home -> system_button, wait, scroll -> swipe. AndroidControl's ``scroll down`` moves
  the content to show what is below, which a finger does by swiping up; ``scroll=reverse`` (default)
  records that finger direction, ``scroll=same`` keeps the word as written.

Rows are InfiGUI-R1 agent prompts (system with the action function, goal, optional step instruction with
``level=low|high|mixed``, history as "Step n: {json}"); ``with_target=true`` adds the action as the
assistant turn. The click's GT box is the smallest element containing the point.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmreason.data_builders.common import SampleContext
from mmreason.data_builders.converters_base import (
    Format, image_part, need, numbers, read_json, read_json_list,
)
from mmreason.data_builders.gui_pages import agent_query, agent_system, agent_target
from mmreason.errors import SchemaError
from mmreason.geometry import box_area, point_in_box
from mmreason.modalities.gui import Action, Click, LongPress, Open, Swipe, SystemButton, Type, Wait, \
    action_to_dict

_PLATFORMS = {"ios": "mobile", "android": "mobile", "windows": "desktop", "macos": "desktop",
              "linux": "desktop"}
_OPPOSITE = {"up": "down", "down": "up", "left": "right", "right": "left"}


def _agent_messages(platform: str, w: int, h: int, query: str, screen: dict, target: Action | None) -> list:
    """System (action function), user (query text + screenshot) and, given a target, the assistant turn."""
    out = [{"role": "system", "content": [{"type": "text", "text": agent_system(platform, w, h)}]},
           {"role": "user", "content": [{"type": "text", "text": query}, screen]}]
    if target is not None:
        out.append({"role": "assistant", "content": [{"type": "text",
                                                      "text": agent_target(platform, None, target)}]})
    return out


# ------------------------------------------------------------------------------------------ ScreenSpot
def read_screenspot(src: Path, opts: dict) -> list:
    return read_json_list(src, "a JSON list of ScreenSpot records")


def row_screenspot(rec: dict, ctx: SampleContext, opts: dict) -> dict:
    src = Path(opts["src"])
    where = f"{src} record {ctx.index}"
    part, (w, h) = image_part(ctx, opts, src, need(rec, "img_filename", where), where, kind="screenshot")
    raw = numbers(need(rec, "bbox", where), 4, where, "bbox")
    fmt = opts["bbox_format"] if opts["bbox_format"] != "auto" else ("xyxy" if "img_size" in rec else "xywh")
    box = raw if fmt == "xyxy" else [raw[0], raw[1], raw[0] + raw[2], raw[1] + raw[3]]
    if not (0 <= box[0] < box[2] <= w + 1 and 0 <= box[1] < box[3] <= h + 1):
        raise SchemaError(f"bbox {raw} read as {fmt} gives {box}, not inside the {w}x{h} screenshot "
                          f"(try bbox_format={'xyxy' if fmt == 'xywh' else 'xywh'})", row=where, field="bbox")
    box = [box[0], box[1], min(box[2], w), min(box[3], h)]
    source = str(rec.get("platform") or rec.get("data_source") or "").lower()
    platform = opts["platform"] or _PLATFORMS.get(source, "web")
    instruction = str(need(rec, "instruction", where))
    point = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    kind = str(rec.get("ui_type") or rec.get("data_type") or "")
    messages = _agent_messages(platform, w, h, agent_query(instruction, [], None), part,
                               Click(point) if opts["with_target"] else None)
    extra = {k: v for k, v in rec.items() if k not in ("bbox", "instruction", "img_filename")}
    return {"messages": messages, "answer": json.dumps([round(point[0]), round(point[1])]),
            "task": "gui_grounding",
            "source": "screenspot_pro" if "img_size" in rec else "screenspot",
            "boxes": [{"label": instruction, "box": box, "image": 0}],
            "points": [{"label": instruction, "point": list(point), "image": 0}],
            "gui": {"platform": platform, "width": w, "height": h, "instruction": instruction,
                    "elements": [{"box": box, "role": kind or None, "text": None, "clickable": True}],
                    "action": action_to_dict(Click(point), integer=False), "goal": None, "history": []},
            "meta": {**extra, "bbox_format": fmt, "coord_frame": "pixel", "image_size": [w, h]}}


# -------------------------------------------------------------------------------------- AndroidControl
def _episodes(data) -> list[dict]:
    if isinstance(data, dict):
        data = data.get("episodes", [data])
    return [e["episode"] if isinstance(e, dict) and isinstance(e.get("episode"), dict) else e for e in data]


def read_androidcontrol(src: Path, opts: dict) -> list:
    out = []
    for e, ep in enumerate(_episodes(read_json(src))):
        where = f"{src} episode {ep.get('episode_id', e) if isinstance(ep, dict) else e}"
        actions = need(ep, "actions", where)
        shots = ep.get("screenshots") or ep.get("screenshot_paths")
        if not shots:
            raise SchemaError("missing 'screenshots' (or 'screenshot_paths')", row=where, field="screenshots")
        if len(shots) < len(actions):
            raise SchemaError(f"{len(actions)} actions but {len(shots)} screenshots (one must precede each "
                              "action)", row=where, field="screenshots")
        out += [(ep, i) for i in range(len(actions))]
    return out


def android_action(raw, where: str, scroll: str = "reverse") -> Action:
    """An AndroidControl action (dict or JSON string) as a ``mobile_use`` action record.

    >>> android_action({"action_type": "scroll", "direction": "down"}, "e")
    Swipe(coordinate=None, coordinate2=None, direction='up')
    """
    a = json.loads(raw) if isinstance(raw, str) else raw
    kind = need(a, "action_type", where)
    if kind in ("click", "long_press"):
        point = (float(need(a, "x", where)), float(need(a, "y", where)))
        return Click(point) if kind == "click" else LongPress(point)
    if kind in ("input_text", "type"):
        return Type(str(need(a, "text", where)))
    if kind == "open_app":
        return Open(str(need(a, "app_name", where)))
    if kind in ("navigate_back", "navigate_home"):
        return SystemButton("Back" if kind == "navigate_back" else "Home")
    if kind == "wait":
        return Wait()
    if kind == "scroll":
        d = str(need(a, "direction", where)).lower()
        if d not in _OPPOSITE:
            raise SchemaError(f"unknown scroll direction {d!r}", row=where, field="direction")
        return Swipe(direction=_OPPOSITE[d] if scroll == "reverse" else d)
    raise SchemaError(f"unknown AndroidControl action_type {kind!r}", row=where, field="action_type")


def _element(raw: dict, w: int, h: int) -> dict | None:
    b = raw.get("bbox_pixels") or raw.get("bbox") or raw.get("bounds")
    if isinstance(b, dict):
        b = [b.get("x_min"), b.get("y_min"), b.get("x_max"), b.get("y_max")]
    try:
        x1, y1, x2, y2 = (float(v) for v in b)
    except (TypeError, ValueError):
        return None
    x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h))
    if not (x1 < x2 and y1 < y2):  # off-screen nodes are common in accessibility trees
        return None
    role = str(raw.get("class_name") or raw.get("role") or "").rsplit(".", 1)[-1] or None
    text = raw.get("text") or raw.get("content_description") or raw.get("resource_name") or None
    return {"box": [x1, y1, x2, y2], "role": role, "text": None if text is None else str(text),
            "clickable": bool(raw.get("is_clickable", raw.get("clickable", False)))}


def row_androidcontrol(rec, ctx: SampleContext, opts: dict) -> dict:
    src = Path(opts["src"])
    ep, i = rec
    where = f"{src} episode {ep.get('episode_id', '?')} step {i}"
    shots = ep.get("screenshots") or ep.get("screenshot_paths")
    part, (w, h) = image_part(ctx, opts, src, shots[i], where, kind="screenshot")
    widths, heights = ep.get("screenshot_widths"), ep.get("screenshot_heights")
    if widths and heights and (int(widths[i]), int(heights[i])) != (w, h):
        raise SchemaError(f"declared size {widths[i]}x{heights[i]} differs from the screenshot's {w}x{h}",
                          row=where)
    actions = [android_action(a, f"{where} (action {k})", opts["scroll"])
               for k, a in enumerate(ep["actions"][:i + 1])]
    action, history = actions[-1], actions[:-1]
    steps = ep.get("step_instructions") or []
    instruction = steps[i] if i < len(steps) else None
    level = opts["level"] if opts["level"] != "mixed" else ("low" if ctx.rng.random() < 0.5 else "high")
    trees = ep.get("accessibility_elements") or ep.get("elements") or []
    raw_elements = trees[i] if i < len(trees) else []
    elements = [el for el in (_element(r, w, h) for r in raw_elements) if el is not None]
    goal = str(need(ep, "goal", where))
    boxes = []
    if isinstance(action, (Click, LongPress)):
        x, y = action.coordinate
        hits = [el for el in elements if point_in_box((x, y), el["box"])]
        hits.sort(key=lambda el: (not el["clickable"], box_area(el["box"])))  # clickable, then the smallest
        boxes = [{"label": instruction, "box": hits[0]["box"], "image": 0}] if hits else []
    query = agent_query(goal, history, instruction if level == "low" else None)
    messages = _agent_messages("mobile", w, h, query, part, action if opts["with_target"] else None)
    return {"messages": messages, "answer": json.dumps(action_to_dict(action)), "task": "gui_action",
            "source": "androidcontrol", "boxes": boxes,
            "gui": {"platform": "mobile", "width": w, "height": h, "elements": elements,
                    "action": action_to_dict(action, integer=False), "goal": goal, "instruction": instruction,
                    "history": [action_to_dict(a, integer=False) for a in history]},
            "meta": {"episode_id": ep.get("episode_id"), "step": i, "level": level, "coord_frame": "pixel",
                     "image_size": [w, h], "source_action": ep["actions"][i]}}


FORMATS = {
    "screenspot": Format(read_screenspot, row_screenspot,
                         {"images": None, "bbox_format": "auto", "platform": None, "with_target": False},
                         "a ScreenSpot / ScreenSpot-Pro JSON list; images= the screenshot folder"),
    "androidcontrol": Format(read_androidcontrol, row_androidcontrol,
                             {"images": None, "level": "mixed", "scroll": "reverse", "with_target": False},
                             "AndroidControl episodes as JSON / JSON lines; images= the screenshot folder"),
}
