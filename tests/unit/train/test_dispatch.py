"""`mmreason train`: the recipe is loaded once and handed to the algorithm of its one training section."""

import pytest

from mmreason.config import load_recipe_dict
from mmreason.errors import RecipeError
from mmreason.recipes import for_training, training_section


def test_mmreason_train_needs_a_training_section(tmp_path, capsys):
    from mmreason import cli

    (tmp_path / "r.yaml").write_text("seed: 1\n")
    assert cli.main(["train", str(tmp_path / "r.yaml")]) == 2
    assert "neither an `sft` nor a `grpo` section" in capsys.readouterr().err
    (tmp_path / "both.yaml").write_text("sft: {}\ngrpo: {}\n")
    assert cli.main(["train", str(tmp_path / "both.yaml")]) == 2
    assert "split it into two recipes" in capsys.readouterr().err


def test_the_recipe_is_loaded_once_and_handed_over_with_resume(monkeypatch):
    from mmreason.train import dispatch, grpo

    loads, runs = [], []
    real = dispatch.load_recipe
    monkeypatch.setattr(dispatch, "load_recipe", lambda *a: loads.append(a) or real(*a))
    monkeypatch.setattr(grpo, "run", lambda recipe, **kw: runs.append((recipe, kw)) or 0)
    assert dispatch.main(["debug/tiny_grpo", "grpo.lr=1e-6", "--resume"]) == 0
    [(recipe, options)] = runs
    assert len(loads) == 1 and recipe.grpo.lr == 1e-6 and options["resume"] == "auto"


def test_a_run_takes_its_section_and_resume():
    recipe = load_recipe_dict({"grpo": {}})
    assert training_section(recipe) == "grpo"
    assert for_training(recipe, "grpo") is recipe
    assert for_training(recipe, "grpo", resume="auto").grpo.resume == "auto"
    with pytest.raises(RecipeError, match="no `sft` section; `mmreason train` runs grpo"):
        for_training(recipe, "sft")
