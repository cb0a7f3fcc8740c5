"""SFT resumes from its newest checkpoint (`--resume`): the Trainer's state comes back, the finished steps are
not redone, and metrics.jsonl continues from the checkpoint."""

from PIL import Image

from mmreason.schema import write_jsonl
from mmreason.train.logging import read_jsonl


def test_sft_resume_continues_from_the_newest_checkpoint(tiny_model_dir, tmp_path):
    from mmreason.train import sft

    for i in range(4):
        Image.new("RGB", (56, 56), (60 * i, 100, 200)).save(tmp_path / f"{i}.png")
    write_jsonl([{"id": f"r{i}", "task": "vqa", "source": "s", "messages": [
        {"role": "user", "content": [{"type": "image", "image": f"{i}.png"}, {"type": "text", "text": "Colour?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": f"shade {i}"}]}]} for i in range(4)],
        tmp_path / "data.jsonl")
    out = tmp_path / "run"
    base = ["debug/tiny_sft", f"model.path={tiny_model_dir('qwen2_5_vl')}", f"data.train=[{tmp_path}]",
            f"output_dir={out}", "sft.save_steps=2", "sft.logging_steps=1"]
    assert sft.main(base + ["sft.max_steps=2"]) == 0
    assert (out / "checkpoint-2" / "recipe.yaml").is_file()
    assert sft.main(base + ["sft.max_steps=4", "--resume"]) == 0
    logs = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in logs if "loss" in r] == [1, 2, 3, 4]
    # each run ends with a summary record: the first run's survives, so its lines were kept, not redone
    assert [r["step"] for r in logs if "train_runtime" in r] == [2, 4]
    assert (out / "checkpoint-4").is_dir()
