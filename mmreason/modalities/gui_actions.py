"""The action space GUI agents emit: typed frozen records, parsed from and rendered to model JSON.

The records (:data:`ACTIONS`) are the ``mobile_use`` space of Qwen2.5-VL that InfiGUI-R1 uses (click,
long_press, swipe, type, key, system_button, open, wait, terminate) plus the desktop ones
(double_click, right_click, hotkey, drag, moveTo, scroll); :data:`ALIASES` maps other spaces' names
onto them. :func:`parse_action` reads ``{"name": "mobile_use", "arguments": {...}}`` or the bare
arguments and never raises on model output; :func:`render_action` writes them. Records hold
original-screenshot pixels; :func:`action_to_model` / :func:`action_from_model` move every coordinate
into and out of a family's frame through ``mmreason.geometry``. `mmreason.modalities.gui` re-exports
everything here.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from mmreason.families import Family, as_family
from mmreason.geometry import ImageFrame, Point, convert_point

__all__ = [
    "ACTIONS", "ALIASES", "Action", "ActionParse", "BUTTONS", "Click", "DIRECTIONS", "DoubleClick", "Drag",
    "Hotkey", "Key", "LongPress", "MoveTo", "Open", "RightClick", "Scroll", "Swipe", "SystemButton",
    "Terminate", "Type", "Wait", "action_from_model", "action_to_dict", "action_to_model", "convert_action",
    "parse_action", "render_action",
]

BUTTONS = ("Back", "Home", "Menu", "Enter")
DIRECTIONS = ("up", "down", "left", "right")


# ----------------------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class Click:
    coordinate: Point
    action: ClassVar[str] = "click"


@dataclass(frozen=True)
class LongPress:
    coordinate: Point
    time: float | None = None
    action: ClassVar[str] = "long_press"


@dataclass(frozen=True)
class DoubleClick:
    coordinate: Point
    action: ClassVar[str] = "double_click"


@dataclass(frozen=True)
class RightClick:
    coordinate: Point
    action: ClassVar[str] = "right_click"


@dataclass(frozen=True)
class MoveTo:
    coordinate: Point
    action: ClassVar[str] = "moveTo"


@dataclass(frozen=True)
class Drag:
    coordinate: Point
    coordinate2: Point
    action: ClassVar[str] = "drag"


@dataclass(frozen=True)
class Swipe:
    """From `coordinate` to `coordinate2`; ground truth may give only the `direction` the finger moves."""

    coordinate: Point | None = None
    coordinate2: Point | None = None
    direction: str | None = None
    action: ClassVar[str] = "swipe"


@dataclass(frozen=True)
class Scroll:
    """Mouse-wheel scroll; `direction` is where the view moves, `pixels` > 0 scrolls up (computer_use)."""

    direction: str | None = None
    coordinate: Point | None = None
    pixels: float | None = None
    action: ClassVar[str] = "scroll"


@dataclass(frozen=True)
class Type:
    text: str
    action: ClassVar[str] = "type"


@dataclass(frozen=True)
class Key:
    text: str
    action: ClassVar[str] = "key"


@dataclass(frozen=True)
class Hotkey:
    keys: tuple[str, ...]
    action: ClassVar[str] = "hotkey"


@dataclass(frozen=True)
class SystemButton:
    button: str
    action: ClassVar[str] = "system_button"


@dataclass(frozen=True)
class Open:
    text: str
    action: ClassVar[str] = "open"


@dataclass(frozen=True)
class Wait:
    time: float | None = None
    action: ClassVar[str] = "wait"


@dataclass(frozen=True)
class Terminate:
    status: str = "success"
    action: ClassVar[str] = "terminate"


Action = (Click | LongPress | DoubleClick | RightClick | MoveTo | Drag | Swipe | Scroll | Type | Key | Hotkey
          | SystemButton | Open | Wait | Terminate)
ACTIONS: dict[str, type] = {
    "click": Click, "long_press": LongPress, "double_click": DoubleClick, "right_click": RightClick,
    "moveTo": MoveTo, "drag": Drag, "swipe": Swipe, "scroll": Scroll, "type": Type, "key": Key,
    "hotkey": Hotkey, "system_button": SystemButton, "open": Open, "wait": Wait, "terminate": Terminate,
}
# Names other action spaces use for the same records (Qwen computer_use, AndroidControl, UI-TARS).
ALIASES = {
    "open_app": "open", "left_click": "click", "tap": "click", "left_double": "double_click",
    "right_single": "right_click", "mouse_move": "moveTo", "move_to": "moveTo", "left_click_drag": "drag",
    "input_text": "type", "press_key": "key",
}
_COORD_FIELDS = ("coordinate", "coordinate2")


@dataclass(frozen=True)
class ActionParse:
    """What :func:`parse_action` found: the action (None if unusable) and every problem noticed."""

    action: Action | None
    issues: tuple[str, ...] = ()
    tool: str | None = None  # the function name, when the call form was used

    @property
    def ok(self) -> bool:
        return self.action is not None and not self.issues


def _coerce_point(value: Any) -> tuple[Point | None, str | None]:
    if isinstance(value, str):
        nums = re.findall(r"-?\d+(?:\.\d+)?", value)
        value = [float(n) for n in nums]
    if isinstance(value, Mapping) and {"x", "y"} <= set(value):
        value = [value["x"], value["y"]]
    try:
        nums = [float(v) for v in value]
    except (TypeError, ValueError):
        return None, f"coordinate {value!r} is not numbers"
    if not all(math.isfinite(v) for v in nums):
        return None, f"coordinate {value!r} is not finite"
    if len(nums) == 2:
        return (nums[0], nums[1]), None
    if len(nums) == 4:  # a box where a point was asked: its centre is the obvious intent
        return ((nums[0] + nums[2]) / 2, (nums[1] + nums[3]) / 2), "coordinate is a box; used its centre"
    return None, f"coordinate {value!r} needs 2 numbers"


def _extract(output: str) -> tuple[Any, str | None]:
    """The first JSON object in a model's text (inside <tool_call> when present)."""
    text = output
    m = re.search(r"<tool_call>(.*?)(?:</tool_call>|$)", text, re.S)
    if m:
        text = m.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        try:  # valid JSON that is not an object (a list, a number) gets its own complaint downstream
            return json.loads(text), None
        except (json.JSONDecodeError, RecursionError):
            return None, "no JSON object found"
    blob = text[start:end + 1]
    try:
        return json.loads(blob), None
    except (json.JSONDecodeError, RecursionError):
        pass
    try:  # Python-literal dicts (single quotes) are common in GUI-R1-style outputs
        return ast.literal_eval(blob), None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None, "malformed JSON"


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def parse_action(output: str | Mapping[str, Any]) -> ActionParse:
    """Model output (text or dict; call form or bare arguments) -> :class:`ActionParse`. Never raises.

    >>> parse_action('<tool_call>{"name": "mobile_use", "arguments": '
    ...              '{"action": "click", "coordinate": [5, 7]}}</tool_call>').action
    Click(coordinate=(5.0, 7.0))
    >>> parse_action('{"action": "fly"}').issues
    ("unknown action 'fly'",)
    """
    try:
        return _parse(output)
    except Exception as exc:  # model output must never crash a reward or a rollout
        return ActionParse(None, (f"unparseable action ({type(exc).__name__})",))


def _parse(output: Any) -> ActionParse:
    obj, issue = (output, None) if isinstance(output, Mapping) else _extract(str(output))
    if obj is None:
        return ActionParse(None, (issue,))
    if not isinstance(obj, Mapping):
        return ActionParse(None, ("action is not a JSON object",))
    tool = None
    if "arguments" in obj:
        tool, args = obj.get("name"), obj["arguments"]
        if isinstance(args, str):  # OpenAI-style calls carry arguments as a JSON string
            args, issue = _extract(args)
            if args is None:
                return ActionParse(None, (f"arguments: {issue}",), tool)
        if not isinstance(args, Mapping):
            return ActionParse(None, ("arguments is not an object",), tool)
        obj = args
    name = obj.get("action", obj.get("action_type"))
    name = ALIASES.get(str(name), str(name)) if name is not None else None
    if name not in ACTIONS:
        return ActionParse(None, ("missing action" if name is None else f"unknown action {name!r}",), tool)
    issues: list[str] = []
    values: dict[str, Any] = {}
    for key in _COORD_FIELDS:
        if obj.get(key) is not None:
            point, problem = _coerce_point(obj[key])
            values[key] = point
            if problem:
                issues.append(f"{key}: {problem}")
    text = obj.get("text", obj.get("app_name", obj.get("content")))
    cls = ACTIONS[name]
    keys = obj.get("keys")
    if cls is Hotkey or (cls is Key and isinstance(keys, (list, tuple)) and len(keys) > 1):
        keys = keys if keys is not None else (text if text is not None else obj.get("key"))
        keys = re.split(r"\s*\+\s*|\s+", keys.strip()) if isinstance(keys, str) else keys
        cls, values = Hotkey, {"keys": tuple(str(k) for k in keys or () if str(k))}
        if not values["keys"]:
            issues.append("hotkey has no keys")
    elif cls in (Key, Type, Open):
        if text is None and isinstance(keys, (list, tuple)) and keys:
            text = keys[0]
        values = {"text": "" if text is None else str(text)}
        if not values["text"].strip():
            issues.append(f"{name} has no text")
    elif cls is SystemButton:
        button = str(obj.get("button", text or "")).strip()
        canon = next((b for b in BUTTONS if b.lower() == button.lower()), None)
        if canon is None:
            issues.append(f"unknown button {button!r}")
        values = {"button": canon or button}
    elif cls in (Wait, LongPress) and obj.get("time") is not None:
        values["time"] = _number(obj["time"])
        if values["time"] is None:
            issues.append(f"time {obj['time']!r} is not a number")
    elif cls is Terminate:
        status = str(obj.get("status", "success")).strip().lower()
        if status not in ("success", "failure"):
            issues.append(f"unknown status {status!r}")
        values = {"status": status}
    elif cls in (Swipe, Scroll):
        direction = obj.get("direction")
        if direction is not None:
            direction = str(direction).strip().lower()
            if direction not in DIRECTIONS:
                issues.append(f"unknown direction {direction!r}")
                direction = None
        values["direction"] = direction
        if cls is Scroll and obj.get("pixels") is not None:
            values["pixels"] = pixels = _number(obj["pixels"])
            if direction is None and pixels:
                values["direction"] = "up" if pixels > 0 else "down"
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in values.items() if k in fields}
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [f for f in required if values.get(f) is None]
    ends = (values.get("coordinate"), values.get("coordinate2"))
    if cls is Swipe and values.get("direction") is None and None in ends:
        missing.append("coordinate2 or direction")
    if cls is Scroll and values.get("direction") is None:
        missing.append("direction or pixels")
    if missing:
        return ActionParse(None, (*issues, f"{name} needs {', '.join(missing)}"), tool)
    return ActionParse(cls(**values), tuple(issues), tool)


def action_to_dict(action: Action, *, integer: bool = True) -> dict:
    """The bare-arguments JSON object for `action` (coordinates rounded to integers when `integer`)."""
    out: dict[str, Any] = {"action": action.action}
    for f in dataclasses.fields(action):
        value = getattr(action, f.name)
        if value is None:
            continue
        if f.name in _COORD_FIELDS:
            value = [round(v) for v in value] if integer else [float(v) for v in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def render_action(action: Action, *, tool: str | None = "mobile_use", integer: bool = True) -> str:
    """JSON text of `action`: the call ``{"name": tool, "arguments": {...}}``, or bare when `tool` is None.

    >>> render_action(Click((12.4, 30.6)))
    '{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [12, 31]}}'
    """
    args = action_to_dict(action, integer=integer)
    return json.dumps(args if tool is None else {"name": tool, "arguments": args}, ensure_ascii=False)


def convert_action(action: Action, src: str, dst: str, frame: ImageFrame) -> Action:
    """Move every coordinate of `action` from frame `src` to `dst` (see ``geometry.FRAMES``)."""
    changes = {k: convert_point(getattr(action, k), src, dst, frame)
               for k in _COORD_FIELDS if getattr(action, k, None) is not None}
    return dataclasses.replace(action, **changes) if changes else action


def action_to_model(action: Action, family: str | Family, frame: ImageFrame) -> Action:
    """Original-pixel action -> the coordinates `family` is trained to emit."""
    return convert_action(action, "pixel", as_family(family).box_frame, frame)


def action_from_model(action: Action, family: str | Family, frame: ImageFrame) -> Action:
    """An action emitted by `family` -> original screenshot pixels."""
    return convert_action(action, as_family(family).box_frame, "pixel", frame)
