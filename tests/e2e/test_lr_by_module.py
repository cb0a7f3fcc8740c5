"""`sft.lr_by_module` / `grpo.lr_by_module`: named submodules train at their own learning rate, and a key that
names nothing stops the run before step 1."""

import subprocess
import sys

import torch
from safetensors.torch import load_file

from mmreason.config import load_recipe
from mmreason.recipes import find_recipe

FAMILY = "qwen2_5_vl"


def _moved(start: dict, end: dict, vision: bool) -> float:
    """Mean absolute change of the vision (or the other) float weights."""
    keys = [k for k in start if ("visual" in k) == vision and start[k].is_floating_point()]
    return float(torch.stack([(end[k] - start[k]).abs().mean() for k in keys]).mean())


def test_sft_trains_the_vision_tower_at_its_own_rate(tiny_model_dir, colour_rows, tmp_path):
    from mmreason.train import sft

    colour_rows(tmp_path)
    model_dir = tiny_model_dir(FAMILY)
    start = load_file(f"{model_dir}/model.safetensors")
    moved = {}
    for name, extra in (("shared", []), ("own", ["sft.lr_by_module.visual=1e-2"])):
        out = tmp_path / name
        assert sft.main(["debug/tiny_sft", f"model.path={model_dir}", f"data.train=[{tmp_path}]", f"output_dir={out}",
                         "model.lora.enabled=false", "model.freeze_vision=false", "sft.lr=1e-5", "sft.max_steps=1",
                         "sft.save_steps=100", *extra]) == 0
        end = load_file(f"{out}/final/model.safetensors")
        moved[name] = (_moved(start, end, vision=True), _moved(start, end, vision=False))
    # Adam moves each weight by about the learning rate: 1e-2 on the tower against 1e-5 everywhere else
    assert moved["own"][0] > 100 * moved["shared"][0]
    assert moved["own"][1] < 3 * moved["shared"][1]


def test_grpo_optimizer_gets_one_group_per_key(tiny_model_dir):
    from mmreason.models import load
    from mmreason.train.grpo import make_optimizer

    recipe = load_recipe(find_recipe("debug/tiny_grpo"), [f"model.path={tiny_model_dir(FAMILY)}", "grpo.lr=1e-6",
                                             "grpo.lr_by_module.visual=5e-5"])
    model, _ = load({"path": tiny_model_dir(FAMILY), "dtype": "float32"})
    optimizer, _ = make_optimizer(model, recipe)
    visual = {id(p) for n, p in model.named_parameters() if ".visual." in f".{n}."}
    by_lr = {g["lr"]: {id(p) for p in g["params"]} for g in optimizer.param_groups}
    assert by_lr[5e-5] == visual and by_lr[1e-6].isdisjoint(visual)


def test_a_key_that_names_no_module_stops_before_step_one(tiny_model_dir, colour_rows, tmp_path):
    colour_rows(tmp_path)
    run = subprocess.run([sys.executable, "-m", "mmreason", "train", "debug/tiny_sft",
                          f"model.path={tiny_model_dir(FAMILY)}", f"data.train=[{tmp_path}]",
                          f"output_dir={tmp_path / 'run'}", "model.lora.enabled=false",
                          "sft.lr_by_module.vision_encoder=1e-3"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "sft.lr_by_module: 'vision_encoder' matches no trainable parameter" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
