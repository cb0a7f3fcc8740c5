"""Validation during GRPO and several updates per batch, through `mmreason train` on the shipped
`debug/tiny_grpo_eval` recipe: eval/* metrics land in the run's records at exactly the requested steps (and
at step 0 with ``grpo.eval_on_start``), scored by the recipe's own reward terms, greedily, one completion per
eval row; with ``grpo.num_iterations=2`` every step logs TRL's clip ratios."""

import pytest

from mmreason import cli
from mmreason.errors import RecipeError
from mmreason.train.logging import read_jsonl

EVAL_KEYS = {"eval/reward", "eval/think_answer_format", "eval/accuracy", "eval/completion_length",
             "eval/tool_calls_per_trajectory", "eval/samples", "time/eval"}


def test_validation_writes_eval_metrics_at_the_requested_steps(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "debug/tiny_grpo_eval", f"output_dir={out}", "report_to=[jsonl, tensorboard]"]) == 0
    records = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 1, 2, 3, 4]
    validated = [r["step"] for r in records if EVAL_KEYS <= set(r)]
    assert validated == [0, 2, 4]  # eval_on_start, eval_steps=2, and the last step
    assert not any(k.startswith("eval/") for r in records if r["step"] in (1, 3) for k in r)
    for r in records:
        if r["step"] in validated:
            assert r["eval/samples"] == 4  # max_eval_samples
            assert 0.0 <= r["eval/accuracy"] <= 1.0 and r["eval/completion_length"] > 0
        else:
            assert {"clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "clip_fraction"} <= set(r)
    # the held-out rows come from data.eval's own builder spec
    assert any(p.name.startswith("image_scenes_n=4_seed=1") for p in (out / "data").iterdir())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("eval/reward")] == [0, 2, 4]


def test_validation_is_off_when_asked(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "debug/tiny_grpo_eval", "grpo.max_steps=1", "grpo.eval_strategy=no",
                     f"output_dir={out}"]) == 0
    records = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1] and not any(k.startswith("eval/") for k in records[0])


def test_a_bad_eval_set_stops_the_run_before_training(tmp_path):
    from mmreason.train import grpo

    with pytest.raises(RecipeError, match="data.eval"):
        grpo.main(["debug/tiny_grpo_eval", f"output_dir={tmp_path}", f"data.eval=[{tmp_path / 'none'}]"])
    assert not (tmp_path / "metrics.jsonl").exists()

