"""A GRPO run that cannot work stops before its first step, and says what to change (through the entry point)."""

import pytest
from PIL import Image

from mmreason.errors import RecipeError
from mmreason.schema import write_jsonl


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("preflight-data")
    Image.new("RGB", (224, 224), (30, 160, 30)).save(root / "g.png")
    rows = [{"id": f"q{i}", "task": "vqa", "source": "plain",
             "messages": [{"role": "user", "content": [{"type": "image", "image": "g.png"},
                                                       {"type": "text", "text": "What colour?"}]}]}
            for i in range(4)]
    write_jsonl(rows, root / "data.jsonl")  # no `answer` column
    return root


def fails_before_step_one(tmp_path, tiny_model_dir, data, *overrides):
    from mmreason.train import grpo

    with pytest.raises(RecipeError) as err:
        grpo.main(["debug/tiny_grpo", f"model.path={tiny_model_dir('qwen2_5_vl')}", f"data.train=[{data}]",
                   f"output_dir={tmp_path}", *overrides])
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "checkpoints").exists()
    return str(err.value)


def test_missing_reward_column(tmp_path, tiny_model_dir, data):
    msg = fails_before_step_one(tmp_path, tiny_model_dir, data, "rewards.funcs=[{name: accuracy}]")
    assert "'accuracy' does not apply" in msg and "answer" in msg and "rewards.funcs" in msg


def test_image_tokens_would_be_truncated(tmp_path, tiny_model_dir, data):
    msg = fails_before_step_one(tmp_path, tiny_model_dir, data, "rewards.funcs=[{name: think_answer_format}]",
                                "data.max_prompt_length=32")
    assert "sample 'q0'" in msg and "media tokens" in msg and "Raise data.max_prompt_length to at least" in msg


def test_groups_that_do_not_divide_the_batch(tmp_path, tiny_model_dir, data):
    msg = fails_before_step_one(tmp_path, tiny_model_dir, data, "rewards.funcs=[{name: think_answer_format}]",
                                "grpo.grad_accum=3")
    assert "4 completions per process" in msg and "grpo.grad_accum to one of [1, 2, 4]" in msg


def test_mmreason_train_dispatches_a_grpo_recipe_and_reports_the_error(tmp_path, tiny_model_dir, data, capsys):
    from mmreason import cli

    code = cli.main(["train", "debug/tiny_grpo", f"model.path={tiny_model_dir('qwen2_5_vl')}",
                     f"data.train=[{data}]", f"output_dir={tmp_path}", "grpo.grad_accum=3"])
    assert code == 2
    assert "mmreason train: error: grpo.batch_size=2 x grpo.num_generations=2" in capsys.readouterr().err
