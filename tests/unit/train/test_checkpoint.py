"""Checkpoints: what a save holds, exact restore of weights/optimizer/scheduler/RNG, and atomicity under SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
import transformers
from accelerate import Accelerator
from peft import LoraConfig, get_peft_model

from mmreason.errors import RecipeError
from mmreason.train import checkpoint as ckpt
from mmreason.train.checkpoint import TrainState, latest_checkpoint, load_checkpoint, resolve_resume, save_checkpoint


def tiny(seed=0, lora=True):
    """A one-layer causal LM (with a LoRA adapter): real weights, optimizer state and RNG to save."""
    torch.manual_seed(seed)
    config = transformers.Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1)
    model = transformers.Qwen2ForCausalLM(config)
    if lora:
        model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    return model


def prepared(model, lr=1e-2):
    acc = Accelerator(cpu=True)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    model, opt = acc.prepare(model, opt)
    acc.register_for_checkpointing(sched)
    return acc, model, opt, sched


def train_step(model, opt, sched):
    ids = torch.randint(0, 64, (2, 6))
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    sched.step()
    opt.zero_grad()


def trainable(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_restore_is_exact_weights_optimizer_scheduler_rng(tmp_path):
    model = tiny()
    acc, model, opt, sched = prepared(model)
    train_step(model, opt, sched)
    path = save_checkpoint(acc, tmp_path, TrainState(1, 4, {"note": "x"}), model=model, recipe_text="seed: 0\n")
    weights, lr, moments = trainable(model), sched.get_last_lr(), {k: v["exp_avg"].clone() for k, v in opt.state.items()}
    after = torch.rand(3)  # what the RNG gives right after the save
    train_step(model, opt, sched)
    torch.manual_seed(123)
    state = load_checkpoint(acc, path)
    assert state == TrainState(1, 4, {"note": "x"})
    assert all(torch.equal(weights[n], p) for n, p in trainable(model).items())
    assert sched.get_last_lr() == lr
    assert all(torch.equal(moments[k], v["exp_avg"]) for k, v in opt.state.items())
    assert torch.equal(torch.rand(3), after)
    assert (path / "recipe.yaml").read_text() == "seed: 0\n"


def test_a_checkpoint_stores_trainable_tensors_and_a_loadable_adapter(tmp_path):
    from safetensors.torch import load_file

    from mmreason.config import load_recipe_dict
    from mmreason.train.card import model_card

    acc, model, opt, sched = prepared(tiny())
    recipe = load_recipe_dict({"model": {"path": "tiny:qwen2_5_vl", "lora": {"enabled": True}},
                               "grpo": {"max_steps": 2}, "output_dir": str(tmp_path)}, stem="card")
    card = model_card(recipe, step=2, merged=False, recipe_file="../recipe.yaml")
    path = save_checkpoint(acc, tmp_path, TrainState(2, 8), model=model, card=card)
    stored = load_file(path / "state" / "model.safetensors")
    assert stored and all("lora_" in k for k in stored)
    assert (path / "model" / "adapter_config.json").is_file() and (path / ckpt.COMPLETE).is_file()
    assert json.loads((path / ckpt.STATE_FILE).read_text())["data_position"] == 8
    # the card replaces the one peft writes beside an adapter, which names no recipe
    text = (path / "model" / "README.md").read_text()
    assert text == card and "GRPO of `tiny:qwen2_5_vl` (qwen2_5_vl, LoRA r=16" in text and "2 steps" in text


def test_newest_complete_checkpoint_wins_and_keep_prunes(tmp_path):
    acc, model, opt, sched = prepared(tiny())
    for step in (2, 4, 6):
        save_checkpoint(acc, tmp_path, TrainState(step, step), model=model, keep=2)
    names = [p.name for p in ckpt.list_checkpoints(tmp_path)]
    assert names == ["step-000004", "step-000006"]
    (tmp_path / "checkpoints" / "step-000008").mkdir()  # no COMPLETE marker
    (tmp_path / "checkpoints" / ".tmp-step-000010").mkdir()
    assert latest_checkpoint(tmp_path).name == "step-000006"
    assert resolve_resume("auto", tmp_path).name == "step-000006"
    assert resolve_resume(str(tmp_path), tmp_path).name == "step-000006"
    assert resolve_resume(None, tmp_path) is None
    assert resolve_resume("auto", tmp_path / "elsewhere") is None  # nothing yet: start fresh
    with pytest.raises(RecipeError, match="incomplete checkpoint.*the newest complete one is .*step-000006"):
        resolve_resume(str(tmp_path / "checkpoints" / "step-000008"), tmp_path)
    with pytest.raises(RecipeError, match=r"^sft\.resume: .* is an incomplete checkpoint"):  # SFT's key
        resolve_resume(str(tmp_path / "checkpoints" / "step-000008"), tmp_path, section="sft")
    with pytest.raises(RecipeError, match="not a checkpoint"):
        resolve_resume(str(tmp_path / "nowhere"), tmp_path)


KILLER = """
import os, signal, sys
sys.path.insert(0, sys.argv[3])
from test_checkpoint import prepared, tiny
from mmreason.train import checkpoint as ckpt
out, where = sys.argv[1], sys.argv[2]
acc, model, opt, sched = prepared(tiny())
ckpt.save_checkpoint(acc, out, ckpt.TrainState(2, 2), model=model)
def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)
setattr(ckpt, where, die)
ckpt.save_checkpoint(acc, out, ckpt.TrainState(4, 4), model=model)
"""


@pytest.mark.parametrize("where", ["fsync_tree", "write_marker"])
def test_sigkill_while_saving_leaves_nothing_that_looks_complete(tmp_path, where):
    script = tmp_path / "killer.py"
    script.write_text(textwrap.dedent(KILLER))
    here = os.path.dirname(__file__)
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "run"), where, here], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    left = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    # killed before the rename: a temporary folder; killed before the marker: a folder without COMPLETE
    assert left == {"fsync_tree": [".tmp-step-000004", "step-000002"], "write_marker": ["step-000002", "step-000004"]}[where]
    assert resolve_resume("auto", tmp_path / "run").name == "step-000002"
    acc, model, opt, sched = prepared(tiny(seed=1))
    assert load_checkpoint(acc, tmp_path / "run" / "checkpoints" / "step-000002").step == 2
