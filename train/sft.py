"""Supervised fine-tuning: TRL's `SFTTrainer` fed by the mmreason collator.

    mmreason train debug/tiny_sft
    accelerate launch -m mmreason.train.sft RECIPE.yaml sft.lr=2e-5 [--resume]

The collator does what TRL's VLM path cannot for our data: any mix of image, multi-image, video, audio
and point-cloud views in one batch, multi-turn tool traces with the observation turns masked,
assistant-only labels, and a ``max_length`` that never cuts inside a media span (a sample that would
lose media tokens fails before the first step, naming it). TRL's own assistant mask and dataset
preparation are therefore switched off. LoRA (peft) or full fine-tuning come from the recipe.

Outputs under ``output_dir``: ``checkpoint-N/`` (the HF Trainer's, with the resolved ``recipe.yaml`` and,
written last, the ``COMPLETE`` marker GRPO checkpoints carry too: ``--resume`` takes the newest complete one),
``metrics.jsonl`` and ``tensorboard/``, and ``final/``: a loadable model (LoRA merged) plus processor,
which the next stage's ``model.path`` can name; LoRA runs also keep the bare adapter in ``adapter/``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmreason.config import Recipe, format_recipe, load_recipe
from mmreason.errors import RecipeError
from mmreason.models.spatial import with_spatial_inputs
from mmreason.recipes import find_recipe, for_training, recipe_parser
from mmreason.train.checkpoint import COMPLETE, write_marker
from mmreason.train.data import load_data, media_options
from mmreason.train.model_setup import count_parameters, load_policy, model_path, parameter_groups
from mmreason.train.preflight import check_sft

log = logging.getLogger("mmreason.train")


@dataclass(frozen=True)
class IndexCollator:
    """The Trainer sees a dataset of row indices (free-form `meta` dicts do not fit one Arrow schema);
    this maps a batch of indices back to canonical rows for the mmreason collator."""

    rows: tuple[dict, ...]
    collator: Any

    def __call__(self, examples: Sequence[Mapping[str, int]]) -> dict:
        return self.collator([self.rows[e["row"]] for e in examples])


def index_dataset(n: int) -> Any:
    import datasets

    return datasets.Dataset.from_dict({"row": list(range(n))})


def sft_arguments(recipe: Recipe) -> Any:
    """TRL `SFTConfig` from the recipe's `sft` section (and `model`, `seed`, `report_to`)."""
    import torch
    from trl import SFTConfig

    s = recipe.sft
    bf16 = recipe.model.dtype == "bfloat16" or (recipe.model.dtype == "auto" and torch.cuda.is_available()
                                                 and torch.cuda.is_bf16_supported())
    return SFTConfig(
        output_dir=recipe.output_dir, run_name=recipe.run_name, seed=recipe.seed, data_seed=recipe.data.seed,
        num_train_epochs=s.epochs, max_steps=s.max_steps or -1, learning_rate=s.lr,
        per_device_train_batch_size=s.batch_size, gradient_accumulation_steps=s.grad_accum,
        lr_scheduler_type=s.scheduler, warmup_steps=s.warmup,
        logging_steps=s.logging_steps, save_steps=s.save_steps, save_total_limit=s.save_total_limit,
        # metrics.jsonl and tensorboard/ come from our callback (the same files a GRPO run writes)
        report_to=["wandb"] if "wandb" in recipe.report_to and _has("wandb") else "none",
        # Our collator cuts (safely) and labels; TRL must neither prepare, truncate nor mask the rows again.
        max_length=None, assistant_only_loss=False, completion_only_loss=False,
        dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False,
        activation_checkpointing=recipe.model.gradient_checkpointing, gradient_checkpointing=None,
        activation_checkpointing_kwargs={"use_reentrant": False}, bf16=bf16,
        fp16=recipe.model.dtype == "float16",
        dataloader_num_workers=0, save_only_model=False, disable_tqdm=False,
    )


def module_optimizer(model: Any, recipe: Recipe, args: Any) -> Any:
    """AdamW with `sft.lr_by_module`'s groups, or None (TRL builds its own) when the recipe sets none; the
    trainer's schedule then scales every group alike."""
    if not recipe.sft.lr_by_module:
        return None
    import torch

    groups = parameter_groups(model, recipe.sft.lr, recipe.sft.lr_by_module, section="sft",
                              weight_decay=args.weight_decay)
    return torch.optim.AdamW(groups, lr=recipe.sft.lr, betas=(args.adam_beta1, args.adam_beta2),
                             eps=args.adam_epsilon)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _callbacks(recipe: Recipe) -> list:
    """Save the resolved recipe into every checkpoint, and mirror the Trainer's logs to metrics.jsonl."""
    from transformers import TrainerCallback

    from mmreason.train.logging import RunLogger

    text = format_recipe(recipe)

    class MMReasonCallback(TrainerCallback):
        logger: RunLogger | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.logger = RunLogger(recipe.output_dir, report_to=(),
                                        resume_step=state.global_step or None)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.logger is not None and logs:
                self.logger.log(state.global_step, logs)

        def on_step_end(self, args, state, control, **kwargs):
            # the Trainer saves over a folder of the same step (after a resume from an earlier one):
            # its old marker must not vouch for the half-written files
            if control.should_save and state.is_world_process_zero:
                (Path(args.output_dir) / f"checkpoint-{state.global_step}" / COMPLETE).unlink(missing_ok=True)

        def on_save(self, args, state, control, **kwargs):
            # called once the Trainer has written the whole checkpoint: the marker goes last
            if state.is_world_process_zero:
                ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if ckpt.is_dir():
                    (ckpt / "recipe.yaml").write_text(text, encoding="utf-8")
                    write_marker(ckpt)

        def on_train_end(self, args, state, control, **kwargs):
            if self.logger is not None:
                self.logger.close()

    return [MMReasonCallback()]


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """The Trainer's ``checkpoint-N`` folders under `output_dir` that carry the ``COMPLETE`` marker, oldest
    first (a run killed while saving leaves one without it)."""
    root = Path(output_dir)
    found = [p for p in root.glob("checkpoint-*") if p.is_dir() and p.name[len("checkpoint-"):].isdigit()
             and (p / COMPLETE).is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[len("checkpoint-"):]))


def _resume_arg(recipe: Recipe) -> str | None:
    """The checkpoint to resume from: ``auto`` takes the newest complete one (None: start fresh); a path
    must be a complete checkpoint."""
    resume = recipe.sft.resume
    if not resume:
        return None
    done = complete_checkpoints(recipe.output_dir if resume == "auto" else Path(resume).parent)
    if resume == "auto":
        partial = sorted(p.name for p in Path(recipe.output_dir).glob("checkpoint-*")
                         if p.is_dir() and p not in done)
        if partial:
            log.warning("skipping %s under %s: no %s marker (the run was killed while saving)",
                        ", ".join(partial), recipe.output_dir, COMPLETE)
        return str(done[-1]) if done else None
    if Path(resume) in done:
        return resume
    newest = f"; the newest complete one is {done[-1]}" if done else ""
    raise RecipeError(f"sft.resume: {resume} is not a complete checkpoint (no {COMPLETE} marker: missing, or "
                      f"the run was killed while saving it){newest}; sft.resume=auto picks it")


def save_final(trainer: Any, processor: Any, recipe: Recipe) -> Path:
    """``final/``: a model `mmreason.models.load` opens (LoRA merged in), and ``adapter/`` for LoRA runs."""
    out = Path(recipe.output_dir)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not trainer.accelerator.is_main_process:
        return out / "final"
    if recipe.model.lora.enabled:
        model.save_pretrained(out / "adapter")
        model = model.merge_and_unload()
    model.save_pretrained(out / "final")
    processor.save_pretrained(out / "final")
    (out / "final" / "recipe.yaml").write_text(format_recipe(recipe), encoding="utf-8")
    return out / "final"


def run(recipe: Recipe, *, resume: str | None = None, source: str = "recipe") -> int:
    """Fine-tune as the recipe's `sft` section says; `resume` (``auto`` or a checkpoint) replaces
    ``sft.resume``. Returns the exit status."""
    from transformers import set_seed
    from trl import SFTTrainer

    from mmreason.modalities.collate import Collator

    recipe = for_training(recipe, "sft", resume=resume, source=source)
    resume_from = _resume_arg(recipe)  # a bad checkpoint fails before the model loads
    print(format_recipe(recipe), end="", flush=True)
    set_seed(recipe.seed)
    model, processor = load_policy(recipe, model_path(recipe))
    rows = load_data(recipe)
    collator = Collator(processor, recipe.model.family, mode="train", max_length=recipe.sft.max_length,
                        on_error=recipe.data.on_error, media_options=media_options(recipe), return_meta=False)
    check_sft(recipe, rows, collator)
    collator = with_spatial_inputs(model, collator)  # a spatial checkpoint's batches carry 3D points too
    trainable, total = count_parameters(model)
    log.info("SFT on %d rows; %s of %s parameters train", len(rows), f"{trainable:,}", f"{total:,}")
    args = sft_arguments(recipe)
    trainer = SFTTrainer(model=model, args=args, train_dataset=index_dataset(len(rows)),
                         processing_class=processor, data_collator=IndexCollator(rows.rows, collator),
                         callbacks=_callbacks(recipe), optimizers=(module_optimizer(model, recipe, args), None))
    if resume_from is not None:
        print(f"resuming from {resume_from}", flush=True)
    trainer.train(resume_from_checkpoint=resume_from)
    final = save_final(trainer, processor, recipe)
    print(f"saved {final}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mmreason.train.sft RECIPE [key=value ...] [--resume [auto|PATH]]`."""
    description = "Supervised fine-tuning with the mmreason collator."
    args = recipe_parser("mmreason.train.sft", description, resume=True).parse_args(argv)
    path = find_recipe(args.recipe)
    return run(load_recipe(path, args.overrides), resume=args.resume, source=str(path))


if __name__ == "__main__":
    raise SystemExit(main())
