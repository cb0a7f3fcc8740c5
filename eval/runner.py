"""`mmreason eval`: run a model on a benchmark task and score it with pinned, recorded settings.

    mmreason eval --model ckpt/ --data data/refcoco --task grounding --limit 500 --out outputs/eval/refcoco
    mmreason eval --model tiny:qwen2_5_vl --data data/scenes --task vstar --batch-size 4
    mmreason eval --task grounding --data data/refcoco --predictions outputs/eval/refcoco/samples.jsonl
    mmreason eval --model ckpt/ --data downloads/vstar_bench --tasks vstar_bench,vstar --out outputs/eval/ckpt
    mmreason eval compare outputs/eval/base outputs/eval/grpo --out compare.png
    mmreason eval --endpoint http://127.0.0.1:8000/v1 --model served-name --family qwen2_5_vl --data ... --task pope

1. read the rows: a benchmark task (`benchmarks.BENCHMARKS`) reads ``--data`` as the benchmark's release
   (`layouts`), the others read a canonical dataset; select the task's rows (row ``task`` values, media);
2. rebuild each prompt with the task's pinned template (the question and media come from the row);
3. generate greedily through `mmreason.rollout` (the collator, the family's chat template; for tool tasks
   the same multi-turn loop as training, tools executed);
4. score every output with the task's metrics (`mmreason.rewards` and `metrics`), the coordinates
   read in the family's output frame and mapped with the exact image frames the processor produced;
5. write ``results.json`` (scores, prompt, pixel budget, generation settings, model, dataset fingerprint),
   ``samples.jsonl`` (output, parsed answer, scores per sample) and print a table.

Before any work the run claims ``--out`` (`records.claim_out`): a folder holding a run with other
settings is refused unless ``--overwrite``. Every batch's scored samples are appended to
``records.jsonl``; a killed run, started again with the same command, continues from them (nothing
generated or scored twice). The two result files are written whole at the end, ``results.json`` last, so
a folder without it is never a finished result. ``--tasks a,b,c`` runs several tasks on one loaded model,
each into ``<out>/<task>/``; ``--task X`` writes into ``<out>`` itself.

``--predictions samples.jsonl`` re-scores saved outputs (``{"id", "output"}`` per line, ours or anyone's)
against the dataset without a model: change a metric, not the generations.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from mmreason.errors import RecipeError
from mmreason.eval.benchmarks import ALL_TASKS, find_task
from mmreason.eval.generation import LoadedModel, open_model
from mmreason.eval.prompt_parity import wording_notice
from mmreason.eval.records import append_records, claim_out, read_records, run_settings, write_outputs
from mmreason.eval.rescore import rescore
from mmreason.eval.results import print_table, results_record
from mmreason.eval.run_setup import make_setup
from mmreason.eval.scoring import prompt_texts, score, summary_of
from mmreason.eval.task_rows import fingerprint, select_rows, task_rows
from mmreason.eval.tasks import prompt_messages


def evaluate(args: argparse.Namespace, model: LoadedModel | None = None) -> dict:
    """Generate and score ``args.task`` into ``args.out`` (the CLI without printing), continuing an
    interrupted run of the same settings there; returns the results record."""
    start = time.perf_counter()
    name, out = args.task, Path(args.out)
    task = find_task(name)
    model = model or open_model(args)
    model.check_task(task, name)
    notice = wording_notice(getattr(model, "path", None), task, name)
    if notice and not args.quiet:
        print(f"mmreason eval: {notice}", file=sys.stderr)
    candidates, files = task_rows(task, args.data, out)
    rows, counts = select_rows(candidates, task, args.limit)
    setup = make_setup(task, name, model.family, args, rows, model.budgets)
    prompts = [{"id": r["id"], "messages": prompt_messages(r, task, model.family, setup.media)} for r in rows]
    resume = claim_out(out, run_settings(args), overwrite=getattr(args, "overwrite", False))
    done = read_records(out, [r["id"] for r in rows]) if resume else {}
    resumed = len(done)
    if resumed and not args.quiet:
        print(f"mmreason eval: {name}: continuing from {resumed} scored samples in {out}", file=sys.stderr)
    by_id, texts = {r["id"]: r for r in rows}, prompt_texts(prompts)

    def record(outputs: list[dict]) -> None:  # score each batch as it comes, and keep it on disk
        batch = score(task, setup, [by_id[o["id"]] for o in outputs], outputs, texts)
        append_records(out, batch)
        done.update((r["id"], r) for r in batch)

    pending = [p for p in prompts if p["id"] not in done]
    if pending:
        model.generate(pending, task, setup, progress=not args.quiet, on_batch=record)
    records = [done[r["id"]] for r in rows]
    summary = summary_of(task, records, [r.get("meta") or {} for r in rows], setup)
    data = fingerprint(args.data, [r["id"] for r in rows], files)
    results = results_record(name, setup, model.record(), data, summary, len(records), counts,
                             time.perf_counter() - start, resumed)
    write_outputs(out, results, records)
    return results


def evaluate_tasks(args: argparse.Namespace, names: Sequence[str]) -> list[dict]:
    """`evaluate` for each task on one loaded model, task X into ``<out>/X`` with the settings a ``--task X``
    run would record (so either command continues the other's interrupted run)."""
    model = open_model(args)
    results = []
    for name in names:
        one = argparse.Namespace(**{**vars(args), "task": name, "tasks": None,
                                    "out": str(Path(args.out) / name)})
        results.append(evaluate(one, model))
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmreason eval", description=__doc__.split("\n\n")[0],
                                epilog="mmreason eval compare RUN_A RUN_B: their scores side by side (table "
                                       "and bar chart); `mmreason ls tasks` lists the tasks")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--task", choices=sorted(ALL_TASKS), metavar="TASK",
                       help="one task, written into --out (`mmreason ls tasks`)")
    which.add_argument("--tasks", help="several tasks, comma-separated, each written into --out/<task>")
    p.add_argument("--data", required=True,
                   help="canonical dataset folder or file; for a benchmark task, the benchmark's release folder")
    p.add_argument("--model", help="checkpoint directory, or tiny:<family>; with --endpoint, the served model name")
    p.add_argument("--endpoint", help="an OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1) serving "
                   "--model; give --family, the frame its coordinates are in")
    p.add_argument("--api-key-env", help="with --endpoint: the environment variable holding its API key")
    p.add_argument("--predictions", help="re-score this samples.jsonl instead of generating")
    p.add_argument("--family", help="with --predictions or --endpoint: the family whose coordinate frame the "
                   "outputs use")
    p.add_argument("--limit", type=int, help="score the first N rows of the task")
    p.add_argument("--out", help="output folder (default outputs/eval/<task>, with --tasks outputs/eval)")
    p.add_argument("--batch-size", type=int, default=4, help="prompts generated together (default 4)")
    p.add_argument("--max-new-tokens", type=int, help="tokens per turn (default: the task's)")
    p.add_argument("--max-turns", type=int, help="turns for tool tasks (default: the task's)")
    p.add_argument("--min-pixels", type=int, help="image pixel floor (default: the task's, else the checkpoint "
                   "processor's, else the family's)")
    p.add_argument("--max-pixels", type=int, help="image pixel ceiling (default: the task's, else the checkpoint "
                   "processor's, else the family's)")
    p.add_argument("--fps", type=float, help="video sampling rate (default: the task's)")
    p.add_argument("--segment-seconds", type=float,
                   help="video_com: length of the numbered segments (default: from the rows' meta.segments)")
    p.add_argument("--coord-frame", choices=("norm1000", "resized", "pixel"),
                   help="the frame the outputs' coordinates are read in (default: the family's, with the other "
                        "Qwen-VL reading scored beside it and the winner named)")
    p.add_argument("--judge", help='LLM judge for accuracy metrics, JSON: {"base_url": ..., "model": ...}')
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    p.add_argument("--device", help="e.g. cuda, cpu, auto (default: where loading puts it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="replace what --out holds even when it is a run with other settings")
    return p


def task_names(value: str) -> list[str]:
    """The names of ``--tasks a,b,c``, each checked (`find_task`), duplicates dropped."""
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise RecipeError("--tasks: give task names separated by commas (`mmreason ls tasks`)")
    for name in names:
        find_task(name)
    return names


def _usage_error(args: argparse.Namespace) -> str | None:
    if not args.model and not args.predictions:
        return "give --model to generate, or --predictions to re-score"
    if args.endpoint and not (args.model and args.family):
        return "--endpoint needs --model (the served model's name) and --family (its coordinate frame)"
    if args.endpoint and args.predictions:
        return "give --endpoint to generate, or --predictions to re-score, not both"
    if args.tasks and args.predictions:
        return "--predictions re-scores one task: use --task, not --tasks"
    for name in ("limit", "batch_size", "max_new_tokens", "max_turns", "min_pixels", "max_pixels"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return f"--{name.replace('_', '-')} must be >= 1"
    if args.judge:
        try:
            json.loads(args.judge)
        except ValueError as exc:
            return f"--judge is not JSON: {exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        from mmreason.eval.compare import main as compare_main

        return compare_main(argv[1:])
    args = parser().parse_args(argv)
    problem = _usage_error(args)
    if problem:
        print(f"mmreason eval: {problem}", file=sys.stderr)
        return 2
    names = task_names(args.tasks) if args.tasks else [args.task]
    args.out = args.out or str(Path("outputs") / "eval" / (args.task or ""))
    try:
        if args.predictions:
            results = [rescore(args)]
        else:
            results = [evaluate(args)] if args.task else evaluate_tasks(args, names)
    except FileNotFoundError as exc:  # no dataset or predictions there: a usage error, not a crash
        print(f"mmreason eval: {exc}", file=sys.stderr)
        return 2
    for one, name in zip(results, names):
        print_table(one)
        folder = Path(args.out) / (name if args.tasks else "")
        print(f"wrote {folder / 'results.json'} and {folder / 'samples.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
