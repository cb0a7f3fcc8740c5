"""What an SFT run leaves, as a user finds it: GRPO's checkpoint layout, validation loss at the steps asked for,
and model cards that say what was trained on what with which recipe."""

import json

from mmreason.train.checkpoint import list_checkpoints
from mmreason.train.logging import read_jsonl


def test_sft_validates_lays_out_checkpoints_as_grpo_and_writes_cards(tiny_model_dir, colour_rows, tmp_path):
    from mmreason.train import sft

    data = colour_rows(tmp_path)
    out = tmp_path / "run"
    base = tiny_model_dir("qwen2_5_vl")
    assert sft.main(["debug/tiny_sft", f"model.path={base}", f"data.train=[{data}]", f"data.eval=[{data}]",
                     f"output_dir={out}", "sft.max_steps=5", "sft.save_steps=2", "sft.eval_steps=2",
                     "sft.save_total_limit=2"]) == 0

    # validation every eval_steps, and at the last step although 2 does not divide 5
    logs = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in logs if "eval_loss" in r] == [2, 4, 5]
    assert [r["step"] for r in logs if "loss" in r] == [1, 2, 3, 4, 5]

    # one layout for SFT and GRPO: checkpoints/step-N, the newest save_total_limit kept, nothing else
    assert [p.name for p in list_checkpoints(out)] == ["step-000004", "step-000005"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000004", "step-000005"]
    assert not list(out.glob("checkpoint-*")) and not (out / "README.md").exists()  # no TRL draft card
    ckpt = out / "checkpoints" / "step-000004"
    assert json.loads((ckpt / "trainer_state.json").read_text())["step"] == 4
    assert (ckpt / "recipe.yaml").is_file() and (ckpt / "state" / "optimizer.pt").is_file()
    model_files = {p.name for p in (ckpt / "model").iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md"} <= model_files
    assert not model_files & {"optimizer.pt", "scheduler.pt", "trainer_state.json"}

    # the cards: base model, data with its rows, recipe and overrides, steps and losses
    final = (out / "final" / "README.md").read_text()
    assert f"SFT of `{base}` (qwen2_5_vl, LoRA r=8, alpha=16, merged into the base)" in final
    assert f"training data: `{data}` (4 rows)" in final and f"validation data: `{data}` (4 rows)" in final
    assert "recipe: `debug/tiny_sft`" in final and "`sft.max_steps=5`" in final and "5 steps" in final
    assert "training loss: " in final and "validation loss: " in final and "(step 5)" in final
    assert "mmreason train debug/tiny_sft " in final
    card = (ckpt / "model" / "README.md").read_text()
    assert "saved as an adapter over the base" in card and "4 steps" in card and "(step 4)" in card
    assert "(step 5)" not in card
