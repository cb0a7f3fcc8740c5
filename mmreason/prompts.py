"""Method prompts: the instruction around each question that a method trains and evaluates its policy with.

A policy only calls a zoom tool it was told about, and only writes `<rethink>` when asked to, so the
prompt is part of a method's recipe (EasyR1's ``format_prompt``, the methods' own prompt files). The
format strings below carry the methods' published wording where exactness matters for their checkpoints
(each cited at its entry below). A recipe picks one with ``data.prompt`` and may override any
part with ``data.system_prompt`` / ``data.prompt_prefix`` / ``data.prompt_suffix``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Mapping

from mmreason.errors import RecipeError


@dataclass(frozen=True)
class PromptStyle:
    """`system` becomes the system turn (``{tools}`` is replaced by the tool declarations); `prefix` and
    `suffix` wrap the question text of the first user turn."""

    system: str | None = None
    prefix: str = ""
    suffix: str = ""


PROMPTS: dict[str, PromptStyle] = {
    "none": PromptStyle(),
    # GRIT (arXiv 2505.15879; grpo-gr/GRPO_GR.py in github.com/eric-ai-lab/GRIT): "Question: " + q + a
    # suffix asking for grounded thinking, a rethink, then the answer.
    "grit": PromptStyle(prefix="Question: ", suffix=(
        " First think between <think> and </think>; while thinking, give the coordinates of every image "
        "region you rely on in JSON with key 'bbox_2d'. Then rethink between <rethink> </rethink>, and give "
        "the final answer after <answer>.")),
    # DeepEyes (arXiv 2505.14362, App. A; verl/workers/agent/envs/mm_process_engine/prompt.py in
    # github.com/Visual-Agent/DeepEyes): the tool declaration as system prompt, the user prompt's format
    # instruction verbatim.
    "deepeyes": PromptStyle(system="{tools}", prefix="Question: ", suffix=(
        "\nThink first, call **image_zoom_in_tool** if needed, then answer. Format strictly as: "
        "<think>...</think> <tool_call>...</tool_call> (if tools needed) <answer>...</answer>")),
    # ViRL (arXiv 2511.23031) publishes no prompt: the DeepEyes layout, with looking made a required step.
    "virl": PromptStyle(system="{tools}", prefix="Question: ", suffix=(
        "\nThink first and look closer at the evidence with the tool before answering. Format strictly as: "
        "<think>...</think> <tool_call>...</tool_call> <answer>...</answer>")),
    # InfiGUI-R1 (arXiv 2504.14239, §3.2.1): the reasoning system prompt; the action follows as a tool call.
    "infigui_r1": PromptStyle(system=(
        "You FIRST think about the reasoning process as an internal monologue and then provide the final "
        "answer. The reasoning process MUST BE enclosed within <think> </think> tags.")),
    # GS-Reasoner (arXiv 2510.13800; llava/submodules/lmms_eval/tasks/vsibench/vsibench_cot.yaml in
    # github.com/WU-CVGL/GS-Reasoner): grounded CoT with 3D boxes of the objects the answer depends on.
    "gs_reasoner": PromptStyle(suffix=(
        "\nThink between <think> and </think>: name each relevant object, its count and its 3D boxes as "
        "name count <bbox>(x1, y1, z1, x2, y2, z2)</bbox> in metres, then reason; give the short answer "
        "between <answer> and </answer>.")),
    # R1-V / TON (arXiv 2505.16854; src/r1-v/src/open_r1/grpo.py in github.com/kokolerk/TON): think, then
    # answer.
    "think_answer": PromptStyle(suffix=(
        " Output the thinking process in <think> </think> and the final answer in <answer> </answer> tags.")),
}


def prompt_style(name: str, *, system: str | None = None, prefix: str | None = None,
                 suffix: str | None = None) -> PromptStyle:
    """The named style with any part overridden; an unknown name is a `RecipeError` listing the known ones."""
    if name not in PROMPTS:
        raise RecipeError(f"data.prompt: unknown prompt {name!r}; known: {', '.join(PROMPTS)}")
    style = PROMPTS[name]
    changes = {k: v for k, v in (("system", system), ("prefix", prefix), ("suffix", suffix)) if v is not None}
    return replace(style, **changes)


def apply_prompt(row: Mapping, style: PromptStyle, *, tools_text: str = "") -> dict:
    """A copy of `row` with the style applied: a system turn first (unless the row brings its own), the
    prefix before the first text part of the first user turn and the suffix after its last text part.

    >>> row = {"id": "a", "messages": [{"role": "user", "content": [
    ...     {"type": "image", "image": "a.png"}, {"type": "text", "text": "How many cats?"}]}]}
    >>> out = apply_prompt(row, PROMPTS["grit"])
    >>> out["messages"][0]["content"][1]["text"].startswith("Question: How many cats? First think")
    True
    """
    out = copy.deepcopy(dict(row))
    messages = out.get("messages") or []
    user = next((m for m in messages if m.get("role") == "user"), None)
    if user is not None:
        texts = [p for p in user.get("content") or [] if p.get("type") == "text"]
        if not texts:
            texts = [{"type": "text", "text": ""}]
            user["content"] = list(user.get("content") or []) + texts
        texts[0]["text"] = style.prefix + (texts[0].get("text") or "")
        texts[-1]["text"] = (texts[-1].get("text") or "") + style.suffix
    has_system = any(m.get("role") == "system" for m in messages)
    if style.system and not has_system:
        system = style.system.replace("{tools}", tools_text).strip()
        if system:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
    out["messages"] = messages
    return out
