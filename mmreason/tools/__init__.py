"""Tools a policy calls during a rollout: typed functions whose signature and docstring are the schema.

`TOOLS` names the built-ins (``mmreason ls tools``); a recipe may also name any ``module:attr`` or
``file.py:attr`` function written the same way: ``fn(env, arg: type, ...) -> Observation`` with a
Google-style docstring (TRL's tool contract: the ``tools`` argument of `GRPOTrainer`). `env`, the
trajectory's `ToolEnv`, is injected and left out of the schema.

`run_tool_call(call, env, names)` executes one parsed ``<tool_call>`` and never raises on what the model
wrote: an unreadable call, an unknown or disallowed tool, a missing or unexpected argument, a wrong type,
NaN or a huge number all come back as an ``Error: ...`` `Observation`.

    >>> [s["function"]["name"] for s in tool_schemas(["image_zoom_in"])]
    ['image_zoom_in']
    >>> run_tool_call({"name": "fly", "arguments": {}}, None, ["image_zoom_in"]).text
    "Error: unknown tool 'fly'; available: image_zoom_in"
"""

from __future__ import annotations

import inspect
import json
import logging
import typing
from typing import Any, Callable, Mapping, Sequence

from mmreason.errors import RecipeError
from mmreason.registry import resolve_name
from mmreason.tools.env import Observation, ToolEnv, ToolInputError, ToolSettings, show

log = logging.getLogger(__name__)

__all__ = ["TOOLS", "Observation", "ToolEnv", "ToolInputError", "ToolSettings", "resolve_tools", "run_tool_call",
           "tool_schemas", "tools_prompt"]

TOOLS: dict[str, str] = {
    "image_zoom_in": "mmreason.tools.image:image_zoom_in",
    "image_rotate": "mmreason.tools.image:image_rotate",
    "seek_frame": "mmreason.tools.video:seek_frame",
    "clip_segment": "mmreason.tools.video:clip_segment",
    "zoom_frame": "mmreason.tools.video:zoom_frame",
    "render_view": "mmreason.tools.scene:render_view",
    "crop_region": "mmreason.tools.scene:crop_region",
    "play_audio": "mmreason.tools.audio:play_audio",
    # The names DeepEyes' checkpoints emit (its system prompt calls them so).
    "image_zoom_in_tool": "mmreason.tools.image:image_zoom_in",
    "image_rotate_tool": "mmreason.tools.image:image_rotate",
}
ENV_ARG = "env"


def resolve_tools(names: Sequence[str] | None = None) -> dict[str, Callable[..., Observation]]:
    """Name the model calls -> function: registry keys as they are, specs by their function's name.

    None means every built-in. An unknown name is a `RecipeError` (a recipe typo, not model output).
    """
    out: dict[str, Callable[..., Observation]] = {}
    for name in TOOLS if names is None else names:
        fn = resolve_name(name, TOOLS, kind="tool")
        public = name if name in TOOLS else getattr(fn, "__name__", str(name))
        if ENV_ARG not in inspect.signature(fn).parameters:
            raise RecipeError(f"tool {name!r}: a tool takes the trajectory's environment as its first argument "
                              f"'{ENV_ARG}'")
        out[public] = fn
    return out


def _schema_view(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """A stand-in with `fn`'s signature, type hints and docstring minus `env`, for `get_json_schema`."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)

    def view() -> None:
        """Schema stand-in."""

    view.__name__ = name
    view.__doc__ = fn.__doc__
    view.__signature__ = sig.replace(parameters=[p for n, p in sig.parameters.items() if n != ENV_ARG],
                                     return_annotation=inspect.Signature.empty)
    view.__annotations__ = {k: v for k, v in hints.items() if k not in (ENV_ARG, "return")}
    return view


def tool_schemas(names: Sequence[str] | None = None) -> list[dict]:
    """OpenAI-style function schemas (``{"type": "function", "function": {...}}``) for the chat template's
    ``tools=`` argument or a system prompt, derived from each tool's signature and docstring."""
    from transformers.utils import get_json_schema

    return [get_json_schema(_schema_view(fn, name)) for name, fn in resolve_tools(names).items()]


def tools_prompt(names: Sequence[str] | None = None) -> str:
    """System-prompt text that declares the tools and the ``<tool_call>`` format (Qwen's function-calling
    layout), for families whose chat template does not render ``tools=`` itself (Qwen2/2.5-VL)."""
    listed = "\n".join(json.dumps(s, ensure_ascii=False) for s in tool_schemas(names))
    return ("# Tools\n\nYou may call a function to help answer.\n\nThe functions, in JSON Schema, are inside "
            f"<tools></tools>:\n<tools>\n{listed}\n</tools>\n\nTo call one, write a JSON object with its name and "
            'arguments inside <tool_call></tool_call>:\n<tool_call>\n{"name": <function-name>, "arguments": '
            "<args-json-object>}\n</tool_call>")


def _name_and_arguments(call: Any) -> tuple[Any, Any, str | None]:
    if call is None:
        return None, None, "no tool call found; write <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call>"
    if isinstance(call, Mapping):
        return call.get("name"), call.get("arguments", {}), None
    name, arguments = getattr(call, "name", None), getattr(call, "arguments", None)
    problem = getattr(call, "error", None)
    if name is None:
        return None, None, f"could not read the tool call ({problem or 'no name'})"
    return name, arguments, None


def run_tool_call(call: Any, env: ToolEnv | None, names: Sequence[str] | None = None, *,
                  tools: Mapping[str, Callable[..., Observation]] | None = None) -> Observation:
    """Run one tool call (a `traces.ToolCall`, or a ``{"name", "arguments"}`` dict) in `env`, allowing
    only `names` (None: every built-in). Always returns an `Observation`; pass `tools` (from
    `resolve_tools`) to skip resolving the names on every call."""
    penalty = env.settings.invalid_penalty if env is not None else 0.0
    name, arguments, problem = _name_and_arguments(call)
    if problem:
        return Observation.failure(problem, penalty=penalty)
    allowed = dict(tools) if tools is not None else resolve_tools(names)
    if not isinstance(name, str) or name not in allowed:
        listed = ", ".join(allowed) or "none"
        return Observation.failure(f"unknown tool {show(name)}; available: {listed}", penalty=penalty)
    if not isinstance(arguments, Mapping):
        return Observation.failure(f"the arguments of {name} must be a JSON object, got {show(arguments)}",
                                   penalty=penalty, tool=name)
    fn = allowed[name]
    params = [p for n, p in inspect.signature(fn).parameters.items() if n != ENV_ARG]
    known = {p.name for p in params}
    unexpected = sorted(str(k) for k in arguments if k not in known)
    missing = [p.name for p in params if p.default is inspect.Parameter.empty and p.name not in arguments]
    if unexpected or missing:
        what = "; ".join(part for part in (
            f"unexpected argument(s) {', '.join(map(show, unexpected))}" if unexpected else "",
            f"missing argument(s) {', '.join(missing)}" if missing else "") if part)
        takes = ", ".join(p.name for p in params) or "no arguments"
        return Observation.failure(f"{what} for {name}, which takes {takes}",
                                   penalty=penalty, tool=name)
    if env is None:
        return Observation.failure(f"{name} needs the sample's media, but this rollout has none", tool=name)
    try:
        result = fn(env, **arguments)
    except ToolInputError as exc:  # a tool written without the @tool decorator
        return Observation.failure(str(exc), penalty=penalty, tool=name)
    except Exception as exc:  # a bug or a bad file must not stop a training run; it is logged loudly
        log.warning("tool %s failed on sample %r", name, env.sample_id, exc_info=True)
        return Observation.failure(f"{name} failed ({type(exc).__name__}: {exc})", penalty=penalty, tool=name)
    if not isinstance(result, Observation):
        return Observation(str(result))
    return result
