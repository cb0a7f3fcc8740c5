"""`mmreason eval` runs: a killed run continues from its per-sample records (nothing generated or scored
twice), ``--tasks`` runs several tasks on one model, ``mmreason eval compare`` puts two runs side by side,
``mmreason ls tasks`` lists every task, and every task reports a format rate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from mmreason import cli
from mmreason.eval import generation, run_setup, scoring
from mmreason.eval.benchmarks import ALL_TASKS
from mmreason.eval.records import RECORDS_FILE

BUDGET = 50176  # 64 merged tokens: small pictures keep the tiny model fast


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from mmreason.data_builders import get_builder

    out = tmp_path_factory.mktemp("eval-runs") / "scenes"
    return get_builder("image_scenes")(out, n=10, seed=3, progress=False, qtypes=["ground"])


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_killed_run_continues_from_its_records(tiny_model_dir, scenes, tmp_path, monkeypatch):
    out = tmp_path / "ev"
    args = ["--model", str(tiny_model_dir("qwen2_5_vl")), "--data", str(scenes), "--task", "grounding",
            "--out", str(out), "--max-pixels", str(BUDGET), "--max-new-tokens", "6", "--batch-size", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mmreason", "eval", *args, "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    records = out / RECORDS_FILE
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if records.is_file() and len(records.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists()
    kept = []
    for line in records.read_text().splitlines():  # a line the kill cut short is redone, not read
        try:
            kept.append(json.loads(line))
        except ValueError:
            pass
    assert 2 <= len(kept) < 10

    generated: list[str] = []
    real = generation.generate

    def counting(model, processor, prompts, *a, **kw):  # the real generation, its prompts noted
        generated.extend(p["id"] for p in prompts)
        return real(model, processor, prompts, *a, **kw)

    monkeypatch.setattr(generation, "generate", counting)
    assert cli.main(["eval", *args, "--quiet"]) == 0
    results, samples = json.loads((out / "results.json").read_text()), _lines(out / "samples.jsonl")
    ids = [s["id"] for s in samples]
    assert len(ids) == len(set(ids)) == results["samples"] == 10
    assert results["resumed"] == len(kept)
    assert not set(generated) & {r["id"] for r in kept} and len(generated) == 10 - len(kept)
    assert samples[:len(kept)] == kept  # read back as they were scored, not scored again
    assert not records.exists()  # the finished run needs no resume point

    # other settings over a finished run (--overwrite) start afresh: nothing is read back
    generated.clear()
    assert cli.main(["eval", *args, "--quiet", "--limit", "2", "--overwrite"]) == 0
    assert len(generated) == 2 and json.loads((out / "results.json").read_text())["resumed"] == 0


def _predictions(path: Path, samples: list[dict], shift: float) -> Path:
    """Each saved output's box moved right by `shift` pixels (so the two runs differ)."""
    out = []
    for s in samples:
        box = [28.0, 28.0, 84.0, 84.0] if shift == 0 else [28.0 + shift, 28.0, 84.0 + shift, 84.0]
        out.append({"id": s, "output": json.dumps({"bbox_2d": box})})
    path.write_text("".join(json.dumps(r) + "\n" for r in out))
    return path


def test_tasks_run_on_one_model_and_compare_draws_both(tiny_model_dir, scenes, tmp_path, capsys, monkeypatch):
    out = tmp_path / "many"
    base = ["--model", str(tiny_model_dir("qwen2_5_vl")), "--data", str(scenes), "--max-pixels", str(BUDGET),
            "--max-new-tokens", "4", "--limit", "2", "--quiet"]
    loads = []
    real = generation.LoadedModel.get

    def counted(self):
        loads.append(self._loaded is None)
        return real(self)

    monkeypatch.setattr(generation.LoadedModel, "get", counted)
    assert cli.main(["eval", *base, "--tasks", "grounding,refer", "--out", str(out)]) == 0
    assert loads.count(True) == 1  # one model for both tasks
    for task in ("grounding", "refer"):
        results = json.loads((out / task / "results.json").read_text())
        assert results["task"] == task and results["samples"] == 2 and "format" in results["metrics"]
        settings = json.loads((out / task / "settings.json").read_text())
        assert settings["task"] == task and settings["tasks"] is None  # what `--task grounding` records
    # `--task grounding --out many/grounding` is the same run: it replaces it rather than refusing
    assert cli.main(["eval", *base, "--task", "grounding", "--out", str(out / "grounding")]) == 0
    assert cli.main(["eval", *base, "--tasks", "grounding,nope", "--out", str(out)]) == 2
    assert "unknown eval task 'nope'" in capsys.readouterr().err

    # two re-scored runs whose outputs are known: run b moves every box 28 px right
    ids = [s["id"] for s in _lines(out / "grounding" / "samples.jsonl")]
    runs = []
    for name, shift in (("a", 0), ("b", 28)):
        preds = _predictions(tmp_path / f"{name}.jsonl", ids, shift)
        assert cli.main(["eval", "--task", "grounding", "--data", str(scenes), "--predictions", str(preds),
                         "--family", "qwen2_5_vl", "--max-pixels", str(BUDGET), "--out",
                         str(tmp_path / name)]) == 0
        runs.append(json.loads((tmp_path / name / "results.json").read_text())["metrics"])
    capsys.readouterr()
    png = tmp_path / "cmp.png"
    assert cli.main(["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(png)]) == 0
    table = capsys.readouterr().out
    change = runs[1]["miou"]["mean"] - runs[0]["miou"]["mean"]
    assert "grounding" in table and "miou" in table and f"{change:+.4f}" in table and "b - a" in table
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 300
    assert cli.main(["eval", "compare", str(tmp_path / "a"), str(tmp_path / "nothing")]) == 2


def test_ls_tasks_lists_every_task_with_what_it_reads(capsys):
    assert cli.main(["ls", "tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("grounding", "vstar_bench", "hr_bench", "screenspot_pro", "pope", "vsi_bench"):
        assert name in out
    assert "canonical rows" in out and "release" in out


@pytest.mark.parametrize("name", sorted(ALL_TASKS))
def test_every_task_reports_a_format_rate_and_binds(name):
    task = ALL_TASKS[name]
    assert list(task.metrics)[-1] == "format" and task.metrics["format"].fn.endswith(":output_format")
    setup = run_setup.Setup(name, "qwen2_5_vl", {}, run_setup.Generation(8, 1))
    assert set(scoring.bound_metrics(task, setup)) == set(task.metrics)
