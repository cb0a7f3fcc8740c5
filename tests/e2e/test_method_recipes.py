"""Every method's debug-size recipes run as shipped on CPU: each SFT stage trains and saves, each RL stage runs
its steps with the method's reward logged; the data comes from the recipe's own builder spec.

The full-size recipe of each stage (``<method>/qwen2_5_vl_*``) is checked without running in
tests/unit/train/test_recipes.py; this file runs the ``tiny_*`` variant beside it.
"""

import pytest

from mmreason import schema
from mmreason.config import load_recipe
from mmreason.data_builders.speech import espeak_available
from mmreason.recipes import shipped_recipes
from mmreason.train.logging import read_jsonl


def tiny_family(name):
    """The family of the tiny model a debug recipe names (audio recipes run on the Omni family)."""
    if name.startswith("audio/") and not espeak_available():
        pytest.skip("the audio_speech builder needs espeak-ng")
    return load_recipe(shipped_recipes()[name]).model.tiny_family

# debug recipe -> a metric its run must log (the method's own reward, or its sub-score)
SFT = ["ton/tiny_sft", "video_com/tiny_sft", "ui_ins/tiny_sft", "infigui_r1/tiny_sft", "audio/tiny_sft"]
GRPO = {
    "audio/tiny_grpo": "rewards/audio_reasoning/evidence",
    "ton/tiny_grpo": "rewards/ton_format/skip_think",
    "ton/tiny_gui_grpo": "rewards/ton_gui_value",
    "video_com/tiny_grpo": "rewards/video_com/manipulation",
    "ui_ins/tiny_grpo": "rewards/ui_ins",
    "infigui_r1/tiny_rloo": "rewards/infigui",
    "grit/tiny_grpo_20": "rewards/grit",
}


@pytest.mark.parametrize("name", SFT)
def test_debug_sft_recipe_trains_and_saves(name, tiny_model_dir, tmp_path):
    from mmreason.train import sft

    assert sft.main([name, f"model.path={tiny_model_dir(tiny_family(name))}", f"output_dir={tmp_path}"]) == 0
    losses = [r["loss"] for r in read_jsonl(tmp_path / "metrics.jsonl") if "loss" in r]
    assert len(losses) == 2 and all(loss == loss for loss in losses)  # two steps, no NaN
    assert (tmp_path / "final" / "config.json").is_file()
    if name == "audio/tiny_sft":  # the Omni model trained on the clips' play_audio traces
        (data,) = [d for d in (tmp_path / "data").iterdir() if d.is_dir()]
        rows = schema.load_rows(data)
        assert all([m["role"] for m in r["messages"]] == ["user", "assistant", "tool", "assistant"] for r in rows)
        assert load_recipe(tmp_path / "final" / "recipe.yaml").model.family == "qwen2_5_omni"
    if name == "ton/tiny_sft":  # the data the TON recipe trained on: half of its 8 thoughts dropped
        (data,) = [d for d in (tmp_path / "data").iterdir() if d.is_dir()]  # beside it: the build's lock file
        assert sum(r["meta"]["thought_dropped"] for r in schema.load_rows(data)) == 4


@pytest.mark.parametrize("name", sorted(GRPO))
def test_debug_rl_recipe_runs_with_the_methods_reward(name, tiny_model_dir, tmp_path):
    from mmreason.train import grpo

    steps = ["grpo.max_steps=2", "grpo.save_steps=2", "grpo.logging_steps=1"] if name.startswith("grit/") else []
    assert grpo.main([name, f"model.path={tiny_model_dir(tiny_family(name))}", f"output_dir={tmp_path}", *steps]) == 0
    logs = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in logs] == [1, 2]
    assert all(GRPO[name] in r for r in logs)
    if name == "audio/tiny_grpo":  # rollouts ran with play_audio offered, both rewards scored
        assert all("tool_calls_per_trajectory" in r and "rewards/tag_format" in r for r in logs)
    assert (tmp_path / "final" / "config.json").is_file()
