"""GUI screenshots, their element lists, and the action space GUI agents emit.

- :class:`Screenshot` is a screen image's size, platform and elements (box, role, text, clickable),
  validated: an element box outside the screen is a ``MediaError`` naming the file and the element,
  unless the caller picks ``on_bad_box="clip"``.
- Actions are typed frozen records (:data:`ACTIONS`), the ``mobile_use`` space of Qwen2.5-VL that
  InfiGUI-R1 uses plus the desktop ones, with :func:`parse_action`, :func:`render_action` and the frame
  moves :func:`action_to_model` / :func:`action_from_model`. They live in
  ``mmreason.modalities.gui_actions`` and are re-exported here.
- :func:`infigui_messages` builds the InfiGUI-R1 prompt; :func:`match_action` is the AndroidControl
  evaluation matcher (type match, and type + parameters match).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from mmreason.errors import MediaError, SchemaError
from mmreason.families import Family, as_family
from mmreason.geometry import Box, ImageFrame, Point, clip_box, enlarge_box, point_distance, point_in_box
from mmreason.modalities.gui_actions import (  # the action space is part of this module's API
    ACTIONS,
    ALIASES,
    BUTTONS,
    DIRECTIONS,
    Action,
    ActionParse,
    Click,
    DoubleClick,
    Drag,
    Hotkey,
    Key,
    LongPress,
    MoveTo,
    Open,
    RightClick,
    Scroll,
    Swipe,
    SystemButton,
    Terminate,
    Type,
    Wait,
    action_from_model,
    action_to_dict,
    action_to_model,
    convert_action,
    parse_action,
    render_action,
)

__all__ = [
    "ACTIONS", "ALIASES", "Action", "ActionParse", "BUTTONS", "Click", "DIRECTIONS", "DoubleClick", "Drag",
    "ENLARGE", "Element", "Hotkey", "INFIGUI_MAX_PIXELS", "INFIGUI_STEP", "INFIGUI_SYSTEM", "Key",
    "LongPress", "MoveTo", "Open", "PLATFORMS", "RADIUS", "RightClick", "Screenshot", "Scroll", "Swipe",
    "SystemButton", "Terminate", "Type", "Wait", "action_from_model", "action_to_dict", "action_to_model",
    "convert_action", "infigui_messages", "load_screenshot", "match_action", "mobile_use_tool",
    "parse_action", "render_action", "swipe_direction", "tools_block",
]

PLATFORMS = ("mobile", "desktop", "web")
ENLARGE = 1.2  # AndroidControl matcher: candidate boxes grow 1.2x about their centre
RADIUS = 0.04  # ... or the click lies within 4% of the screen's longer side of the GT point
INFIGUI_MAX_PIXELS = 6400 * 28 * 28  # InfiGUI-R1's AndroidControl evaluation budget


# ------------------------------------------------------------------------------------- screenshots
@dataclass(frozen=True)
class Element:
    box: Box  # original screenshot pixels
    role: str = ""
    text: str = ""
    clickable: bool = True


@dataclass(frozen=True)
class Screenshot:
    """A screen image's size and platform, and its elements; `clipped` counts boxes clipped or dropped."""

    path: str | None
    width: int
    height: int
    platform: str
    elements: tuple[Element, ...] = ()
    clipped: int = 0

    def frame(
        self, family: str | Family, *, min_pixels: int | None = None, max_pixels: int | None = None
    ) -> ImageFrame:
        """The frame `family`'s processor gives this screenshot at the given pixel budget."""
        return ImageFrame.for_family(self.width, self.height, family, min_pixels=min_pixels,
                                     max_pixels=max_pixels)

    def elements_at(self, point: Sequence[float]) -> list[int]:
        """Indices of the elements containing `point`, smallest first (the most specific element)."""
        hits = [i for i, e in enumerate(self.elements) if point_in_box(point, e.box)]
        return sorted(hits, key=lambda i: (self.elements[i].box[2] - self.elements[i].box[0])
                      * (self.elements[i].box[3] - self.elements[i].box[1]))


def _element(raw: Any, i: int, where: str, sample_id: Any) -> Element:
    if isinstance(raw, Element):
        return raw
    if not isinstance(raw, Mapping) or "box" not in raw:
        raise SchemaError(f"element {i} needs a 'box'", row=sample_id, field="gui.elements")
    try:
        box = tuple(float(v) for v in raw["box"])
    except (TypeError, ValueError):
        box = ()
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[0] > box[2] or box[1] > box[3]:
        raise MediaError(where, f"element {i} has a malformed box {raw['box']!r} (want finite x1 <= x2, "
                         "y1 <= y2)", sample_id=sample_id)
    return Element(box, str(raw.get("role") or ""), str(raw.get("text") or ""),
                   bool(raw.get("clickable", True)))


def load_screenshot(
    part_value: Any, *, root: str | os.PathLike | None = None, sample_id: Any = None,
    gui: Mapping[str, Any] | None = None, on_bad_box: str = "raise", **options: Any,
) -> Screenshot:
    """A screenshot part (path or PIL image) and the row's ``gui`` facts -> a validated :class:`Screenshot`.

    The image is decoded (a truncated file fails here, not in the collator). A ``gui`` width/height that
    disagrees with the image is an error: element boxes would be in another resolution. An element box
    outside the screen raises, or with ``on_bad_box="clip"`` is clipped (dropped when nothing is left).
    """
    from mmreason.modalities.image import open_image, resolve_media_path

    if on_bad_box not in ("raise", "clip"):
        raise ValueError(f"on_bad_box must be 'raise' or 'clip', got {on_bad_box!r}")
    gui = dict(gui or {})
    value = part_value
    if isinstance(part_value, (str, os.PathLike)):
        value = resolve_media_path(part_value, root, sample_id=sample_id)
    image, path = open_image(value, sample_id=sample_id)
    where = path or "<in-memory screenshot>"
    width, height = image.size
    if gui.get("width") and gui.get("height") and (int(gui["width"]), int(gui["height"])) != (width, height):
        raise MediaError(where, f"gui says the screen is {gui['width']}x{gui['height']} but the image is "
                         f"{width}x{height}", sample_id=sample_id)
    platform = options.get("platform") or gui.get("platform") or "mobile"
    if platform not in PLATFORMS:
        raise SchemaError(f"platform {platform!r} is not one of {PLATFORMS}", row=sample_id,
                          field="gui.platform")
    elements, clipped = [], 0
    for i, raw in enumerate(gui.get("elements") or ()):
        el = _element(raw, i, where, sample_id)
        x1, y1, x2, y2 = el.box
        if x1 >= 0 and y1 >= 0 and x2 <= width and y2 <= height:
            elements.append(el)
            continue
        if on_bad_box == "raise":
            raise MediaError(where, f"element {i} ({el.role or 'element'} {el.text!r}) box {el.box} lies "
                             f"outside the {width}x{height} screenshot", sample_id=sample_id)
        clipped += 1
        box = clip_box(el.box, width, height)
        if box[2] > box[0] and box[3] > box[1]:
            elements.append(dataclasses.replace(el, box=box))
    return Screenshot(path, width, height, platform, tuple(elements), clipped)


# ------------------------------------------------------------------------------------------ prompt
# InfiGUI-R1's reasoning prompt (paper 3.2.1) and the sub-goal line its AndroidControl evaluation adds.
INFIGUI_SYSTEM = ("You FIRST think about the reasoning process as an internal monologue and then provide the "
                  "final answer.\nThe reasoning process MUST BE enclosed within <think> </think> tags.")
INFIGUI_STEP = ("\nDuring the reasoning process, identify and state the sub-goal of the current step by "
                "enclosing it within <step> </step> tags.")


def mobile_use_tool(width: int, height: int) -> dict:
    """The ``mobile_use`` function schema, with the screen resolution (the model's coordinate extent)."""
    actions = ("key", "click", "long_press", "swipe", "type", "system_button", "open", "wait", "terminate")
    return {"type": "function", "function": {
        "name": "mobile_use",
        "description": (f"Operate a touchscreen mobile device. The screen's resolution is {width}x{height}. "
                        "Tap elements at their centre; apps may need time to react, so wait and look again "
                        "if needed."),
        "parameters": {"type": "object", "required": ["action"], "properties": {
            "action": {"type": "string", "enum": list(actions), "description": (
                "key: send an adb keyevent (e.g. volume_up); click: tap at coordinate; long_press: press "
                "at coordinate for time seconds; swipe: drag from coordinate to coordinate2; type: enter "
                "text into the focused field; system_button: press button; open: launch the app named "
                "text; wait: wait time seconds; terminate: end the task with status.")},
            "coordinate": {"type": "array", "description": "[x, y] in pixels from the top-left corner."},
            "coordinate2": {"type": "array", "description": "[x, y] end point of a swipe."},
            "text": {"type": "string", "description": "For key, type and open."},
            "time": {"type": "number", "description": "Seconds, for long_press and wait."},
            "button": {"type": "string", "enum": list(BUTTONS), "description": "For system_button."},
            "status": {"type": "string", "enum": ["success", "failure"], "description": "For terminate."},
        }}}}


def tools_block(tools: Sequence[dict]) -> str:
    """The Qwen function-calling system text: schemas inside <tools>, calls answered in <tool_call>."""
    schemas = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return ("\n\n# Tools\n\nYou may call functions to complete the task. Their signatures are inside "
            f"<tools></tools> XML tags:\n<tools>\n{schemas}\n</tools>\n\nFor each call, return a JSON object "
            "with the function name and arguments inside <tool_call></tool_call> XML tags:\n<tool_call>\n"
            '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>')


def infigui_messages(
    goal: str, screenshot: str | Screenshot, *, family: str | Family = "qwen2_5_vl",
    size: tuple[int, int] | None = None, max_pixels: int = INFIGUI_MAX_PIXELS,
    step_instruction: str | None = None, history: Sequence[Action] = (), reasoning: bool = True,
) -> list[dict]:
    """Canonical messages for one InfiGUI-R1 agent step.

    The tool description states the resolution the family's coordinates span: the smart-resized size
    for resized-pixel families (Qwen2.5-VL), 1000x1000 for 0-1000 families. `history` holds earlier
    actions in original pixels; each is rendered in the model's frame as "Step n: {json}; ". `size` is
    the screenshot's (width, height), read from a :class:`Screenshot` when one is given.
    """
    fam = as_family(family)
    path = screenshot.path if isinstance(screenshot, Screenshot) else screenshot
    if isinstance(screenshot, Screenshot):
        width, height = screenshot.width, screenshot.height
    else:
        width, height = size or (0, 0)
    if width <= 0 or height <= 0:
        raise ValueError("infigui_messages needs the screenshot size: pass a Screenshot or size=(w, h)")
    frame = ImageFrame.for_family(width, height, fam, max_pixels=max_pixels)
    extent = {"resized": (frame.resized_width, frame.resized_height), "norm1000": (1000, 1000),
              "norm1": (1, 1)}.get(fam.box_frame, (width, height))
    system = (INFIGUI_SYSTEM + INFIGUI_STEP if reasoning else "You are a helpful assistant.") + tools_block(
        [mobile_use_tool(*extent)])
    steps = "".join(f"Step {n}: {render_action(action_to_model(a, fam, frame), tool=None)}; "
                    for n, a in enumerate(history, 1))
    text = f"The user query: {goal}\n"
    if step_instruction:
        text += f"Current step query: {step_instruction}\n"
    text += f"Task progress (You have done the following operation on the current device): {steps}"
    image = {"type": "screenshot", "screenshot": path, "max_pixels": max_pixels}
    return [{"role": "system", "content": [{"type": "text", "text": system}]},
            {"role": "user", "content": [{"type": "text", "text": text}, image]}]


# ----------------------------------------------------------------------------------------- matcher
def swipe_direction(action: Swipe | Scroll | Drag) -> str | None:
    """The direction the finger (or view) moves: the dominant axis of the motion, ties counted vertical."""
    if getattr(action, "direction", None):
        return action.direction
    a, b = getattr(action, "coordinate", None), getattr(action, "coordinate2", None)
    if a is None or b is None:
        return None
    dx, dy = b[0] - a[0], b[1] - a[1]
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def _hits(
    point: Point | None, candidates: Sequence[Box], target: Point | None, screen: tuple[float, float]
) -> bool:
    if point is None:
        return False
    if any(point_in_box(point, enlarge_box(b, ENLARGE)) for b in candidates):
        return True
    return target is not None and point_distance(point, target) <= RADIUS * max(screen)


def _text_match(a: str, b: str) -> bool:
    a, b = a.strip().lower(), b.strip().lower()
    return bool(a and b) and (a in b or b in a)


def match_action(
    pred: Action | None, gt: Action, *, candidates: Sequence[Box | Element] = (), screen: tuple[float, float],
) -> tuple[bool, bool]:
    """AndroidControl-style scoring: (type matches, type and parameters match).

    Both actions and `candidates` (GT element boxes) share one frame, e.g. original pixels; `screen` is
    (width, height) in it. A point matches if it lies in a candidate box enlarged 1.2x or within 4% of
    the longer side of the GT point; text (type, open) matches as a case-insensitive substring either
    way; swipes by direction; a ``click`` on the app's icon (first candidate) counts for ``open``.

    >>> match_action(Click((105, 200)), Click((100, 200)), screen=(1080, 2400))
    (True, True)
    """
    boxes = [c.box if isinstance(c, Element) else tuple(c) for c in candidates]
    if pred is None:
        return False, False
    if isinstance(gt, Open) and isinstance(pred, Click):
        if not boxes:
            return False, False
        icon = ((boxes[0][0] + boxes[0][2]) / 2, (boxes[0][1] + boxes[0][3]) / 2)
        return True, _hits(pred.coordinate, boxes, icon, screen)
    if type(pred) is not type(gt):
        return False, False
    if isinstance(gt, (Click, LongPress, DoubleClick, RightClick, MoveTo)):
        return True, _hits(pred.coordinate, boxes, gt.coordinate, screen)
    if isinstance(gt, Drag):
        return True, (_hits(pred.coordinate, boxes, gt.coordinate, screen)
                      and _hits(pred.coordinate2, (), gt.coordinate2, screen))
    if isinstance(gt, (Type, Open)):
        return True, _text_match(pred.text, gt.text)
    if isinstance(gt, (Swipe, Scroll)):
        return True, swipe_direction(pred) is not None and swipe_direction(pred) == swipe_direction(gt)
    if isinstance(gt, SystemButton):
        return True, pred.button.strip().lower() == gt.button.strip().lower()
    if isinstance(gt, Key):
        return True, pred.text.strip().lower() == gt.text.strip().lower()
    if isinstance(gt, Hotkey):
        return True, sorted(k.lower() for k in pred.keys) == sorted(k.lower() for k in gt.keys)
    if isinstance(gt, Terminate):
        return True, pred.status == gt.status
    return True, True  # Wait: the type is all there is to match
