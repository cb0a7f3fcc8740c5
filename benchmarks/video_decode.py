"""Sampled-frame video decoding (what the video adapter does) against decoding every frame.

Writes three H.264 clips (small, medium, large; a keyframe every 2 s, as streaming encoders do), then
for decord and PyAV times (a) decoding every frame to RGB arrays, (b) decoding only the frames the
adapter samples at qwen-vl-utils' default 2 frames per second, and (c) a sparse 8-frame sample (a long
video's budget), and reports the speed-ups all/sampled as ratios.
Each timing is the best of `--repeats` runs (least disturbed by other load on the machine).

    python benchmarks/video_decode.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from mmreason.modalities.video import _read_decord, _read_pyav, sample_indices, write_video

SIZES = {  # name: (width, height, seconds) at 30 fps
    "small": (320, 240, 10),
    "medium": (640, 360, 20),
    "large": (1280, 720, 20),
}
FPS = 30


def make_clip(path: Path, width: int, height: int, seconds: int) -> None:
    """Moving gradients plus noise: H.264 has real motion to encode, so decoding costs what it does."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, (height, width, 3), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(seconds * FPS):
        base = ((xx + 4 * i) % 256).astype(np.uint8)
        green = ((yy + 2 * i) % 256).astype(np.uint8)
        frame = np.stack([base, green, ((xx + yy) % 256).astype(np.uint8)], -1)
        frames.append(frame + noise)
    write_video(path, frames, FPS, gop=2 * FPS)


def everything(total: int, fps: float) -> list[int]:
    return list(range(total))


def sampled(total: int, fps: float) -> list[int]:
    return sample_indices(total, fps)[2]


def sparse(total: int, fps: float) -> list[int]:
    return sample_indices(total, fps, nframes=8)[2]


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run(sizes: dict, repeats: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (w, h, secs) in sizes.items():
            path = Path(tmp) / f"{name}.mp4"
            make_clip(path, w, h, secs)
            n_sampled = len(sampled(secs * FPS, FPS))
            for backend, reader in (("decord", _read_decord), ("pyav", _read_pyav)):
                t_all = best_of(lambda: reader(str(path), everything), repeats)
                t_some = best_of(lambda: reader(str(path), sampled), repeats)
                t_sparse = best_of(lambda: reader(str(path), sparse), repeats)
                rows.append({"clip": f"{name} {w}x{h} {secs}s", "frames": secs * FPS, "sampled": n_sampled,
                             "backend": backend, "all_s": t_all, "sampled_s": t_some, "sparse_s": t_sparse})
                print(f"{name:7s} {backend:7s} all {t_all:7.3f}s  2fps {t_some:7.3f}s  "
                      f"8 frames {t_sparse:7.3f}s", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| clip | backend | all frames (s) | 2 fps: frames, s | all / 2 fps | 8 frames (s) "
             "| all / 8 frames |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['clip']} ({r['frames']} frames) | {r['backend']} | {r['all_s']:.3f} | "
                     f"{r['sampled']}, {r['sampled_s']:.3f} | {r['all_s'] / r['sampled_s']:.1f}x | "
                     f"{r['sparse_s']:.3f} | {r['all_s'] / r['sparse_s']:.1f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter clips (a smoke run)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default=",".join(SIZES), help="comma-separated clip sizes to run")
    args = ap.parse_args(argv)
    sizes = {k: SIZES[k] for k in args.only.split(",")}
    if args.quick:
        sizes = {k: (w, h, 2) for k, (w, h, _) in sizes.items()}
    rows = run(sizes, args.repeats)
    print(f"\nmachine: {platform.processor() or platform.machine()}, best of {args.repeats}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
