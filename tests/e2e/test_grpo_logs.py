"""What a GRPO run tells its user, through `mmreason train` on the shipped tiny recipe: a few decoded
completions per logging step in completions.jsonl, one warning when the rewards give nothing to learn, and
a model card in final/ and every checkpoint saying what was trained on what with which recipe.

The tiny model is random: it never writes the think/answer format nor the right answer, so every group's
rewards are equal (all 0), the case the warning exists for.
"""

import logging

from mmreason import cli
from mmreason.schema import load_rows
from mmreason.train.logging import COMPLETIONS_FILE, read_jsonl


def test_grpo_logs_decoded_completions_and_warns_once_on_flat_rewards(tmp_path, caplog):
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="mmreason.train"):
        assert cli.main(["train", "debug/tiny_grpo", f"output_dir={out}", "grpo.max_steps=3",
                         "grpo.logging_steps=2", "grpo.log_completions=2"]) == 0
    records = read_jsonl(out / COMPLETIONS_FILE)
    assert [r["step"] for r in records] == [2, 3]  # every logging step, and the last one
    ids = {r["id"] for r in load_rows(next((out / "data").iterdir()))}  # the recipe's builder data
    for record in records:
        samples = record["samples"]
        assert len(samples) == 2 and len({s["prompt_id"] for s in samples}) == 2  # one per prompt first
        for s in samples:
            assert s["prompt_id"] in ids and isinstance(s["completion"], str) and s["completion"]
            assert s["reward"] == 0.0 and s["rewards"] == {"think_answer_format": 0.0, "accuracy": 0.0}
    metrics = read_jsonl(out / "metrics.jsonl")
    assert [r["zero_variance_frac"] for r in metrics] == [1.0, 1.0]
    warned = [r.getMessage() for r in caplog.records if "equal rewards" in r.getMessage()]
    assert len(warned) == 1 and "steps 1-3" in warned[0] and "grpo.temperature" in warned[0]
    card = (out / "final" / "README.md").read_text()
    assert "GRPO of `tiny:" in card and "recipe: `debug/tiny_grpo`" in card and "grpo.max_steps=3" in card
    checkpoint_cards = list((out / "checkpoints").glob("step-*/model/README.md"))
    assert checkpoint_cards and all("GRPO of" in c.read_text() for c in checkpoint_cards)
