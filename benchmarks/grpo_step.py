"""Our GRPO step against TRL's `GRPOTrainer` on the same model, data, group size and lengths, in one run.

Both take R prompts per step (one 224x224 image + a question each), sample G completions per prompt of up
to `--tokens` new tokens (no stop strings in either; a random model rarely samples its end token, and
tokens/s counts what each actually generated), score them with the same reward function
(`think_answer_format`: TRL calls our rewards as they are), and take one AdamW step of full fine-tuning
with no KL (no reference model), token-mean loss, no gradient checkpointing. A step is timed end to end
(generation + scoring + update); the first `--warmup` steps are dropped; the median of the rest is
reported with generated tokens/s and, on CUDA, peak memory. The ratio is ours / TRL (below 1: ours is faster).

    python benchmarks/grpo_step.py [--steps 5] [--prompts 2] [--group 4] [--tokens 32] [--write]
    python benchmarks/grpo_step.py --device cuda --model qwen2_5_vl_3b [--write]   # needs a GPU

`--model qwen2_5_vl_3b` builds the full-size Qwen2.5-VL-3B architecture with random weights in memory
(no download; the tiny model's tokenizer and processor, so token ids stay below its vocabulary).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import markdown_sections

FAMILY = "qwen2_5_vl"
MARK = ("<!-- grpo-step-benchmark:start -->", "<!-- grpo-step-benchmark:end -->")
QUESTION = "What is in the picture? Think, then answer."
# Qwen2.5-VL-3B-Instruct's published architecture (config.json of the released checkpoint).
FULL_3B_TEXT = dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                    num_key_value_heads=2, vocab_size=151936, max_position_embeddings=128000)
FULL_3B_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                      window_size=112, fullatt_block_indexes=[7, 15, 23, 31])


def build_model(kind: str, tiny_dir: Path, device: str):
    """(model, processor): the tiny checkpoint, or the 3B architecture at random init on `device`."""
    import torch
    import transformers as tf

    from mmreason.models import load

    model, processor = load(tiny_dir)
    if kind == "qwen2_5_vl_3b":
        config = json.loads((tiny_dir / "config.json").read_text())
        text = {k: v for k, v in config["text_config"].items() if k != "layer_types"}  # one per tiny layer
        text.update(FULL_3B_TEXT)
        text["rope_parameters"] = {**text["rope_parameters"], "mrope_section": [16, 24, 24]}
        vision = {**config["vision_config"], **FULL_3B_VISION}
        cfg = tf.Qwen2_5_VLConfig(**{**config, "text_config": text, "vision_config": vision,
                                     "tie_word_embeddings": True})
        with torch.device(device):  # initialise 3.75B parameters where they will run
            model = tf.Qwen2_5_VLForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16)
    return model.to(device), processor


def make_data(root: Path, n: int) -> tuple[list[dict], list[dict]]:
    """The same prompts as canonical rows (ours) and TRL conversational rows with an `image` column."""
    rng = np.random.default_rng(0)
    ours, trl_rows = [], []
    for i in range(n):
        image = Image.fromarray(rng.integers(0, 255, (224, 224, 3), np.uint8))
        image.save(root / f"{i}.png")
        ours.append({"id": f"p{i}", "messages": [{"role": "user", "content": [
            {"type": "image", "image": str(root / f"{i}.png")}, {"type": "text", "text": QUESTION}]}]})
        content = [{"type": "image"}, {"type": "text", "text": QUESTION}]
        trl_rows.append({"prompt": [{"role": "user", "content": content}], "image": image})
    return ours, trl_rows


def time_ours(model, processor, rows, args, tiny_dir: Path) -> tuple[list[float], list[float]]:
    import torch
    from accelerate import Accelerator

    from mmreason.config import load_recipe_dict
    from mmreason.rollout import RolloutConfig
    from mmreason.train.grpo import make_optimizer
    from mmreason.train.grpo_step import StepContext, grpo_step
    from mmreason.rewards import build_rewards

    recipe = load_recipe_dict({"model": {"path": str(tiny_dir), "freeze_vision": False},
                               "rewards": ["think_answer_format"],
                               "grpo": {"num_generations": args.group, "batch_size": args.prompts, "lr": 1e-6,
                                        "max_completion_length": args.tokens, "max_steps": 1000}})
    acc = Accelerator(cpu=args.device == "cpu", step_scheduler_with_optimizer=False)
    model.train()
    optimizer, scheduler = make_optimizer(model, recipe)
    model, optimizer = acc.prepare(model, optimizer)
    # single-turn, no tools: no stop strings, as TRL generates
    config = RolloutConfig(max_new_tokens=args.tokens, max_completion_tokens=args.tokens, stop_strings=())
    ctx = StepContext(recipe, acc, model, processor, build_rewards(recipe), optimizer, scheduler, config, {})
    times, lengths = [], []
    for step in range(args.warmup + args.steps):
        if args.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        metrics = grpo_step(ctx, rows[step * args.prompts:(step + 1) * args.prompts])
        if args.device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        lengths.append(metrics["completion_length"])
    return times[args.warmup:], lengths[args.warmup:]


def time_trl(model, processor, rows, args) -> tuple[list[float], list[float]]:
    import datasets
    import torch
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from mmreason.rewards import REWARDS

    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            if args.device == "cuda":
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            if args.device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t0)

    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out, per_device_train_batch_size=args.prompts * args.group, num_generations=args.group,
            gradient_accumulation_steps=1, max_completion_length=args.tokens, learning_rate=1e-6, beta=0.0,
            temperature=1.0, loss_type="dapo", max_steps=args.warmup + args.steps, logging_steps=1,
            save_strategy="no", report_to="none", gradient_checkpointing=False, shuffle_dataset=False,
            bf16=args.model != "tiny" and args.device == "cuda", use_cpu=args.device == "cpu",
            dataloader_num_workers=0, disable_tqdm=True,
        )
        trainer = GRPOTrainer(model=model, reward_funcs=[REWARDS["think_answer_format"]], args=config,
                              train_dataset=datasets.Dataset.from_list(rows), processing_class=processor,
                              callbacks=[Clock()])
        trainer.train()
        key = "completions/mean_length"
        lengths = [r[key] for r in trainer.state.log_history if key in r]
    return times[args.warmup:], lengths[args.warmup:]


def run(args) -> dict:
    import torch

    from mmreason.models import resolve_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    tiny_dir = resolve_checkpoint(f"tiny:{FAMILY}")
    n = args.prompts * (args.warmup + args.steps)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        ours_rows, trl_rows = make_data(Path(tmp), n)
        for name in ("trl", "ours"):
            torch.manual_seed(0)
            model, processor = build_model(args.model, tiny_dir, args.device)
            if args.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            if name == "ours":
                times, lengths = time_ours(model, processor, ours_rows, args, tiny_dir)
            else:
                times, lengths = time_trl(model, processor, trl_rows, args)
            step = statistics.median(times)
            generated = args.prompts * args.group * statistics.mean(lengths)
            peak = torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else None
            results[name] = {"step_s": step, "tokens_per_s": generated / step,
                             "mean_length": statistics.mean(lengths), "peak_gib": peak,
                             "steps": times}
            del model
    results["ratio"] = results["ours"]["step_s"] / results["trl"]["step_s"]
    return results


def report(results: dict, args, command: str) -> str:
    import torch
    import transformers
    import trl

    import os

    where = (torch.cuda.get_device_name() if args.device == "cuda"
             else f"{platform.machine()} with {os.cpu_count()} cores shared with other jobs (load average "
                  f"{os.getloadavg()[0]:.1f}), {torch.get_num_threads()} torch thread(s)")
    lines = [
        f"## GRPO step: ours vs TRL's GRPOTrainer (`benchmarks/grpo_step.py`, {args.model}, {args.device})",
        "",
        f"`{command}` on {where}; torch {torch.__version__}, transformers {transformers.__version__}, trl "
        f"{trl.__version__}. {args.prompts} prompts x {args.group} completions x {args.tokens} new tokens "
        f"per step, full fine-tuning, AdamW, no KL; median of {args.steps} steps after {args.warmup} "
        "warm-up.",
        "",
        "| trainer | step (s) | mean completion tokens | generated tokens/s | peak GPU memory (GiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in (("ours", "mmreason GRPO step"), ("trl", "TRL GRPOTrainer")):
        r = results[name]
        mem = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        lines.append(f"| {label} | {r['step_s']:.3f} | {r['mean_length']:.1f} | {r['tokens_per_s']:.1f} "
                     f"| {mem} |")
    lines += ["", f"Ratio ours / TRL: **{results['ratio']:.2f}** (below 1: ours is faster).", ""]
    if args.device == "cpu":
        lines += ["The GPU path (`--device cuda --model qwen2_5_vl_3b`: the full-size Qwen2.5-VL-3B "
                  "architecture with random weights) is runnable but has not been run here: no GPU was "
                  "available.", ""]
    return "\n".join(lines)


def write_section(text: str, path: Path, key: str) -> None:
    """Append (or replace) this configuration's section between its markers; other sections stay."""
    start, end = (m.replace("grpo-step-benchmark", f"grpo-step-benchmark:{key}") for m in MARK)
    markdown_sections.write_section(path, f"{start}\n{text}{end}", start, end,
                                    new_file=markdown_sections.RESULTS_TITLE)


def main(argv: list[str] | None = None) -> int:
    import sys

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("tiny", "qwen2_5_vl_3b"), default="tiny")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--write", action="store_true", help="append the result to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    results = run(args)
    command = "python benchmarks/grpo_step.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(results, args, command.strip())
    print(text)
    print("per-step seconds:", {k: [round(t, 3) for t in results[k]["steps"]] for k in ("ours", "trl")})
    if args.write:
        write_section(text, Path(__file__).with_name("RESULTS.md"), f"{args.model}-{args.device}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
