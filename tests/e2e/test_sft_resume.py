"""SFT resumes from its newest checkpoint (`--resume`): the Trainer's state comes back, the finished steps are
not redone, and metrics.jsonl continues from the checkpoint. Checkpoints are laid out as GRPO's
(checkpoints/step-NNNNNN/ with model/, state/ and COMPLETE)."""

from mmreason.train.checkpoint import checkpoint_paths
from mmreason.train.logging import read_jsonl


def step(out, n):
    return checkpoint_paths(out, n)[1]


def test_sft_resume_continues_from_the_newest_checkpoint(tiny_model_dir, colour_rows, tmp_path):
    from mmreason.train import sft

    colour_rows(tmp_path)
    out = tmp_path / "run"
    base = ["debug/tiny_sft", f"model.path={tiny_model_dir('qwen2_5_vl')}", f"data.train=[{tmp_path}]",
            f"output_dir={out}", "sft.save_steps=2", "sft.logging_steps=1"]
    assert sft.main(base + ["sft.max_steps=2"]) == 0
    assert (step(out, 2) / "recipe.yaml").is_file()
    assert sft.main(base + ["sft.max_steps=4", "--resume"]) == 0
    logs = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in logs if "loss" in r] == [1, 2, 3, 4]
    # each run ends with a summary record: the first run's survives, so its lines were kept, not redone
    assert [r["step"] for r in logs if "train_runtime" in r] == [2, 4]
    assert (step(out, 4) / "COMPLETE").is_file()


def test_resume_skips_a_checkpoint_cut_short_by_a_kill(tiny_model_dir, colour_rows, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    colour_rows(tmp_path, n=2, step=90)
    out = tmp_path / "run"
    base = ["train", "debug/tiny_sft", f"model.path={tiny_model_dir('qwen2_5_vl')}",
            f"data.train=[{tmp_path}]", f"output_dir={out}", "sft.save_steps=1", "sft.logging_steps=1"]

    def train(*extra):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.run([sys.executable, "-m", "mmreason", *base, *extra], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=600)

    first = train("sft.max_steps=1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert (step(out, 1) / "COMPLETE").is_file()
    # What SIGKILL during the save of step 2 leaves: the weights written, the Trainer's state and the
    # optimizer not yet, no marker (and the Trainer's own folder, not yet moved into place)
    partial = step(out, 2)
    (partial / "state").mkdir(parents=True)
    for f in (step(out, 1) / "state").iterdir():
        if f.suffix == ".safetensors" or f.name.endswith("config.json"):
            shutil.copy(f, partial / "state" / f.name)
    shutil.copytree(partial / "state", out / "checkpoints" / "checkpoint-2")
    again = train("sft.max_steps=2", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from {step(out, 1)}" in again.stdout
    assert "skipping step-000002" in again.stderr and "no COMPLETE marker" in again.stderr
    assert (step(out, 2) / "COMPLETE").is_file()
    assert (step(out, 2) / "state" / "trainer_state.json").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000001", "step-000002"]
    # naming the cut-short folder is refused before any work, pointing at the complete one
    partial_again = step(out, 3)
    partial_again.mkdir()
    named = train("sft.max_steps=3", f"--resume={partial_again}")
    assert named.returncode == 2 and "Traceback" not in named.stderr
    assert "incomplete checkpoint" in named.stderr and str(step(out, 2)) in named.stderr
