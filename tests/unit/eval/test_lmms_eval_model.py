"""The lmms-eval model classes (`mmreason.eval.lmms_eval_model`, `mmreason.eval.lmms_eval_simple`):
lmms-eval finds them by their entry point (the chat class, or the simple one under ``--force_simple``), a
checkpoint's saved recipe decides its tools and prompt, and a bad ``pretrained=`` is an error naming it.
The lmms-eval runs themselves are tests/e2e/test_lmms_eval*.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmreason.errors import RecipeError
from mmreason.eval.lmms_eval_model import Likelihood, MMReasonLMM, returned_text, user_turn
from mmreason.eval.lmms_eval_simple import MMReasonSimpleLMM
from mmreason.prompts import PROMPTS
from mmreason.schema import user_message
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
    # --force_simple: the class lmms-eval sends loglikelihood (multiple_choice) requests to
    assert registry.get_model_class("mmreason", force_simple=True) is MMReasonSimpleLMM
    assert registry.resolve("mmreason", force_simple=True).model_type == "simple"


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
    # a system turn of several text parts: merged as the chat template renders them (joined with nothing
    # between), so the task's own system text reads the same with the tool declarations after it
    parts = [{"type": "text", "text": "Be brief. "}, {"type": "text", "text": "Answer in one word."}]
    system = lm.messages([{"role": "system", "content": parts}, *CHAT])[0]
    rendered = lm.processor.apply_chat_template([{"role": "system", "content": parts}], tokenize=False)
    assert rendered == "<|im_start|>system\nBe brief. Answer in one word.<|im_end|>\n"
    assert system["content"] == [{"type": "text", "text": "Be brief. Answer in one word.\n\n"
                                  + tools_prompt(["image_zoom_in_tool", "image_rotate_tool"])}]


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
    with pytest.raises(RecipeError, match="max_rounds='many'"):
        MMReasonLMM(pretrained=str(BASE), max_rounds="many")


def test_a_loglikelihood_reply_survives_lmms_evals_unwrapping():
    """lmms-eval 0.7.3 turns a bare (float, bool) reply into its str(); ours comes through as the pair."""
    from lmms_eval.api.instance import unwrap_generation_output

    reply = Likelihood((3.5, True))
    assert unwrap_generation_output(reply)[0] == (3.5, True) and tuple(reply) == (3.5, True)
    assert unwrap_generation_output((3.5, True))[0] == "(3.5, True)"  # why the wrapper exists


def test_a_simple_tasks_context_places_its_media():
    picture = Image.new("RGB", (28, 28))
    (turn,) = user_turn([picture, "clip.mp4", {"array": [0.0], "sampling_rate": 16000}], "Compare them.")
    assert [p["type"] for p in turn["content"]] == ["image", "video", "audio", "text"]
    # paths: the kind from the schema's suffix table (the one `mmreason.schema.user_message` reads), else video
    paths = ["a.PNG", "talk.aac", "talk.m4a", "clip.mkv", "clip.ts"]
    (turn,) = user_turn(paths, "Which?")
    assert [p["type"] for p in turn["content"]] == ["image", "audio", "audio", "video", "video", "text"]
    assert [p["type"] for p in turn["content"][:3]] == [user_message("", p)["content"][0]["type"] for p in paths[:3]]
    (turn,) = user_turn([picture], "Where is the red circle?<image>")
    assert turn["content"] == [{"type": "text", "text": "Where is the red circle?"}, {"type": "image", "url": picture}]
    # placeholders that do not match the media are dropped, the media go first
    (turn,) = user_turn([picture], "<image> and <image>: which?")
    assert turn["content"] == [{"type": "image", "url": picture}, {"type": "text", "text": "and : which?"}]


def test_lmms_eval_gets_the_answer_block_or_the_whole_trajectory():
    trajectory = ('<think>small text</think><tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": '
                  '[0, 0, 56, 56]}}</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nZoomed in.\n'
                  '</tool_response><|im_end|>\n<|im_start|>assistant\n<think>now I see</think><answer>B</answer>')
    assert returned_text(trajectory) == "B" and returned_text(trajectory, "full") == trajectory
    assert returned_text("<think>a</think>\\boxed{12}") == "12"
    assert returned_text('{"bbox_2d": [1, 2, 3, 4]}') == '{"bbox_2d": [1, 2, 3, 4]}'  # no answer block: as written
    assert returned_text("<think>only thinking</think>") == ""


def test_media_tokens_written_in_a_tasks_text_are_not_media_slots():
    """A multi-round task quoting an earlier round's whole trajectory (output=full) quotes the pictures the
    tools returned as placeholder tokens; read as text they would be slots with no picture behind them."""
    lm = MMReasonLMM(pretrained=str(BASE))
    quoted = "Before: <tool_response>\n<|vision_start|><|image_pad|><|vision_end|>Zoomed in.</tool_response>"
    (user,) = lm.messages([{"role": "user", "content": [{"type": "text", "text": quoted}]}])
    assert user["content"] == [{"type": "text", "text": "Before: <tool_response>\nZoomed in.</tool_response>"}]
