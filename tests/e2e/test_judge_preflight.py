"""A GRPO run whose judge (or listener) cannot answer stops before step 1, naming the URL and the key to
change: against a real dead port and a real OpenAI-compatible server on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from chat_server import ChatServer

from mmreason.config import load_recipe_dict
from mmreason.errors import RecipeError
from mmreason.rewards import build_rewards
from mmreason.train.preflight import check_services

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server():
    with ChatServer(lambda body: "OK") as srv:  # any other path than /v1/chat/completions is a 404
        yield srv


def dead_port() -> int:
    """A port on 127.0.0.1 nothing listens on: bound, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def judged(base_url: str, tmp_path) -> list:
    judge = {"base_url": base_url, "model": "judge-7b", "retries": 0, "timeout": 5,
             "cache_path": str(tmp_path / "judge.sqlite")}
    return [{"name": "think_answer_format"}, {"name": "llm_judge", "kwargs": {"judge": judge}}]


def test_mmreason_train_with_a_dead_judge_fails_before_step_one(tmp_path):
    port = dead_port()
    rewards = json.dumps(judged(f"http://127.0.0.1:{port}/v1", tmp_path))
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "mmreason", "train", "debug/tiny_grpo", f"rewards={rewards}",
                           f"output_dir={out}"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"http://127.0.0.1:{port}/v1/chat/completions did not answer" in proc.stderr
    assert "rewards.funcs.1.kwargs.judge.base_url" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "data").exists() and not (out / "metrics.jsonl").exists()  # nothing built or trained


def test_a_live_judge_passes_and_was_really_asked(server, tmp_path):
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    before = len(server.seen)
    check_services(build_rewards(load_recipe_dict({"rewards": judged(url, tmp_path)})))
    path, body, _ = server.seen[before]
    assert path == "/v1/chat/completions" and body["model"] == "judge-7b" and body["messages"]


def test_a_server_at_the_wrong_path_is_told_to_end_in_v1(server, tmp_path):
    url = f"http://127.0.0.1:{server.server_address[1]}"  # the /v1 left out, a common slip
    with pytest.raises(RecipeError) as err:
        check_services(build_rewards(load_recipe_dict({"rewards": judged(url, tmp_path)})))
    assert "HTTP 404" in str(err.value) and "ending in /v1" in str(err.value)


def test_a_listener_that_cannot_load_is_named(tmp_path):
    missing = str(tmp_path / "no-such-listener")
    r = load_recipe_dict({"rewards": [{"name": "listener", "kwargs": {"listener": {"model": missing}}}]})
    with pytest.raises(RecipeError) as err:
        check_services(build_rewards(r))
    assert "rewards.funcs.0.kwargs.listener" in str(err.value) and missing in str(err.value)
