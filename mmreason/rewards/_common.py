"""Plumbing every reward shares: completion text, per-row columns, frames, safe numbers, metrics, the guard.

A reward here is ``fn(completions, *, option=default, **columns) -> list[float | None]`` (TRL's contract).
``completions`` are strings or conversational message lists; ``columns`` are dataset columns by name
(lists aligned with ``completions``) plus TRL's extras (``prompts``, ``completion_ids``, ``trainer_state``,
``log_metric``, ``log_extra``) and, from a trainer that parsed each completion once, ``traces``
(:data:`TRACES`). :func:`samples` pairs each completion with its row and its trace (given, or parsed on
first use within the call); :func:`score_rows` is the per-row loop. :func:`reward_function` wraps each
reward so it never raises on model output or on a malformed column: an internal error scores the
affected sample 0.0 and is counted in the ``<name>/errors`` metric. Only
:class:`~mmreason.errors.RecipeError` (a bad *option*, a configuration bug) propagates, so a typo in a
recipe fails loudly instead of training on zeros.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import re
from collections import defaultdict
from typing import Any, Callable, Iterable, Mapping, Sequence

from mmreason import traces
from mmreason.errors import RecipeError, SchemaError
from mmreason.families import FAMILIES
from mmreason.geometry import FRAMES, ImageFrame, convert_box, convert_point, is_valid_box, is_valid_box_3d

log = logging.getLogger("mmreason.rewards")

# The column of parsed completions a trainer passes when it parsed each completion once (the GRPO step
# does); a reward called without it (TRL calls with strings only) parses what it reads itself.
TRACES = "traces"
# Keyword arguments that are not dataset columns: TRL's extras and the parsed traces.
NON_COLUMNS = frozenset({"trainer_state", "log_metric", "log_extra", "environments", TRACES})
# How an image a tool returned shows up in a decoded multi-turn response (DeepEyes counts these).
VISION_PAIR = "<|vision_start|><|image_pad|>"


# A UTF-16 surrogate on its own: no UTF-8 encoder, tokenizer or HTTP server accepts it.
_SURROGATE = re.compile("[\ud800-\udfff]")


# ----------------------------------------------------------------------------------- completions
def readable_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, so it can be tokenized or sent to a server
    (decoding a sampled token sequence can leave half a pair).

    >>> readable_text("re\\ud800d")
    're\ufffdd'
    """
    return _SURROGATE.sub("\ufffd", text)


def completion_text(completion: object) -> str:
    """The text of one completion: a string as is; a message list joined in order (text parts only).

    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "<answer>4</answer>"}]}])
    '<answer>4</answer>'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if not isinstance(completion, (list, tuple)):
        return ""
    out = []
    for message in completion:
        content = message.get("content") if isinstance(message, Mapping) else message
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, (list, tuple)):
            for part in content:
                text = part.get("text") if isinstance(part, Mapping) and part.get("type") == "text" else None
                if isinstance(text, str):
                    out.append(text)
    return "".join(out)


def returned_images(completion: object) -> int:
    """Images a multi-turn trajectory got back from tools: image parts in non-assistant turns of a message
    list, plus ``<|vision_start|><|image_pad|>`` pairs in decoded text (DeepEyes counts those)."""
    if isinstance(completion, str):
        return completion.count(VISION_PAIR)
    n = completion_text(completion).count(VISION_PAIR)
    if isinstance(completion, (list, tuple)):
        for message in completion:
            if isinstance(message, Mapping) and message.get("role") != "assistant":
                content = message.get("content")
                if isinstance(content, (list, tuple)):
                    n += sum(isinstance(p, Mapping) and p.get("type") in ("image", "screenshot")
                             for p in content)
    return n


# ---------------------------------------------------------------------------------------- columns
def rows_of(n: int, columns: Mapping[str, Any]) -> list[dict]:
    """Per-sample views of the columns: ``rows[i][name] = columns[name][i]`` for aligned lists.

    A column that is not a list of length ``n`` is left out (a wrong-typed column is 'absent').
    """
    aligned = {k: v for k, v in columns.items()
               if k not in NON_COLUMNS and isinstance(v, (list, tuple)) and len(v) == n}
    return [{k: v[i] for k, v in aligned.items()} for i in range(n)]


def columns_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """The columns a reward is called with, from rows (the inverse of `rows_of`): every key any row has,
    None where a row lacks it.

    >>> columns_of([{"answer": "4"}, {"answer": "5", "boxes": []}])
    {'answer': ['4', '5'], 'boxes': [None, []]}
    """
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return {k: [row.get(k) for row in rows] for k in keys}


class Sample:
    """One completion with its dataset row; its text and its parsed trace are read on first use.

    The trace is the one the caller passed in the ``traces`` column, else parsed here once: a reward that
    reads it twice for a row parses once, and one that never reads it (a row without ground truth) not at all.
    """

    __slots__ = ("completion", "row", "_text", "_trace")

    def __init__(self, completion: object, row: dict, trace: traces.Trace | None = None):
        self.completion, self.row, self._text, self._trace = completion, row, None, trace

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = completion_text(self.completion)
        return self._text

    @property
    def trace(self) -> traces.Trace:
        if self._trace is None:
            self._trace = traces.parse(self.text)
        return self._trace

    @property
    def blocks(self) -> tuple[traces.Block, ...]:
        """The tagged blocks: the trace's when there is one, else only the blocks are scanned (what a
        tag-format check needs, a fraction of the cost of a full parse)."""
        return self._trace.blocks if self._trace is not None else traces.parse_blocks(self.text)


def samples(completions: Sequence, columns: Mapping[str, Any]) -> list[Sample]:
    """Each completion with its row and, when the ``traces`` column is aligned with them, its parsed trace.

    >>> [s.trace.answer for s in samples(["<answer>4</answer>"], {"answer": ["4"]})]
    ['4']
    """
    n = len(completions)
    given = columns.get(TRACES)
    if not (isinstance(given, (list, tuple)) and len(given) == n
            and all(isinstance(t, traces.Trace) for t in given)):
        given = [None] * n
    return [Sample(c, row, t) for c, row, t in zip(completions, rows_of(n, columns), given)]


def score_rows(completions: Sequence, columns: Mapping[str, Any], score_one: Callable[[Sample, Metrics], Any],
               metrics: Metrics, *, default: Any = 0.0) -> list:
    """The per-row loop of a reward: ``score_one(sample, metrics)`` for each completion with its row, each
    call `guarded` (an internal error scores that row ``default`` and counts in ``<reward>/errors``)."""
    return [guarded(score_one, sample, metrics, default=default, metrics=metrics)
            for sample in samples(completions, columns)]


def keyword_options(fn: Callable) -> dict[str, Any]:
    """The keyword-only parameters of ``fn`` (through a ``functools.partial`` and decorators) and their
    defaults (``inspect.Parameter.empty`` when required)."""
    target = inspect.unwrap(fn.func if isinstance(fn, functools.partial) else fn)
    return {name: p.default for name, p in inspect.signature(target).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


# A step reward's result for one completion: each step's (char start, char end, score) in its text.
StepSpans = list[tuple[int, int, float]]


def decode_json(value: object) -> object:
    """Free-form dicts (``meta``, ``gui``, ``gui.action``) are JSON strings on disk; decode when needed."""
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value


def mapping(value: object) -> dict:
    value = decode_json(value)
    return dict(value) if isinstance(value, Mapping) else {}


def row_id(row: Mapping) -> object:
    return row.get("id")


_WARNED: set[tuple[str, str]] = set()


def warn_column(reward: str, row: Mapping, field: str, reason: str) -> None:
    """Log a malformed column once per (reward, field), naming the row as `SchemaError` does."""
    if (reward, field) not in _WARNED:
        _WARNED.add((reward, field))
        error = SchemaError(reason, row=row_id(row), field=field)
        log.warning("%s: %s (further reports suppressed)", reward, error)


def question_of(row: Mapping) -> str:
    """The question text: a ``question`` column, ``meta.question``, else the last user turn of the prompt."""
    q = row.get("question")
    if isinstance(q, str):
        return q
    q = mapping(row.get("meta")).get("question")
    if isinstance(q, str):
        return q
    for key in ("prompts", "prompt", "messages"):
        value = row.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, (list, tuple)):
            users = [m for m in value if isinstance(m, Mapping) and m.get("role") == "user"]
            if users:
                return completion_text([users[-1]])
    return ""


def source_of(row: Mapping) -> str:
    for key in ("data_source", "source"):
        value = row.get(key)
        if isinstance(value, str):
            return value
    return ""


def answer_of(row: Mapping) -> str | None:
    """The ground-truth answer as text (``answer``, else ``solution`` as TRL/R1-V datasets name it)."""
    for key in ("answer", "solution"):
        value = row.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return str(value)
    return None


# ---------------------------------------------------------------------------------------- numbers
def safe_float(value: object) -> float | None:
    """A finite float, or None for anything else (NaN, inf, strings that are not numbers, bools)."""
    if isinstance(value, bool):
        return None
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def floats(values: object, n: int) -> tuple[float, ...] | None:
    """Exactly ``n`` finite floats from a list, or None."""
    if not isinstance(values, (list, tuple)) or len(values) != n:
        return None
    out = tuple(safe_float(v) for v in values)
    return None if any(v is None for v in out) else out  # type: ignore[return-value]


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


# ------------------------------------------------------------------------------- ground truth
def gt_boxes(
    row: Mapping, field: str = "boxes", *, reward: str = "reward",
) -> list[tuple[tuple, str | None, int]]:
    """Valid ``(box, label, image)`` entries of a 2D GT list; malformed entries are skipped and reported."""
    value = decode_json(row.get(field))
    if not isinstance(value, (list, tuple)):
        if value not in (None, ()):
            warn_column(reward, row, field, "expected a list of {label, box, image}")
        return []
    out = []
    for entry in value:
        box = floats(entry.get("box"), 4) if isinstance(entry, Mapping) else floats(entry, 4)
        if box is None or not is_valid_box(box):
            warn_column(reward, row, field, f"entry {entry!r:.80} is not a valid [x1, y1, x2, y2] box")
            continue
        label = entry.get("label") if isinstance(entry, Mapping) else None
        image = entry.get("image", 0) if isinstance(entry, Mapping) else 0
        out.append((box, label if isinstance(label, str) else None, image if isinstance(image, int) else 0))
    return out


def gt_boxes_3d(row: Mapping, *, reward: str = "reward") -> list[tuple[tuple, str | None]]:
    value = decode_json(row.get("boxes_3d"))
    if not isinstance(value, (list, tuple)):
        return []
    out = []
    for entry in value:
        box = floats(entry.get("box"), 6) if isinstance(entry, Mapping) else floats(entry, 6)
        if box is None or not is_valid_box_3d(box):
            warn_column(reward, row, "boxes_3d", f"entry {entry!r:.80} is not a valid 3D box")
            continue
        label = entry.get("label") if isinstance(entry, Mapping) else None
        out.append((box, label if isinstance(label, str) else None))
    return out


# ----------------------------------------------------------------------------------------- frames
def resolve_coord_frame(coord_frame: str | None, family: str | None, default: str) -> str:
    """The frame of a completion's coordinates: ``coord_frame``, else ``family``'s, else ``default``."""
    if family is not None and family not in FAMILIES:
        raise RecipeError(f"unknown backbone family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    frame = coord_frame or (FAMILIES[family].box_frame if family else default)
    if frame not in FRAMES:
        raise RecipeError(f"unknown coordinate frame {frame!r}; known: {', '.join(FRAMES)}")
    return frame


def _size(value: object) -> tuple[int, int] | None:
    pair = floats(value, 2)
    if pair is None or pair[0] <= 0 or pair[1] <= 0:
        return None
    return int(pair[0]), int(pair[1])


def image_frame(row: Mapping, image: int, coord_frame: str, *, family: str | None = None,
                min_pixels: int | None = None, max_pixels: int | None = None) -> ImageFrame | None:
    """The frame of image ``image`` of a row, from (in order) the ``image_frames`` column
    ``[{width, height, resized_width, resized_height}, ...]``, the ``image_sizes`` column ``[[w, h], ...]``,
    the pictures of TRL's ``images`` / ``image`` column, or ``gui.width/height`` for image 0 (without
    resized sizes, they come from ``family``'s smart_resize at the given pixel budget). None when the
    frame needed for ``coord_frame`` cannot be known."""
    if coord_frame == "pixel":
        return ImageFrame.identity(1, 1)  # pixel -> pixel needs no sizes
    size = resized = None
    frames = decode_json(row.get("image_frames"))
    if isinstance(frames, (list, tuple)) and 0 <= image < len(frames) and isinstance(frames[image], Mapping):
        f = frames[image]
        size = _size([f.get("width"), f.get("height")])
        resized = _size([f.get("resized_width"), f.get("resized_height")])
    if size is None:
        sizes = decode_json(row.get("image_sizes"))
        if isinstance(sizes, (list, tuple)) and 0 <= image < len(sizes):
            size = _size(sizes[image])
    if size is None:  # TRL's image columns: the pictures themselves (PIL images or decoded dicts)
        pictures = row.get("images")
        pictures = pictures if isinstance(pictures, (list, tuple)) else [row.get("image")]
        if 0 <= image < len(pictures):
            size = _size(getattr(pictures[image], "size", None))
    if size is None and image == 0:
        gui = mapping(row.get("gui"))
        size = _size([gui.get("width"), gui.get("height")])
    if size is None:
        return None
    if coord_frame != "resized":
        return ImageFrame.identity(*size)
    if resized is None and family is not None:
        try:
            return ImageFrame.for_family(size[0], size[1], family, min_pixels=min_pixels,
                                         max_pixels=max_pixels)
        except ValueError:  # an aspect ratio smart_resize rejects
            return None
    return ImageFrame(size[0], size[1], *resized) if resized is not None else None


def box_to_pixels(box: Sequence[float], coord_frame: str, frame: ImageFrame | None) -> tuple | None:
    if coord_frame == "pixel":
        return tuple(float(v) for v in box)
    return None if frame is None else convert_box(box, coord_frame, "pixel", frame)


def point_to_pixels(point: Sequence[float], coord_frame: str, frame: ImageFrame | None) -> tuple | None:
    if coord_frame == "pixel":
        return (float(point[0]), float(point[1]))
    return None if frame is None else convert_point(point, coord_frame, "pixel", frame)


# ---------------------------------------------------------------------------------------- metrics
class Metrics:
    """Batch means of named sub-scores, sent through TRL's ``log_metric`` as ``<reward>/<name>``."""

    def __init__(self, reward: str):
        self.reward = reward
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, name: str, value: float | None) -> None:
        value = safe_float(value)
        if value is not None:
            self.sums[name] += value
            self.counts[name] += 1

    def emit(self, log_metric: object) -> None:
        if not callable(log_metric):
            return
        for name, total in self.sums.items():
            try:
                log_metric(f"{self.reward}/{name}", total / self.counts[name])
            except Exception:  # a logger failure must not cost the reward
                log.debug("log_metric failed for %s/%s", self.reward, name, exc_info=True)


def guarded(fn: Callable[..., Any], *args: Any, default: Any = 0.0, metrics: Metrics | None = None,
            **kwargs: Any) -> Any:
    """Call ``fn`` on one sample; an unexpected error gives ``default`` and counts as an error."""
    try:
        return fn(*args, **kwargs)
    except RecipeError:
        raise
    except Exception:
        log.warning("reward %s: error on one sample, scored %r", metrics.reward if metrics else "?", default,
                    exc_info=True)
        if metrics is not None:
            metrics.add("errors", 1.0)
        return default


def sanitize(values: object, n: int) -> list[float | None]:
    """Exactly ``n`` entries, each a finite float or None (NaN/inf/garbage become 0.0)."""
    out: list[float | None] = []
    values = list(values) if isinstance(values, (list, tuple)) else []
    for i in range(n):
        v = values[i] if i < len(values) else 0.0
        f = safe_float(v)
        out.append(None if v is None else (f if f is not None else 0.0))
    return out


def reward_function(fn: Callable[..., list]) -> Callable[..., list]:
    """Decorate a batch reward: it keeps its name/docstring/signature (and stays picklable by reference),
    never raises except for `RecipeError`, and always returns ``len(completions)`` finite floats or None."""

    @functools.wraps(fn)
    def wrapper(completions, **kwargs):
        n = len(completions) if isinstance(completions, (list, tuple)) else 0
        family = kwargs.get("family")
        if n and isinstance(family, (list, tuple)) and len(family) == n and "family" in keyword_options(fn):
            return _per_family(wrapper, completions, kwargs, n)
        try:
            out = fn(list(completions) if n else [], **kwargs)
        except RecipeError:
            raise
        except TypeError as exc:
            if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
                # raised by the call itself (a required option missing): a recipe bug, not model output
                raise RecipeError(f"reward {fn.__name__!r}: {exc}") from None
            out = _after_failure(fn, completions, kwargs, n)
        except Exception:
            out = _after_failure(fn, completions, kwargs, n)
        return sanitize(out, n)

    return wrapper


def _subset(fn: Callable, kwargs: Mapping, idx: Sequence[int], n: int) -> dict:
    """`kwargs` for the rows `idx`: dataset columns (and traces), per-row lists, are cut; options are kept."""
    options = set(keyword_options(fn))
    return {k: [v[i] for i in idx] if k not in options and isinstance(v, (list, tuple)) and len(v) == n else v
            for k, v in kwargs.items()}


def _per_family(scored: Callable, completions: Sequence, kwargs: Mapping, n: int) -> list[float | None]:
    """A ``family`` column (one backbone per row, as a dataset may carry it) instead of the option: the
    rows of each family scored together with that family."""
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, name in enumerate(kwargs["family"]):
        groups[name].append(i)
    out: list[float | None] = [None] * n
    for name, idx in groups.items():
        cols = {k: [v[i] for i in idx] if isinstance(v, (list, tuple)) and len(v) == n else v
                for k, v in kwargs.items() if k != "family"}
        for i, value in zip(idx, scored([completions[i] for i in idx], family=name, **cols)):
            out[i] = value
    return out


def _after_failure(fn: Callable, completions: Sequence, kwargs: Mapping, n: int) -> list[float | None]:
    """A batch failed: score its rows one by one, so a bad row costs that row (0), never its batch."""
    if n <= 1:
        _row_failed(fn, 0, n, kwargs)
        return [0.0] * n
    out: list[float | None] = []
    for i in range(n):
        try:
            out.extend(sanitize(fn([completions[i]], **_subset(fn, kwargs, [i], n)), 1))
        except RecipeError:
            raise
        except Exception:
            _row_failed(fn, i, n, kwargs)
            out.append(0.0)
    return out


def _row_failed(fn: Callable, i: int, n: int, kwargs: Mapping) -> None:
    log.exception("reward %s failed on row %d of a batch of %d; scoring that row 0", fn.__name__, i, n)
    if callable(kwargs.get("log_metric")):
        try:
            kwargs["log_metric"](f"{fn.__name__}/errors", 1.0)
        except Exception:
            pass
