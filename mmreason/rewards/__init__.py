"""The reward library: TRL-compatible reward functions for grounded multimodal reasoning.

Every reward is ``fn(completions, *, option=default, **columns) -> list[float | None]``: completions are
strings or conversational message lists, dataset columns arrive by name, ``None`` means not applicable,
sub-scores go to TRL's ``log_metric`` as ``<reward>/<name>``. Options are keyword-only and bound with
:func:`bind_reward` (a ``functools.partial`` that keeps the name, so TRL logs ``rewards/<name>`` and the
bound reward pickles). No reward raises on model output; a bad option raises ``RecipeError`` at bind time.

Parsed once: a caller that has parsed each completion (``mmreason.traces.parse`` of its text, as the GRPO
step does) passes the results as the ``traces`` column, a list of ``Trace`` aligned with ``completions``;
every reward reads those instead of parsing again. Without it (TRL calls with strings only) each reward
parses what it reads itself, once per row within the call.

``REWARDS`` names the built-ins; anything else is ``package.module:attr`` or ``path/file.py:attr``.
``STEP_REWARDS`` names the rewards that also score each step of a completion, for token-level credit:
``fn(completion_or_trace, row, **options) -> [(char_start, char_end, score), ...]``, where ``options`` are
the reward's own, as the recipe binds them. :func:`build_rewards` binds a recipe's ``rewards`` section.

>>> reward = bind_reward("box_iou_hit", threshold=0.5)
>>> reward.__name__, reward(["<answer>[0, 0, 10, 10]</answer>"], boxes=[[{"box": [0, 0, 10, 12]}]])
('box_iou_hit', [1.0])
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from mmreason.config import Recipe
from mmreason.errors import RecipeError
from mmreason.registry import resolve_name
from mmreason.rewards import (
    accuracy, audio, deepeyes, format, grit, grounding, gs_reasoner, gui, infigui, listener, penalties, ton,
    video_com, virl,
)
from mmreason.rewards._common import StepSpans, keyword_options

REWARDS: dict[str, Callable[..., list]] = {
    # generic: format
    "think_answer_format": format.think_answer_format,
    "think_rethink_answer_format": format.think_rethink_answer_format,
    "tag_format": format.tag_format,
    # generic: answers
    "accuracy": accuracy.accuracy,
    "exact_match": accuracy.exact_match,
    "choice_accuracy": accuracy.choice_accuracy,
    "numeric_accuracy": accuracy.numeric_accuracy,
    "math_accuracy": accuracy.math_accuracy,
    "llm_judge": accuracy.llm_judge,
    # generic: geometry
    "box_iou": grounding.box_iou,
    "box_giou": grounding.box_giou,
    "box_iou_hit": grounding.box_iou_hit,
    "union_box_iou": grounding.union_box_iou,
    "referring_iou": grounding.referring_iou,
    "box_map": grounding.box_map,
    "click_in_box": grounding.click_in_box,
    "click_distance": grounding.click_distance,
    "box_iou_3d": grounding.box_iou_3d,
    # generic: hygiene
    "repetition_penalty": penalties.repetition_penalty,
    "length_penalty": penalties.length_penalty,
    # GRIT (total and the released code's six terms)
    "grit": grit.grit,
    "grit_gpt_score": grit.grit_gpt_score,
    "grit_bleu": grit.grit_bleu,
    "grit_answer_format": grit.grit_answer_format,
    "grit_repetition": grit.grit_repetition,
    "grit_grounded_format": grit.grit_grounded_format,
    "grit_think_rethink_format": grit.grit_think_rethink_format,
    # DeepEyes, ViRL, GS-Reasoner, InfiGUI-R1
    "deepeyes": deepeyes.deepeyes,
    "virl": virl.virl,
    "gs_reasoner": gs_reasoner.gs_reasoner,
    "gs_format": gs_reasoner.gs_format,
    "gs_grounding": gs_reasoner.gs_grounding,
    "vsi_accuracy": gs_reasoner.vsi_accuracy,
    "infigui": infigui.infigui,
    # GUI, Video-CoM, TON, listener
    "gui_action_type": gui.gui_action_type,
    "gui_action_match": gui.gui_action_match,
    "ui_ins": gui.ui_ins,
    "video_com": video_com.video_com,
    "ton_format": ton.ton_format,
    "ton_accuracy": ton.ton_accuracy,
    "ton_gui_format": ton.ton_gui_format,
    "ton_gui_type": ton.ton_gui_type,
    "ton_gui_value": ton.ton_gui_value,
    "listener": listener.listener,
    # audio: when things are heard, and whether the model listened there (play_audio)
    "audio_span_iou": audio.audio_span_iou,
    "audio_evidence": audio.audio_evidence,
    "audio_reasoning": audio.audio_reasoning,
}

# name in `REWARDS` -> its step reward
STEP_REWARDS: dict[str, Callable[..., StepSpans]] = {
    "virl": virl.virl_steps,
    "video_com": video_com.video_com_steps,
}


def resolve_reward(spec: str | Callable) -> Callable[..., list]:
    """A reward by registry name, ``module:attr`` or ``file.py:attr`` (a callable passes through)."""
    if callable(spec):
        return spec
    return resolve_name(spec, REWARDS, kind="reward")


def reward_options(fn: Callable) -> dict[str, Any]:
    """The keyword-only options of a reward and their defaults (``inspect.Parameter.empty`` when required)."""
    return keyword_options(fn)


def bind_reward(spec: str | Callable, /, **options: Any) -> Callable[..., list]:
    """Bind options to a reward: a picklable ``functools.partial`` that keeps the reward's ``__name__``.

    Unknown options and invalid values raise ``RecipeError`` here, not in the middle of training
    (the bound reward is called once on an empty batch to validate them).
    """
    fn = resolve_reward(spec)
    known = reward_options(fn)
    if known:  # third-party rewards with only **kwargs accept anything
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise RecipeError(f"reward {getattr(fn, '__name__', spec)!r}: unknown option(s) {unknown}; "
                              f"known: {sorted(known)}")
    bound = functools.partial(fn, **options)
    bound.__name__ = getattr(fn, "__name__", str(spec))
    bound.__doc__ = getattr(fn, "__doc__", None)
    try:
        bound([])
    except RecipeError:
        raise
    except TypeError as exc:  # e.g. a required option left out
        raise RecipeError(f"reward {bound.__name__!r}: {exc}") from exc
    except Exception:  # third-party rewards may not accept an empty batch; they are checked when called
        pass
    return bound


@dataclass(frozen=True)
class RewardTerm:
    name: str  # the key it is logged under: `rewards/<name>`
    spec: str  # the recipe's `name` (what route_by_source and `STEP_REWARDS` refer to)
    fn: Callable[..., list]
    weight: float
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RewardSet:
    terms: tuple[RewardTerm, ...]
    routes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def applies(self, term: RewardTerm, row: Mapping[str, Any]) -> bool:
        source = row.get("source")
        return source not in self.routes or term.spec in self.routes[source]


def build_rewards(recipe: Recipe) -> RewardSet:
    """Bind every reward of a recipe's ``rewards.funcs`` (a bad option fails here, naming the entry).

    The same reward listed twice with other options is logged as ``<name>``, ``<name>_2``, ...
    """
    terms, seen = [], defaultdict(int)
    for i, spec in enumerate(recipe.rewards.funcs):
        try:
            fn = bind_reward(spec.name, **spec.kwargs)
        except RecipeError as exc:
            raise RecipeError(f"rewards.funcs.{i}: {exc}") from None
        base = getattr(fn, "__name__", spec.name).rsplit(":", 1)[-1]
        seen[base] += 1
        name = base if seen[base] == 1 else f"{base}_{seen[base]}"
        terms.append(RewardTerm(name, spec.name, fn, spec.weight, dict(spec.kwargs)))
    return RewardSet(tuple(terms), dict(recipe.rewards.route_by_source))


__all__ = ["REWARDS", "STEP_REWARDS", "resolve_reward", "bind_reward", "reward_options", "RewardTerm",
           "RewardSet", "build_rewards"]
