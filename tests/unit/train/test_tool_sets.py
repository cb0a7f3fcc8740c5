"""Tools per sample (`tools.column`, `tools.sets`): the field read per row, clear errors naming the sample,
each row's own tools declared in its system turn, and the step's rollouts split by tool set and put back
in row order on a real tiny model."""

import numpy as np
import pytest
from PIL import Image

from mmreason.config import load_recipe_dict
from mmreason.errors import RecipeError
from mmreason.train.tool_sets import check_rows, row_tools, split_by_tools

ZOOM = ("image_zoom_in_tool",)
TOOLS = {"names": list(ZOOM), "column": "meta.env_name",
         "sets": {"visual_toolbox_v2": list(ZOOM), "": [], "both": ["image_zoom_in_tool", "image_rotate_tool"]}}


def recipe(**extra):
    return load_recipe_dict({"tools": TOOLS, **extra})


def test_the_field_picks_the_set_and_rows_without_it_get_the_recipe_default():
    t = recipe().tools
    assert row_tools(t, {"meta": {"env_name": ""}}) == ()
    assert row_tools(t, {"meta": {"env_name": "both"}}) == ("image_zoom_in_tool", "image_rotate_tool")
    assert row_tools(t, {"meta": {"env_name": None}}) == ZOOM and row_tools(t, {"id": "x"}) == ZOOM
    assert row_tools(t, {"meta": {"env_name": np.array(["image_rotate_tool"])}}) == ("image_rotate_tool",)
    assert row_tools(load_recipe_dict({"tools": list(ZOOM)}).tools, {"meta": {"env_name": ""}}) == ZOOM  # no column


def test_unknown_values_and_tools_name_the_sample_before_training():
    t = recipe().tools
    with pytest.raises(RecipeError, match=r"sample 'r7'.*'visual_toolbox_v3'.*tools.sets"):
        check_rows(t, [{"id": "r7", "meta": {"env_name": "visual_toolbox_v3"}}])
    with pytest.raises(RecipeError, match=r"data.eval: sample 'r8'.*no_such_tool"):
        check_rows(t, [{"id": "r8", "meta": {"env_name": ["no_such_tool"]}}], split="eval")
    with pytest.raises(RecipeError, match="sample 'r9'.*expected a key of tools.sets"):
        row_tools(t, {"id": "r9", "meta": {"env_name": 3}})
    with pytest.raises(RecipeError, match="tools.sets is set but tools.column is not"):
        load_recipe_dict({"tools": {"sets": {"a": []}}})


def test_each_row_declares_its_own_tools_in_its_system_turn():
    from mmreason.train.data import with_prompt

    question = [{"role": "user", "content": [{"type": "text", "text": "What colour?"}]}]
    rows = [{"id": f"r{i}", "messages": question, "meta": {"env_name": env}}
            for i, env in enumerate(["visual_toolbox_v2", "", "both"])]
    wrapped = with_prompt(recipe(data={"prompt": "deepeyes"}), rows)
    systems = [next((m["content"][0]["text"] for m in r["messages"] if m["role"] == "system"), "") for r in wrapped]
    assert "image_zoom_in_tool" in systems[0] and "image_rotate_tool" not in systems[0]
    assert "<tools>" not in systems[1]  # no tool, nothing declared
    assert "image_zoom_in_tool" in systems[2] and "image_rotate_tool" in systems[2]


def test_rollouts_split_by_tool_set_come_back_in_row_order(tiny_model, tmp_path):
    from accelerate import Accelerator

    from mmreason.rollout import RolloutConfig
    from mmreason.train.grpo_step import StepContext, generate

    model, proc = tiny_model("qwen2_5_vl")
    Image.new("RGB", (56, 56), (200, 30, 30)).save(tmp_path / "a.png")
    envs = ["", "visual_toolbox_v2", "", None]
    rows = [{"id": f"r{i}", "meta": {"env_name": env}, "messages": [{"role": "user", "content": [
        {"type": "image", "image": str(tmp_path / "a.png")}, {"type": "text", "text": "Colour? " * (i + 1)}]}]}
        for i, env in enumerate(envs)]
    r = recipe(model={"path": "tiny:qwen2_5_vl"}, grpo={"num_generations": 2, "max_completion_length": 4})
    assert split_by_tools(r.tools, rows) == [((), [0, 2]), (ZOOM, [1, 3])]
    ctx = StepContext(r, Accelerator(cpu=True), model, proc, None, None, None,
                      RolloutConfig.from_recipe(r), {})
    trajs = generate(ctx, rows)
    assert [(t.index, t.group, t.sample_id) for t in trajs] == [(k, k // 2, f"r{k // 2}") for k in range(8)]
    # each row's prompt is its own: the trajectories of a row start from that row's prompt
    lengths = [len(t.prompt_ids) for t in trajs]
    assert lengths[0] == lengths[1] < lengths[2] == lengths[3] < lengths[4] < lengths[6]
    greedy = generate(ctx, rows, group_size=1, do_sample=False)
    assert [t.sample_id for t in greedy] == ["r0", "r1", "r2", "r3"]
    assert greedy[0].completion == generate(ctx, rows[:1], group_size=1, do_sample=False)[0].completion
