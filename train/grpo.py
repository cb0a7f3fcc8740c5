"""GRPO for multimodal, multi-turn policies with tools and step-level credit, on `accelerate`.

    mmreason train debug/tiny_grpo grpo.max_steps=4
    accelerate launch --config_file train/accelerate/ddp.yaml -m mmreason.train.grpo RECIPE.yaml [--resume]

`run` reads top to bottom: recipe -> accelerator -> rewards -> checks (judges and listeners asked too) ->
data -> `setup` (policy, checks against the data, reference, optimizer) -> `start` (resume or seed) ->
`train`, the loop of `grpo_step` (roll out, score, advantages, update), logging every `grpo.logging_steps`
(metrics.jsonl, and `grpo.log_completions` decoded completions to completions.jsonl), validating on
`data.eval` at `grpo.eval_steps` (`mmreason.train.grpo_eval`: eval/* metrics in the same records) and
checkpointing every `grpo.save_steps`.
Steps on which every group's rewards are equal teach nothing; a run of them is warned about once
(`FlatRewards`).
Why our own loop rather than TRL's GRPOTrainer: video inputs, token-level advantages from step rewards
and multi-turn image-returning tools, none of which TRL's trainer takes.

Each process takes whole groups: `grpo.batch_size` prompts per step are split over the processes, each
rolls out `num_generations` completions per prompt. The prompt order is a pure function of the seed and
the data position, so a resumed run draws exactly the prompts an uninterrupted one would.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np

from mmreason.config import Recipe, format_recipe, load_recipe
from mmreason.recipes import find_recipe, for_training, recipe_parser
from mmreason.rewards import build_rewards
from mmreason.train.card import model_card, write_card
from mmreason.train.checkpoint import TrainState, load_checkpoint, resolve_resume, save_checkpoint
from mmreason.train.data import load_data, media_options
from mmreason.train.distributed import enable_cpu_fsdp, no_accelerator, save_sharded_pretrained
from mmreason.train.grpo_eval import eval_rows, evaluate, is_eval_step
from mmreason.train.grpo_step import StepContext, grpo_step, reduce_metrics
from mmreason.train.logging import Progress, RunLogger
from mmreason.train.model_setup import (count_parameters, load_policy, load_reference, model_path,
                                        parameter_groups)
from mmreason.train.preflight import check_data, check_recipe, check_services
from mmreason.train.rollout_backend import check_vllm, make_backend, push_weights
from mmreason.train.tool_sets import check_rows

log = logging.getLogger("mmreason.train")

# What the progress bar shows; everything is in metrics.jsonl and tensorboard.
PROGRESS_KEYS = ("loss", "reward", "tool_calls_per_trajectory")
FLAT_STEPS = 3  # consecutive steps with every group zero-variance before the warning


class FlatRewards:
    """Warns once when, for `patience` steps in a row, every group's rewards were equal (zero_variance_frac
    1): every advantage is then 0 and the policy gets no gradient from the rewards.

    >>> watch = FlatRewards(patience=2)
    >>> [watch.update(s, {"zero_variance_frac": 1.0, "reward": 0.0}) for s in (1, 2, 3)]
    [False, True, False]
    """

    def __init__(self, patience: int = FLAT_STEPS, *, completions_logged: bool = False):
        self.patience, self.completions_logged = patience, completions_logged
        self.run, self.warned = 0, False

    def update(self, step: int, metrics: Mapping[str, float]) -> bool:
        """Count this step; True when it is the one that warns."""
        self.run = self.run + 1 if metrics.get("zero_variance_frac", 0.0) >= 1.0 else 0
        if self.warned or self.run < self.patience:
            return False
        self.warned = True
        see = " What the policy writes is in completions.jsonl." if self.completions_logged else ""
        log.warning(
            "GRPO: at steps %d-%d every group's completions got equal rewards (mean reward %.4g), so "
            "every advantage is 0 and the policy learns nothing from the rewards. Likely causes: rewards "
            "that cannot tell the completions apart (a format or answer the policy never or always meets, "
            "a reward that does not read the output format the prompt asks for), completions cut before "
            "the answer (grpo.max_completion_length), or sampling too narrow to vary (grpo.temperature).%s",
            step - self.run + 1, step, metrics.get("reward", float("nan")), see)
        return True


class CutCompletions:
    """Warns once when at least `share` of a logged step's completions stopped at the token budget
    (``stop/max_tokens``): a cut completion is scored as cut, so a budget below what the task's answers need
    teaches the policy to avoid the long ones.

    >>> watch = CutCompletions(share=0.2, budget=24)
    >>> [watch.update(s, {"stop/max_tokens": v}) for s, v in ((1, 0.1), (2, 0.25), (3, 0.5))]
    [False, True, False]
    """

    def __init__(self, share: float = 0.2, *, budget: int):
        self.share, self.budget, self.warned = share, budget, False

    def update(self, step: int, metrics: Mapping[str, float]) -> bool:
        cut = metrics.get("stop/max_tokens", 0.0)
        if self.warned or cut < self.share:
            return False
        self.warned = True
        log.warning("GRPO step %d: %.0f%% of the completions stopped at grpo.max_completion_length (%d "
                    "tokens) and are scored as cut. If the task's answers need more, raise it (see "
                    "completions.jsonl for what the policy writes).", step, 100 * cut, self.budget)
        return True


def batch_indices(position: int, n: int, batch: int, *, seed: int, shuffle: bool = True, world: int = 1,
                  rank: int = 0) -> list[int]:
    """Row indices of process `rank` for the global batch starting at data `position` (prompts consumed).
    Epoch e visits the rows in the permutation seeded by (seed, e).

    >>> batch_indices(0, 4, 4, seed=0, shuffle=False, world=2, rank=1)
    [2, 3]
    >>> batch_indices(6, 4, 4, seed=0, shuffle=False)
    [2, 3, 0, 1]
    """
    out = []
    for pos in range(position, position + batch):
        epoch, offset = divmod(pos, n)
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
        out.append(int(order[offset]))
    per = batch // world
    return out[rank * per:(rank + 1) * per]


def make_accelerator(recipe: Recipe) -> Any:
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # Vision towers that train may see text-only batches: DDP must then tolerate unused parameters.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=not recipe.model.freeze_vision)
    # The scheduler steps once per optimizer step here, whatever the process count (accelerate's default
    # would step it once per process).
    accelerator = Accelerator(gradient_accumulation_steps=recipe.grpo.grad_accum,
                              step_scheduler_with_optimizer=False, kwargs_handlers=[ddp], cpu=no_accelerator())
    enable_cpu_fsdp(accelerator)  # an FSDP launch on CPU processes (accelerate alone would run it as DDP)
    return accelerator


def make_optimizer(model: Any, recipe: Recipe) -> tuple[Any, Any]:
    """AdamW over the trainable parameters and the recipe's schedule (warmup < 1: a fraction of the steps).
    The schedule counts optimizer steps: ``grpo.num_iterations`` per step (warmup in steps is scaled alike)."""
    import torch
    from transformers import get_scheduler

    g = recipe.grpo
    groups = parameter_groups(model, g.lr, g.lr_by_module, section="grpo", weight_decay=g.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=g.lr, weight_decay=g.weight_decay)
    total = g.max_steps * g.num_iterations
    warmup = int(g.warmup * total) if g.warmup < 1 else int(g.warmup) * g.num_iterations
    scheduler = get_scheduler(g.scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=total)
    return optimizer, scheduler


def rollout_settings(recipe: Recipe) -> tuple[Any, Any]:
    from mmreason.rollout import RolloutConfig
    from mmreason.tools import ToolSettings

    t = recipe.tools
    settings = ToolSettings(coord_frame=t.coord_frame, small_box=t.small_box, invalid_penalty=t.invalid_penalty,
                            segment_seconds=t.segment_seconds, segment_frames=t.segment_frames)
    return RolloutConfig.from_recipe(recipe), settings


def save(ctx: StepContext, state: TrainState) -> None:
    g = ctx.recipe.grpo
    path = save_checkpoint(ctx.accelerator, ctx.recipe.output_dir, state, model=ctx.model,
                           processor=ctx.processor, recipe_text=format_recipe(ctx.recipe),
                           keep=g.save_total_limit,
                           card=model_card(ctx.recipe, step=state.step, merged=False, recipe_file="../recipe.yaml"))
    log.info("saved %s", path)


def export_final(ctx: StepContext, source: str | None = None) -> None:
    """``output_dir/final``: a model `mmreason.models.load` opens (LoRA merged), for a next stage or eval, with
    its card (`source`: the recipe file the run started from)."""
    from pathlib import Path

    acc = ctx.accelerator
    out = Path(ctx.recipe.output_dir) / "final"
    lora = ctx.recipe.model.lora.enabled
    model = acc.unwrap_model(ctx.model)
    if not save_sharded_pretrained(model, out, main=acc.is_main_process, merge_lora=lora):
        state_dict = acc.get_state_dict(ctx.model)  # gathers ZeRO-3 shards: every process takes part
        if acc.is_main_process:
            if lora:
                model, state_dict = model.merge_and_unload(), None  # training is over: merge in place
            model.save_pretrained(out, state_dict=state_dict)
    if acc.is_main_process:
        ctx.processor.save_pretrained(out)
        (out / "recipe.yaml").write_text(format_recipe(ctx.recipe), encoding="utf-8")
        write_card(out, ctx.recipe, source=source)
    acc.wait_for_everyone()


def is_logging_step(step: int, g: Any) -> bool:
    return step % g.logging_steps == 0 or step == g.max_steps


def train(ctx: StepContext, rows: Sequence[dict], state: TrainState, logger: RunLogger,
          eval_set: Sequence[dict] = ()) -> TrainState:
    acc, g = ctx.accelerator, ctx.recipe.grpo
    # the main process logs its own completions: enough to see what the policy writes, no gathering
    keep_samples = acc.is_main_process and g.log_completions > 0
    flat = FlatRewards(completions_logged=keep_samples)
    cut = CutCompletions(budget=g.max_completion_length)
    if eval_set and g.eval_on_start and state.step == 0:
        logger.log(0, evaluate(ctx, eval_set))
    with Progress(g.max_steps, start=state.step, enabled=acc.is_main_process, description="grpo") as bar:
        while state.step < g.max_steps:
            picked = batch_indices(state.data_position, len(rows), g.batch_size, seed=ctx.recipe.data.seed,
                                   shuffle=ctx.recipe.data.shuffle, world=acc.num_processes,
                                   rank=acc.process_index)
            samples = [] if keep_samples and is_logging_step(state.step + 1, g) else None
            metrics = reduce_metrics(acc, grpo_step(ctx, [rows[i] for i in picked], samples=samples))
            state = TrainState(state.step + 1, state.data_position + g.batch_size)
            metrics["epoch"] = state.data_position / len(rows)
            validated = bool(eval_set) and is_eval_step(state.step, g)
            if validated:
                metrics.update(evaluate(ctx, eval_set))
            if is_logging_step(state.step, g) or validated:
                logger.log(state.step, metrics)
                if samples:
                    logger.log_samples(state.step, samples)
            if acc.is_main_process:
                flat.update(state.step, metrics)
                cut.update(state.step, metrics)
            bar.update(state.step, metrics, PROGRESS_KEYS)
            if state.step % g.save_steps == 0 or state.step == g.max_steps:
                save(ctx, state)
    return state


def setup(recipe: Recipe, accelerator: Any, rows: Sequence[dict], rewards: Any,
          eval_set: Sequence[dict] = ()) -> StepContext:
    """Policy (+ reference), the checks that need the processor (on the eval rows too), optimizer and
    schedule, rollout settings."""
    from accelerate.utils import set_seed

    set_seed(recipe.grpo.seed)  # LoRA initialisation, identical on every process
    path = model_path(recipe, accelerator)
    model, processor = load_policy(recipe, path)
    options = media_options(recipe)
    check_data(recipe, rows, processor, rewards, model=model, media_options=options)
    if eval_set:
        check_data(recipe, eval_set, processor, rewards, model=model, media_options=options)
    reference = load_reference(recipe, path) if recipe.grpo.beta and not recipe.model.lora.enabled else None
    optimizer, scheduler = make_optimizer(model, recipe)
    model, optimizer = accelerator.prepare(model, optimizer)
    if reference is not None:
        reference = accelerator.prepare_model(reference, evaluation_mode=True)
    accelerator.register_for_checkpointing(scheduler)
    trainable, total = count_parameters(model)
    log.info("GRPO on %d prompts; %s of %s parameters train", len(rows), f"{trainable:,}", f"{total:,}")
    rollout_config, tool_settings = rollout_settings(recipe)
    return StepContext(recipe, accelerator, model, processor, rewards, optimizer, scheduler, rollout_config,
                       options, tool_settings, reference, make_backend(recipe, processor, path))


def start(ctx: StepContext) -> tuple[TrainState, bool]:
    """Resume (weights, optimizer, scheduler, RNG of every process, data position) or start fresh."""
    from accelerate.utils import set_seed

    acc, recipe = ctx.accelerator, ctx.recipe
    resume = resolve_resume(recipe.grpo.resume, recipe.output_dir)
    if resume is None:
        set_seed(recipe.grpo.seed + acc.process_index)  # each process samples its own completions
        state = TrainState()
    else:
        state = load_checkpoint(acc, resume)
        if acc.is_main_process:
            print(f"resumed from {resume} (step {state.step}, {state.data_position} prompts seen)",
                  flush=True)
    # a vLLM engine starts from the checkpoint on disk; a resumed policy differs from it
    push_weights(ctx.backend, acc.unwrap_model(ctx.model))
    return state, resume is not None


def run(recipe: Recipe, *, resume: str | None = None, source: str = "recipe") -> int:
    """Train as the recipe's `grpo` section says; `resume` (``auto`` or a checkpoint) replaces
    ``grpo.resume``. Returns the exit status."""
    recipe = for_training(recipe, "grpo", resume=resume, source=source)
    accelerator = make_accelerator(recipe)
    if accelerator.is_main_process:
        print(format_recipe(recipe), end="", flush=True)
    rewards = build_rewards(recipe)
    check_recipe(recipe, rewards, world_size=accelerator.num_processes)  # before anything large loads
    check_vllm(recipe)
    check_services(rewards)  # a real request to every judge and listener, before the data is built
    rows = load_data(recipe, accelerator=accelerator).rows
    check_rows(recipe.tools, rows)
    eval_set = eval_rows(recipe, accelerator)  # read and checked now: a bad eval set fails before step 1
    ctx = setup(recipe, accelerator, rows, rewards, eval_set)
    state, resumed = start(ctx)
    with RunLogger(recipe.output_dir, report_to=recipe.report_to, run_name=recipe.run_name,
                   config={"recipe": format_recipe(recipe)}, enabled=accelerator.is_main_process,
                   resume_step=state.step if resumed else None) as logger:
        train(ctx, rows, state, logger, eval_set)
    export_final(ctx, source=source)
    accelerator.end_training()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mmreason.train.grpo RECIPE [key=value ...] [--resume [auto|PATH]]` (what `accelerate
    launch` starts in every process)."""
    description = "GRPO with tools and step rewards on accelerate."
    args = recipe_parser("mmreason.train.grpo", description, resume=True).parse_args(argv)
    path = find_recipe(args.recipe)
    return run(load_recipe(path, args.overrides), resume=args.resume, source=str(path))


if __name__ == "__main__":
    raise SystemExit(main())
