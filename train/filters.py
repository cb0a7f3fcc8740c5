"""DeepEyes' data filters (arXiv 2505.14362 §3.3), run with the current policy's own rollouts:

- `difficulty_filter`: ``k`` sampled rollouts per question; keep the questions whose pass rate is neither 0
  nor 1 (all-wrong and all-right groups give GRPO no advantage to learn from).
- `tool_utility_filter`: keep the questions the model answers correctly after a zoom on the ground-truth
  region (a forced first turn calling the zoom tool on it, so the crop comes back exactly as in training)
  but not without tools (the same prompt, no tool allowed). The region is the row's ``rationale_regions``
  on its first image, else its ``boxes`` (their union when several); ``k`` rollouts each way, greedy by
  default, and "answers correctly" means a pass rate above one half.

"Correct" is a reward with a threshold (`reward_judge`: by default the ``accuracy`` reward >= 0.5), so an
LLM judge or any reward of the library decides it as in training. Rows are canonical rows as the trainer
reads them (`mmreason.train.data.load_data`: media paths absolute, the method prompt applied). Each
function returns one `Verdict` per row, in order; the caller keeps the rows whose ``keep`` is true.

    policy, processor = mmreason.models.load("outputs/sft/final")
    rows = load_data(recipe).rows
    verdicts = difficulty_filter(policy, processor, rows, "qwen2_5_vl", k=8, correct=reward_judge())
    kept = [r for r, v in zip(rows, verdicts) if v.keep]

>>> judge = reward_judge()
>>> judge(["<answer>red</answer>", "<answer>blue</answer>"], [{"answer": "red"}, {"answer": "red"}])
[True, False]
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from mmreason.errors import RecipeError

Judge = Callable[[Sequence[str], Sequence[Mapping[str, Any]]], list]


@dataclass(frozen=True)
class Verdict:
    """A row's outcome: ``pass_rate`` (without tools, for the tool-utility filter), ``pass_rate_with``
    (after the ground-truth zoom; None for the difficulty filter) and whether to keep it."""

    id: Any
    keep: bool
    pass_rate: float
    pass_rate_with: float | None = None


def reward_judge(name: str = "accuracy", *, threshold: float = 0.5, family: str | None = None,
                 **options: Any) -> Judge:
    """``judge(completions, rows) -> [bool]``: the reward `name` (options bound, e.g. a ``judge`` server)
    reaches `threshold`; a reward that does not apply (None) counts as wrong."""
    from mmreason.rewards import bind_reward
    from mmreason.train.scoring import columns_of

    fn = bind_reward(name, **({"family": family} if family else {}), **options)

    def judge(completions: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list:
        values = fn(list(completions), **columns_of(rows)) if completions else []
        return [v is not None and v >= threshold for v in values]

    return judge


def _rates(trajs: Sequence[Any], rows: Sequence[Mapping[str, Any]], k: int, correct: Judge) -> list[float]:
    ok = correct([t.completion for t in trajs], [rows[t.group] for t in trajs])
    return [sum(ok[r * k:(r + 1) * k]) / k for r in range(len(rows))]


def _config(config: Any, **changes: Any) -> Any:
    from mmreason.rollout import RolloutConfig

    return replace(config or RolloutConfig(), **changes)


def difficulty_filter(policy: Any, processor: Any, rows: Sequence[Mapping[str, Any]], family: str, *,
                      correct: Judge, k: int = 8, config: Any = None, **rollout_options: Any) -> list[Verdict]:
    """Keep rows whose pass rate over `k` sampled rollouts (``config``: the rollout settings, sampling)
    is strictly between 0 and 1. ``rollout_options`` go to `mmreason.rollout.rollout` (tool settings,
    media options, a backend)."""
    from mmreason.rollout import rollout

    if k < 2:
        raise RecipeError(f"difficulty filter: k={k}: a pass rate over fewer than 2 rollouts is 0 or 1")
    trajs = rollout(policy, processor, list(rows), family, config=_config(config, do_sample=True),
                    group_size=k, **rollout_options)
    return [Verdict(row.get("id"), 0.0 < p < 1.0, p) for row, p in zip(rows, _rates(trajs, rows, k, correct))]


def ground_truth_region(row: Mapping[str, Any]) -> list[float] | None:
    """The evidence region of a row on its first image, in original pixels: the union of its
    ``rationale_regions`` there, else of its ``boxes``; None when it has neither.

    >>> ground_truth_region({"boxes": [{"box": [10, 10, 20, 20]}, {"box": [30, 5, 40, 15]}]})
    [10.0, 5.0, 40.0, 20.0]
    """
    for column in ("rationale_regions", "boxes"):
        boxes = [item["box"] for item in row.get(column) or ()
                 if isinstance(item, Mapping) and item.get("box") is not None and (item.get("image") or 0) == 0]
        if boxes:
            return [float(min(b[0] for b in boxes)), float(min(b[1] for b in boxes)),
                    float(max(b[2] for b in boxes)), float(max(b[3] for b in boxes))]
    return None


def zoom_call(row: Mapping[str, Any], family: str, *, tool: str = "image_zoom_in_tool", settings: Any = None,
              media_options: Mapping[str, Any] | None = None) -> str:
    """The tool call that zooms on the row's ground-truth region, written in the frame the tool reads
    (``settings.coord_frame``, else the family's), as the policy would write it."""
    from mmreason.geometry import convert_box
    from mmreason.tools import ToolEnv
    from mmreason.traces.render import render_tool_call

    region = ground_truth_region(row)
    if region is None:
        raise RecipeError(f"tool-utility filter: sample {row.get('id')!r} has no rationale_regions or boxes "
                          "on its first image: there is no ground-truth region to zoom on")
    env = ToolEnv.from_row(row, family, media_options=media_options, settings=settings)
    if not env.images:
        raise RecipeError(f"tool-utility filter: sample {row.get('id')!r} has no image to zoom into")
    box = convert_box(region, "pixel", env.coord_frame, env.images[0].frame)
    digits = 3 if env.coord_frame == "norm1" else 0
    return render_tool_call(tool, {"bbox_2d": [round(v, digits) if digits else int(round(v)) for v in box]})


def tool_utility_filter(policy: Any, processor: Any, rows: Sequence[Mapping[str, Any]], family: str, *,
                        correct: Judge, k: int = 1, tool: str = "image_zoom_in_tool", config: Any = None,
                        tool_settings: Any = None, media_options: Mapping[str, Any] | None = None,
                        **rollout_options: Any) -> list[Verdict]:
    """Keep rows answered correctly (pass rate > 1/2 over `k` rollouts; greedy when k is 1) after a zoom
    on the ground-truth region but not without tools. Every row needs a region (checked first)."""
    from mmreason.rollout import rollout

    if k < 1:
        raise RecipeError(f"tool-utility filter: k={k}: need at least one rollout per question")
    calls = [zoom_call(row, family, tool=tool, settings=tool_settings, media_options=media_options)
             for row in rows]  # every row checked before any rollout
    sample = {"do_sample": k > 1}
    common = dict(media_options=media_options, tool_settings=tool_settings, **rollout_options)
    bare = rollout(policy, processor, list(rows), family, group_size=k,
                   config=_config(config, tools=(), max_tool_calls=0, **sample), **common)
    without = _rates(bare, rows, k, correct)
    zoom = _config(config, tools=(tool,), max_tool_calls=max(1, (config.max_tool_calls if config else 1)),
                   max_turns=max(2, config.max_turns if config else 2), **sample)
    with_zoom = []
    for row, call in zip(rows, calls):  # the forced call differs per row: one rollout batch each
        # the forced call's tokens count as generated: grow the budgets by them, so it is never cut short
        extra = len(processor.tokenizer(call, add_special_tokens=False).input_ids)
        budget = replace(zoom, max_new_tokens=zoom.max_new_tokens + extra,
                         max_completion_tokens=zoom.max_completion_tokens + extra)
        trajs = rollout(policy, processor, [row], family, group_size=k, config=budget, forced={0: call}, **common)
        with_zoom += _rates(trajs, [row], k, correct)
    return [Verdict(row.get("id"), w > 0.5 and p <= 0.5, p, w) for row, p, w in zip(rows, without, with_zoom)]
