"""A tiny base SFT-trained (50 steps) to answer every scene with one zoom call under DeepEyes' prompt, for the
tests that need a checkpoint whose saved tools run (lmms-eval's single- and multi-round tasks)."""

from __future__ import annotations

from pathlib import Path

ZOOM = '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [0, 0, 56, 56]}}</tool_call>'
TOOL_RECIPE = """\
model: {{path: base:qwen2_5_vl, dtype: float32, freeze_vision: false, min_pixels: 3136, max_pixels: 12544}}
data: {{train: [{data}], prompt: deepeyes, on_error: raise}}
tools: {{names: [image_zoom_in_tool], coord_frame: pixel}}
sft: {{epochs: 100, max_steps: 50, lr: 5.0e-3, batch_size: 4, warmup: 0, scheduler: constant, logging_steps: 10,
      save_steps: 1000, dataloader_workers: 0}}
output_dir: {out}
report_to: [jsonl]
seed: 0
"""


def train_zoom_checkpoint(tmp_path: Path) -> tuple[Path, list[dict], Path]:
    """(the scenes' folder, the training rows, the final checkpoint) of 50 SFT steps on 16 quickstart scenes
    whose answer is `ZOOM`; about 1.5-2 minutes on 2 shared cores."""
    from mmreason.data_builders import get_builder

    from mmreason import cli
    from mmreason.schema import load_rows, write_jsonl

    scenes = get_builder("image_scenes")(tmp_path / "scenes", n=16, seed=5, progress=False, preset="quickstart")
    rows = [{**r, "messages": [r["messages"][0], {"role": "assistant", "content": [{"type": "text", "text": ZOOM}]}]}
            for r in load_rows(scenes)]
    write_jsonl(rows, tmp_path / "scenes" / "calls" / "rows.jsonl")
    (tmp_path / "scenes" / "calls" / "media").symlink_to(tmp_path / "scenes" / "media")
    recipe = tmp_path / "zoom_sft.yaml"
    recipe.write_text(TOOL_RECIPE.format(data=tmp_path / "scenes" / "calls", out=tmp_path / "run"))
    assert cli.main(["train", str(recipe)]) == 0
    return scenes, rows, tmp_path / "run" / "final"
