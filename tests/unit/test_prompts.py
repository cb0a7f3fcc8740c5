"""Method prompts wrap the question, declare the tools in the system turn, and reach training rows."""

import pytest

from mmreason.config import load_recipe_dict
from mmreason.errors import RecipeError
from mmreason.prompts import PROMPTS, apply_prompt, prompt_style
from mmreason.train.data import with_prompt


def _row(system=None):
    msgs = [{"role": "user", "content": [{"type": "image", "image": "a.png"},
                                         {"type": "text", "text": "What colour is the cup?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "<answer>red</answer>"}]}]
    if system:
        msgs.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
    return {"id": "r", "messages": msgs}


def test_deepeyes_prompt_wraps_question_and_declares_tools():
    out = apply_prompt(_row(), PROMPTS["deepeyes"], tools_text="<tools>zoom</tools>")
    assert out["messages"][0] == {"role": "system", "content": [{"type": "text", "text": "<tools>zoom</tools>"}]}
    text = out["messages"][1]["content"][1]["text"]
    assert text.startswith("Question: What colour is the cup?\nThink first, call **image_zoom_in_tool**")
    assert text.endswith("<answer>...</answer>")
    assert out["messages"][2]["content"][0]["text"] == "<answer>red</answer>"  # targets untouched
    assert _row()["messages"][0]["content"][1]["text"] == "What colour is the cup?"  # input not mutated


def test_row_system_turn_is_kept_and_overrides_apply():
    out = apply_prompt(_row(system="Be brief."), prompt_style("deepeyes", suffix="!"), tools_text="T")
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant"]
    assert out["messages"][0]["content"][0]["text"] == "Be brief."
    assert out["messages"][1]["content"][1]["text"] == "Question: What colour is the cup?!"


def test_unknown_prompt_is_a_recipe_error_listing_the_known_ones():
    with pytest.raises(RecipeError, match="unknown prompt 'deepeye'.*deepeyes"):
        prompt_style("deepeye")
    with pytest.raises(RecipeError, match="data.prompt"):
        load_recipe_dict({"model": {"path": "tiny:qwen2_5_vl"}, "data": {"prompt": "deepeye"}})


def test_recipe_prompt_reaches_rows_with_the_recipe_tools():
    recipe = load_recipe_dict({"model": {"path": "tiny:qwen2_5_vl"},
                               "data": {"prompt": "deepeyes"}, "tools": {"names": ["image_zoom_in_tool"]}})
    (out,) = with_prompt(recipe, [_row()])
    system = out["messages"][0]["content"][0]["text"]
    assert '"name": "image_zoom_in_tool"' in system and "<tool_call>" in system
    plain = load_recipe_dict({"model": {"path": "tiny:qwen2_5_vl"}})
    assert with_prompt(plain, [_row()]) == [_row()]


def test_rows_that_call_tools_without_declared_tools_are_warned_about(caplog):
    calling = _row()
    calling["messages"][1]["content"][0]["text"] = '<think>zoom</think><tool_call>{"name": "z"}</tool_call>'
    bare = load_recipe_dict({"model": {"path": "tiny:qwen2_5_vl"}, "data": {"prompt": "deepeyes"}})
    with caplog.at_level("WARNING", logger="mmreason.train"):
        with_prompt(bare, [_row(), calling])
    assert "no tools are named for 1 row(s)" in caplog.text and "tools.names" in caplog.text
    caplog.clear()
    declared = load_recipe_dict({"model": {"path": "tiny:qwen2_5_vl"}, "data": {"prompt": "deepeyes"},
                                 "tools": {"names": ["image_zoom_in_tool"]}})
    with caplog.at_level("WARNING", logger="mmreason.train"):
        with_prompt(declared, [calling])
    assert "tools.names" not in caplog.text
