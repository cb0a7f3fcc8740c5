"""Scoring hand-written outputs on a benchmark release through `mmreason eval --predictions`, shared by the
benchmark-layout tests."""

from __future__ import annotations

import json
from pathlib import Path

from mmreason import cli

FAMILY = "qwen2_5_vl"


def score(tmp_path: Path, task: str, data: Path, outputs: dict[str, str], out: str = "out"):
    """(results.json, samples) of `task` on the release at `data`, with `outputs` as the predictions; the run
    folder is ``tmp_path / out``."""
    preds = tmp_path / f"{out}.jsonl"
    preds.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in outputs.items()))
    folder = tmp_path / out
    assert cli.main(["eval", "--task", task, "--data", str(data), "--predictions", str(preds), "--family",
                     FAMILY, "--out", str(folder)]) == 0
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    return json.loads((folder / "results.json").read_text()), samples


def means(results: dict, *names: str) -> list:
    return [results["metrics"][n]["mean"] for n in names]


def group(results: dict, key: str, metric: str) -> dict:
    return {g: v[metric]["mean"] for g, v in results["breakdown"][key].items()}
