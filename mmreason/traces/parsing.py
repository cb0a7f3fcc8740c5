"""Reasoning traces: parse model output into blocks, tool calls, boxes, points and actions.

One parser serves rewards, rollouts, data builders and demos. `parse` never raises: for any string it
returns a `Trace` that lists what was found, in order of appearance, and what was malformed
(`Trace.issues`). The formats it reads, as each method's released code writes them:

- tags ``<think> <rethink> <answer> <step> <action> <tool_call> <tool_response>`` (GRIT, DeepEyes,
  InfiGUI-R1, UI-Ins, TON). ``</answer>`` and ``</tool_call>`` are stop strings in the released recipes,
  so a block of those two left open at the end is normal: ``closed=False``, not an issue;
- ``<tool_call>{"name": .., "arguments": {..}}</tool_call>``, also without the wrapper (InfiGUI-R1);
- 2D boxes: Qwen JSON ``"bbox_2d": [x1, y1, x2, y2]`` (fmt ``"bbox_2d"``), GRIT's four comma-separated
  integers anywhere (``"ints"``), Qwen2-VL ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` (``"box_tokens"``);
- 3D boxes: GS-Reasoner ``name count <bbox>(x1, y1, z1, x2, y2, z2)</bbox><bbox>(..)</bbox>``;
- points: ``"point_2d"``, ``"coordinate"``, ``"point"``... keys, and bare ``[x, y]``;
- GUI actions: arguments of ``mobile_use``/``computer_use``/``grounding`` calls, ``<action>{json}</action>``
  (TON), action objects in ``<answer>`` (GUI-R1 style) or bare in the text;
- Video-CoM ``FIND_SEGMENT(q) = [..]``, ``FIND_FRAME(q) = [..]``, ``SPATIAL_ZOOM(q) = [..]``,
  ``FINAL_ANSWER: ..``, and ``\\boxed{..}``.

Coordinates are reported as written; moving them between frames is `mmreason.geometry`'s job.
The box/point/3D/Video-CoM scanners live in `mmreason.traces.scan`, the renderers (the inverse) in
`mmreason.traces.render`.
"""

from __future__ import annotations

import ast
import bisect
import json
import operator
import re
from dataclasses import dataclass
from typing import Any

from mmreason.traces.scan import Box3DMention, BoxMention, Manipulation, PointMention, Spans, scan_mentions
from mmreason.traces.tags import BLOCK_TAGS, INLINE_TAGS

__all__ = [
    "Block", "ToolCall", "Trace", "extract_answer", "extract_boxed", "find_tool_calls", "parse",
    "parse_blocks", "tag_counts",
]

NESTED_TAGS = frozenset({"step"})  # InfiGUI-R1 writes <step> inside <think>; the rest are turn-level
STOP_TAGS = frozenset({"answer", "tool_call"})
GUI_TOOLS = frozenset({"mobile_use", "computer_use", "grounding"})
MAX_ISSUES = 100
MAX_JSON_FAILURES = 64  # bare-JSON scan gives up after this many fragments, so junk cannot go quadratic

TAG_RE = re.compile(r"<(/?)(" + "|".join(BLOCK_TAGS + INLINE_TAGS) + r")>")
_BLOCK_TAG_RE = re.compile(r"<(/?)(" + "|".join(BLOCK_TAGS) + r")>")
_ZERO_COUNTS = {f"<{s}{t}>": 0 for t in BLOCK_TAGS + INLINE_TAGS for s in ("", "/")}
_START = operator.attrgetter("start")
_TURN_END_RE = re.compile(r"<\|(?:im_end|im_start|endoftext)\|>")
_FINAL_RE = re.compile(r"FINAL_ANSWER\s*:[ \t]*([^\n]*)")
_BOXED_RE = re.compile(r"\\boxed\s*\{")
_BRACE_RE = re.compile(r"\\[{}]|[{}]")
_OBJ_START_RE = re.compile(r"""\{\s*["']""")
_BRACKET_RE = re.compile(r"[\[\]{}()]")
_CURLY_RE = re.compile(r"[{}]")
_NAME_RE = re.compile(r'"name"\s*:\s*"([^"\\\n]{1,200})"')
_DECODER = json.JSONDecoder()


# --------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Block:
    """A tagged span; `start`/`end` cover the tags too, `text` is the content between them."""

    tag: str
    text: str
    start: int
    end: int
    closed: bool


@dataclass(frozen=True)
class ToolCall:
    name: str | None
    arguments: dict
    raw: str
    start: int
    end: int
    error: str | None = None


@dataclass(frozen=True)
class Trace:
    text: str
    blocks: tuple[Block, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    boxes: tuple[BoxMention, ...] = ()
    boxes_3d: tuple[Box3DMention, ...] = ()
    points: tuple[PointMention, ...] = ()
    actions: tuple[dict, ...] = ()
    manipulations: tuple[Manipulation, ...] = ()
    issues: tuple[str, ...] = ()

    def blocks_of(self, tag: str) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if b.tag == tag)

    def _content(self, tag: str, last: bool = False) -> str | None:
        found = self.blocks_of(tag)
        return (found[-1] if last else found[0]).text.strip() if found else None

    @property
    def think(self) -> str | None:
        """Stripped content of the first <think> block."""
        return self._content("think")

    @property
    def rethink(self) -> str | None:
        return self._content("rethink")

    @property
    def answer(self) -> str | None:
        """Stripped content of the last <answer> block (an open one runs to the end of the turn)."""
        return self._content("answer", last=True)

    def tags(self) -> list[str]:
        """Every known tag in order, e.g. ['<think>', '</think>', '<answer>']."""
        return [m.group(0) for m in TAG_RE.finditer(self.text)]


# --------------------------------------------------------------------------------------- helpers
def _max_depth(s: str) -> int:
    depth = deepest = 0
    for ch in _BRACKET_RE.findall(s):
        depth += 1 if ch in "[{(" else -1
        deepest = max(deepest, depth)
    return deepest


def _literal(s: str) -> Any:
    """Python-literal fallback ({'action': 'click'}); guarded since ast can blow the C stack."""
    if len(s) > 20_000 or _max_depth(s) > 50:
        return None
    try:
        return ast.literal_eval(s)
    except Exception:  # literal_eval raises ValueError, SyntaxError, TypeError, MemoryError, ...
        return None


def _unfence(s: str) -> str:
    """Drop a Markdown code fence around JSON (string ops: a regex here backtracks on long blanks)."""
    body = s.strip()
    if body.startswith("```"):
        body = body[3:].lstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return body.removesuffix("```")


def _load_json(s: str) -> tuple[Any, str | None]:
    """First JSON value in `s` -> (value, problem). Code fences and prose around it are fine.

    A problem with a value means the text was not clean JSON but was read anyway: extra text after
    it, single quotes (a Python literal), or up to three missing closing braces. Without a value it
    is the reason nothing could be read.
    """
    body = _unfence(s)
    starts = [i for i in (body.find("{"), body.find("[")) if i != -1]
    if not starts:
        return None, "no JSON object"
    i = min(starts)
    try:
        value, end = _DECODER.raw_decode(body, i)
        return value, ("extra text after the JSON" if body[end:].strip() else None)
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError as e:
        error = f"invalid JSON ({e.args[0] if e.args else e})"
    end = max(body.rfind("}"), body.rfind("]"))
    value = _literal(body[i : end + 1]) if end > i else None
    if isinstance(value, (dict, list)):
        return value, "not JSON, read as a Python literal"
    missing = body.count("{") - body.count("}")
    if 0 < missing <= 3:  # the commonest slip: a dropped final brace
        try:
            return json.loads(body[i:] + "}" * missing), f"{missing} missing '}}' added"
        except (ValueError, RecursionError):
            pass
    return None, error


def _as_call(value: Any) -> tuple[str | None, dict, str | None]:
    if not isinstance(value, dict):
        return None, {}, "tool call is not a JSON object"
    name = value.get("name")
    args = value.get("arguments", value.get("parameters", {}))
    if isinstance(args, str):  # OpenAI style: arguments serialised as a string
        try:
            args = json.loads(args)
        except (ValueError, RecursionError):
            pass
    if not isinstance(name, str):
        return None, args if isinstance(args, dict) else {}, "tool call has no string 'name'"
    if not isinstance(args, dict):
        return name, {}, "tool call 'arguments' is not an object"
    return name, args, None


def _is_action(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("action", value.get("action_type")), str)


def _dicts(value: Any) -> list:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return [value] if isinstance(value, dict) else []


def _cap(issues: list[tuple[int, str]]) -> tuple[str, ...]:
    """Messages in order of position, at most MAX_ISSUES of them (junk input can have thousands)."""
    ordered = [msg for _, msg in sorted(issues, key=lambda i: i[0])]
    if len(ordered) <= MAX_ISSUES:
        return tuple(ordered)
    return (*ordered[:MAX_ISSUES], f"... and {len(ordered) - MAX_ISSUES} more issues")


# -------------------------------------------------------------------------------------- scanners
def _scan_blocks(text: str, issues: list) -> list[Block]:
    """Pair tags with a stack. Same-tag nesting is impossible, so reopening a tag ends the open one.

    An unclosed block ends where its parent closes, at the end of the chat turn, or at the end of the
    text, and never past its first turn-level child: ``<think>a<answer>7`` gives think 'a', answer '7'.
    """
    # Only the block tags matter here (inline ones never open, close or count as the first tag), and
    # only text with a special token can hold a turn end: both keep the common case to one regex pass.
    turn_ends = [m.start() for m in _TURN_END_RE.finditer(text)] if "<|" in text else []
    stack: list[list] = []  # [tag, start, content_start, first turn-level descendant]
    open_tags: set[str] = set()  # at most one block per tag is open (reopening ends it)
    found: list[Block] = []

    def pop(at: int, close_end: int | None, at_text_end: bool = False) -> None:
        tag, start, cstart, first = stack.pop()
        open_tags.discard(tag)
        if close_end is not None:
            found.append(Block(tag, text[cstart:at], start, close_end, True))
        else:
            end = at if first is None or first > at else first
            if turn_ends:
                k = bisect.bisect_left(turn_ends, cstart)
                if k < len(turn_ends) and turn_ends[k] < end:
                    end = turn_ends[k]
            found.append(Block(tag, text[cstart:end], start, end, False))
            if not (at_text_end and tag in STOP_TAGS):
                issues.append((start, f"unclosed <{tag}> at {start}"))
        if stack:
            child = first if tag in NESTED_TAGS else start
            if child is not None and (stack[-1][3] is None or child < stack[-1][3]):
                stack[-1][3] = child

    seen = False
    for m in _BLOCK_TAG_RE.finditer(text):
        closing, tag = m.groups()
        if not closing:
            while tag in open_tags:
                pop(m.start(), None)
            stack.append([tag, m.start(), m.end(), None])
            open_tags.add(tag)
        elif tag in open_tags:
            while stack[-1][0] != tag:
                pop(m.start(), None)
            pop(m.start(), m.end())
        elif not seen:  # the prompt opened the block (Qwen3-style templates end with "<think>\n")
            found.append(Block(tag, text[: m.start()], 0, m.end(), True))
            issues.append((m.start(), f"</{tag}> at {m.start()} without <{tag}>; taken to open at 0"))
        else:
            issues.append((m.start(), f"stray </{tag}> at {m.start()}"))
        seen = True
    while stack:
        pop(len(text), None, at_text_end=True)
    if len(found) > 1:
        found.sort(key=_START)
    return found


def _decode_at(text: str, start: int) -> tuple[Any, int]:
    """The JSON (or Python-literal) object starting at `start` -> (dict, end), or (None, start)."""
    if text[_OBJ_START_RE.match(text, start).end() - 1] == '"':
        try:
            value, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            return None, start
        return (value, end) if isinstance(value, dict) else (None, start)
    depth = 0
    for m in _CURLY_RE.finditer(text, start, start + 4000):
        depth += 1 if m.group() == "{" else -1
        if depth == 0:
            value = _literal(text[start : m.end()])
            return (value, m.end()) if isinstance(value, dict) else (None, start)
    return None, start


def _call(value: Any, raw: str, start: int, end: int, issues: list, problem: str | None = None) -> ToolCall:
    name, args, error = _as_call(value)
    if error:
        issues.append((start, f"tool_call at {start}: {error}"))
    return ToolCall(name, args, raw, start, end, error or problem)


def _scan_calls(text: str, blocks: list[Block], issues: list) -> tuple[list[ToolCall], list[dict]]:
    calls: list[ToolCall] = []
    actions: list[tuple[int, dict]] = []
    for b in blocks:
        if b.tag == "tool_call":
            value, problem = _load_json(b.text)
            if problem:
                issues.append((b.start, f"tool_call at {b.start}: {problem}"))
            if value is None:
                salvaged = _NAME_RE.search(b.text)
                calls.append(ToolCall(salvaged and salvaged.group(1), {}, b.text, b.start, b.end, problem))
            for item in value if isinstance(value, list) else [] if value is None else [value]:
                calls.append(_call(item, b.text, b.start, b.end, issues, problem))
        elif b.tag == "action":
            value, problem = _load_json(b.text)
            if value is None:  # a Python literal is this block's usual form (GUI-R1, TON), not a slip
                issues.append((b.start, f"<action> at {b.start}: {problem}"))
            actions += [(b.start, d) for d in _dicts(value)]
        elif b.tag == "answer" and _unfence(b.text)[:1] in ("{", "["):
            actions += [(b.start, d) for d in _dicts(_load_json(b.text)[0]) if _is_action(d)]
    def from_calls(found: list[ToolCall]) -> list[tuple[int, dict]]:
        return [(c.start, c.arguments) for c in found if c.name in GUI_TOOLS or _is_action(c.arguments)]

    actions += from_calls(calls)
    if not calls or not actions:  # InfiGUI-R1 and others emit the JSON without its wrapper
        inside = Spans([(b.start, b.end) for b in blocks])
        bare_calls: list[ToolCall] = []
        bare_actions: list[tuple[int, dict]] = []
        pos, failures = 0, 0
        while (m := _OBJ_START_RE.search(text, pos)) is not None:
            if inside.overlaps(m.start(), m.start() + 1):
                pos = inside.ends[bisect.bisect_right(inside.starts, m.start()) - 1]
                continue
            value, end = _decode_at(text, m.start())
            if value is None:
                failures += 1
                if failures > MAX_JSON_FAILURES:
                    issues.append((m.start(), f"bare JSON at {m.start()}: too many bad fragments, stopped"))
                    break
                pos = m.start() + 1
                continue
            pos = end
            if "name" in value and ("arguments" in value or "parameters" in value):
                bare_calls.append(_call(value, text[m.start() : end], m.start(), end, issues))
            elif _is_action(value):
                bare_actions.append((m.start(), value))
        if not calls:
            calls = bare_calls
            actions += from_calls(calls)
        if not actions:
            actions = bare_actions + from_calls(bare_calls)
    actions.sort(key=lambda a: a[0])
    return calls, [a for _, a in actions]


# ------------------------------------------------------------------------------------ public API
def parse(text: str) -> Trace:
    """Everything a trace holds, in order of appearance, plus what was malformed. Never raises.

    >>> t = parse('<think>the cup {"bbox_2d": [10, 20, 50, 60], "label": "cup"}</think><answer> B')
    >>> t.think[:7], t.answer, t.boxes[0].box, t.boxes[0].label, t.issues
    ('the cup', 'B', (10.0, 20.0, 50.0, 60.0), 'cup', ())
    """
    if not isinstance(text, str):
        return Trace(text="", issues=(f"expected a string, got {type(text).__name__}",))
    issues: list[tuple[int, str]] = []  # (position, message)
    try:
        blocks = _scan_blocks(text, issues)
        boxes, boxes_3d, points, manipulations = scan_mentions(text, issues)
        calls, actions = _scan_calls(text, blocks, issues)
    except Exception as e:  # a parser bug must not stop a training run; the fuzz tests look for this
        return Trace(text=text, issues=(f"parser error: {type(e).__name__}: {e}",))
    return Trace(
        text, tuple(blocks), tuple(calls), tuple(boxes), tuple(boxes_3d), tuple(points), tuple(actions),
        tuple(manipulations), _cap(issues),
    )


def parse_blocks(text: str) -> tuple[Block, ...]:
    """Only the tagged blocks of a trace: ``parse(text).blocks``, without reading boxes, points, tool
    calls, actions or Video-CoM steps (what a tag-format check needs, at a fraction of the cost). Never
    raises; not a string gives ``()``.

    >>> [(b.tag, b.text, b.closed) for b in parse_blocks("<think>a<step>b</step></think><answer>7")]
    [('think', 'a<step>b</step>', True), ('step', 'b', True), ('answer', '7', False)]
    """
    if not isinstance(text, str):
        return ()
    try:
        return tuple(_scan_blocks(text, []))
    except Exception:  # as in `parse`: a parser bug must not stop a training run
        return ()


def tag_counts(text: str) -> dict[str, int]:
    """How often each known tag occurs, open and close, zeros included.

    >>> {k: v for k, v in tag_counts("<think>a</think><answer>b").items() if v}
    {'<think>': 1, '</think>': 1, '<answer>': 1}
    """
    counts = dict(_ZERO_COUNTS)
    for tag in TAG_RE.findall(text) if isinstance(text, str) and "<" in text else ():
        counts["<%s%s>" % tag] += 1
    return counts


def extract_boxed(text: str) -> str | None:
    r"""Content of the last complete ``\boxed{..}`` (nested braces allowed).

    >>> extract_boxed(r"so \boxed{\frac{1}{2}}")
    '\\frac{1}{2}'
    """
    if not isinstance(text, str) or "\\boxed" not in text:
        return None
    opens = [m.end() - 1 for m in _BOXED_RE.finditer(text)]
    if not opens:
        return None
    partner, stack = {}, []
    for m in _BRACE_RE.finditer(text, opens[0]):  # one pass pairs every brace: linear on any input
        if m.group() == "{":
            stack.append(m.start())
        elif m.group() == "}" and stack:
            partner[stack.pop()] = m.start()
    for o in reversed(opens):
        if o in partner:
            return text[o + 1 : partner[o]]
    return None


def extract_answer(text: str) -> str | None:
    """The last <answer> block, else the last ``\\boxed{}``, else the last ``FINAL_ANSWER:`` line.

    >>> extract_answer("<think>x</think> FINAL_ANSWER: B. a red car")
    'B. a red car'
    """
    if not isinstance(text, str):
        return None
    answers = [b for b in _scan_blocks(text, []) if b.tag == "answer"]
    if answers:
        return answers[-1].text.strip()
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed.strip()
    finals = _FINAL_RE.findall(text)
    return finals[-1].strip() if finals else None


def find_tool_calls(text: str) -> list[ToolCall]:
    return list(parse(text).tool_calls)

