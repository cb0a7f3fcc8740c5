"""What a demo user can cost it: an upload is bounded (a larger POST is refused with 413 before it is stored),
and a prefilled answer does not eat the token budget (``max_new_tokens`` counts generated tokens only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from demo_server import free_port, wait_up
from mmreason.demos import add_serve_args, serve
from mmreason.demos.grounded_chat import ChatConfig, build_demo, chat_row, chat_stream, example_picture, \
    stream_rollout

FAMILY = "qwen2_5_vl"
BUDGET = 64 * 28 * 28
REPO = Path(__file__).resolve().parents[2]


def _upload(url: str, size: int) -> tuple[int, str]:
    """POST one file of `size` bytes to Gradio's upload route, as the page does."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + b"\0" * size + \
        f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_demo_command_refuses_an_upload_over_its_limit(tiny_model_dir, tmp_path):
    port, uploads = free_port(), tmp_path / "gradio"
    env = {**os.environ, "GRADIO_TEMP_DIR": str(uploads), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mmreason", "demo", "grounded_chat", "--model",
                             str(tiny_model_dir(FAMILY)), "--port", str(port), "--max-upload-mb", "1"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_up(url, proc, 240)
        status, text = _upload(url, 3 * 1024 * 1024)
        assert status == 413 and "maximum allowed size of 1048576 bytes" in text, (status, text)
        stored = [f.stat().st_size for f in uploads.rglob("*") if f.is_file()]
        assert all(size <= 1024 * 1024 for size in stored), stored  # never written past the limit
        status, text = _upload(url, 1000)  # under the limit: taken as before
        assert status == 200 and json.loads(text), text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


def test_a_demo_served_without_the_option_still_has_a_limit(tiny_model):
    import argparse

    from mmreason.demos import MAX_UPLOAD_MB

    parser = argparse.ArgumentParser()
    add_serve_args(parser)
    args = parser.parse_args(["--port", str(free_port())])
    model, processor = tiny_model(FAMILY)
    demo = build_demo(model, processor, FAMILY, config=ChatConfig(max_new_tokens=8, max_pixels=BUDGET))
    serve(demo, args, block=False)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/config", timeout=30) as response:
            config = json.loads(response.read())
        assert config["max_file_size"] == MAX_UPLOAD_MB * 1024 * 1024
    finally:
        demo.close()


def test_a_prefilled_answer_does_not_eat_the_token_budget(tiny_model):
    from mmreason.rollout import RolloutConfig

    model, processor = tiny_model(FAMILY)
    prefill = "The picture shows a few shapes on a plain background, and the one asked about is"
    n_prefill = len(processor.tokenizer(prefill, add_special_tokens=False).input_ids)
    budget = 8
    assert n_prefill > budget  # the case users hit: the prefill alone used to spend the whole budget
    row = chat_row(example_picture(), "Where is the red square?", ())
    config = RolloutConfig(max_turns=1, max_new_tokens=budget, max_completion_tokens=budget, do_sample=False,
                           seed=0)
    traj = list(stream_rollout(model, processor, FAMILY, row, config, prefill=prefill,
                               media_options={"image": {"max_pixels": BUDGET}}))[-1].trajectory
    generated = len(traj.completion_ids) - n_prefill
    assert traj.completion.startswith(prefill)
    assert generated == budget or (0 < generated < budget and traj.stop_reason != "max_tokens")
    # the same through what the Gradio event calls: the model's own text follows the prefill
    final = list(chat_stream(model, processor, FAMILY, example_picture(), "Where is the red square?",
                             config=ChatConfig(max_new_tokens=budget, max_pixels=BUDGET, tools=()),
                             prefill=prefill))[-1]
    assert final.done and final.trace.startswith(prefill) and len(final.trace) > len(prefill)
