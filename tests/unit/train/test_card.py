"""Model cards: overrides found by comparing the run's recipe with its file, figures read from metrics.jsonl."""

import json

from mmreason.config import load_recipe
from mmreason.recipes import find_recipe
from mmreason.train.card import model_card, recipe_overrides, write_card


def test_a_card_names_base_data_recipe_overrides_steps_and_losses(tmp_path):
    path = find_recipe("debug/tiny_sft")
    recipe = load_recipe(path, ["sft.max_steps=3", f"output_dir={tmp_path}", "sft.resume=auto"])
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for step, loss in ((1, 2.5), (2, 2.0), (3, 1.5)):
            f.write(json.dumps({"step": step, "loss": loss}) + "\n")
        f.write(json.dumps({"step": 2, "eval_loss": 2.25}) + "\n")
    # how the run restarted is no override of what it trained
    assert recipe_overrides(recipe, str(path)) == [f"output_dir={tmp_path}", "sft.max_steps=3"]
    card = model_card(recipe, source=str(path), step=2, rows={"train": {recipe.data.train[0]: 8}})
    assert "SFT of `tiny:qwen2_5_vl` (qwen2_5_vl, LoRA r=8, alpha=16, merged into the base)" in card
    assert "2 steps" in card and "recipe: `debug/tiny_sft`" in card and "`sft.max_steps=3`" in card
    assert f"training data: `{recipe.data.train[0]}` (8 rows)" in card and "validation data: none" in card
    assert "training loss: 2 (step 2)" in card and "validation loss: 2.25 (step 2)" in card  # not step 3's
    assert f"mmreason train debug/tiny_sft output_dir={tmp_path} sft.max_steps=3" in card


def test_without_a_recipe_file_the_card_says_overrides_are_unknown(tmp_path):
    from mmreason.config import load_recipe_dict

    recipe = load_recipe_dict({"grpo": {"max_steps": 4}, "output_dir": str(tmp_path)}, stem="mine")
    card = write_card(tmp_path, recipe).read_text()
    assert "GRPO of `tiny:qwen2_5_vl`" in card and "0 steps" in card and "overrides: not known" in card
    assert "mmreason train" not in card
