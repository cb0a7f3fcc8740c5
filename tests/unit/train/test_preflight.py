"""Preflight: a run that cannot work fails before step 1, saying what to change."""

import pytest
from PIL import Image

from mmreason.config import load_recipe_dict
from mmreason.errors import RecipeError
from mmreason.modalities.collate import Collator
from mmreason.train.preflight import (
    check_batch_shape, check_completion_room, check_prompts, check_reward_columns, check_sft, check_step_rewards,
)
from mmreason.rewards import build_rewards


def recipe(**sections):
    return load_recipe_dict(sections)


def test_groups_must_split_over_processes_and_micro_batches():
    with pytest.raises(RecipeError, match=r"batch_size=3 prompts do not split over 2 processes.*multiple of 2"):
        check_batch_shape(recipe(grpo={"batch_size": 3}).grpo, world_size=2)
    with pytest.raises(RecipeError, match=r"6 completions .*grpo.grad_accum=4 .* one of \[1, 2, 3, 6\]"):
        check_batch_shape(recipe(grpo={"batch_size": 2, "num_generations": 3, "grad_accum": 4}).grpo)
    assert check_batch_shape(recipe(grpo={"batch_size": 4, "num_generations": 2, "grad_accum": 4}).grpo, 2) == 2


def test_a_reward_without_its_column_is_named_with_the_fix():
    rows = [{"id": i, "messages": [], "source": "scenes", "boxes": [{"box": [0, 0, 1, 1]}]} for i in range(3)]
    with pytest.raises(RecipeError) as err:
        check_reward_columns(build_rewards(recipe(rewards=["think_answer_format", "accuracy"])), rows)
    msg = str(err.value)
    assert "'accuracy' does not apply to any of the first 3" in msg and "answer" in msg.split("columns with")[0]
    assert "route_by_source" in msg and "remove 'accuracy'" in msg
    # routed to other sources only: nothing to check on these rows
    routed = recipe(rewards={"funcs": ["think_answer_format", "accuracy"],
                             "route_by_source": {"scenes": ["think_answer_format"]}})
    check_reward_columns(build_rewards(routed), rows)
    with pytest.raises(RecipeError, match="rewards.funcs is empty"):
        check_reward_columns(build_rewards(recipe()), rows)


def test_step_rewards_need_a_step_reward():
    with pytest.raises(RecipeError, match="no reward in rewards.funcs produces steps: add one of virl"):
        r = recipe(rewards=["accuracy"], grpo={"step_rewards": True})
        check_step_rewards(r, build_rewards(r))
    r = recipe(rewards=["virl"], grpo={"step_rewards": True})
    check_step_rewards(r, build_rewards(r))


@pytest.fixture(scope="module")
def image_rows(tmp_path_factory):
    d = tmp_path_factory.mktemp("preflight")
    Image.new("RGB", (224, 224), (10, 200, 10)).save(d / "g.png")
    user = {"role": "user", "content": [{"type": "image", "image": str(d / "g.png")}, {"type": "text", "text": "Colour?"}]}
    return [{"id": "green-1", "messages": [user, {"role": "assistant", "content": [{"type": "text", "text": "green"}]}]}]


def test_prompt_longer_than_max_prompt_length_fails_naming_sample_and_fix(tiny_model, tiny_model_dir, image_rows):
    model, proc = tiny_model("qwen2_5_vl")
    path = str(tiny_model_dir("qwen2_5_vl"))
    r = recipe(model={"path": path, "max_pixels": 50176}, data={"max_prompt_length": 40}, grpo={})
    with pytest.raises(RecipeError) as err:
        check_prompts(r, image_rows, proc, model=model, media_options={"image": {"max_pixels": 50176}})
    msg = str(err.value)
    assert "sample 'green-1'" in msg and "66 of them media tokens" in msg and "data.max_prompt_length is 40" in msg
    assert "model.max_pixels" in msg
    ok = recipe(model={"path": path}, data={"max_prompt_length": 200}, grpo={"max_completion_length": 16})
    (n,) = check_prompts(ok, image_rows, proc, model=model, media_options={"image": {"max_pixels": 50176}})
    assert 64 < n <= 200
    huge = recipe(model={"path": path}, grpo={"max_completion_length": 10**6})
    with pytest.raises(RecipeError, match="exceeds the model's context"):
        check_prompts(huge, image_rows, proc, model=model, media_options={"image": {"max_pixels": 50176}})


def test_sft_rows_that_would_lose_image_tokens_fail_before_training(tiny_model, image_rows):
    _, proc = tiny_model("qwen2_5_vl")
    r = recipe(sft={"max_length": 30})
    collator = Collator(proc, "qwen2_5_vl", max_length=30, media_options={"image": {"max_pixels": 50176}})
    with pytest.raises(RecipeError, match=r"sft.max_length: .*'green-1'.*lose media tokens"):
        check_sft(r, image_rows, collator)


def test_vllm_rollouts_need_vllm_and_a_colocated_engine():
    import importlib.util

    from mmreason.train.rollout_backend import check_vllm

    check_vllm(recipe(grpo={}))  # HF generate: nothing to check
    with pytest.raises(RecipeError, match="cannot receive the policy's updated weights"):
        check_vllm(recipe(grpo={"rollout_backend": "vllm", "vllm_mode": "server"}))
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(RecipeError, match=r"pip install 'mmreason\[vllm\]'.*rollout_backend=hf"):
            check_vllm(recipe(grpo={"rollout_backend": "vllm"}))


def test_answers_longer_than_the_completion_budget_are_warned_about(tiny_model, image_rows, caplog):
    _, proc = tiny_model("qwen2_5_vl")
    box = {"role": "assistant", "content": [{"type": "text", "text": '{"bbox_2d": [100, 101, 110, 111]}'}]}
    rows = image_rows + [{"id": "far-corner", "messages": [image_rows[0]["messages"][0], box]}]
    answer = len(proc.tokenizer(box["content"][0]["text"], add_special_tokens=False)["input_ids"])
    tight = recipe(grpo={"max_completion_length": answer})  # no room left for the end of the turn
    with caplog.at_level("WARNING", logger="mmreason.train"):
        assert check_completion_room(tight, rows, proc) == ["far-corner"]
    assert "sample 'far-corner'" in caplog.text and f"at least {answer + 1}" in caplog.text
    caplog.clear()
    assert check_completion_room(recipe(grpo={"max_completion_length": answer + 1}), rows, proc) == []
    assert check_completion_room(recipe(), rows, proc) == []  # no GRPO section: nothing to budget
    assert not caplog.text
