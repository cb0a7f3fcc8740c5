"""Model set-up for training: LoRA on the language model only, frozen vision, and the checkpoint a recipe's
``model.path`` names (a directory, or ``tiny:<family>`` built once in the cache)."""

import json

import pytest

from mmreason.config import load_recipe_dict
from mmreason.errors import RecipeError
from mmreason.models import resolve_checkpoint
from mmreason.models.tiny import MARKER
from mmreason.train.model_setup import load_policy, lora_targets, model_path


def test_lora_goes_to_the_language_model_unless_vision_trains(tiny_model, tiny_model_dir):
    model, _ = tiny_model("qwen2_5_vl")
    names = lora_targets(model, ("gate_proj", "q_proj"), include_vision=False)
    assert names and not any("visual" in n for n in names)
    assert any("visual" in n for n in lora_targets(model, ("gate_proj",), include_vision=True))
    with pytest.raises(RecipeError, match="none of"):
        lora_targets(model, ("nope_proj",), include_vision=False)
    path = str(tiny_model_dir("qwen2_5_vl"))
    policy, _ = load_policy(load_recipe_dict({"model": {"path": path, "lora": {"enabled": True, "r": 2}}}), path)
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "visual" not in n for n in trainable)
    full, _ = load_policy(load_recipe_dict({"model": {"path": path}}), path)  # vision frozen by default
    assert not any(p.requires_grad for n, p in full.named_parameters() if "visual" in n)
    assert any(p.requires_grad for n, p in full.named_parameters() if "language_model" in n)


def test_model_path(tmp_path):
    with pytest.raises(RecipeError, match="never downloads"):
        model_path(load_recipe_dict({"model": {"path": str(tmp_path / "missing"), "family": "qwen2_5_vl"}}))


def test_tiny_checkpoints_resolve_to_one_build_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMREASON_CACHE_DIR", str(tmp_path / "cache"))
    built = tmp_path / "cache" / "tiny" / "qwen2_vl-seed0"
    built.mkdir(parents=True)
    (built / MARKER).write_text(json.dumps({"family": "qwen2_vl", "seed": 0}))  # a finished build: reused
    assert resolve_checkpoint("tiny:qwen2_vl") == built
    assert model_path(load_recipe_dict({"model": {"path": "tiny:qwen2_vl"}})) == str(built)
    assert resolve_checkpoint(str(tmp_path)) == tmp_path
    with pytest.raises(RecipeError, match="unknown tiny family 'nope'"):
        resolve_checkpoint("tiny:nope")
    with pytest.raises(RecipeError, match="not a checkpoint directory"):
        resolve_checkpoint(tmp_path / "missing")
