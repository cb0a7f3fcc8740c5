"""Reasoning traces: parse model output (blocks, tool calls, boxes, points, actions) and render it back.

Modules, each depending only on the ones before it:

- `tags`: the tag vocabulary (``<think>``, ``<answer>``, ``<tool_call>``, ... and GS-Reasoner's ``<bbox>``);
- `scan`: the scanners that find 2D boxes, 3D boxes, points and Video-CoM manipulations in text;
- `parsing`: `parse` (never raises) -> `Trace`, and the quicker `parse_blocks`, `tag_counts`, extractors;
- `render`: the writers, the inverse of `parse`, which data builders use for SFT targets.

Every module imports only the standard library, so this package re-exports their public names.
"""

from mmreason.traces.parsing import (
    Block,
    ToolCall,
    Trace,
    extract_answer,
    extract_boxed,
    find_tool_calls,
    parse,
    parse_blocks,
    tag_counts,
)
from mmreason.traces.render import (
    render_action,
    render_block,
    render_box,
    render_box_3d,
    render_gcot_objects,
    render_point,
    render_tool_call,
)
from mmreason.traces.scan import (
    Box3DMention,
    BoxMention,
    Manipulation,
    PointMention,
    find_boxes,
    find_boxes_3d,
    find_points,
)
from mmreason.traces.tags import BLOCK_TAGS, INLINE_TAGS

__all__ = [
    "BLOCK_TAGS", "INLINE_TAGS", "Block", "Box3DMention", "BoxMention", "Manipulation", "PointMention",
    "ToolCall", "Trace", "extract_answer", "extract_boxed", "find_boxes", "find_boxes_3d", "find_points",
    "find_tool_calls", "parse", "parse_blocks", "render_action", "render_block", "render_box",
    "render_box_3d", "render_gcot_objects", "render_point", "render_tool_call", "tag_counts",
]
