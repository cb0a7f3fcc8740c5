"""The method recipes carry the papers' settings, and every recipe binds its rewards and
passes the GRPO checks that need no data (so none fails at step 1 for a reason visible in the YAML)."""

from pathlib import Path

import pytest

from mmreason.config import load_recipe
from mmreason.recipes import shipped_recipes
from mmreason.rewards import build_rewards
from mmreason.train.preflight import check_recipe

RECIPES = Path(__file__).resolve().parents[3] / "train" / "recipes"

# recipe -> {dotted key: value}, each from the method's paper or code (cited in the recipe's comments)
PAPER = {
    "grit/qwen2_5_vl_grpo": {"grpo.num_generations": 4, "grpo.lr": 2e-6, "grpo.scheduler": "cosine", "grpo.beta": 0.01,
                             "grpo.max_completion_length": 1000, "model.max_pixels": 256 * 28 * 28,
                             "data.max_prompt_length": 750, "grpo.max_steps": 200, "grpo.loss_agg": "seq_mean"},
    "deepeyes/qwen2_5_vl_grpo": {"grpo.num_generations": 16, "grpo.lr": 1e-6, "grpo.beta": 0.0, "grpo.temperature": 1.0,
                                 "tools.max_turns": 5, "grpo.batch_size": 256, "grpo.max_steps": 80,
                                 "grpo.loss_agg": "token_mean", "grpo.max_completion_length": 20480,
                                 "tools.names": ("image_zoom_in_tool",)},
    "virl/qwen2_5_vl_grpo": {"grpo.step_rewards": True, "tools.names": ("image_zoom_in_tool",)},
    "gs_reasoner/qwen2_5_vl_sft": {"sft.lr": 1e-5, "sft.scheduler": "cosine", "sft.warmup": 0.03, "sft.epochs": 1.0,
                                   "data.video.nframes": 32},
    "infigui_r1/qwen2_5_vl_sft": {"sft.lr": 2e-6, "sft.warmup": 0.1},
    "infigui_r1/qwen2_5_vl_rloo": {"grpo.advantage": "rloo", "grpo.num_generations": 16, "grpo.lr": 1e-6,
                                   "model.path": "outputs/infigui_r1-sft/final"},
    "video_com/qwen2_5_vl_sft": {"sft.lr": 1e-5, "sft.scheduler": "cosine", "sft.warmup": 0.03, "sft.epochs": 1.0,
                                 "model.max_pixels": 128 * 28 * 28, "data.video.fps": 1.0,
                                 "data.video.max_pixels": 360 * 420},
    "video_com/qwen2_5_vl_grpo": {"grpo.num_generations": 8, "grpo.beta": 0.04, "grpo.lr": 1e-6,
                                  "grpo.scheduler": "cosine", "grpo.max_completion_length": 512,
                                  "tools.call_syntax": "video_com", "tools.segment_frames": 16,
                                  "rewards.funcs.0.name": "video_com"},
    "ui_ins/qwen2_5_vl_sft": {"sft.lr": 5e-6, "sft.epochs": 2.0, "sft.warmup": 0.1, "sft.scheduler": "cosine"},
    "ui_ins/qwen2_5_vl_grpo": {"grpo.num_generations": 2, "grpo.lr": 1e-5, "grpo.batch_size": 256, "grpo.beta": 0.0,
                               "grpo.max_completion_length": 256, "rewards.funcs.0.name": "ui_ins"},
    "ton/qwen2_5_vl_sft": {"data.prompt": "think_answer", "model.max_pixels": 501760},
    "ton/qwen2_5_vl_grpo": {"grpo.num_generations": 8, "grpo.lr": 1e-6, "grpo.scheduler": "constant",
                            "grpo.temperature": 1.0, "grpo.max_completion_length": 2048, "model.max_pixels": 501760,
                            "data.prompt": "think_answer"},
    "ton/qwen2_5_vl_gui_grpo": {"grpo.num_generations": 8, "grpo.lr": 1e-6, "model.max_pixels": 501760,
                                "rewards.funcs.1.kwargs": {"radius": 0.14, "coord_frame": "norm1"}},
    # R1-AQA's GRPO (its src/train.py and the trl 0.15.2 defaults it runs with) with the play_audio tool
    "audio/qwen2_5_omni_grpo": {"grpo.num_generations": 8, "grpo.lr": 1e-6, "grpo.beta": 0.04, "grpo.batch_size": 16,
                                "grpo.grad_accum": 2, "grpo.temperature": 1.0, "grpo.max_steps": 1000,
                                "grpo.loss_agg": "seq_mean", "data.prompt": "think_answer",
                                "tools.names": ("play_audio",), "rewards.funcs.0.name": "audio_reasoning"},
    "audio/qwen2_5_omni_sft": {"sft.lr": 1e-5, "sft.scheduler": "cosine", "sft.warmup": 0.03, "sft.epochs": 1.0},
}

# method -> its stages in order, each (full-size recipe, debug-size recipe that tests/e2e runs)
STAGES = {
    "grit": [("grit/qwen2_5_vl_grpo", "grit/tiny_grpo_20")],
    "deepeyes": [("deepeyes/qwen2_5_vl_grpo", "debug/tiny_deepeyes_grpo")],
    "virl": [("virl/qwen2_5_vl_grpo", "debug/tiny_virl_grpo")],
    "infigui_r1": [("infigui_r1/qwen2_5_vl_sft", "infigui_r1/tiny_sft"),
                   ("infigui_r1/qwen2_5_vl_rloo", "infigui_r1/tiny_rloo")],
    "video_com": [("video_com/qwen2_5_vl_sft", "video_com/tiny_sft"), ("video_com/qwen2_5_vl_grpo", "video_com/tiny_grpo")],
    "ui_ins": [("ui_ins/qwen2_5_vl_sft", "ui_ins/tiny_sft"), ("ui_ins/qwen2_5_vl_grpo", "ui_ins/tiny_grpo")],
    "ton": [("ton/qwen2_5_vl_sft", "ton/tiny_sft"), ("ton/qwen2_5_vl_grpo", "ton/tiny_grpo")],
    "ton_gui": [("ton/qwen2_5_vl_sft", "ton/tiny_sft"), ("ton/qwen2_5_vl_gui_grpo", "ton/tiny_gui_grpo")],
    "audio": [("audio/qwen2_5_omni_sft", "audio/tiny_sft"), ("audio/qwen2_5_omni_grpo", "audio/tiny_grpo")],
}


def value(recipe, dotted):
    out = recipe
    for part in dotted.split("."):
        out = out[int(part)] if part.isdigit() else getattr(out, part)
    return out


@pytest.mark.parametrize("name", sorted(PAPER))
def test_method_recipes_carry_the_papers_settings(name):
    recipe = load_recipe(RECIPES / f"{name}.yaml")
    assert recipe.model.family == ("qwen2_5_omni" if name.startswith("audio/") else "qwen2_5_vl")
    for key, expected in PAPER[name].items():
        assert value(recipe, key) == expected, key


@pytest.mark.parametrize("method", sorted(m for m, stages in STAGES.items() if len(stages) > 1))
def test_each_rl_stage_starts_from_its_sft_output(method):
    (sft, _), (rl, _) = STAGES[method]
    assert load_recipe(RECIPES / f"{rl}.yaml").model.path == f"{load_recipe(RECIPES / f'{sft}.yaml').output_dir}/final"


@pytest.mark.parametrize("method", sorted(STAGES))
def test_every_method_stage_has_a_shipped_recipe_and_a_debug_size_one(method):
    shipped = shipped_recipes()
    for full, debug in STAGES[method]:
        assert full in shipped and debug in shipped
        big, small = load_recipe(shipped[full]), load_recipe(shipped[debug])
        assert (big.sft is None) == (small.sft is None)  # the same stage: SFT beside SFT, RL beside RL
        assert small.model.path.startswith("tiny:") and (small.sft or small.grpo).max_steps <= 200
        if big.grpo is not None:  # the debug run scores with the method's own rewards
            assert {f.name for f in big.rewards.funcs} == {f.name for f in small.rewards.funcs}
            assert big.grpo.advantage == small.grpo.advantage and big.tools.call_syntax == small.tools.call_syntax


GRPO_RECIPES = sorted(n for n, p in shipped_recipes().items() if load_recipe(p).grpo is not None)


def test_the_grpo_recipes_are_found():
    assert {"grit/qwen2_5_vl_grpo", "deepeyes/qwen2_5_vl_grpo", "debug/tiny_grpo"} <= set(GRPO_RECIPES)


@pytest.mark.parametrize("name", GRPO_RECIPES)
def test_every_grpo_recipe_binds_its_rewards_and_passes_the_static_checks(name):
    recipe = load_recipe(shipped_recipes()[name])
    rewards = build_rewards(recipe)
    world = 8 if recipe.grpo.batch_size % 8 == 0 and not name.startswith("debug/") else 1
    assert check_recipe(recipe, rewards, world_size=world) >= 1
