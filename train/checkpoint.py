"""Atomic checkpoints and exact resume for the GRPO loop (SFT writes the same layout: `mmreason.train.sft`).

A checkpoint ``<output_dir>/checkpoints/step-000040/`` holds

- ``model/``: what a user loads: the LoRA adapter (peft) or the full model, plus the processor;
- ``state/``: what resuming needs, written by `accelerate` so DDP, FSDP and DeepSpeed each save their
  own way: optimizer, scheduler, the RNG states of every process (python, numpy, torch, cuda) and the
  trainable weights (frozen weights are the base model's, so they are not stored twice);
- ``trainer_state.json``: the step and the data position (prompts consumed), plus ``recipe.yaml``, the
  resolved recipe the run used;
- ``COMPLETE``: written last.

An SFT checkpoint has the same files; its ``state/`` is the Hugging Face Trainer's own checkpoint folder
(weights, optimizer, scheduler, RNG and its ``trainer_state.json``), which the Trainer resumes from.

Writing is atomic: everything goes to ``.tmp-step-000040/``, is fsynced, and the folder is renamed;
only then is ``COMPLETE`` written. A run killed while saving leaves a ``.tmp-*`` folder or a folder
without ``COMPLETE``, which `latest_checkpoint` and `resolve_resume` never pick.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mmreason.errors import RecipeError

log = logging.getLogger("mmreason.train")

CHECKPOINTS = "checkpoints"
COMPLETE = "COMPLETE"
STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"step-(\d+)")


@dataclass(frozen=True)
class TrainState:
    """Where a run is: optimizer steps done and prompts (or samples) consumed, plus free-form counters."""

    step: int = 0
    data_position: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def is_complete(path: str | os.PathLike) -> bool:
    path = Path(path)
    return bool(_NAME.fullmatch(path.name)) and (path / COMPLETE).is_file() and (path / STATE_FILE).is_file()


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under ``output_dir``, oldest first (temporary and incomplete ones are skipped)."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and is_complete(p)]
    return sorted(found, key=lambda p: int(_NAME.fullmatch(p.name).group(1)))


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def resolve_resume(resume: str | None, output_dir: str | os.PathLike, *,
                   section: str = "grpo") -> Path | None:
    """``None`` -> start fresh; ``"auto"`` -> the newest complete checkpoint (fresh if there is none);
    a path -> that checkpoint, which must be complete (a checkpoint folder or a run's output_dir). Errors
    name the recipe key ``<section>.resume``."""
    if not resume:
        return None
    if resume == "auto":
        return latest_checkpoint(output_dir)
    path = Path(resume)
    if is_complete(path):
        return path
    newest = latest_checkpoint(path)
    if newest is not None:
        return newest
    if path.is_dir() and _NAME.fullmatch(path.name):
        newest = latest_checkpoint(path.parent.parent)
        pick = f"the newest complete one is {newest}" if newest else "pick an earlier one"
        raise RecipeError(f"{section}.resume: {path} is an incomplete checkpoint (no {COMPLETE} marker: the "
                          f"run was killed while saving); {pick}, or use {section}.resume=auto")
    raise RecipeError(f"{section}.resume: {path} is not a checkpoint (expected .../{CHECKPOINTS}/step-NNNNNN "
                      f"with a {COMPLETE} marker, or an output_dir holding some); {section}.resume=auto "
                      "takes the newest")


# ------------------------------------------------------------------------------------------ saving
def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk (folders too, so their entries survive a crash)."""
    for dirpath, _, files in os.walk(root):
        for name in files:
            _fsync(Path(dirpath) / name)
        _fsync(Path(dirpath))


def write_marker(folder: Path) -> None:
    marker = folder / COMPLETE
    with marker.open("w", encoding="utf-8") as f:
        f.write("ok\n")
        f.flush()
        os.fsync(f.fileno())
    _fsync(folder)


def _trainable_only(models: list, weights: list, _output_dir: str) -> None:
    """accelerate save hook: keep only trainable tensors; frozen ones come back from the base model."""
    for i, (model, state) in enumerate(zip(models, weights)):
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        weights[i] = {k: v for k, v in state.items() if k in trainable}


def checkpoint_paths(output_dir: str | os.PathLike, step: int) -> tuple[Path, Path]:
    """(temporary, final) folder of the checkpoint of `step`: it is written in the first, then renamed."""
    root = Path(output_dir) / CHECKPOINTS
    name = checkpoint_name(step)
    return root / f".tmp-{name}", root / name


def write_state(folder: Path, state: TrainState) -> None:
    (folder / STATE_FILE).write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")


def publish(tmp: Path, final: Path, output_dir: str | os.PathLike, *, keep: int | None = None) -> Path:
    """Make the fully written `tmp` the checkpoint `final` (main process only): flush it to disk, rename it,
    write ``COMPLETE`` last, then delete all but the newest `keep` complete checkpoints."""
    fsync_tree(tmp)
    if final.exists():  # a folder left by a kill between rename and marker
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync(final.parent)
    write_marker(final)
    if keep:
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def save_checkpoint(accelerator: Any, output_dir: str | os.PathLike, state: TrainState, *, model: Any,
                    processor: Any = None, recipe_text: str | None = None, keep: int | None = None,
                    card: str | None = None) -> Path:
    """Write a checkpoint atomically (module docstring); every process must call it. Returns its path.
    `card`: the text of ``model/README.md`` (`mmreason.train.card.model_card`), replacing any a library
    wrote there."""
    tmp, final = checkpoint_paths(output_dir, state.step)
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    handle = accelerator.register_save_state_pre_hook(_trainable_only)
    try:
        accelerator.save_state(str(tmp / "state"))
    finally:
        handle.remove()
    full_state = accelerator.get_state_dict(model)  # gathers FSDP / ZeRO-3 shards; every process takes part
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.save_pretrained(tmp / "model", state_dict=full_state)
        if processor is not None:
            processor.save_pretrained(tmp / "model")
        write_state(tmp, state)
        if recipe_text is not None:
            (tmp / "recipe.yaml").write_text(recipe_text, encoding="utf-8")
        if card is not None:
            (tmp / "model" / "README.md").write_text(card, encoding="utf-8")
        publish(tmp, final, output_dir, keep=keep)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Any, path: str | os.PathLike) -> TrainState:
    """Restore weights, optimizer, scheduler and RNG states from a complete checkpoint (every process)."""
    path = Path(path)
    if not is_complete(path):
        raise RecipeError(f"{path}: not a complete checkpoint (no {COMPLETE} marker)")
    # strict=False: the file holds the trainable tensors only (see `_trainable_only`)
    accelerator.load_state(str(path / "state"), strict=False)
    raw = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    return TrainState(int(raw["step"]), int(raw["data_position"]), raw.get("extra", {}))
