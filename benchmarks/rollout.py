"""Batched multi-turn rollouts against the obvious alternatives: one trajectory at a time, and
re-encoding every turn's whole sequence instead of keeping the key/value cache across turns.

On a tiny Qwen2.5-VL built offline, R prompts x G trajectories each run the DeepEyes loop: a first turn
that calls the zoom tool (forced: a random model writes no valid call), the crop shown back as a picture,
then a turn the model writes (greedy, so both ways generate exactly the same tokens; the e2e tests check
they agree token for token). *batched* is `rollout(rows, group_size=G)`, one generate call per turn for
every trajectory still going; *sequential* calls `rollout` once per trajectory. Reported: trajectories/s
of each and the ratio.

*cache vs no cache*: 3-turn zoom-tool trajectories that the model writes itself, every token: the tiny
model is first taught (SFT steps on forced trajectories of the same prompts, until greedy decoding
reproduces them) to answer each turn with a short thought and the zoom call. Then R prompts x G
generations run `rollout` with `HFBackend(cache=True)` (each trajectory encoded once, observations
appended to its cache) and `cache=False` (every turn re-encodes prompt, earlier turns and every earlier
picture); the tokens must be identical. Reported: seconds of each, tokens the model was fed, the ratio.

Each timing is the best of `--repeats` runs (least disturbed by other load).

    python benchmarks/rollout.py [--quick] [--repeats 2] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from markdown_sections import RESULTS_TITLE, write_section

from mmreason.models import build_tiny, load
from mmreason.rollout import HFBackend, RolloutConfig, collate_trajectories, model_inputs, rollout
from mmreason.tools import ToolSettings

FAMILY = "qwen2_5_vl"
BUDGET = {"image": {"min_pixels": 0, "max_pixels": 64 * 28 * 28}}
ZOOM = '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox_2d": [40, 30, 200, 150]}}</tool_call>'
MARK = ("<!-- rollout-benchmark:start -->", "<!-- rollout-benchmark:end -->")
CACHE_MARK = ("<!-- rollout-cache-benchmark:start -->", "<!-- rollout-cache-benchmark:end -->")
# The cache comparison: what the taught model writes each turn, and the pictures' size (DeepEyes-like
# prompts carry far larger ones; a bigger picture only widens the gap).
CALL = 'Zoom in.<tool_call>{"name": "image_zoom_in", "arguments": {"bbox_2d": [40, 30, 200, 150]}}</tool_call>'
CACHE_BUDGET = {"image": {"min_pixels": 0, "max_pixels": 1024 * 28 * 28}}
CACHE_IMAGE = (896, 896)  # 1024 vision tokens at that budget


def make_rows(root: Path, n: int, size: tuple[int, int] = (320, 240)) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), np.uint8)).save(root / f"{i}.png")
        rows.append({"id": f"r{i}", "messages": [{"role": "user", "content": [
            {"type": "image", "image": f"{i}.png"}, {"type": "text", "text": f"Question {i}: what is in the box?"}]}]})
    return rows


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def measure(model, proc, rows, root: Path, group: int, new_tokens: int, repeats: int) -> dict:
    config = RolloutConfig(tools=("image_zoom_in",), max_turns=2, max_new_tokens=new_tokens,  # per turn
                           max_completion_tokens=4096, do_sample=False)
    kw = dict(root=root, media_options=BUDGET, config=config, tool_settings=ToolSettings(coord_frame="pixel"),
              forced={0: ZOOM})
    batched_s, trajs = best_of(lambda: rollout(model, proc, rows, FAMILY, group_size=group, **kw), repeats)
    one_s, alone = best_of(lambda: [rollout(model, proc, [row], FAMILY, **kw)[0] for row in rows
                                    for _ in range(group)], repeats)
    if [t.completion_ids for t in trajs] != [t.completion_ids for t in alone]:
        raise RuntimeError("batched and sequential rollouts generated different tokens")
    if any(t.num_images_returned != 1 for t in trajs):
        raise RuntimeError("every trajectory should have zoomed once; raise --new-tokens")
    n = len(trajs)
    generated = sum(sum(t.loss_mask) for t in trajs)
    return {"rows": len(rows), "group": group, "trajectories": n, "generated": generated,
            "batched": n / batched_s, "sequential": n / one_s, "ratio": one_s / batched_s,
            "tools": sum(t.num_tool_calls for t in trajs)}


def zoom_config(turns: int = 3) -> RolloutConfig:
    return RolloutConfig(tools=("image_zoom_in",), max_turns=turns, max_new_tokens=64, max_completion_tokens=4096,
                         do_sample=False)


def teach_calls(model, proc, rows, root: Path, max_steps: int = 300) -> int:
    """SFT on forced 3-turn trajectories (CALL every turn) until greedy decoding reproduces every forced
    token; the number of steps it took. The model then writes the calls itself."""
    kw = dict(root=root, media_options=CACHE_BUDGET, tool_settings=ToolSettings(coord_frame="pixel"))
    trajs = rollout(model, proc, rows, FAMILY, config=zoom_config(), forced={0: CALL, 1: CALL, 2: CALL}, **kw)
    batch = collate_trajectories(trajs, proc.tokenizer.pad_token_id)
    inputs, index = model_inputs(batch), batch["completion_index"] - 1  # logits predicting each completion token
    targets, mask = batch["completion_ids"], batch["completion_loss_mask"].bool()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    try:
        for step in range(1, max_steps + 1):
            logits = model(**inputs).logits
            picked = logits.gather(1, index.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))[mask]
            loss = torch.nn.functional.cross_entropy(picked, targets[mask])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if bool((picked.argmax(-1) == targets[mask]).all()):
                return step
    finally:
        model.eval()
    raise RuntimeError(f"the tiny model did not learn to write the zoom call in {max_steps} steps")


def fed_tokens(model):
    """A list counting every token the model is fed (prefills and decoding steps), and its hook."""
    count = [0]

    def add(module, args, kwargs):
        count[0] += int(kwargs["input_ids"].numel())

    return count, model.register_forward_pre_hook(add, with_kwargs=True)


def measure_cache(model, proc, rows, root: Path, group: int, repeats: int) -> dict:
    kw = dict(root=root, media_options=CACHE_BUDGET, config=zoom_config(), tool_settings=ToolSettings(coord_frame="pixel"))
    results = {}
    for name, cache in (("cache", True), ("no_cache", False)):
        backend = HFBackend(model, proc, FAMILY, cache=cache)
        count, hook = fed_tokens(model)
        try:
            seconds, trajs = best_of(lambda: rollout(model, proc, rows, FAMILY, group_size=group, backend=backend, **kw),
                                     repeats)
        finally:
            hook.remove()
        results[name] = (seconds, trajs, count[0] // repeats)
    (cached_s, trajs, cached_fed), (plain_s, plain, plain_fed) = results["cache"], results["no_cache"]
    if [t.completion_ids for t in trajs] != [t.completion_ids for t in plain]:
        raise RuntimeError("rollouts with and without the cache generated different tokens")
    if any(t.num_tool_calls != 2 or t.num_images_returned != 2 or len(t.steps) != 3 for t in trajs):
        raise RuntimeError("every trajectory should write 3 turns and zoom twice; the teaching did not take")
    return {"rows": len(rows), "group": group, "trajectories": len(trajs),
            "generated": sum(sum(t.loss_mask) for t in trajs), "prompt": len(trajs[0].prompt_ids),
            "length": max(len(t.prompt_ids) + len(t.completion_ids) for t in trajs),
            "cache_s": cached_s, "no_cache_s": plain_s, "cache_fed": cached_fed, "no_cache_fed": plain_fed,
            "ratio": plain_s / cached_s}


def machine(command: str, note: str) -> str:
    return (f"`{command}` on the development machine ({platform.machine()}, {os.cpu_count()} CPU cores, Python "
            f"{platform.python_version()}, {torch.get_num_threads()} torch threads{note}). Tiny Qwen2.5-VL (built "
            "offline). Best of the repeats.")


def report(results: list[dict], command: str, new_tokens: int, note: str) -> str:
    lines = [
        MARK[0],
        "## Rollouts: batched multi-turn vs one trajectory at a time (`benchmarks/rollout.py`)",
        "",
        machine(command, note) + " Random weights; each trajectory: a forced zoom call, the crop returned as a "
        f"picture (<= {BUDGET['image']['max_pixels'] // 784} vision tokens), then a greedy turn of up to "
        f"{new_tokens} tokens. Both ways generate identical tokens (checked).",
        "",
        "| prompts x group | trajectories | tool calls | generated tokens | batched traj/s | one-at-a-time traj/s "
        "| speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['rows']} x {r['group']} | {r['trajectories']} | {r['tools']} | {r['generated']} | "
                     f"{r['batched']:.2f} | {r['sequential']:.2f} | {r['ratio']:.2f}x |")
    lines += ["", "Reading: each turn is one `generate` over every live trajectory (left-padded, pixel tensors "
              "concatenated in sequence order), so the per-call overhead and the small matrix products of a tiny "
              "model are shared; the gain grows with the number of trajectories per turn.", MARK[1]]
    return "\n".join(lines) + "\n"


def cache_report(c: dict, command: str, note: str) -> str:
    lines = [
        CACHE_MARK[0],
        "## Rollouts: the key/value cache across turns vs re-encoding every turn (`benchmarks/rollout.py`)",
        "",
        machine(command, note),
        "",
        f"{c['rows']} prompts x {c['group']} generations of 3-turn zoom-tool trajectories that the model writes "
        f"itself, every token (greedy; taught first, in {c['taught']} SFT steps on forced trajectories of the "
        "same prompts, to "
        "answer each turn with a short thought and the zoom call): turns 1 and 2 zoom and the crop comes back as "
        "a picture, turn 3's call is not run (max_turns). Prompt: one "
        f"{CACHE_IMAGE[0]}x{CACHE_IMAGE[1]} picture ({c['prompt']} tokens); whole trajectories up to "
        f"{c['length']} tokens; {c['generated']} generated tokens in all. Identical tokens both ways (checked).",
        "",
        "| | seconds | tokens fed to the model | traj/s |",
        "|---|---:|---:|---:|",
        f"| cache (`HFBackend(cache=True)`, the default) | {c['cache_s']:.2f} | {c['cache_fed']} | "
        f"{c['trajectories'] / c['cache_s']:.2f} |",
        f"| no cache (`cache=False`) | {c['no_cache_s']:.2f} | {c['no_cache_fed']} | "
        f"{c['trajectories'] / c['no_cache_s']:.2f} |",
        "",
        f"**Speed-up of the cache: {c['ratio']:.2f}x** (goal >= 2x). Without it every turn re-encodes the prompt, "
        "the earlier turns and every earlier picture (vision tower included); with it a turn feeds only the new "
        "observation and its generated tokens. What both pay alike (decoding steps, running the tool, the "
        "processor on each crop) bounds the ratio: smaller prompt pictures or shorter trajectories narrow it, "
        "larger ones and more turns widen it.",
        CACHE_MARK[1],
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small case of each")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=48,
                        help="per-turn token cap: the forced call (37 tokens) fits, and the model's turn after the crop")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core machine, 2 threads spin against other jobs)")
    parser.add_argument("--skip-batching", action="store_true",
                        help="only the cache comparison (its section alone is rewritten)")
    parser.add_argument("--note", default="", help="appended to the machine description, e.g. ', other jobs running'")
    parser.add_argument("--write", action="store_true", help="update this benchmark's section of RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, proc = load(build_tiny(FAMILY, tmp / "model"))
        results = []
        for rows_n, group in ([] if args.skip_batching else [(2, 2)] if args.quick else [(2, 2), (4, 4), (8, 4)]):
            root = tmp / f"media{rows_n}"
            root.mkdir()
            results.append(measure(model, proc, make_rows(root, rows_n), root, group, args.new_tokens, args.repeats))
            print(results[-1], flush=True)
        root = tmp / "cache-media"
        root.mkdir()
        rows_n, group = (2, 2) if args.quick else (8, 4)
        rows = make_rows(root, rows_n, CACHE_IMAGE)
        taught = teach_calls(model, proc, rows, root)  # taught on two prompts, it did not zoom on all eight
        cache = {**measure_cache(model, proc, rows, root, group, args.repeats), "taught": taught}
        print(cache, flush=True)
    command = ("python benchmarks/rollout.py" + (" --quick" if args.quick else "")
               + (" --skip-batching" if args.skip_batching else "") + f" --repeats {args.repeats} --threads {args.threads}")
    texts = [(cache_report(cache, command, args.note), CACHE_MARK)]
    if results:
        texts.insert(0, (report(results, command, args.new_tokens, args.note), MARK))
    for text, mark in texts:
        print(text)
        if args.write:
            write_section(Path(__file__).with_name("RESULTS.md"), text, *mark, new_file=RESULTS_TITLE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
