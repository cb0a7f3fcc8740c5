"""Supervised fine-tuning: TRL's `SFTTrainer` fed by the mmreason collator.

    mmreason train debug/tiny_sft
    accelerate launch -m mmreason.train.sft RECIPE.yaml sft.lr=2e-5 [--resume]

The collator does what TRL's VLM path cannot for our data: any mix of image, multi-image, video, audio
and point-cloud views in one batch, multi-turn tool traces with the observation turns masked,
assistant-only labels, and a ``max_length`` that never cuts inside a media span (a sample that would
lose media tokens fails before the first step, naming it). TRL's own assistant mask and dataset
preparation are therefore switched off. LoRA (peft) or full fine-tuning come from the recipe.

Validation: with ``data.eval`` set, the loss on its rows (the first ``sft.max_eval_samples``) is logged as
``eval_loss`` every ``sft.eval_steps`` steps (None: ``sft.save_steps``) and at the last step, with TRL's
``eval_strategy`` names (``steps``, ``epoch``, ``no``).

Outputs under ``output_dir``, laid out as a GRPO run's (`mmreason.train.checkpoint`):
``checkpoints/step-NNNNNN/`` with ``model/`` (loadable: the weights, or the LoRA adapter, and the processor,
with a model card), ``state/`` (the HF Trainer's checkpoint, which resuming reads), ``trainer_state.json``,
the resolved ``recipe.yaml`` and, written last, ``COMPLETE``: ``--resume`` takes the newest complete one.
Then ``metrics.jsonl`` and ``tensorboard/``, and ``final/``: a loadable model (LoRA merged) plus processor and
model card, which the next stage's ``model.path`` can name; LoRA runs also keep the bare adapter in
``adapter/``.

Several processes (``accelerate launch``; CPU processes over gloo where there is no GPU): with an FSDP config
the model is sharded with FSDP2 (`mmreason.train.distributed`; on CPU accelerate alone would run DDP), each
checkpoint's ``state/`` holds one shard per process, and ``model/`` and ``final/`` hold the model gathered from
them. A builder dataset the recipe names is built by one process while the others wait (`load_data`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmreason.config import Recipe, format_recipe, load_recipe
from mmreason.errors import RecipeError
from mmreason.models.spatial import with_spatial_inputs
from mmreason.recipes import find_recipe, for_training, recipe_parser
from mmreason.train.card import write_card
from mmreason.train.checkpoint import (CHECKPOINTS, COMPLETE, TrainState, checkpoint_paths, publish,
                                       resolve_resume, write_state)
from mmreason.train.data import Rows, in_model_frame, load_data, media_options
from mmreason.train.distributed import enable_cpu_fsdp, no_accelerator, save_sharded_pretrained
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


def index_dataset(start: int, stop: int) -> Any:
    import datasets

    return datasets.Dataset.from_dict({"row": list(range(start, stop))})


def has_eval(recipe: Recipe) -> bool:
    return bool(recipe.data.eval) and recipe.sft.eval_strategy != "no"


def sft_arguments(recipe: Recipe) -> Any:
    """TRL `SFTConfig` from the recipe's `sft` section (and `model`, `seed`, `report_to`)."""
    import torch
    from trl import SFTConfig

    s = recipe.sft
    bf16 = recipe.model.dtype == "bfloat16" or (recipe.model.dtype == "auto" and torch.cuda.is_available()
                                                 and torch.cuda.is_bf16_supported())
    evaluate = has_eval(recipe)
    return SFTConfig(
        # The Trainer saves into checkpoints/checkpoint-N, which `_callbacks` moves at once into the step-N
        # layout; the pruning (save_total_limit) is ours then, over complete checkpoints only.
        output_dir=str(Path(recipe.output_dir) / CHECKPOINTS), run_name=recipe.run_name, seed=recipe.seed,
        data_seed=recipe.data.seed, num_train_epochs=s.epochs, max_steps=s.max_steps or -1,
        learning_rate=s.lr,
        per_device_train_batch_size=s.batch_size, gradient_accumulation_steps=s.grad_accum,
        lr_scheduler_type=s.scheduler, warmup_steps=s.warmup,
        logging_steps=s.logging_steps, save_steps=s.save_steps, save_total_limit=None,
        eval_strategy=s.eval_strategy if evaluate else "no",
        eval_steps=(s.eval_steps or s.save_steps) if evaluate else None,
        eval_on_start=s.eval_on_start and evaluate, per_device_eval_batch_size=s.batch_size,
        # metrics.jsonl and tensorboard/ come from our callback (the same files a GRPO run writes)
        report_to=["wandb"] if "wandb" in recipe.report_to and _has("wandb") else "none",
        # Our collator cuts (safely) and labels; TRL must neither prepare, truncate nor mask the rows again.
        max_length=None, assistant_only_loss=False, completion_only_loss=False,
        dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False,
        activation_checkpointing=recipe.model.gradient_checkpointing, gradient_checkpointing=None,
        activation_checkpointing_kwargs={"use_reentrant": False}, bf16=bf16,
        fp16=recipe.model.dtype == "float16",
        # collation off the critical path: workers collate the next batches while the step runs; they
        # live for the whole run (forked once, not at every epoch)
        dataloader_num_workers=s.dataloader_workers,
        dataloader_prefetch_factor=s.prefetch_batches if s.dataloader_workers else None,
        dataloader_persistent_workers=s.dataloader_workers > 0,
        save_only_model=False, disable_tqdm=False,
        # Without a GPU the Trainer's accelerate state must be asked for CPU processes: otherwise every
        # process of an `accelerate launch` trains alone on all the data (and saves into the same folders).
        use_cpu=no_accelerator(),
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


# What only resuming reads in the HF Trainer's checkpoint; the rest (weights or adapter, config, processor)
# is the loadable model.
_RESUME_ONLY = re.compile(r"optimizer.*|scheduler\.pt|scaler\.pt|rng_state.*\.pth|trainer_state\.json|"
                          r"training_args\.bin")


def _link_model(state: Path, model: Path) -> None:
    """``model/``: hard links to the loadable files of ``state/`` (one copy on disk; a copy where the
    filesystem has no hard links)."""
    model.mkdir()
    for f in state.iterdir():
        if f.is_file() and not _RESUME_ONLY.fullmatch(f.name):
            try:
                os.link(f, model / f.name)
            except OSError:
                shutil.copy2(f, model / f.name)


def save_checkpoint(trainer_dir: Path, recipe: Recipe, state: Any, args: Any, *, source: str,
                    rows: Mapping[str, Mapping[str, int]], loadable: Path | None = None) -> Path:
    """Turn the Trainer's ``checkpoint-N`` folder into ``checkpoints/step-N`` (module docstring), atomically:
    assembled in ``.tmp-step-N``, renamed, ``COMPLETE`` last (`mmreason.train.checkpoint.publish`).
    `loadable`: the model gathered from FSDP shards, which becomes ``model/`` (otherwise ``model/`` links
    the Trainer's own weight files)."""
    step = state.global_step
    tmp, final = checkpoint_paths(recipe.output_dir, step)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    os.rename(trainer_dir, tmp / "state")
    if loadable is None:
        _link_model(tmp / "state", tmp / "model")
    else:
        os.rename(loadable, tmp / "model")
    samples = step * args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    write_state(tmp, TrainState(step, samples, {"epoch": state.epoch}))
    (tmp / "recipe.yaml").write_text(format_recipe(recipe), encoding="utf-8")
    write_card(tmp / "model", recipe, source=source, step=step, rows=rows, merged=False,
               recipe_file="../recipe.yaml")
    return publish(tmp, final, recipe.output_dir, keep=recipe.sft.save_total_limit)


def _leftovers(recipe: Recipe) -> list[Path]:
    """What a run killed while saving leaves: the Trainer's folder not yet moved, a half-assembled one, a
    model gathered from FSDP shards not yet moved in."""
    root = Path(recipe.output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(root.glob("checkpoint-*")) + sorted(root.glob(".tmp-step-*")) + sorted(root.glob(".model-*"))


def _callbacks(recipe: Recipe, *, source: str, rows: Mapping[str, Mapping[str, int]]) -> list:
    """Lay out every checkpoint as GRPO does, mirror the Trainer's logs to metrics.jsonl, and validate at the
    last step too."""
    from accelerate import PartialState
    from transformers import TrainerCallback

    from mmreason.train.logging import RunLogger

    evaluate_last = has_eval(recipe) and recipe.sft.eval_strategy == "steps"

    class MMReasonCallback(TrainerCallback):
        logger: RunLogger | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                for path in _leftovers(recipe):  # never complete: the marker is the last thing written
                    shutil.rmtree(path, ignore_errors=True)
                self.logger = RunLogger(recipe.output_dir, report_to=(),
                                        resume_step=state.global_step or None)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.logger is not None and logs:
                self.logger.log(state.global_step, logs)

        def on_step_end(self, args, state, control, **kwargs):
            if evaluate_last and state.global_step >= state.max_steps:
                control.should_evaluate = True  # the last step's loss, whatever eval_steps divides

        def on_save(self, args, state, control, model=None, processing_class=None, **kwargs):
            # called once the Trainer has written the whole checkpoint (every process its own RNG file)
            main = state.is_world_process_zero
            # FSDP: the Trainer's checkpoint holds per-process shards only; every process joins the gather
            # that makes model/ loadable
            loadable = Path(args.output_dir) / f".model-{state.global_step}"
            if model is not None and save_sharded_pretrained(model, loadable, main=main) and main:
                processing_class.save_pretrained(loadable)
            PartialState().wait_for_everyone()
            trainer_dir = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if main and trainer_dir.is_dir():
                save_checkpoint(trainer_dir, recipe, state, args, source=source, rows=rows,
                                loadable=loadable if loadable.is_dir() else None)

        def on_train_end(self, args, state, control, **kwargs):
            if self.logger is not None:
                self.logger.close()

    return [MMReasonCallback()]


def _resume_arg(recipe: Recipe) -> Path | None:
    """The checkpoint to resume from: ``auto`` takes the newest complete one (None: start fresh); a path
    must be a complete checkpoint (or an output_dir holding some) that SFT wrote."""
    resume = recipe.sft.resume
    if not resume:
        return None
    if resume == "auto":
        root = Path(recipe.output_dir) / CHECKPOINTS
        partial = sorted(p.name for p in root.glob("step-*") if p.is_dir() and not (p / COMPLETE).is_file())
        if partial:
            log.warning("skipping %s under %s: no %s marker (the run was killed while saving)",
                        ", ".join(partial), root, COMPLETE)
    found = resolve_resume(resume, recipe.output_dir, section="sft")
    if found is not None and not (found / "state" / "trainer_state.json").is_file():
        raise RecipeError(f"sft.resume: {found} holds no Trainer state (state/trainer_state.json): SFT did "
                          "not write it (a GRPO checkpoint resumes with `mmreason train` of its GRPO recipe)")
    return found


def _trainer_class() -> type:
    from trl import SFTTrainer

    class Trainer(SFTTrainer):
        def create_model_card(self, *args: Any, **kwargs: Any) -> None:
            """TRL's draft names no base model: `write_card` writes ours into final/ and every checkpoint."""

        def create_accelerator_and_postprocess(self) -> None:
            """The Trainer's Accelerator, with FSDP2 switched on for an FSDP launch on CPU processes: accelerate
            alone leaves such a launch at plain data parallel (`mmreason.train.distributed`), and the Trainer
            decides once, here, whether it shards, saves and resumes the FSDP way."""
            super().create_accelerator_and_postprocess()
            if enable_cpu_fsdp(self.accelerator):
                self.is_fsdp_enabled = True

        def _load_callback_state(self) -> None:
            """Resuming: TRL's ``num_tokens`` (the tokens trained on so far) would count again from 0; it
            continues from the checkpoint's last logged value, as the uninterrupted run's does."""
            super()._load_callback_state()
            logged = [r["num_tokens"] for r in self.state.log_history if "num_tokens" in r]
            if logged and hasattr(self, "_total_train_tokens"):
                self._total_train_tokens = logged[-1]

    return Trainer


def save_final(trainer: Any, processor: Any, recipe: Recipe, *, source: str = "recipe",
               rows: Mapping[str, Mapping[str, int]] | None = None) -> Path:
    """``final/``: a model `mmreason.models.load` opens (LoRA merged in) with its card, and ``adapter/`` for
    LoRA runs."""
    out = Path(recipe.output_dir)
    model = trainer.accelerator.unwrap_model(trainer.model)
    lora, main = recipe.model.lora.enabled, trainer.accelerator.is_main_process
    # FSDP: every process joins the gather, the main process writes
    sharded = save_sharded_pretrained(model, out / "final", main=main, merge_lora=lora,
                                      adapter_out=out / "adapter" if lora else None)
    if not main:
        return out / "final"
    if not sharded:
        if lora:
            model.save_pretrained(out / "adapter")
            model = model.merge_and_unload()
        model.save_pretrained(out / "final")
    processor.save_pretrained(out / "final")
    (out / "final" / "recipe.yaml").write_text(format_recipe(recipe), encoding="utf-8")
    write_card(out / "final", recipe, source=source, step=trainer.state.global_step, rows=rows)
    return out / "final"


def make_trainer(recipe: Recipe, *, source: str = "recipe") -> tuple[Any, Any, dict]:
    """The Trainer a run trains with (policy, data, checked collator, callbacks), its processor and the row
    counts per source. `recipe` is the one `for_training` returned."""
    from transformers import set_seed

    from mmreason.modalities.collate import Collator

    from mmreason.eval.run_setup import checkpoint_image_budget

    set_seed(recipe.seed)
    path = model_path(recipe)
    model, processor = load_policy(recipe, path)
    saved = checkpoint_image_budget(path)  # the budget the processor resizes pictures to
    rows = in_model_frame(recipe, load_data(recipe), saved)
    held_out = Rows((), ())
    if has_eval(recipe):
        held_out = in_model_frame(recipe, load_data(recipe, split="eval"), saved)
    limit = recipe.sft.max_eval_samples
    held_out = Rows(held_out.rows[:limit], held_out.sources[:limit])
    collator = Collator(processor, recipe.model.family, mode="train", max_length=recipe.sft.max_length,
                        on_error=recipe.data.on_error, media_options=media_options(recipe), return_meta=False)
    check_sft(recipe, rows, collator)
    check_sft(recipe, held_out, collator)
    collator = with_spatial_inputs(model, collator)  # a spatial checkpoint's batches carry 3D points too
    trainable, total = count_parameters(model)
    log.info("SFT on %d rows (%d to validate on); %s of %s parameters train", len(rows), len(held_out),
             f"{trainable:,}", f"{total:,}")
    counts = {"train": dict(Counter(rows.sources)), "eval": dict(Counter(held_out.sources))}
    args = sft_arguments(recipe)
    everything = rows.rows + held_out.rows  # one index space: the training rows, then the validation rows
    trainer = _trainer_class()(
        model=model, args=args, train_dataset=index_dataset(0, len(rows)),
        eval_dataset=index_dataset(len(rows), len(everything)) if len(held_out) else None,
        processing_class=processor, data_collator=IndexCollator(everything, collator),
        callbacks=_callbacks(recipe, source=source, rows=counts),
        optimizers=(module_optimizer(model, recipe, args), None))
    return trainer, processor, counts


def run(recipe: Recipe, *, resume: str | None = None, source: str = "recipe") -> int:
    """Fine-tune as the recipe's `sft` section says; `resume` (``auto`` or a checkpoint) replaces
    ``sft.resume``. Returns the exit status."""
    recipe = for_training(recipe, "sft", resume=resume, source=source)
    resume_from = _resume_arg(recipe)  # a bad checkpoint fails before the model loads
    print(format_recipe(recipe), end="", flush=True)
    trainer, processor, counts = make_trainer(recipe, source=source)
    if resume_from is not None:
        print(f"resuming from {resume_from}", flush=True)
    trainer.train(resume_from_checkpoint=None if resume_from is None else str(resume_from / "state"))
    final = save_final(trainer, processor, recipe, source=source, rows=counts)
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
