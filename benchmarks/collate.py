"""Collation throughput per modality, and its share of a tiny model's training step.

For each modality (image, screenshot, video, audio as a spectrogram picture, audio as waveform for the
Omni family, point cloud as rendered views, and a mixed batch) it times the collator on batches of
`--batch` rows (media decoded from files, resized, templated, processed) and one training step of a
tiny model on the batch (forward, backward, AdamW update), and reports samples/s of collation and the
share collation takes of collate + step. Then the same training loop with the collator in DataLoader
workers that prefetch (as SFT runs, `sft.dataloader_workers`): the share is then what the step still
waits for its next batch. Tiny models are built offline into a temporary directory.

    python benchmarks/collate.py [--quick] [--batch 4] [--batches 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from mmreason.modalities import MODALITIES
from mmreason.modalities.collate import collate
from mmreason.modalities.video import write_video


def make_media(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    import soundfile as sf

    for i in range(n):
        img = Image.fromarray(rng.integers(0, 255, (240, 320, 3), np.uint8))
        ImageDraw.Draw(img).rectangle((40 + i, 30, 160, 120), fill="white")
        img.save(root / f"img{i}.jpg", quality=90)
        shot = Image.new("RGB", (360, 640), "white")
        ImageDraw.Draw(shot).rectangle((20, 500, 340, 560), fill=(30, 120, 220))
        shot.save(root / f"shot{i}.png")
        frames = [rng.integers(0, 255, (96, 128, 3), np.uint8) for _ in range(40)]
        write_video(root / f"clip{i}.mp4", frames, 10)
        t = np.arange(2 * 16000) / 16000
        sf.write(root / f"tone{i}.wav", 0.3 * np.sin(2 * np.pi * (220 + 20 * i) * t), 16000)
        xyz = rng.uniform(-2, 2, (4000, 3))
        cloud = np.concatenate([xyz, rng.uniform(0, 1, (4000, 3))], axis=1).astype(np.float32)
        np.save(root / f"cloud{i}.npy", cloud)


def rows_for(kind: str, n: int) -> list[dict]:
    parts = {
        "image": lambda i: [{"type": "image", "image": f"img{i}.jpg"}],
        "screenshot": lambda i: [{"type": "screenshot", "screenshot": f"shot{i}.png"}],
        "video": lambda i: [{"type": "video", "video": f"clip{i}.mp4"}],
        "audio": lambda i: [{"type": "audio", "audio": f"tone{i}.wav"}],
        "point_cloud": lambda i: [{"type": "point_cloud", "point_cloud": f"cloud{i}.npy",
                                   "num_points": 2048}],
        "mixed": lambda i: [[{"type": "image", "image": f"img{i}.jpg"}],
                            [{"type": "video", "video": f"clip{i}.mp4"}],
                            [{"type": "audio", "audio": f"tone{i}.wav"}]][i % 3],
    }[kind]
    return [{"id": f"{kind}{i}", "messages": [
        {"role": "user", "content": [*parts(i), {"type": "text", "text": "What is shown? Answer briefly."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A test pattern with a bright box."}]},
    ]} for i in range(n)]


OPTIONS = {"image": {"max_pixels": 224 * 224}, "video": {"max_pixels": 112 * 112, "min_pixels": 56 * 56}}


def collate_rows(rows: list[dict], proc, family: str, root: Path) -> dict:
    return collate(rows, proc, family, root=root, media_options=OPTIONS, return_meta=False)


def train_loop(family: str, kind: str, model, proc, root: Path, batch: int, batches: int,
               workers: int) -> dict:
    """Train on `batches` batches drawn from a DataLoader that collates in the training process (`workers`
    0) or in `workers` worker processes with 2 batches prefetched each, as SFT does. Times what the step
    waits for its next batch (the whole collation in process; only what the workers have not finished
    ahead, with them) and the step itself. One untimed batch first: it pays the workers' start-up, which a
    training run pays once, and warms imports, caches and the optimizer's state."""
    from torch.utils.data import DataLoader

    rows = rows_for(kind, batch * (batches + 1))
    loader = DataLoader(rows, batch_size=batch, shuffle=False, num_workers=workers,
                        collate_fn=partial(collate_rows, proc=proc, family=family, root=root),
                        prefetch_factor=2 if workers else None)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    t_wait = t_step = 0.0
    tokens = 0
    batches_iter = iter(loader)
    for b in range(batches + 1):
        start = time.perf_counter()
        out = next(batches_iter)
        waited = time.perf_counter() - start
        start = time.perf_counter()
        model(**out).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        stepped = time.perf_counter() - start
        if b:  # batch 0 is the warm-up
            t_wait, t_step = t_wait + waited, t_step + stepped
            tokens += int(out["attention_mask"].sum())
    return {"wait_ms": 1000 * t_wait / batches, "step_ms": 1000 * t_step / batches,
            "share": t_wait / (t_wait + t_step), "tokens": tokens // (batch * batches)}


def measure(family: str, kind: str, model, proc, root: Path, batch: int, batches: int, workers: int) -> dict:
    """One modality row: collation in process (its throughput and share of the step) and in workers."""
    inline = train_loop(family, kind, model, proc, root, batch, batches, 0)
    ahead = train_loop(family, kind, model, proc, root, batch, batches, workers)
    return {"family": family, "modality": kind, "tokens": inline["tokens"],
            "samples_s": 1000 * batch / inline["wait_ms"], "collate_ms": inline["wait_ms"],
            "step_ms": inline["step_ms"], "share": inline["share"], "workers": workers,
            "wait_ms_workers": ahead["wait_ms"], "step_ms_workers": ahead["step_ms"],
            "share_workers": ahead["share"]}


def run(batch: int, batches: int, workers: int) -> list[dict]:
    from mmreason.models.loading import load
    from mmreason.models.tiny import build_tiny

    torch.manual_seed(0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "media"
        root.mkdir()
        make_media(root, batch * (batches + 1))
        plan = [("qwen2_5_vl", k) for k in ("image", "screenshot", "video", "audio", "point_cloud", "mixed")]
        plan += [("qwen2_5_omni", k) for k in ("audio", "mixed")]
        loaded = {}
        for family, kind in plan:
            if kind not in MODALITIES and kind != "mixed":
                print(f"skip {kind}: no adapter registered")
                continue
            if family not in loaded:
                loaded[family] = load(build_tiny(family, Path(tmp) / family, seed=0))
            model, proc = loaded[family]
            r = measure(family, kind, model, proc, root, batch, batches, workers)
            print(f"{family:13s} {kind:12s} {r['samples_s']:7.1f} samples/s  "
                  f"collate {r['collate_ms']:7.1f} ms  step {r['step_ms']:7.1f} ms  "
                  f"share {100 * r['share']:4.1f}%  | {workers} workers: wait {r['wait_ms_workers']:7.1f} ms  "
                  f"step {r['step_ms_workers']:7.1f} ms  share {100 * r['share_workers']:4.1f}%", flush=True)
            results.append(r)
    return results


def table(rows: list[dict], batch: int) -> str:
    workers = rows[0]["workers"] if rows else 0
    lines = [f"| family | modality | tokens/sample | collate (samples/s) | collate / batch of {batch} (ms) | "
             f"train step (ms) | collate share of step | wait for batch, {workers} workers (ms) | "
             f"train step, {workers} workers (ms) | collate share, {workers} workers |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['family']} | {r['modality']} | {r['tokens']} | {r['samples_s']:.1f} | "
                     f"{r['collate_ms']:.0f} | {r['step_ms']:.0f} | {100 * r['share']:.0f}% | "
                     f"{r['wait_ms_workers']:.1f} | {r['step_ms_workers']:.0f} | {100 * r['share_workers']:.1f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one batch per modality (a smoke run)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers for the second measurement")
    args = ap.parse_args(argv)
    batches = 1 if args.quick else args.batches
    rows = run(args.batch, batches, args.workers)
    print(f"\nmachine: {platform.processor() or platform.machine()}, "
          f"torch threads {torch.get_num_threads()}, batch {args.batch} x {batches} batches\n")
    print(table(rows, args.batch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
