"""The data apps served for real on 127.0.0.1 and driven with `gradio_client`: the dataset explorer draws a
built dataset's ground truth (the GT colour at the GT box's edge) and parses its trace; the runs dashboard,
started by the `mmreason demo runs` command, overlays two runs' curves and lists what a run logged; no file
outside the app's temp dir is served; every app builds; a demo without --model falls back to a model that
exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from demo_server import free_port, serve_demo, wait_up
from mmreason.schema import images_of
from mmreason.demos import DEMOS, default_model

REPO = Path(__file__).resolve().parents[2]
GREEN = (0, 200, 0)  # the dataset card's GT colour


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    from mmreason.data_builders import get_builder

    out = tmp_path_factory.mktemp("data") / "scenes"  # the quickstart's scenes: small pictures, a box each
    return Path(get_builder("image_scenes")(str(out), n=3, seed=0, progress=False, preset="quickstart"))


def test_explorer_draws_ground_truth_and_parses_the_trace(scenes, tmp_path):
    from gradio_client import Client

    from mmreason.demos.dataset_explorer import build_demo, open_dataset

    dataset = open_dataset(scenes)
    row = next(r for r in dataset.rows if r["boxes"])
    demo = build_demo([str(scenes)])
    url = serve_demo(demo)
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path))
        pictures, about, trace, parsed = client.predict(str(scenes), row["id"], api_name="/show")
        assert row["id"] in about and str(row["answer"]) in about
        assert json.loads(parsed)["ground_truth_answer"] == row["answer"]
        assert json.loads(parsed)["issues"] == [] and trace
        drawn = Image.open(pictures[0]["image"]).convert("RGB")
        with Image.open(scenes / images_of(row)[0]) as original:
            scale = drawn.width / original.width
        x1, y1, x2, y2 = (v * scale for v in row["boxes"][0]["box"])
        # the GT box's outline, two pixels outside the box, halfway down its left edge
        assert drawn.getpixel((round(x1) - 2, round((y1 + y2) / 2))) == GREEN
        with pytest.raises(Exception, match="not in the list of choices"):  # only folders given at start
            client.predict(str(REPO), row["id"], api_name="/show")
        for path in ("/etc/passwd", f"{scenes}/preview.png", "../../../etc/passwd"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=30)
            assert refused.value.code == 403, path
    finally:
        demo.close()


def _write_run(folder: Path, slope: float) -> Path:
    from mmreason.train.logging import RunLogger

    with RunLogger(folder, report_to=("jsonl",), tensorboard=False) as log:
        for step in range(1, 6):
            log.log(step, {"reward": slope * step, "rewards/iou": slope * step / 2, "kl": 0.01 * step,
                           "completion_length": 20 + step, "tool_calls_per_trajectory": step % 2})
            log.log_samples(step, [{"prompt_id": 0, "reward": slope * step, "completion": f"<answer>{step}</answer>"}])
    return folder


def test_runs_dashboard_from_the_command_overlays_runs_and_lists_completions(tmp_path):
    from gradio_client import Client

    a, b = _write_run(tmp_path / "runs" / "a", 0.1), _write_run(tmp_path / "runs" / "b", 0.2)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    proc = subprocess.Popen([sys.executable, "-m", "mmreason", "demo", "runs", "--under", str(tmp_path / "runs"),
                             "--port", str(port)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_up(url, proc, 120)
        client = Client(url, verbose=False, download_files=str(tmp_path / "got"))
        figure, drawn = client.predict([str(a), str(b)], "reward, rewards/*, kl", 1, api_name="/plot")
        assert drawn == "3 metrics: reward, rewards/iou, kl"
        assert figure["type"] == "matplotlib" and figure["plot"].startswith("data:image/")
        table = client.predict(str(b), 4, api_name="/completions")
        assert table["data"] == [["prompt_id=0, reward=0.8", "<answer>4</answer>"]]
        with pytest.raises(Exception, match="matches no metric|pick at least one run"):
            client.predict([], "", 1, api_name="/plot")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


def test_every_app_builds_and_the_command_lists_them(capsys, scenes):
    import gradio as gr

    from mmreason.demos import main as demo_main
    from mmreason.demos.dataset_explorer import build_demo as explorer
    from mmreason.demos.runs import LogReaders
    from mmreason.demos.runs import build_demo as runs
    from mmreason.train import logging as train_logging
    from mmreason.train import plots

    readers = LogReaders(plots.load_run, plots.run_labels, plots.select_metrics, plots.draw,
                         train_logging.read_jsonl)
    assert isinstance(explorer([str(scenes)]), gr.Blocks) and isinstance(runs([], readers), gr.Blocks)
    assert demo_main([]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in DEMOS)
    assert set(DEMOS) >= {"grounded_chat", "dataset_explorer", "runs"}


def test_without_a_model_the_demos_use_the_quickstart_checkpoint_or_a_tiny_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_model() == "tiny:qwen2_5_vl"
    final = tmp_path / "outputs" / "quickstart" / "grpo" / "final"
    final.mkdir(parents=True)
    (final / "config.json").write_text("{}")
    assert default_model() == "tiny:qwen2_5_vl"  # not complete yet: no weights
    (final / "model.safetensors").write_bytes(b"")
    assert default_model() == "outputs/quickstart/grpo/final"
