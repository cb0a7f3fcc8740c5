"""Build frozen dataclasses from plain mappings (parsed YAML), checking every key and type.

The dataclass's annotations are the schema: `int`, `float`, `bool`, `str`, `X | None`,
`Literal[...]`, `tuple[X, ...]` (from a list), `dict[K, V]`, `Any` and nested dataclasses. Bounds
come from field metadata (`bounded(8, ge=1)`). Errors are `RecipeError`s that name the source, the
full dotted key, what was expected and what was found, with the closest known spelling suggested.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Opt:
...     lr: float = 1e-3
...     steps: int = bounded(10, ge=1)
>>> build(Opt, {"lr": "1e-4"})  # PyYAML reads 1e-4 (no dot) as a string
Opt(lr=0.0001, steps=10)
>>> build(Opt, {"step": 3}, source="run.yaml")
Traceback (most recent call last):
...
mmreason.errors.RecipeError: run.yaml: unknown key 'step'; did you mean 'steps'?
"""

from __future__ import annotations

import difflib
import math
import re
import types
from collections.abc import Mapping
from dataclasses import MISSING, field, fields, is_dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from mmreason.errors import RecipeError

_OPS = {"ge": (">=", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b), "le": ("<=", lambda v, b: v <= b)}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_HINTS: dict[type, dict[str, Any]] = {}


def bounded(default: Any = None, *, ge: float | None = None, gt: float | None = None, le: float | None = None):
    """A dataclass field whose bounds `build` checks (None always passes)."""
    meta = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le)) if v is not None}
    return field(default=default, metadata=meta)


class _Mismatch(Exception):
    """A value of the wrong type; the caller turns it into a RecipeError naming the key."""


def hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass (cached: they are read on every build)."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def type_name(tp: Any) -> str:
    """How a type reads in an error message.

    >>> type_name(tuple[str, ...] | None)
    'list of str or null'
    """
    origin, args = get_origin(tp), get_args(tp)
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any value"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is tuple:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}"
    if is_dataclass(tp):
        return f"mapping ({tp.__name__})"
    return tp.__name__


def all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key a dataclass tree accepts, e.g. ['model', 'model.path', ...]."""
    out = []
    for f in fields(cls):
        out.append(prefix + f.name)
        tp = hints(cls)[f.name]
        inner = [a for a in (tp, *get_args(tp)) if is_dataclass(a)]
        if inner:
            out.extend(all_keys(inner[0], f"{prefix}{f.name}."))
    return out


class _Ctx:
    """What every nested call needs: where the data came from, and the tree's root for hints."""

    def __init__(self, source: str, root: type):
        self.source, self.root = source, root


def _coerce(value: Any, tp: Any, key: str, ctx: _Ctx) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _coerce(value, arg, key, ctx)
                except _Mismatch:
                    continue
        raise _Mismatch
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise _Mismatch
    if is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise _Mismatch
        return _build(tp, value, key + ".", ctx)
    if origin is tuple:
        if isinstance(value, str):  # `data.train=path` on a command line is a list of one
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        return tuple(_checked(v, args[0], f"{key}.{i}", ctx) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch
        return {_checked(k, args[0], key, ctx): _checked(v, args[1], f"{key}.{k}", ctx) for k, v in value.items()}
    if tp is float:
        # PyYAML follows YAML 1.1 and reads `1e-6` (no dot) as a string; accept any plain number.
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise _Mismatch
    if tp is int and isinstance(value, bool):  # bool is an int subclass; `r: true` is a mistake
        raise _Mismatch
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _Mismatch


def _checked(value: Any, tp: Any, key: str, ctx: _Ctx) -> Any:
    try:
        return _coerce(value, tp, key, ctx)
    except _Mismatch:
        pass
    msg = f"{ctx.source}: {key}: expected {type_name(tp)}, got {type(value).__name__} {value!r}"
    inner = get_args(tp)[0] if get_origin(tp) is tuple else tp
    options = [a for a in (*get_args(inner), *[b for a in get_args(inner) for b in get_args(a)]) if isinstance(a, str)]
    close = difflib.get_close_matches(str(value), options, n=1)
    raise RecipeError(msg + (f"; did you mean {close[0]!r}?" if close else "")) from None


def _unknown_key(cls: type, key: Any, prefix: str, ctx: _Ctx) -> RecipeError:
    names = [f.name for f in fields(cls)]
    # The right key in the wrong section (`model.lr`) is the usual slip: say where it lives.
    elsewhere = [k.rpartition(".")[0] or "the top level" for k in all_keys(ctx.root) if k.rpartition(".")[2] == key]
    close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    if elsewhere:
        hint = f"; {key!r} is a key of {', '.join(elsewhere)}"
    elif close:
        hint = f"; did you mean {prefix + close[0]!r}?"
    else:
        hint = f" (known here: {', '.join(names)})"
    return RecipeError(f"{ctx.source}: unknown key {prefix + str(key)!r}{hint}")


def _build(cls: type, raw: Mapping, prefix: str, ctx: _Ctx) -> Any:
    cls_hints = hints(cls)
    for key in raw:
        if key not in cls_hints:
            raise _unknown_key(cls, key, prefix, ctx)
    kwargs = {}
    for f in fields(cls):
        key = prefix + f.name
        if f.name not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                raise RecipeError(f"{ctx.source}: {key}: required ({type_name(cls_hints[f.name])})")
            continue
        value = kwargs[f.name] = _checked(raw[f.name], cls_hints[f.name], key, ctx)
        for op, bound in f.metadata.items():
            sign, ok = _OPS[op]
            if value is not None and not ok(value, bound):
                raise RecipeError(f"{ctx.source}: {key}: must be {sign} {bound}, got {value!r}")
    return cls(**kwargs)


def build(cls: type, raw: Any, *, source: str = "<mapping>") -> Any:
    """An instance of dataclass `cls` from a mapping; every key and value is checked."""
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{source}: expected a mapping, got {type(raw).__name__}")
    return _build(cls, raw, "", _Ctx(source, cls))


def to_plain(obj: Any) -> Any:
    """Dataclasses to dicts and tuples to lists, recursively: what `build` reads back."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj
