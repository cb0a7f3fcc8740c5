"""Data-builder throughput: samples per second, and where the time goes (render, encode, write, other).

Each case builds a fresh dataset in a temporary folder through the builder's public `build` and reads
the per-chunk phase timings every chunk manifest records (`data_builders.common.phase`):

- render: drawing scenes / frames, simulating motion, synthesising speech (espeak-ng);
- encode: PNG / H.264 / WAV encoding and the media file writes;
- write:  validating rows and writing the chunk's Parquet file through `datasets`;
- other:  question logic, trace rendering, statistics and manifests.

samples/s is rows over wall time of the whole build, card and preview included. Add a builder by
adding a line to `CASES`.

    python benchmarks/builders.py [--quick] [--workers 1] [--only image_scenes,video_clips]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from mmreason.data_builders import get_builder

# case -> (builder, options, n, quick n)
CASES: dict[str, tuple[str, dict, int, int]] = {
    "image_scenes (default mix)": ("image_scenes", {}, 128, 32),
    "image_scenes (small scenes)": ("image_scenes", {"qtypes": ["color", "shape", "count", "relation", "text",
                                                                "ground", "chart_max", "pie_largest"]}, 256, 64),
    "image_scenes (high-res 2-4k)": ("image_scenes", {"qtypes": ["small_color", "small_relative", "small_text"]},
                                     48, 12),
    "video_clips (256x192, 10 fps, 3-5 s)": ("video_clips", {}, 64, 16),
    "audio_speech (16 kHz, espeak-ng)": ("audio_speech", {}, 128, 32),
    "gui_pages (grounding, headless Chromium)": ("gui_pages", {"qtypes": ["ground"]}, 48, 12),
    "gui_pages (whole trajectories)": ("gui_pages", {"qtypes": ["trajectory"]}, 16, 4),
    "scenes_3d (40k points, 8 rendered views)": ("scenes_3d", {}, 32, 8),
    "scenes_3d (40k points, cloud only)": ("scenes_3d", {"views": 0, "qtypes": [
        "object_count", "abs_distance", "object_size", "room_size", "rel_direction", "grounding_3d"]}, 64, 16),
}


def run_case(builder: str, options: dict, n: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = get_builder(builder)(Path(tmp) / "out", n=n, seed=0, workers=workers, progress=False, **options)
        wall = time.perf_counter() - t0
        times: dict[str, float] = {}
        for man in (out / "chunks").glob("*.json"):
            for k, v in json.loads(man.read_text())["timings"].items():
                times[k] = times.get(k, 0.0) + v
        rows = json.loads((out / "manifest.json").read_text())["rows"]
        media = sum(p.stat().st_size for p in (out / "media").rglob("*") if p.is_file())
    total = times.get("total", 0.0) or 1e-9
    shares = {p: times.get(p, 0.0) / total for p in ("render", "encode", "write")}
    shares["other"] = max(0.0, 1.0 - sum(shares.values()))
    return {"rows": rows, "wall": wall, "per_s": rows / wall, "shares": shares,
            "media_mb_per_row": media / rows / 1e6}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a quarter of the samples per case")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated builder names")
    args = ap.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    print(f"# builders benchmark: {platform.processor() or platform.machine()}, workers={args.workers}")
    print("| case | samples | samples/s | render | encode | write | other | media MB/sample |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, (builder, options, n, quick_n) in CASES.items():
        if only and builder not in only:
            continue
        r = run_case(builder, options, quick_n if args.quick else n, args.workers)
        s = r["shares"]
        print(f"| {name} | {r['rows']} | {r['per_s']:.1f} | {s['render']:.0%} | {s['encode']:.0%} | "
              f"{s['write']:.0%} | {s['other']:.0%} | {r['media_mb_per_row']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
