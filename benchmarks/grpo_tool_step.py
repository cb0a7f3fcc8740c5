"""A GRPO step with multi-turn tool calls: ours against TRL's `GRPOTrainer` with its tool calling, in one run.

Both sides train the same tiny Qwen3-VL (its chat template renders ``tools=`` and ``tool_calls`` in Qwen3's
``<tool_call>`` JSON layout, which TRL's tool loop needs; the Qwen2/2.5-VL templates render neither) on the
same prompts (one 224x224 picture + a question each, the zoom tool declared in the system turn: the token
ids of both sides' prompts are checked equal), with the same tool: our `image_zoom_in` (DeepEyes' zoom,
boxes in pixels), which returns the crop as a picture plus a line of text. TRL 1.16 takes tools that return
content blocks with images; its tool needs the sample's picture, so it runs as a TRL environment
(`environment_factory`: `reset` receives the dataset row) whose one method calls our function.

A random tiny model writes no tool call, so the model is first taught (SFT on 3-turn conversations rendered
by the chat template: a short thought and the zoom call each turn, the crop shown back) until it writes the
calls itself when sampling. Then each side runs R prompts x G generations per step (the same R prompts every
step: a dataset of R rows, one epoch a step, so the model is taught on exactly the prompts it rolls out), at
most T tokens per completion (generated and tool results together: TRL's `max_completion_length` counts both, and so does our
`max_completion_tokens`), at most 2 tool calls (TRL: `max_tool_calling_iterations=2`; ours: 3 turns, 2 tool
calls; the call of the last turn is not run on either side), sampling at temperature 1, the same reward
(`think_answer_format`), one AdamW step of full fine-tuning, no KL, token-mean loss. Tool calls are counted
where they run (each side's tool function) and cross-checked with each trainer's own metrics. A step is
timed end to end; the first `--warmup` steps are dropped; the median of the rest is reported.

Differences that remain, by design of each trainer: ours stops a turn at ``</tool_call>`` (a stop string;
the end-of-turn token is part of the tool turn's layout), TRL generates until the end-of-turn token; ours
rolls every trajectory's turn out in one batch with the key/value cache kept across turns, TRL re-encodes
each trajectory's prompt, earlier turns and pictures at every tool iteration.

    python benchmarks/grpo_tool_step.py [--steps 5] [--prompts 2] [--group 4] [--tokens 320] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grpo_step import write_section

FAMILY = "qwen3_vl"
TOOL = "image_zoom_in"
BOX = [32, 32, 160, 160]  # pixels of the 224x224 prompt picture: a 128x128 crop, 16 vision tokens
THOUGHT = "Zoom in."
QUESTION = "What is in the picture? Zoom in to look closer."
# The tiny Qwen3-VL processor's own pixel budget (preprocessor size), so both sides size pictures alike.
MEDIA = {"image": {"min_pixels": 4096, "max_pixels": 262144}}


def tool_settings():
    from mmreason.tools import ToolSettings

    return ToolSettings(coord_frame="pixel")  # DeepEyes' boxes: pixels of the original picture


def system_text(processor) -> str:
    """The system turn the chat template renders for `tools=[the zoom schema]`: our rows carry it as their
    system message, so both sides' prompts are the same tokens."""
    from mmreason.tools import tool_schemas

    text = processor.apply_chat_template([{"role": "user", "content": "x"}], tools=tool_schemas([TOOL]),
                                         tokenize=False)
    head = "<|im_start|>system\n"
    if not text.startswith(head):
        raise RuntimeError(f"the {FAMILY} template rendered no system turn for tools: {text[:80]!r}")
    return text[len(head):text.index("<|im_end|>")]


def make_data(root: Path, n: int, processor) -> tuple[list[dict], list[dict]]:
    """The same prompts as canonical rows (ours) and TRL conversational rows with an `image` column."""
    rng = np.random.default_rng(0)
    system = system_text(processor)
    ours, trl_rows = [], []
    for i in range(n):
        image = Image.fromarray(rng.integers(0, 255, (224, 224, 3), np.uint8))
        image.save(root / f"{i}.png")
        ours.append({"id": f"p{i}", "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": [{"type": "image", "image": str(root / f"{i}.png")},
                                         {"type": "text", "text": QUESTION}]}]})
        trl_rows.append({"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}],
                         "image": image})
    return ours, trl_rows


class ZoomEnvironment:
    """TRL's side of the tool: one per rollout; `reset` gets the dataset row, the method runs our zoom on
    its picture and returns TRL's multimodal tool content (the crop, then the text)."""

    calls = 0  # every call TRL made, counted where it runs
    pictures = 0  # crops returned (calls that zoomed)

    def reset(self, image=None, **_row):
        from mmreason.modalities.image import load_image
        from mmreason.tools import ToolEnv

        opts = MEDIA["image"]
        loaded = load_image(image, FAMILY, min_pixels=opts["min_pixels"], max_pixels=opts["max_pixels"])
        self.env = ToolEnv(FAMILY, images=[loaded], settings=tool_settings(), media_options=MEDIA)

    def image_zoom_in(self, bbox_2d: list[float], label: str | None = None, image_index: int = 0):
        from mmreason.tools import run_tool_call

        type(self).calls += 1
        arguments = {"bbox_2d": bbox_2d, "label": label, "image_index": image_index}
        observation = run_tool_call({"name": TOOL, "arguments": arguments}, self.env, [TOOL])
        type(self).pictures += len(observation.images)
        return [{"type": "image", "image": im.image} for im in observation.images] + [
            {"type": "text", "text": observation.text}]


def _same_docstring() -> None:
    from mmreason.tools.image import image_zoom_in

    ZoomEnvironment.image_zoom_in.__doc__ = image_zoom_in.__doc__  # the same schema on both sides


_same_docstring()


def teach_conversations(rows: list[dict], root: Path, turns: int) -> list[list[dict]]:
    """Per row, the conversation the model is taught: `turns` assistant turns, each a thought and the zoom
    call, each call but the last answered by what our zoom returns (the crop and its text)."""
    from mmreason.modalities.image import load_image
    from mmreason.tools import ToolEnv, run_tool_call

    call = {"type": "function", "function": {"name": TOOL, "arguments": {"bbox_2d": BOX}}}
    out = []
    for row in rows:
        path = row["messages"][1]["content"][0]["image"]
        opts = MEDIA["image"]
        picture = load_image(path, FAMILY, min_pixels=opts["min_pixels"], max_pixels=opts["max_pixels"])
        env = ToolEnv(FAMILY, images=[picture], settings=tool_settings(), media_options=MEDIA)
        messages = [row["messages"][0], {"role": "user", "content": [
            {"type": "image", "image": picture.image}, {"type": "text", "text": QUESTION}]}]
        for turn in range(turns):
            messages.append({"role": "assistant", "content": THOUGHT, "tool_calls": [call]})
            if turn + 1 < turns:
                obs = run_tool_call(call["function"], env, [TOOL])
                messages.append({"role": "tool", "name": TOOL, "content": [
                    *({"type": "image", "image": im.image} for im in obs.images), {"type": "text", "text": obs.text}]})
        out.append(messages)
    return out


def teach_calls(model, processor, conversations: list[list[dict]], max_steps: int = 1500) -> int:
    """SFT on the assistant turns (their end-of-turn token included) until sampling at temperature 1
    reproduces each whole conversation's turns with probability >= 0.95 (the summed negative log-likelihood
    of its targets <= 0.05); the steps it took."""
    import torch

    tok = processor.tokenizer
    inputs = processor.apply_chat_template(conversations, tokenize=True, return_dict=True, return_tensors="pt",
                                           padding=True)
    ids = inputs["input_ids"]
    start = tok.convert_tokens_to_ids("<|im_start|>")
    end = tok.convert_tokens_to_ids("<|im_end|>")
    header = tok("assistant\n", add_special_tokens=False)["input_ids"]
    target = torch.zeros_like(ids, dtype=torch.bool)
    for b in range(ids.shape[0]):
        row, inside = ids[b].tolist(), False
        for k in range(len(row)):
            if row[k] == start and row[k + 1:k + 1 + len(header)] == header:
                inside, skip = True, len(header) + 1
            if inside:
                if skip > 0:
                    skip -= 1
                else:
                    target[b, k] = True
                    inside = row[k] != end
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(1, max_steps + 1):
        logits = model(**inputs).logits[:, :-1]
        mask = target[:, 1:]
        logp = torch.log_softmax(logits.float(), -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        loss = -logp[mask].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if float(-(logp.detach() * mask).sum(1).max()) <= 0.05:
            model.eval()
            return step
    raise RuntimeError(f"the tiny model did not learn to write the zoom call in {max_steps} steps")


def time_ours(model_dir: Path, rows, args) -> dict:
    from accelerate import Accelerator
    from mmreason.models import load
    from mmreason.train.grpo import make_optimizer
    from mmreason.train.grpo_step import StepContext, grpo_step

    from mmreason.config import load_recipe_dict
    from mmreason.rewards import build_rewards
    from mmreason.rollout import RolloutConfig
    from mmreason.rollout.cache import cache_unsupported

    model, processor = load(model_dir)
    no_cache = cache_unsupported(model)
    recipe = load_recipe_dict({
        "model": {"path": str(model_dir), "freeze_vision": False}, "rewards": ["think_answer_format"],
        "tools": {"names": [TOOL], "max_turns": args.tool_calls + 1, "max_tool_calls": args.tool_calls,
                  "coord_frame": "pixel"},
        "grpo": {"num_generations": args.group, "batch_size": args.prompts, "lr": 1e-6,
                 "max_completion_length": args.tokens, "max_steps": 1000}})
    acc = Accelerator(cpu=True, step_scheduler_with_optimizer=False)
    model.train()
    optimizer, scheduler = make_optimizer(model, recipe)
    model, optimizer = acc.prepare(model, optimizer)
    config = RolloutConfig.from_recipe(recipe)
    ctx = StepContext(recipe, acc, model, processor, build_rewards(recipe), optimizer, scheduler, config, MEDIA,
                      tool_settings())
    times, lengths, calls, pictures = [], [], [], []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        metrics = grpo_step(ctx, rows)
        times.append(time.perf_counter() - t0)
        lengths.append(metrics["completion_length"])  # generated tokens, as TRL's completions/mean_length
        calls.append(metrics["tool_calls_per_trajectory"])
        pictures.append(metrics["images_returned_per_trajectory"])
    keep = slice(args.warmup, None)
    return {"times": times[keep], "lengths": lengths[keep], "calls_per_traj": calls[keep],
            "pictures_per_traj": pictures[keep], "cache": no_cache or "kept across turns"}


def time_trl(model_dir: Path, rows, args) -> dict:
    import datasets
    from mmreason.models import load
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_template

    from mmreason.rewards import REWARDS

    model, processor = load(model_dir)
    # Our Qwen3-VL template renders Qwen3's layout but is not byte-equal to the ones TRL recognises
    # (`add_response_schema` raises "Unrecognized chat template"), so TRL's parser for that layout is set.
    processor.tokenizer.response_template = qwen3_template
    times: list[float] = []
    ZoomEnvironment.calls = ZoomEnvironment.pictures = 0
    calls_at_step: list[tuple[int, int]] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t0)
            calls_at_step.append((ZoomEnvironment.calls, ZoomEnvironment.pictures))

    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out, per_device_train_batch_size=args.prompts * args.group, num_generations=args.group,
            gradient_accumulation_steps=1, max_completion_length=args.tokens, learning_rate=1e-6, beta=0.0,
            temperature=1.0, loss_type="dapo", max_steps=args.warmup + args.steps, logging_steps=1,
            max_tool_calling_iterations=args.tool_calls, save_strategy="no", report_to="none",
            gradient_checkpointing=False, shuffle_dataset=False, use_cpu=True, dataloader_num_workers=0,
            bf16=False,  # TRL's default is bf16 autocast; ours runs in float32
            disable_tqdm=True,
        )
        trainer = GRPOTrainer(model=model, reward_funcs=[REWARDS["think_answer_format"]], args=config,
                              train_dataset=datasets.Dataset.from_list(rows), processing_class=processor,
                              environment_factory=ZoomEnvironment, callbacks=[Clock()])
        trainer.train()
        history = trainer.state.log_history
    lengths = [r["completions/mean_length"] for r in history if "completions/mean_length" in r]
    logged = [r["tools/call_frequency"] for r in history if "tools/call_frequency" in r]
    failures = [r["tools/failure_frequency"] for r in history if "tools/failure_frequency" in r]
    per_step = np.diff([(0, 0), *calls_at_step], axis=0) / (args.prompts * args.group)
    keep = slice(args.warmup, None)
    return {"times": times[keep], "lengths": lengths[keep], "calls_per_traj": list(per_step[keep, 0]),
            "pictures_per_traj": list(per_step[keep, 1]),
            "logged_calls_per_traj": logged[keep], "failure_frequency": failures[keep]}


def check_prompts(model_dir: Path, ours_rows, trl_rows) -> None:
    """Our prompt tokens (the rollout's) must equal what TRL renders with the environment's tool."""
    from mmreason.models import load

    from mmreason.rollout import prepare_prompt

    _, processor = load(model_dir)
    env = ZoomEnvironment()
    for row, trl_row in zip(ours_rows[:2], trl_rows[:2]):
        _, segment, _ = prepare_prompt(row, processor, FAMILY, media_options=MEDIA, tool_settings=tool_settings())
        prompt = [{"role": "user", "content": [{"type": "image", "image": trl_row["image"]},
                                               {"type": "text", "text": QUESTION}]}]
        theirs = processor.apply_chat_template(conversation=[prompt], tools=[env.image_zoom_in],
                                               add_generation_prompt=True, tokenize=True, return_dict=True)
        if list(segment.ids) != list(theirs["input_ids"][0]):
            raise RuntimeError(f"prompt {row['id']}: our prompt tokens differ from TRL's rendering "
                               f"({len(segment.ids)} vs {len(theirs['input_ids'][0])} tokens)")


def run(args) -> dict:
    import torch
    from mmreason.models import load, resolve_checkpoint

    torch.set_num_threads(args.threads)
    tiny_dir = resolve_checkpoint(f"tiny:{FAMILY}")
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model, processor = load(tiny_dir)
        ours_rows, trl_rows = make_data(root, args.prompts, processor)
        torch.manual_seed(0)
        t0 = time.perf_counter()
        results["teach_steps"] = teach_calls(model, processor,
                                             teach_conversations(ours_rows, root, args.tool_calls + 1))
        results["teach_s"] = time.perf_counter() - t0
        taught = root / "taught"
        model.save_pretrained(taught)
        processor.save_pretrained(taught)
        del model
        check_prompts(taught, ours_rows, trl_rows)
        for name in ("trl", "ours"):
            torch.manual_seed(0)
            got = time_trl(taught, trl_rows, args) if name == "trl" else time_ours(taught, ours_rows, args)
            got["step_s"] = statistics.median(got["times"])
            got["mean_length"] = statistics.mean(got["lengths"])
            got["mean_calls"] = statistics.mean(got["calls_per_traj"])
            got["mean_pictures"] = statistics.mean(got["pictures_per_traj"])
            results[name] = got
    results["ratio"] = results["ours"]["step_s"] / results["trl"]["step_s"]
    return results


def report(results: dict, args, command: str) -> str:
    import torch
    import transformers
    import trl

    where = (f"{platform.machine()} with {os.cpu_count()} cores shared with other jobs (load average "
             f"{os.getloadavg()[0]:.1f}), {torch.get_num_threads()} torch thread(s)")
    lines = [
        "## GRPO step with multi-turn tool calls: ours vs TRL's GRPOTrainer (`benchmarks/grpo_tool_step.py`)",
        "",
        (f"`{command}` on {where}; torch {torch.__version__}, transformers {transformers.__version__}, trl "
        f"{trl.__version__}. Tiny Qwen3-VL taught to call the zoom tool ({results['teach_steps']} SFT steps, "
        f"{results['teach_s']:.0f} s, not timed below); {args.prompts} prompts x {args.group} completions per "
        f"step, at most {args.tokens} completion tokens (generated + tool results) and {args.tool_calls} tool "
        f"calls per completion, sampling at temperature 1; the same tool (`image_zoom_in`, the crop returned as "
        "a picture + text; TRL through `environment_factory`), reward (`think_answer_format`), full "
        f"fine-tuning, AdamW, no KL; median of {args.steps} steps after {args.warmup} warm-up. Prompt tokens "
        "checked identical on both sides."),
        "",
        ("| trainer | step (s) | tool calls / completion | crops returned / completion | generated tokens / "
        "completion | generated tokens/s |"),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in (("ours", "mmreason GRPO step"), ("trl", "TRL GRPOTrainer (tools)")):
        r = results[name]
        rate = args.prompts * args.group * r["mean_length"] / r["step_s"]
        lines.append(f"| {label} | {r['step_s']:.3f} | {r['mean_calls']:.2f} | {r['mean_pictures']:.2f} "
                     f"| {r['mean_length']:.1f} | {rate:.1f} |")
    trl_logged = statistics.mean(results["trl"]["logged_calls_per_traj"])
    failures = statistics.mean(results["trl"]["failure_frequency"])
    lines += ["", f"Ratio ours / TRL: **{results['ratio']:.2f}** (below 1: ours is faster; goal <= 0.5).", "",
              (f"Tool calls are counted where each side's tool runs; TRL's own `tools/call_frequency` read "
              f"{trl_logged:.2f} per completion, its `tools/failure_frequency` {failures:.2f}. A completion "
              "with fewer calls is one whose sampled call did not parse (the taught model garbles a call now and "
              "then at temperature 1; it still writes its turns), so that side encoded fewer tool results."), "",
              (f"How each side runs the turns: ours rolls every trajectory's turn out in one batch, key/value cache "
              f"{results['ours']['cache']}, a turn ending at `</tool_call>`; TRL generates each tool iteration "
              "with `model.generate` over the whole sequence again (prompt, earlier turns and pictures "
              "re-encoded) until the end-of-turn token, in float32 here (`bf16=False`; TRL's default is bf16). "
              "Our Qwen3-VL template renders Qwen3's tool layout but is not byte-equal to the templates TRL "
              "recognises (`add_response_schema` raises \"Unrecognized chat template\"), so the benchmark sets "
              "TRL's Qwen3 response parser (`trl.chat_template_utils.qwen3_template`) on the tokenizer."), ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=320, help="completion budget, tool results included")
    parser.add_argument("--tool-calls", type=int, default=2, help="tool calls per completion at most")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--write", action="store_true", help="append the result to --results")
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    command = "python benchmarks/grpo_tool_step.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(results, args, command.strip())
    print(text)
    print("per-step seconds:", {k: [round(t, 3) for t in results[k]["times"]] for k in ("ours", "trl")})
    print("per-step tool calls / completion:", {k: [round(float(c), 2) for c in results[k]["calls_per_traj"]]
                                                for k in ("ours", "trl")})
    if args.write:
        write_section(text, args.results, "tools-tiny-cpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
