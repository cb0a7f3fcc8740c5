"""Tools per sample: a row field picks the tools its rollout may call, as DeepEyes' data does with `env_name`
(``visual_toolbox_v2`` on the samples that zoom, empty on the reasoning samples that do not; arXiv
2505.14362 App. B.1 and the released README's "Use your own data"). The recipe gives the default:

    tools:
      names: [image_zoom_in_tool]          # rows without the field (or with it null)
      column: meta.env_name                # a row field; dots walk into mappings (verl's env_name lands in meta)
      sets: {visual_toolbox_v2: [image_zoom_in_tool], "": []}

A field value is a key of ``tools.sets`` or a list of tool names. An empty set means no tool: such a row's
trajectories end at their first call (stop reason ``max_tool_calls``), as a sample without an environment
does in DeepEyes. The system prompt of each row declares that row's tools (`mmreason.train.data`), and the
GRPO step rolls out each tool set as its own batch (`split_by_tools`). Unknown values stop the run before
training, naming the sample.

>>> from mmreason.config import load_recipe_dict
>>> t = load_recipe_dict({"tools": {"names": ["image_zoom_in_tool"], "column": "meta.env_name",
...                                 "sets": {"": []}}}).tools
>>> row_tools(t, {"id": "a", "meta": {"env_name": ""}}), row_tools(t, {"id": "b"})
((), ('image_zoom_in_tool',))
>>> split_by_tools(t, [{"meta": {"env_name": ""}}, {}, {"meta": {"env_name": ""}}])
[((), [0, 2]), (('image_zoom_in_tool',), [1])]
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mmreason.errors import RecipeError


def field_value(row: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a row (None where any part is missing)."""
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def row_tools(tools: Any, row: Mapping[str, Any]) -> tuple[str, ...]:
    """The tool names a row's rollouts may call, from the recipe's `tools` section (module docstring)."""
    if tools.column is None:
        return tuple(tools.names)
    value = field_value(row, tools.column)
    where = f"sample {row.get('id')!r}: tools.column {tools.column}"
    if value is None:
        return tuple(tools.names)
    if isinstance(value, str):
        if value in tools.sets:
            return tuple(tools.sets[value])
        known = ", ".join(repr(k) for k in tools.sets) or "none"
        raise RecipeError(f"{where} is {value!r}, which is not a key of tools.sets (known: {known}); add it "
                          "there, or give the row a list of tool names")
    if isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and not isinstance(value, Mapping)):
        names = list(value.tolist() if hasattr(value, "tolist") else value)
        if all(isinstance(n, str) for n in names):
            return tuple(names)
    raise RecipeError(f"{where} is {value!r}: expected a key of tools.sets or a list of tool names")


def check_rows(tools: Any, rows: Sequence[Mapping[str, Any]], *, split: str = "train") -> None:
    """Before training: every row's field reads, and every tool set it picks resolves."""
    from mmreason.tools import resolve_tools

    if tools.column is None:
        return
    seen: set[tuple[str, ...]] = set()
    for row in rows:
        names = row_tools(tools, row)
        if names and names not in seen:
            try:
                resolve_tools(names)
            except (RecipeError, KeyError, ValueError) as exc:
                raise RecipeError(f"data.{split}: sample {row.get('id')!r}: its tools {list(names)} "
                                  f"(tools.column {tools.column}): {exc}") from None
        seen.add(names)


def split_by_tools(tools: Any, rows: Sequence[Mapping[str, Any]]) -> list[tuple[tuple[str, ...], list[int]]]:
    """Row indices grouped by tool set, sets in order of first appearance (one rollout batch each)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row_tools(tools, row), []).append(i)
    return list(groups.items())
