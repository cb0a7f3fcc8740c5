"""Kill a GRPO run with SIGKILL after a checkpoint, resume it, and get exactly the curve of a run never killed.

Both runs are real subprocesses on the tiny model (LoRA, as users run it), rewarded by a user reward file
(how many distinct characters a completion has: it varies with what the random policy samples, so the
curve moves). Everything but wall-clock timings must be equal, float for float.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from mmreason.schema import write_jsonl
from mmreason.train.checkpoint import COMPLETE, latest_checkpoint
from mmreason.train.logging import read_jsonl

REWARD = '''
def distinct_chars(completions, **columns):
    """Distinct characters of each completion / 20: a reward the random policy's samples move."""
    return [len(set(c)) / 20 for c in completions]
'''
STEPS = 6


def command(tiny_dir, data, reward, out, *extra):
    return [sys.executable, "-m", "mmreason.train.grpo", "debug/tiny_grpo", f"model.path={tiny_dir}",
            f"data.train=[{data}]", f"rewards.funcs=[{{name: '{reward}:distinct_chars'}}]", f"output_dir={out}",
            f"grpo.max_steps={STEPS}", "grpo.save_steps=2", "grpo.max_completion_length=8", "grpo.temperature=1.5",
            *extra]


def curve(out):
    """The logged records without wall-clock timings."""
    return [{k: v for k, v in r.items() if not k.startswith(("time/", "throughput/"))} for r in read_jsonl(out)]


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tiny_model_dir, tmp_path):
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]):
        Image.new("RGB", (56 + 28 * i, 56), colour).save(tmp_path / f"{i}.png")
    rows = [{"id": f"p{i}", "task": "vqa", "source": "colours", "answer": "x",
             "messages": [{"role": "user", "content": [{"type": "image", "image": f"{i}.png"},
                                                       {"type": "text", "text": "Describe it."}]}]} for i in range(4)]
    write_jsonl(rows, tmp_path / "data.jsonl")
    (tmp_path / "reward.py").write_text(REWARD)
    tiny = tiny_model_dir("qwen2_5_vl")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    run = lambda out, *extra: command(tiny, tmp_path, tmp_path / "reward.py", tmp_path / out, *extra)  # noqa: E731

    whole = subprocess.Popen(run("whole"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed = subprocess.Popen(run("killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / "killed" / "checkpoints" / "step-000002" / COMPLETE
    deadline = time.monotonic() + 300
    while not marker.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed mid-way"
    assert latest_checkpoint(tmp_path / "killed").name in ("step-000002", "step-000004")
    assert len(read_jsonl(tmp_path / "killed" / "metrics.jsonl")) < STEPS

    resumed = subprocess.run(run("killed", "--resume"), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    assert whole.wait(timeout=600) == 0, whole.stderr.read()[-3000:]

    expected, got = curve(tmp_path / "whole" / "metrics.jsonl"), curve(tmp_path / "killed" / "metrics.jsonl")
    assert [r["step"] for r in got] == list(range(1, STEPS + 1))
    assert len({r["reward"] for r in expected}) > 1  # the curve moves, so equality means something
    assert got == expected
