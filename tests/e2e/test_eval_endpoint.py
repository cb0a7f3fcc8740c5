"""An OpenAI-compatible endpoint as the evaluated model, against a real HTTP server on 127.0.0.1: pictures go
out resized to the evaluation's budget (so the frame its coordinates are read in is known), decoding is
greedy with the task's token budget, the replies are scored like a checkpoint's, and what an endpoint
cannot run (a tool loop) or a failing server stops the run with one clear line."""

from __future__ import annotations

import base64
import io
import json

import pytest
from chat_server import ChatServer, Raw
from PIL import Image

from mmreason import cli
from mmreason.geometry import ImageFrame, box_to_model
from mmreason.schema import load_rows

BUDGET = 50176


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from mmreason.data_builders import get_builder

    return get_builder("image_scenes")(tmp_path_factory.mktemp("ep") / "scenes", n=3, seed=5, progress=False,
                                       qtypes=["ground"])


def _model_box(row, shift=0.0):
    w, h = row["meta"]["image_size"]
    frame = ImageFrame.for_family(w, h, "qwen2_5_vl", max_pixels=BUDGET)
    x1, y1, x2, y2 = row["boxes"][0]["box"]
    box = (x1 + shift * (x2 - x1), y1, x2 + shift * (x2 - x1), y2)
    return [round(v, 3) for v in box_to_model(box, "qwen2_5_vl", frame)], frame


def test_an_endpoint_is_scored_like_a_checkpoint(scenes, tmp_path):
    data = scenes
    rows = [r for r in load_rows(data) if r["task"] == "grounding"][:3]
    # row 0: its GT box (IoU 1); row 1: moved right by half its width (IoU 1/3); row 2: no box at all
    replies = [json.dumps({"bbox_2d": _model_box(rows[0])[0]}),
               json.dumps({"bbox_2d": _model_box(rows[1], 0.5)[0]}), "I cannot tell."]
    with ChatServer(lambda body: replies[len(server.seen) - 1]) as server:
        out = tmp_path / "ev"
        assert cli.main(["eval", "--endpoint", server.url, "--model", "served-vlm", "--family", "qwen2_5_vl",
                         "--data", str(data), "--task", "grounding", "--limit", "3", "--batch-size", "1",
                         "--max-pixels", str(BUDGET), "--out", str(out), "--quiet"]) == 0
        bodies = server.bodies
    results = json.loads((out / "results.json").read_text())
    metrics = {k: v["mean"] for k, v in results["metrics"].items()}
    assert metrics["acc@0.5"] == 1 / 3 and abs(metrics["miou"] - (1 + 1 / 3 + 0) / 3) < 1e-3
    assert metrics["format"] == 2 / 3
    assert results["model"] == {"endpoint": server.url, "spec": "served-vlm", "family": "qwen2_5_vl"}
    assert len(bodies) == 3
    for body, row in zip(bodies, rows):
        assert body["model"] == "served-vlm" and body["temperature"] == 0.0 and body["max_tokens"] == 512
        [user] = body["messages"]
        picture = next(p for p in user["content"] if p["type"] == "image_url")["image_url"]["url"]
        assert picture.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(picture.split(",", 1)[1]))) as sent:
            frame = _model_box(row)[1]
            assert sent.size == (frame.resized_width, frame.resized_height)  # the budget's frame, sent as is
        text = next(p for p in user["content"] if p["type"] == "text")["text"]
        assert row["messages"][0]["content"][-1]["text"] in text


def test_what_an_endpoint_cannot_run_is_one_clear_error(scenes, tmp_path, capsys):
    data = scenes
    with ChatServer(lambda body: Raw(400, b'{"error": {"message": "bad"}}')) as server:
        base = ["eval", "--endpoint", server.url, "--model", "m", "--family", "qwen2_5_vl", "--data", str(data),
                "--limit", "1", "--quiet"]
        assert cli.main([*base, "--task", "vstar", "--out", str(tmp_path / "a")]) == 2
        assert "runs a tool loop" in capsys.readouterr().err and not server.seen  # refused before any request
        assert cli.main([*base, "--task", "grounding", "--out", str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err
        assert server.url in err and "HTTP 400" in err and "sample 'image_scenes-" in err
    assert cli.main(["eval", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--data", str(data),
                     "--task", "grounding"]) == 2
    assert "--family" in capsys.readouterr().err
