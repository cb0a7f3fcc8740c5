"""The batch loop a checkpoint and an endpoint both generate through (`run_setup.in_batches`): batches of
the run's batch size in prompt order, each handed to the runner's callback before the next one starts, so
a run stopped by a failing batch has recorded every batch before it."""

from __future__ import annotations

import pytest

from mmreason.eval.run_setup import Generation, Setup, in_batches


def _setup(batch_size: int) -> Setup:
    return Setup("count", "qwen2_5_vl", {}, Generation(max_new_tokens=8, max_turns=1, batch_size=batch_size))


def test_batches_of_the_run_size_in_order_each_recorded_before_the_next():
    prompts = [{"id": f"p{k}"} for k in range(5)]
    events = []

    def run_batch(batch):
        events.append(("run", [p["id"] for p in batch]))
        return [{"id": p["id"], "output": p["id"].upper()} for p in batch]

    out = in_batches(prompts, _setup(2), run_batch, progress=False,
                     on_batch=lambda done: events.append(("record", [d["id"] for d in done])))
    assert [d["output"] for d in out] == ["P0", "P1", "P2", "P3", "P4"]
    assert events == [("run", ["p0", "p1"]), ("record", ["p0", "p1"]), ("run", ["p2", "p3"]),
                      ("record", ["p2", "p3"]), ("run", ["p4"]), ("record", ["p4"])]
    assert in_batches([], _setup(2), run_batch, progress=False) == []


def test_a_failing_batch_stops_the_loop_after_the_earlier_batches_are_recorded():
    recorded = []

    def run_batch(batch):
        if batch[0]["id"] == "p2":
            raise RuntimeError("server went away on p2")
        return [{"id": p["id"]} for p in batch]

    with pytest.raises(RuntimeError, match="p2"):
        in_batches([{"id": f"p{k}"} for k in range(4)], _setup(2), run_batch, progress=False,
                   on_batch=lambda done: recorded.extend(d["id"] for d in done))
    assert recorded == ["p0", "p1"]
