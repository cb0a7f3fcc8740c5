"""The shipped accelerate configs parse as accelerate reads them, and GRPO runs as two CPU processes over gloo
through `accelerate launch` (the DDP path: whole groups per process, gradients averaged, per-process RNG)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mmreason.schema import write_jsonl
from mmreason.train.checkpoint import latest_checkpoint
from mmreason.train.logging import read_jsonl

CONFIGS = Path(__file__).resolve().parents[2] / "train" / "accelerate"
EXPECTED = {"ddp": ("MULTI_GPU", 8), "fsdp": ("FSDP", 8), "zero2": ("DEEPSPEED", 8), "zero3": ("DEEPSPEED", 8),
            "cpu_gloo_2proc": ("MULTI_GPU", 2), "fsdp_cpu_gloo_2proc": ("FSDP", 2)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_configs_load(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert (config.distributed_type.value, config.num_processes) == EXPECTED[name]
    if name.startswith("zero"):
        assert config.deepspeed_config["zero_stage"] == int(name[-1])
    if name.startswith("fsdp"):
        assert config.fsdp_config["fsdp_version"] == 2


def test_every_shipped_config_is_checked():
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_cpu_processes_over_gloo(tiny_model_dir, tmp_path):
    for i in range(4):
        Image.new("RGB", (56, 56 + 28 * i), (40 * i, 200, 30)).save(tmp_path / f"{i}.png")
    write_jsonl([{"id": f"p{i}", "task": "vqa", "source": "s", "answer": "green",
                  "messages": [{"role": "user", "content": [{"type": "image", "image": f"{i}.png"},
                                                            {"type": "text", "text": "Colour?"}]}]}
                 for i in range(4)], tmp_path / "data.jsonl")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "cpu_gloo_2proc.yaml"),
           "--main_process_port", str(free_port()), "-m", "mmreason.train.grpo", "debug/tiny_grpo",
           f"model.path={tiny_model_dir('qwen2_5_vl')}", f"data.train=[{tmp_path}]", f"output_dir={out}",
           "grpo.batch_size=2", "grpo.max_steps=2", "grpo.max_completion_length=8"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    logs = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in logs] == [1, 2]  # written once, by the main process
    state = latest_checkpoint(out) / "state"
    assert sorted(p.name for p in state.glob("random_states_*.pkl")) == ["random_states_0.pkl", "random_states_1.pkl"]
    assert (out / "final" / "config.json").is_file()
