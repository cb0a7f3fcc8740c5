"""SFT end to end on one batch mixing an image, two images, a video, an audio clip, a point cloud (as rendered
views) and a multi-turn zoom trace (its tool turn masked), on the tiny audio-capable Omni model, through
`mmreason train` with LoRA."""

import json

import numpy as np
from PIL import Image

from mmreason import cli
from mmreason.modalities.collate import IGNORE_INDEX, collate
from mmreason.modalities.video import write_video
from mmreason.schema import load_rows, resolve_media, write_jsonl
from mmreason.train.logging import read_jsonl

FAMILY = "qwen2_5_omni"


def user(*parts):
    return {"role": "user", "content": list(parts)}


def said(text):
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def text(t):
    return {"type": "text", "text": t}


def mixed_dataset(root):
    import soundfile as sf

    Image.new("RGB", (64, 48), (220, 40, 40)).save(root / "red.png")
    Image.new("RGB", (48, 64), (40, 40, 220)).save(root / "blue.png")
    rng = np.random.default_rng(0)
    write_video(root / "clip.mp4", [rng.integers(0, 255, (48, 64, 3), np.uint8) for _ in range(20)], 10)
    t = np.arange(16000) / 16000
    sf.write(root / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    xyz_rgb = np.concatenate([rng.uniform(-1, 1, (400, 3)), rng.uniform(0, 1, (400, 3))], axis=1)
    np.save(root / "room.npy", xyz_rgb.astype(np.float32))
    call = "<tool_call>\n" + json.dumps({"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [0, 0, 32, 24]}}) \
        + "\n</tool_call>"
    rows = [
        {"id": "image", "messages": [user({"type": "image", "image": "red.png"}, text("Colour?")), said("red")]},
        {"id": "images", "messages": [user({"type": "image", "image": "red.png"}, {"type": "image", "image": "blue.png"},
                                           text("Same colour?")), said("no")]},
        {"id": "video", "messages": [user({"type": "video", "video": "clip.mp4", "nframes": 4}, text("What moves?")),
                                     said("noise")]},
        {"id": "audio", "messages": [user({"type": "audio", "audio": "tone.wav"}, text("Pitch?")), said("A4")]},
        {"id": "cloud", "messages": [user({"type": "point_cloud", "point_cloud": "room.npy"}, text("How big?")),
                                     said("small")]},
        {"id": "trace", "messages": [user({"type": "image", "image": "red.png"}, text("Zoom, then answer.")), said(call),
                                     {"role": "tool", "content": [{"type": "image", "image": "red.png"}]},
                                     said("<answer>red</answer>")]},
    ]
    write_jsonl([{**r, "task": "vqa", "source": "mixed"} for r in rows], root / "data.jsonl")
    return root


def test_sft_on_a_mixed_image_video_audio_batch(tiny_model_dir, tiny_model, tmp_path):
    data = mixed_dataset(tmp_path)
    out = tmp_path / "run"
    code = cli.main(["train", "debug/tiny_sft", f"model.path={tiny_model_dir(FAMILY)}", f"data.train=[{data}]",
                     f"output_dir={out}", "sft.batch_size=6", "sft.max_steps=2", "sft.lr=1e-3"])
    assert code == 0
    logs = [r for r in read_jsonl(out / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in logs] == [1, 2] and all(np.isfinite(r["loss"]) for r in logs)
    # The logged step saw the whole mixed batch: its token count is the collated batch's.
    _, proc = tiny_model(FAMILY)
    rows = [resolve_media(r, data) for r in load_rows(data)]
    batch = collate(rows, proc, FAMILY, media_options={"image": {"min_pixels": 3136, "max_pixels": 50176},
                                                       "video": {"fps": 2.0}})
    kinds = [k for f in batch["frames"] for k, _ in f.media]
    assert kinds == ["image", "image", "image", "video", "audio", "point_cloud", "image", "image"]
    assert logs[0]["num_tokens"] == float(batch["attention_mask"].sum())
    # the tool turn of the trace is context, not a target
    trace = batch["labels"][5]
    assert "tool_response" not in proc.tokenizer.decode(trace[trace != IGNORE_INDEX])
    assert (out / "adapter" / "adapter_config.json").is_file()
    from mmreason.models import load

    model, _ = load(out / "final")
    assert not any("lora" in n for n, _ in model.named_parameters())  # merged
