"""benchmarks/grpo_tool_step.py at smoke size: the tiny Qwen3-VL is taught to call the zoom tool, then one
GRPO step of ours and one of TRL's GRPOTrainer (its tool loop, the zoom run as a TRL environment) both run
and both call the tool; TRL's own tool-call metric agrees with the calls counted where its tool runs. No
timing is asserted."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_both_trainers_run_a_step_that_calls_the_zoom_tool(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import grpo_tool_step as bench

    args = bench.parse_args(["--prompts", "1", "--group", "2", "--steps", "1", "--warmup", "0"])
    results = bench.run(args)
    assert results["teach_steps"] >= 1
    for side in ("ours", "trl"):
        got = results[side]
        assert len(got["times"]) == 1 and got["step_s"] > 0, side
        # the taught model calls the tool on every allowed turn; sampling may spoil a call now and then
        assert got["mean_calls"] >= 1, (side, got["calls_per_traj"])
        assert got["mean_pictures"] >= 1, (side, got["pictures_per_traj"])  # calls that returned a crop
        assert got["mean_length"] > 0, side
    assert results["trl"]["logged_calls_per_traj"] == pytest.approx(results["trl"]["calls_per_traj"])
    assert results["ratio"] == pytest.approx(results["ours"]["step_s"] / results["trl"]["step_s"])

    text = bench.report(results, args, "python benchmarks/grpo_tool_step.py --prompts 1 --group 2")
    out = tmp_path / "RESULTS.md"
    out.write_text("# Benchmark results\n\n## Another section\n\nkept\n")
    bench.write_section(text, out, "tools-tiny-cpu")
    bench.write_section(text, out, "tools-tiny-cpu")  # replaced, not appended
    written = out.read_text()
    assert written.startswith("# Benchmark results\n\n## Another section\n\nkept\n")
    assert written.count("| mmreason GRPO step |") == 1 and written.count("| TRL GRPOTrainer (tools) |") == 1
    assert f"Ratio ours / TRL: **{results['ratio']:.2f}**" in written
