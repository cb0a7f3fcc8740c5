"""`mmreason pretrain-tiny`: both stages run as the user types them, the bind stage continues its checkpoint,
the card lists every stage's command, and wrong options stop before any work."""

import json
import subprocess
import sys

from safetensors.torch import load_file


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mmreason", "pretrain-tiny", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, env=None)


def test_base_then_bind_stage(tmp_path):
    first = _run("--out", "base", "--steps", "2", "--batch-size", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    start = load_file(tmp_path / "base" / "model.safetensors")
    second = _run("--out", "bound", "--stage", "bind", "--init-from", "base", "--steps", "2", "--batch-size", "2",
                  "--vision-lr-scale", "10", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    end = load_file(tmp_path / "bound" / "model.safetensors")
    # continued, not rebuilt: two small steps keep every weight close to where the first stage left it
    assert max(float((end[k] - start[k]).abs().max()) for k in start) < 0.05
    record = json.loads((tmp_path / "bound" / "pretrain.json").read_text())
    assert record["stage"] == "bind" and record["vision_lr_scale"] == 10
    assert [h["stage"] for h in record["history"]] == ["base"]
    card = (tmp_path / "bound" / "README.md").read_text()
    assert "1. `mmreason pretrain-tiny --out base --steps 2 --batch-size 2" in card
    assert "2. `mmreason pretrain-tiny --out bound --stage bind --init-from base --steps 2" in card
    assert "--vision-lr-scale 10`" in card


def test_bind_without_a_checkpoint_is_refused(tmp_path):
    for args, message in ((["--stage", "bind"], "give --init-from"),
                          (["--stage", "bind", "--init-from", "nowhere"], "no checkpoint there"),
                          (["--vision-lr-scale", "0"], "--vision-lr-scale must be > 0")):
        run = _run("--out", "x", "--steps", "2", *args, cwd=tmp_path)
        assert run.returncode == 2 and message in run.stderr, run.stderr[-1000:]
        assert "Traceback" not in run.stderr
    assert not (tmp_path / "x").exists()
