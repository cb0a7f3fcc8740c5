"""The evaluated checkpoint and its generations: the model loaded once per run (`LoadedModel`, or an
endpoint through `open_model`), greedy rollouts in batches through `mmreason.rollout`."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from mmreason.errors import RecipeError
from mmreason.families import get_family
from mmreason.eval.run_setup import Setup, checkpoint_budgets, in_batches
from mmreason.eval.tasks import Task


def model_dir(spec: str) -> str:
    """A checkpoint directory, or ``tiny:<family>`` (built once, offline, where training builds it)."""
    from mmreason.models import resolve_checkpoint

    try:
        return str(resolve_checkpoint(spec))
    except RecipeError as exc:
        raise RecipeError(f"--model: {exc}") from None


def model_record(path: str, family: str) -> dict:
    config = Path(path) / "config.json"
    digest = hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else None
    return {"path": str(Path(path).resolve()), "family": family, "config_sha256": digest}


def generate(model: Any, processor: Any, prompts: Sequence[Mapping[str, Any]], task: Task, setup: Setup,
             *, progress: bool = True, on_batch: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Greedy rollouts in batches (`run_setup.in_batches`); per prompt its output, stop reason, tool calls
    and image frames."""
    from mmreason.modalities.collate import frame_columns
    from mmreason.rollout import RolloutConfig, rollout
    from mmreason.tools import ToolSettings

    g = setup.generation
    turns = g.max_turns if task.tools or task.call_syntax != "tool_call" else 1
    # room for what tools return: a picture costs at most the pixel budget in merged patches
    picture_tokens = setup.image_budget[1] // get_family(setup.family).factor ** 2 + 64
    config = RolloutConfig(tools=tuple(task.tools), max_turns=turns, max_new_tokens=g.max_new_tokens,
                           max_completion_tokens=(g.max_new_tokens + picture_tokens) * turns,
                           do_sample=g.do_sample, seed=g.seed, call_syntax=task.call_syntax)
    settings = ToolSettings(coord_frame=task.tool_frame, segment_seconds=setup.segment_seconds)

    def run_batch(batch: Sequence[Mapping[str, Any]]) -> list[dict]:
        trajs = rollout(model, processor, batch, setup.family, config=config, media_options=setup.media,
                        tool_settings=settings)
        return [{"id": t.sample_id, "output": t.completion, "stop_reason": t.stop_reason,
                 "num_tool_calls": t.num_tool_calls, "image_frames": frames}
                for t, frames in zip(trajs, frame_columns([t.frames for t in trajs]))]

    return in_batches(prompts, setup, run_batch, progress=progress, on_batch=on_batch)


class LoadedModel:
    """The checkpoint of a run: its path and family at once, the weights on first use (a resumed run with
    nothing left to generate never loads them), shared by every task of the run."""

    def __init__(self, args: argparse.Namespace):
        from mmreason.models import detect_family

        self.spec, self.dtype, self.device = args.model, args.dtype, args.device
        self.path = model_dir(args.model)
        self.family = detect_family(self.path)
        self.budgets = checkpoint_budgets(self.path)
        self._loaded: tuple[Any, Any] | None = None

    def get(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from mmreason.models import load

            model, processor = load({"path": self.path, "dtype": self.dtype, "device": self.device})
            model.eval()
            self._loaded = (model, processor)
        return self._loaded

    def record(self) -> dict:
        return {**model_record(self.path, self.family), "spec": self.spec}

    def check_task(self, task: Task, name: str) -> None:
        """A checkpoint runs every task (tool tasks with their tools)."""

    def generate(self, prompts: Sequence[Mapping[str, Any]], task: Task, setup: Setup, *, progress: bool = True,
                 on_batch: Callable[[list[dict]], None] | None = None) -> list[dict]:
        return generate(*self.get(), prompts, task, setup, progress=progress, on_batch=on_batch)


def open_model(args: argparse.Namespace) -> Any:
    """The run's model: an OpenAI-compatible ``--endpoint`` serving ``--model`` (`endpoint.EndpointModel`),
    else the checkpoint ``--model`` (`LoadedModel`)."""
    if getattr(args, "endpoint", None):
        from mmreason.eval.endpoint import EndpointModel

        return EndpointModel(args.endpoint, args.model, args.family, api_key_env=args.api_key_env)
    return LoadedModel(args)
