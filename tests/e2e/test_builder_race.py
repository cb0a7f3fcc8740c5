"""Two processes of one `accelerate launch` asking for the same builder dataset, not built yet (as both SFT
processes do before the Trainer makes its accelerator): one builds, the other waits for it and reads the
finished folder, and both hold the same rows."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "train" / "accelerate"

# What each process runs: the debug recipe's data (builder:image_scenes?n=8&seed=0) through `load_data`,
# with the build log shown, and its rows written to rows-<rank>.json.
READ_DATA = """
import json, logging, os, sys
from pathlib import Path
from mmreason.config import load_recipe
from mmreason.recipes import find_recipe
from mmreason.train.data import load_data

logging.basicConfig(level=logging.INFO, format="rank " + os.environ["RANK"] + ": %(message)s")
out = Path(sys.argv[1])
rows = load_data(load_recipe(find_recipe("debug/tiny_sft"), [f"output_dir={out}"])).rows
(out / f"rows-{os.environ['RANK']}.json").write_text(json.dumps(rows, sort_keys=True, default=str))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_build_a_dataset_once_and_read_the_same_rows(tmp_path):
    script = tmp_path / "read_data.py"
    script.write_text(READ_DATA)
    out = tmp_path / "run"
    out.mkdir()
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "cpu_gloo_2proc.yaml"),
           "--main_process_port", str(free_port()), str(script), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    log = done.stdout + done.stderr
    assert log.count("data: building builder:image_scenes?n=8&seed=0") == 1, log[-4000:]
    assert log.count("data: builder:image_scenes?n=8&seed=0 is built") == 1, log[-4000:]
    first, second = (json.loads((out / f"rows-{rank}.json").read_text()) for rank in (0, 1))
    assert len(first) == 8 and first == second
    manifest = json.loads((out / "data" / "image_scenes_n=8_seed=0" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["rows"] == 8
