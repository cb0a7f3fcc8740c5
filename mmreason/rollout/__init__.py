"""Batched multi-turn rollouts with tools: generate, parse the call, run it, show the result, go on.

Modules, each depending only on the ones before it:

- `tokens`: token bookkeeping (observation turns, trajectories, loss masks, steps, batches);
- `video_com`: Video-CoM's text protocol (where a turn ends, how a manipulation line runs);
- `cache`: the key/value cache HF generation keeps across a trajectory's turns;
- `backends`: generation, HF ``model.generate`` (default) or vLLM;
- `loop`: `rollout` itself and its `RolloutConfig`.

This package re-exports the names trainers, evaluation and demos use.
"""

from mmreason.rollout.backends import (
    GenerationParams,
    HFBackend,
    RolloutBackend,
    TurnInput,
    VLLMBackend,
    collapse_placeholders,
)
from mmreason.rollout.loop import (
    CALL_SYNTAXES,
    STOP_REASONS,
    RolloutConfig,
    cut_turn,
    prepare_prompt,
    rollout,
)
from mmreason.rollout.tokens import (
    Trajectory,
    collate_trajectories,
    model_inputs,
    segments_from_char_spans,
    step_token_segments,
)
from mmreason.rollout.video_com import VIDEO_COM_TOOLS, ManipulationCall, read_manipulation, run_manipulation

__all__ = [
    "CALL_SYNTAXES", "GenerationParams", "HFBackend", "ManipulationCall", "RolloutBackend", "RolloutConfig",
    "STOP_REASONS", "Trajectory", "TurnInput", "VIDEO_COM_TOOLS", "VLLMBackend", "collapse_placeholders",
    "collate_trajectories", "cut_turn", "model_inputs", "prepare_prompt", "read_manipulation", "rollout",
    "run_manipulation", "segments_from_char_spans", "step_token_segments",
]
