"""DeepEyes- and ViRL-style GRPO end to end on CPU: a tiny model, SFT'd briefly to call the zoom tool, then
three GRPO steps through the real entry point, with the assertions read from the run's own logs.

The SFT data asks about a red square and answers with one zoom call, the crop (a tool turn, masked from the
loss) and the answer; half the rows zoom on the square's quadrant (the rationale region), half on the
opposite one, so the sampled policy makes both correct and erroneous zooms, which ViRL's step credit tells
apart.
"""

import json

import pytest
import torch
from PIL import Image, ImageDraw

from mmreason.schema import write_jsonl
from mmreason.train.checkpoint import latest_checkpoint
from mmreason.train.logging import read_jsonl

HIT, MISS = [0, 0, 56, 56], [56, 56, 112, 112]


def zoom_rows(root, n=8):
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(n):
        image = Image.new("RGB", (112, 112), (200, 200, 200))
        ImageDraw.Draw(image).rectangle((4, 4, 40, 40), fill=(220, 30, 30))
        image.save(root / "img" / f"{i}.png")
        box = HIT if i % 2 == 0 else MISS
        image.crop(box).save(root / "img" / f"{i}-crop.png")
        call = "<tool_call>\n" + json.dumps({"name": "image_zoom_in_tool", "arguments": {"bbox_2d": box}}) + "\n</tool_call>"
        rows.append({
            "id": f"z{i}", "task": "vqa", "source": "zoom", "answer": "red",
            "messages": [
                {"role": "user", "content": [{"type": "image", "image": f"img/{i}.png"},
                                             {"type": "text", "text": "What colour is the square? Zoom in first."}]},
                {"role": "assistant", "content": [{"type": "text", "text": call}]},
                {"role": "tool", "content": [{"type": "image", "image": f"img/{i}-crop.png"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "<answer>red</answer>"}]},
            ],
            "rationale_regions": [{"box": HIT, "image": 0}],
        })
    write_jsonl(rows, root / "data.jsonl")
    return root


SFT = """# SFT the tiny model to call the zoom tool (full fine-tuning, high lr: it only has to learn one format)
model: {{path: {model}, dtype: float32, min_pixels: 3136, max_pixels: 50176}}
data: {{train: [{data}]}}
seed: 0
sft: {{epochs: 100, lr: 5.0e-3, batch_size: 4, warmup: 0, scheduler: constant, max_steps: 80, logging_steps: 20,
      save_steps: 1000}}
"""


@pytest.fixture(scope="module")
def zoom_model(tiny_model_dir, tmp_path_factory):
    from mmreason.train import sft

    root = tmp_path_factory.mktemp("zoom")
    data = zoom_rows(root / "data")
    recipe = root / "sft.yaml"
    recipe.write_text(SFT.format(model=tiny_model_dir("qwen2_5_vl"), data=data))
    assert sft.main([str(recipe), f"output_dir={root / 'sft'}"]) == 0
    losses = [r["loss"] for r in read_jsonl(root / "sft" / "metrics.jsonl") if "loss" in r]
    assert losses[-1] < 0.2 * losses[0]
    return root / "sft" / "final", data


def run_grpo(recipe, out, model, data, *extra):
    from mmreason.train import grpo

    assert grpo.main([f"train/recipes/debug/{recipe}.yaml", f"model.path={model}", f"data.train=[{data}]",
                      f"output_dir={out}", *extra]) == 0
    return read_jsonl(out / "metrics.jsonl")


def test_deepeyes_grpo_runs_the_zoom_tool(zoom_model, tmp_path):
    model, data = zoom_model
    logs = run_grpo("tiny_deepeyes_grpo", tmp_path, model, data)
    assert [r["step"] for r in logs] == [1, 2, 3]
    assert any(r["tool_calls_per_trajectory"] > 0 and r["images_returned_per_trajectory"] > 0 for r in logs)
    for r in logs:
        assert {"loss", "reward", "rewards/deepeyes", "kl", "clip_fraction", "entropy", "completion_length",
                "zero_variance_frac", "throughput/tokens_per_s"} <= set(r)
        assert torch.isfinite(torch.tensor(r["loss"]))
    assert latest_checkpoint(tmp_path).name == "step-000003"
    from mmreason.models import load

    load(tmp_path / "final")  # the exported policy opens like any checkpoint


def test_virl_step_rewards_make_token_advantages_non_uniform(zoom_model, tmp_path):
    model, data = zoom_model
    logs = run_grpo("tiny_virl_grpo", tmp_path, model, data)
    assert any(r["step_rewards/steps_per_trajectory"] > 0 for r in logs)
    assert any(r["advantages/token_nonuniform_frac"] > 0 for r in logs)
    assert any(r.get("rewards/virl/correct", 0) > 0 for r in logs) and any(r["rewards/virl/erroneous"] > 0 for r in logs)


def test_deepeyes_rows_pick_their_tools_by_env_name(zoom_model, tmp_path):
    """DeepEyes mixes rows with and without tools in one batch (arXiv 2505.14362 App. B.1): the mixed recipe
    offers the zoom tool to rows whose ``env_name`` is visual_toolbox_v2 and nothing to rows whose is empty."""
    import shutil

    from mmreason.schema import load_rows

    model, data = zoom_model
    mixed = tmp_path / "mixed"
    shutil.copytree(data / "img", mixed / "img")
    rows = sorted(load_rows(data), key=lambda r: r["id"])
    env = {r["id"]: ("visual_toolbox_v2" if i % 2 == 0 else "") for i, r in enumerate(rows)}
    write_jsonl([{**r, "meta": {**(r.get("meta") or {}), "env_name": env[r["id"]]}} for r in rows],
                mixed / "data.jsonl")
    run_grpo("tiny_deepeyes_mixed_grpo", tmp_path / "run", model, mixed, "grpo.log_completions=64")
    samples = [s for step in read_jsonl(tmp_path / "run" / "completions.jsonl") for s in step["samples"]]
    zoomed = {env[s["prompt_id"]]: 0 for s in samples}
    for s in samples:
        zoomed[env[s["prompt_id"]]] += "<|image_pad|>" in s["completion"]  # a crop came back
    # the SFT'd policy calls zoom on every row; only the toolbox rows get a crop back
    assert set(zoomed) == {"visual_toolbox_v2", ""} and zoomed["visual_toolbox_v2"] > 0 and zoomed[""] == 0, zoomed
