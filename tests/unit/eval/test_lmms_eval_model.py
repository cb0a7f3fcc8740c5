"""The lmms-eval model class (`mmreason.eval.lmms_eval_model`): lmms-eval finds it by its entry point, a
checkpoint's saved recipe decides its tools and prompt, and a bad ``pretrained=`` is an error naming it.
The lmms-eval run itself is tests/e2e/test_lmms_eval.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmreason.errors import RecipeError
from mmreason.eval.lmms_eval_model import MMReasonLMM, returned_text
from mmreason.prompts import PROMPTS
from mmreason.tools import tools_prompt

BASE = Path(__file__).resolve().parents[3] / "models" / "tiny_base" / "qwen2_5_vl"
CHAT = [{"role": "user", "content": [{"type": "image", "url": Image.new("RGB", (56, 56), "red")},
                                     {"type": "text", "text": "What colour is it?"}]}]


def test_lmms_eval_finds_the_class_through_its_entry_point():
    from lmms_eval.models.registry_v2 import ModelRegistryV2

    registry = ModelRegistryV2()
    registry.load_entrypoint_manifests()
    assert registry.get_model_class("mmreason") is MMReasonLMM
    assert registry.resolve("mmreason").model_type == "chat"


@pytest.fixture
def trained(tmp_path) -> Path:
    """The tiny base with the recipe a DeepEyes-style run saves beside its weights."""
    from mmreason.config import format_recipe, load_recipe_dict

    out = tmp_path / "final"
    shutil.copytree(BASE, out)
    recipe = load_recipe_dict({"model": {"path": "base:qwen2_5_vl"}, "data": {"train": ["x"], "prompt": "deepeyes"},
                               "tools": {"names": ["image_zoom_in_tool"], "coord_frame": "pixel"}})
    (out / "recipe.yaml").write_text(format_recipe(recipe), encoding="utf-8")
    return out


def test_a_checkpoint_is_asked_with_its_saved_tools_and_prompt(trained):
    lm = MMReasonLMM(pretrained=str(trained), max_pixels="50176")
    assert lm.family == "qwen2_5_vl" and lm.tools == ("image_zoom_in_tool",)
    assert lm.task.tool_frame == "pixel" and lm.task.max_turns == 5
    assert lm.setup.image_budget[1] == 50176  # the model arg wins over the checkpoint processor's budget
    system, user = lm.messages(CHAT)
    assert system["role"] == "system" and system["content"][0]["text"] == tools_prompt(["image_zoom_in_tool"])
    assert user["content"][0]["type"] == "image" and isinstance(user["content"][0]["image"], Image.Image)
    deepeyes = PROMPTS["deepeyes"]
    assert user["content"][1]["text"] == deepeyes.prefix + "What colour is it?" + deepeyes.suffix


def test_model_args_override_the_saved_tools_and_prompt(trained):
    lm = MMReasonLMM(pretrained=str(trained), tools="none", prompt="none")
    assert lm.tools == () and lm.messages(CHAT)[0]["content"][1]["text"] == "What colour is it?"
    # tools without a prompt that declares them: a system turn declares them (a model calls only those)
    lm = MMReasonLMM(pretrained=str(BASE), tools="image_zoom_in_tool+image_rotate_tool")
    system = lm.messages([{"role": "system", "content": [{"type": "text", "text": "Be brief."}]}, *CHAT])[0]
    assert system["content"][0]["text"] == "Be brief.\n\n" + tools_prompt(["image_zoom_in_tool", "image_rotate_tool"])


def test_a_wrong_pretrained_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "no-such-checkpoint"
    with pytest.raises(RecipeError, match=f"pretrained={missing}.*not a checkpoint directory"):
        MMReasonLMM(pretrained=str(missing))
    other = tmp_path / "llama"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(RecipeError, match=f"pretrained={other}.*unknown model_type 'llama'"):
        MMReasonLMM(pretrained=str(other))
    with pytest.raises(RecipeError, match="unknown tiny family 'qwen9'"):
        MMReasonLMM(pretrained="tiny:qwen9")


def test_bad_model_args_fail_before_any_request():
    with pytest.raises(RecipeError, match="output='text'"):
        MMReasonLMM(pretrained=str(BASE), output="text")
    with pytest.raises(RecipeError, match="unknown tool .no_such_tool."):
        MMReasonLMM(pretrained=str(BASE), tools="no_such_tool")
    lm = MMReasonLMM(pretrained=str(BASE))
    with pytest.raises(NotImplementedError, match="loglikelihood"):
        lm.loglikelihood([])


def test_lmms_eval_gets_the_answer_block_or_the_whole_trajectory():
    trajectory = ('<think>small text</think><tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": '
                  '[0, 0, 56, 56]}}</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nZoomed in.\n'
                  '</tool_response><|im_end|>\n<|im_start|>assistant\n<think>now I see</think><answer>B</answer>')
    assert returned_text(trajectory) == "B" and returned_text(trajectory, "full") == trajectory
    assert returned_text("<think>a</think>\\boxed{12}") == "12"
    assert returned_text('{"bbox_2d": [1, 2, 3, 4]}') == '{"bbox_2d": [1, 2, 3, 4]}'  # no answer block: as written
    assert returned_text("<think>only thinking</think>") == ""
