"""Run logs: JSONL records, tensorboard events, truncation on resume, a torn last line."""

import math

from mmreason.train.logging import (
    COMPLETIONS_FILE, METRICS_FILE, Progress, RunLogger, read_jsonl, truncate_after,
)


def test_records_keep_numbers_and_drop_the_rest(tmp_path):
    import torch

    with RunLogger(tmp_path, tensorboard=False) as log:
        rec = log.log(1, {"loss": torch.tensor(0.25), "ok": True, "n": 3, "nan": math.nan, "inf": math.inf,
                          "text": "x", "vec": [1, 2]})
    assert rec == {"step": 1, "loss": 0.25, "ok": 1, "n": 3}
    assert read_jsonl(tmp_path / METRICS_FILE) == [rec]


def test_tensorboard_events_hold_the_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with RunLogger(tmp_path) as log:
        for step in (1, 2):
            log.log(step, {"reward/accuracy": step / 4})
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("reward/accuracy")] == [(1, 0.25), (2, 0.5)]


def test_resume_drops_lines_after_the_checkpoint_and_a_fresh_run_starts_over(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as log:
        for step in range(1, 6):
            log.log(step, {"loss": float(step)})
    with open(tmp_path / METRICS_FILE, "a") as f:
        f.write('{"step": 6, "lo')  # torn by a kill mid-write
    with RunLogger(tmp_path, tensorboard=False, resume_step=3) as log:
        log.log(4, {"loss": 40.0})
    assert [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / METRICS_FILE)] == [(1, 1), (2, 2), (3, 3), (4, 40)]
    with RunLogger(tmp_path, tensorboard=False) as log:
        log.log(1, {"loss": 9.0})
    assert read_jsonl(tmp_path / METRICS_FILE) == [{"step": 1, "loss": 9.0}]


def test_completions_are_kept_per_step_and_truncated_on_resume_like_metrics(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as log:
        log.log(1, {"loss": 1.0})
    assert not (tmp_path / COMPLETIONS_FILE).exists()  # a run that logs no completions leaves no file
    sample = {"prompt_id": "p0", "completion": "<answer>été</answer>", "reward": math.nan,
              "rewards": {"accuracy": None, "format": 1.0}}
    with RunLogger(tmp_path, tensorboard=False) as log:
        for step in range(1, 5):
            rec = log.log_samples(step, [sample])
    assert rec["samples"] == [{**sample, "reward": None}]  # non-finite numbers are left out, as in metrics
    assert [r["step"] for r in read_jsonl(tmp_path / COMPLETIONS_FILE)] == [1, 2, 3, 4]
    with RunLogger(tmp_path, tensorboard=False, resume_step=2) as log:
        log.log_samples(3, [{"completion": "again"}])
    got = read_jsonl(tmp_path / COMPLETIONS_FILE)
    assert [(r["step"], r["samples"][0]["completion"]) for r in got] == [
        (1, "<answer>été</answer>"), (2, "<answer>été</answer>"), (3, "again")]
    with RunLogger(tmp_path, tensorboard=False):
        pass
    assert not (tmp_path / COMPLETIONS_FILE).exists()  # a fresh run starts over


def test_truncate_after_counts_and_disabled_logger_writes_nothing(tmp_path):
    assert truncate_after(tmp_path / "none.jsonl", 3) == 0
    with RunLogger(tmp_path / "off", enabled=False) as log:
        assert log.log(1, {"loss": 1.0}) == {"step": 1, "loss": 1.0}
        assert log.log_samples(1, [{"completion": "x"}]) == {"step": 1, "samples": [{"completion": "x"}]}
    assert not (tmp_path / "off").exists()


def test_progress_bar_runs_and_can_be_disabled():
    with Progress(3, enabled=True) as bar:
        bar.update(1, {"loss": 0.5, "reward": "n/a"})
    with Progress(3, enabled=False) as bar:
        bar.update(2, {"loss": 0.5})
