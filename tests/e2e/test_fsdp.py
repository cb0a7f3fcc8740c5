"""FSDP2 through `accelerate launch` on two CPU processes over gloo: GRPO and SFT on the tiny model log the
figures the DDP run logs (within `TOLERANCE`), the parameters really are sharded (one checkpoint shard per
process), loadable models are exported from the shards (SFT's checkpoints and `final/`, GRPO's `final/`), and a
run resumed from its step-1 checkpoint logs the step-2 figures of the uninterrupted run."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mmreason.train.checkpoint import list_checkpoints
from mmreason.train.logging import read_jsonl

CONFIGS = Path(__file__).resolve().parents[2] / "train" / "accelerate"
# FSDP reduce-scatters gradients where DDP all-reduces them: the same sums in another order, so float32
# losses agree to rounding, not bit for bit.
TOLERANCE = 1e-4
# A reward that tells every completion apart (its length in characters), so GRPO's advantages and loss are
# not all zero on a tiny random policy and the comparison means something.
LENGTH_REWARD = [{"name": "length_penalty", "kwargs": {"max_length": 400, "cache_length": 399, "unit": "chars"}}]
SETTINGS = ["grpo.max_steps=2", "grpo.save_steps=1", "grpo.batch_size=2", "grpo.max_completion_length=8",
            f"rewards={json.dumps(LENGTH_REWARD)}"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(config: str, model: Path, out: Path, *, resume: bool = False, trainer: str = "grpo",
           settings: list[str] = SETTINGS) -> list[dict]:
    """One 2-process run of `trainer` on its debug recipe; returns its metrics.jsonl records."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / f"{config}.yaml"),
           "--main_process_port", str(free_port()), "-m", f"mmreason.train.{trainer}", f"debug/tiny_{trainer}",
           f"model.path={model}", f"output_dir={out}", *settings, *(["--resume"] if resume else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return read_jsonl(out / "metrics.jsonl")


# What is compared, per step. GRPO's loss is 0 on the first pass over fresh samples (advantages sum to 0
# within a group and the ratio is 1), so the gradient norm, the policy entropy and the reward of what the
# updated policy samples carry the comparison.
COMPARED = ("loss", "grad_norm", "entropy", "reward")


def figures(records: list[dict]) -> dict[int, dict[str, float]]:
    return {r["step"]: {k: r[k] for k in COMPARED} for r in records if "grad_norm" in r}


@pytest.mark.slow
def test_grpo_fsdp2_matches_ddp_and_resumes_exactly(tiny_model_dir, tmp_path):
    model = tiny_model_dir("qwen2_5_vl")
    ddp = figures(launch("cpu_gloo_2proc", model, tmp_path / "ddp"))
    fsdp_out = tmp_path / "fsdp"
    fsdp = figures(launch("fsdp_cpu_gloo_2proc", model, fsdp_out))
    assert sorted(ddp) == sorted(fsdp) == [1, 2]
    assert all(fsdp[step]["grad_norm"] > 1e-3 for step in fsdp), fsdp  # a zero gradient would compare nothing
    for step in ddp:
        for key, value in ddp[step].items():
            assert fsdp[step][key] == pytest.approx(value, rel=TOLERANCE, abs=TOLERANCE), (step, key, ddp, fsdp)

    # Really sharded: accelerate writes one distributed-checkpoint file per process for the model and the
    # optimizer (a DDP state is one consolidated file).
    first, last = list_checkpoints(fsdp_out)
    state = first / "state"
    shards = sorted(p.name for p in state.glob("pytorch_model_fsdp_0/*.distcp"))
    assert shards == ["__0_0.distcp", "__1_0.distcp"], sorted(p.name for p in state.iterdir())
    assert len(list(state.glob("optimizer_0/*.distcp"))) == 2
    assert (fsdp_out / "final" / "config.json").is_file()

    # Resume from step 1 (the step-2 checkpoint and the export removed): the same step-2 figures.
    shutil.rmtree(last)
    shutil.rmtree(fsdp_out / "final")
    resumed = figures(launch("fsdp_cpu_gloo_2proc", model, fsdp_out, resume=True))
    for key, value in fsdp[2].items():
        assert resumed[2][key] == pytest.approx(value, rel=1e-6, abs=1e-7), (key, resumed, fsdp)


# SFT: the debug recipe's LoRA run, a checkpoint after each of its two steps (a step is one batch of 2 rows on
# each process). Its loss is cross-entropy over the assistant tokens, non-zero from the first step.
SFT_SETTINGS = ["sft.max_steps=2", "sft.save_steps=1", "sft.batch_size=2"]
SFT_COMPARED = ("loss", "grad_norm", "entropy", "num_tokens")


def sft_figures(records: list[dict]) -> dict[int, dict[str, float]]:
    return {r["step"]: {k: r[k] for k in SFT_COMPARED} for r in records if "grad_norm" in r}


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def assert_same_tensors(a: Path, b: Path) -> None:
    left, right = tensors(a), tensors(b)
    assert sorted(left) == sorted(right)
    for name, value in left.items():
        assert (value - right[name]).abs().max().item() <= TOLERANCE, name


@pytest.mark.slow
def test_sft_fsdp2_matches_ddp_and_resumes_exactly(tiny_model_dir, tmp_path):
    model = tiny_model_dir("qwen2_5_vl")
    ddp_out, fsdp_out = tmp_path / "ddp", tmp_path / "fsdp"
    ddp = sft_figures(launch("cpu_gloo_2proc", model, ddp_out, trainer="sft", settings=SFT_SETTINGS))
    fsdp = sft_figures(launch("fsdp_cpu_gloo_2proc", model, fsdp_out, trainer="sft", settings=SFT_SETTINGS))
    assert sorted(ddp) == sorted(fsdp) == [1, 2]
    assert all(fsdp[step]["grad_norm"] > 1e-3 for step in fsdp), fsdp
    # both processes trained on their own rows: a step counts the tokens of 2 x 2 rows
    assert fsdp[1]["num_tokens"] > 0 and fsdp[2]["num_tokens"] > fsdp[1]["num_tokens"], fsdp
    for step in ddp:
        for key, value in ddp[step].items():
            assert fsdp[step][key] == pytest.approx(value, rel=TOLERANCE, abs=TOLERANCE), (step, key, ddp, fsdp)

    # Sharded checkpoints, and beside them the adapter gathered from the shards, equal to DDP's own.
    first, last = list_checkpoints(fsdp_out)
    state = first / "state"
    assert sorted(p.name for p in state.glob("pytorch_model_fsdp_0/*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    assert len(list(state.glob("optimizer_0/*.distcp"))) == 2
    ddp_first, _ = list_checkpoints(ddp_out)
    assert_same_tensors(first / "model" / "adapter_model.safetensors",
                        ddp_first / "model" / "adapter_model.safetensors")
    assert_same_tensors(fsdp_out / "final" / "model.safetensors", ddp_out / "final" / "model.safetensors")

    # Resume from step 1 (the step-2 checkpoint and the exports removed): the same step-2 figures.
    shutil.rmtree(last)
    for export in ("final", "adapter"):
        shutil.rmtree(fsdp_out / export)
    resumed = sft_figures(launch("fsdp_cpu_gloo_2proc", model, fsdp_out, resume=True, trainer="sft",
                                 settings=SFT_SETTINGS))
    for key, value in fsdp[2].items():
        assert resumed[2][key] == pytest.approx(value, rel=1e-6, abs=1e-7), (key, resumed, fsdp)
    assert (fsdp_out / "final" / "model.safetensors").is_file()
