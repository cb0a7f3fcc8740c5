"""benchmarks/learning.py at smoke size: one experiment runs every stage (build, SFT on the tiny base, the
method's RL stage, `mmreason eval` before and after) and writes its LEARNING.md section from the real eval
samples; a second run reuses the finished stages and replaces the section instead of appending another;
a larger held-out split reruns only its build and the evaluations."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "learning.py"


def _run(tmp_path: Path, markdown: Path) -> str:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--method", "grit", "--smoke", "--out", str(tmp_path / "run"),
                           "--markdown", str(markdown), "--figures", str(tmp_path / "figures")],
                          capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_smoke_experiment_writes_its_section_from_the_eval_samples(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from learning_report import mean

    from mmreason.train.logging import read_jsonl

    markdown = tmp_path / "LEARNING.md"
    markdown.write_text("# Learning\n\n## Someone else's section\n\nkept as it is\n")
    _run(tmp_path, markdown)
    text = markdown.read_text()
    assert text.startswith("# Learning\n\n## Someone else's section\n\nkept as it is\n")
    assert "python benchmarks/learning.py --method grit --seed 0 --smoke" in text

    run = tmp_path / "run"
    for model in ("sft", "rl"):  # each row is the mean of its saved samples, and agrees with eval's own summary
        samples = read_jsonl(run / "eval" / model / "grit" / "samples.jsonl")
        assert len(samples) == 2
        for metric in ("accuracy", "grounding_iou", "format"):
            value = mean([s["scores"].get(metric) for s in samples])
            shown = "-" if value is None else f"{value:.3f}"
            row = next(line for line in text.splitlines() if line.startswith(f"| {model} | grit |"))
            assert f" {shown} " in row
            summary = json.loads((run / "eval" / model / "grit" / "results.json").read_text())
            assert summary["metrics"][metric]["mean"] == pytest.approx(value if value is not None else 0.0, abs=1e-3)
    assert (tmp_path / "figures" / "grit-seed0-smoke.png").stat().st_size > 1000
    assert (run / "rl" / "final" / "config.json").is_file()

    out = _run(tmp_path, markdown)  # every stage reused; the section replaced, not appended
    assert out.count("done already, reused") == 6  # two builds, SFT, RL, two evaluations
    assert markdown.read_text().count("<!-- learning.py:grit:seed0 -->") == 1

    # a larger held-out split reruns its build and the evaluations only, on the same SFT and RL checkpoints
    import dataclasses

    import learning
    from learning_methods import METHODS

    grit = METHODS["grit"]
    bigger = dataclasses.replace(grit, smoke=dataclasses.replace(grit.smoke, n_heldout=3))
    sft_weights = (run / "sft" / "final" / "model.safetensors").stat().st_mtime_ns
    learning.run(bigger, 0, True, run, markdown, tmp_path / "figures")
    stages = json.loads((run / "stages.json").read_text())["stages"]
    assert "--n 3" in stages["build_heldout"]["command"]
    assert (run / "sft" / "final" / "model.safetensors").stat().st_mtime_ns == sft_weights
    for model in ("sft", "rl"):
        assert len(read_jsonl(run / "eval" / model / "grit" / "samples.jsonl")) == 3
