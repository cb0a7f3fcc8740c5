"""Turn a name from a recipe into the Python object it means.

Two spellings reach beyond the literal registries (`REWARDS`, `TOOLS`, ...):

- `package.module:attr` — an importable module; `attr` may be dotted (`Class.method`);
- `path/file.py:attr` — a file on disk, relative to the working directory (as verl and EasyR1
  read `reward_function=path.py:fn`), loaded once and kept in `sys.modules` so the function it
  returns pickles by reference within the process.

Every error is a `RecipeError` naming the spec, so a typo in a YAML file points at itself.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmreason.errors import RecipeError


def _load_file_module(file: str, spec: str) -> Any:
    path = Path(file).expanduser().resolve()
    if not path.is_file():
        raise RecipeError(f"{spec!r}: file {str(path)!r} does not exist")
    # One stable module name per file: loading the same file twice returns the same functions.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    name = f"mmreason_user_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise RecipeError(f"{spec!r}: {str(path)!r} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise RecipeError(f"{spec!r}: running {str(path)!r} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _import_module(name: str, spec: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or name
        if name == missing or name.startswith(missing + "."):
            raise RecipeError(f"{spec!r}: no module named {missing!r}") from exc
        raise RecipeError(f"{spec!r}: importing {name!r} needs {missing!r}, which is not installed") from exc
    except Exception as exc:
        raise RecipeError(f"{spec!r}: importing {name!r} failed: {type(exc).__name__}: {exc}") from exc


def resolve_object(spec: str) -> Any:
    """The object a `module:attr` or `file.py:attr` spec names (callable or not).

    >>> resolve_object("mmreason.families:FAMILIES")["qwen2_vl"].box_frame
    'norm1000'
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise RecipeError(f"{spec!r}: expected 'package.module:attr' or 'path/file.py:attr'")
    # rpartition: a Windows drive letter ("C:\\x.py:fn") keeps its colon in the file part.
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise RecipeError(f"{spec!r}: expected 'package.module:attr' or 'path/file.py:attr'")
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    obj = _load_file_module(target, spec) if is_file else _import_module(target, spec)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RecipeError(f"{spec!r}: {target!r} has no attribute {part!r}{hint}") from None
    return obj


def resolve_callable(spec: str) -> Any:
    """The callable a `package.module:attr` or `path/file.py:attr` spec names.

    >>> resolve_callable("mmreason.families:get_family")("qwen3_vl").patch_size
    16
    """
    obj = resolve_object(spec)
    if not callable(obj):
        raise RecipeError(f"{spec!r}: {type(obj).__name__} object is not callable")
    return obj


def resolve_name(name: str, registry: Mapping[str, Any], *, kind: str = "entry") -> Any:
    """Look `name` up in a literal registry, or resolve it as a spec when it contains ':'.

    Registry values may themselves be `module:attr` strings (lazy registries); they are resolved.

    >>> resolve_name("family", {"family": "mmreason.families:get_family"}, kind="tool")("qwen2_vl").name
    'qwen2_vl'
    >>> resolve_name("len", {"len": len}, kind="reward")([1, 2])
    2
    """
    if name in registry:
        value = registry[name]
        return resolve_object(value) if isinstance(value, str) else value
    if isinstance(name, str) and ":" in name:
        return resolve_callable(name)
    close = difflib.get_close_matches(str(name), [str(k) for k in registry], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(sorted(map(str, registry))) or "none registered"
    raise RecipeError(f"unknown {kind} {name!r}{hint} (known: {known}; or give 'module:attr' / 'file.py:attr')")
