"""mmreason rewards inside TRL's own GRPOTrainer: two optimiser steps on the tiny Qwen2.5-VL, images included.

The rewards are passed straight in, as users of TRL would: bound with options, dataset columns by name,
metrics through ``log_metric``.
"""

import pytest
from PIL import Image

datasets = pytest.importorskip("datasets")
trl = pytest.importorskip("trl")


def _rows(n: int = 2):
    rows = []
    for i in range(n):
        image = Image.new("RGB", (56, 56), (200, 30 + 50 * i, 30))
        rows.append({
            "prompt": [{"role": "user", "content": [{"type": "image"},
                                                    {"type": "text", "text": "Where is the square?"}]}],
            "image": image,
            "answer": "B",
            "data_source": "vstar",
            "boxes": [{"label": "square", "box": [8.0, 8.0, 40.0, 40.0], "image": 0}],
            "image_frames": [{"width": 56, "height": 56, "resized_width": 56, "resized_height": 56}],
        })
    return rows


def test_two_grpo_steps_with_mmreason_rewards(tiny_model_dir, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mmreason.rewards import bind_reward

    path = tiny_model_dir("qwen2_5_vl")
    processor = AutoProcessor.from_pretrained(path, padding_side="left")
    model = AutoModelForImageTextToText.from_pretrained(path)
    rewards = [
        bind_reward("think_answer_format"),
        bind_reward("accuracy"),
        bind_reward("box_iou", family="qwen2_5_vl", where="all"),
        bind_reward("deepeyes"),
        bind_reward("grit", variant="code"),
        # random 8-token completions differ in length: this term gives GRPO a non-zero advantage to follow
        bind_reward("length_penalty", max_length=64, cache_length=64, unit="chars"),
    ]
    args = trl.GRPOConfig(
        output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2, num_generations=2,
        max_completion_length=8, learning_rate=1e-4, logging_steps=1, report_to="none", save_strategy="no",
        use_cpu=True, bf16=False, seed=0, dataloader_num_workers=0, beta=0.0,
    )
    trainer = trl.GRPOTrainer(model=model, reward_funcs=rewards, args=args,
                              train_dataset=datasets.Dataset.from_list(_rows()), processing_class=processor)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer.train()

    assert trainer.state.global_step == 2
    logs = {k for entry in trainer.state.log_history for k in entry}
    for name in ("think_answer_format", "accuracy", "box_iou", "deepeyes", "grit", "length_penalty"):
        assert f"rewards/{name}/mean" in logs, sorted(logs)
    # sub-scores reached TRL's logger through log_metric
    assert {"deepeyes/acc", "grit/repetition"} <= logs, sorted(logs)
    changed = [n for n, p in model.named_parameters() if n in before and not p.detach().equal(before[n])]
    assert changed, "the optimiser did not move any weight"


def test_the_readme_trl_snippet_runs_as_written(tmp_path):
    """The README's snippet, cut from README.md and run as a script: it trains, and its box reward scores
    the rows it was given (not None for want of a frame)."""
    import json
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Rewards drop straight into TRL"):]
    snippet = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    probe = ('\nbox = ["<think>a square</think><answer>{\\"bbox_2d\\": [8, 8, 40, 40]}</answer>"] * 2\n'
             'columns = {k: [r[k] for r in rows] for k in rows[0] if k != "prompt"}\n'
             'print("PROBE", json.dumps([f(box, **columns) for f in rewards]))\n')
    (tmp_path / "snippet.py").write_text("import json\n" + snippet + probe, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    probe_line = next(line for line in out.stdout.splitlines() if line.startswith("PROBE "))
    assert json.loads(probe_line[len("PROBE "):]) == [[1.0, 1.0], [1.0, 1.0]]
    # TRL's step log: a number, not nan: the reward applied to the rows TRL handed it
    logged = re.findall(r"'rewards/box_iou/mean': '([^']*)'", out.stdout + out.stderr)
    assert logged and all(float(v) == float(v) for v in logged), logged


def test_a_family_column_scores_each_row_in_its_own_frame():
    from mmreason.rewards import bind_reward

    image = Image.new("RGB", (560, 560))
    # the same box, written in each family's frame: 0-1000 for qwen2_vl, resized pixels for qwen2_5_vl
    comps = ['<answer>{"bbox_2d": [143, 143, 714, 714]}</answer>',
             '<answer>{"bbox_2d": [80, 80, 400, 400]}</answer>']
    out = bind_reward("box_iou")(comps, image=[image, image], family=["qwen2_vl", "qwen2_5_vl"],
                                 boxes=[[{"box": [80, 80, 400, 400]}]] * 2)
    assert out == [pytest.approx(1.0, abs=0.01), 1.0]
