"""`mmreason eval`: run a model on a benchmark task and score it with pinned, recorded settings.

    mmreason eval --model ckpt/ --data data/refcoco --task grounding --limit 500 --out outputs/eval/refcoco
    mmreason eval --model tiny:qwen2_5_vl --data data/scenes --task vstar --batch-size 4
    mmreason eval --task grounding --data data/refcoco --predictions outputs/eval/refcoco/samples.jsonl

1. select the dataset's rows of the task (`tasks.TASKS`: row ``task`` values, needed media);
2. rebuild each prompt with the task's pinned template (the question and media come from the row);
3. generate greedily through `mmreason.rollout` (the collator, the family's chat template; for tool tasks
   the same multi-turn loop as training, tools executed);
4. score every output with the task's metrics (`mmreason.rewards` and `metrics`), the coordinates
   read in the family's output frame and mapped with the exact image frames the processor produced;
5. write ``results.json`` (scores, prompt, pixel budget, generation settings, model, dataset fingerprint),
   ``samples.jsonl`` (output, parsed answer, scores per sample) and print a table.

Before any work the run claims ``--out`` (`claim_out`): a folder holding a run with other settings is
refused unless ``--overwrite``; earlier results are removed and ``settings.json`` names this run. The two
result files are written whole at the end, ``results.json`` last, so a folder without it is never a
finished result (an interrupted run leaves none).

``--predictions samples.jsonl`` re-scores saved outputs (``{"id", "output"}`` per line, ours or anyone's)
against the dataset without a model: change a metric, not the generations.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmreason import __version__, traces
from mmreason.errors import RecipeError, SchemaError
from mmreason.families import get_family
from mmreason.eval.metrics import summarize
from mmreason.eval.tasks import Task, get_task, prompt_messages, rendered_prompt

AUTO_OPTIONS = ("family", "min_pixels", "max_pixels", "judge")


@dataclass(frozen=True)
class Generation:
    """Decoding settings: greedy, as every reference protocol here evaluates."""

    max_new_tokens: int
    max_turns: int
    batch_size: int = 4
    seed: int = 0
    do_sample: bool = False


@dataclass(frozen=True)
class Setup:
    """Everything that decides a score besides the model and the data; written to results.json."""

    task: str
    family: str
    media: Mapping[str, Mapping[str, Any]]
    generation: Generation
    judge: Mapping[str, Any] | None = None
    image_budget: tuple[int, int] = (0, 0)
    limit: int | None = None
    segment_seconds: float | None = None  # numbered video segments the tools cut (Video-CoM)
    extra: Mapping[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- data
def select_rows(rows: Sequence[Mapping[str, Any]], task: Task, limit: int | None) -> tuple[list[dict], dict]:
    """The task's rows in dataset order (at most `limit`), and what was left out and why."""
    from mmreason.schema import media_parts

    picked, other = [], {}
    for row in rows:
        kinds = {k for k, _ in media_parts(row)}
        if row["task"] in task.row_tasks and all(k in kinds for k in task.needs):
            picked.append(dict(row))
        else:
            other[row["task"]] = other.get(row["task"], 0) + 1
    if not picked:
        needs = f" with {list(task.needs)} media" if task.needs else ""
        raise SchemaError(f"no rows for this task: it takes task values {list(task.row_tasks)}{needs}; "
                          f"the dataset has {other}", field="task")
    counts = {"rows": len(rows), "matching": len(picked), "other_tasks": other}
    return (picked[:limit] if limit else picked), counts


def load_dataset_rows(data: str | Path) -> list[dict]:
    """Canonical rows with media paths made absolute (relative ones are relative to the dataset root)."""
    from mmreason.schema import dataset_root, load_rows, resolve_media

    root = dataset_root(data)
    return [resolve_media(r, root) for r in load_rows(data)]


def fingerprint(data: str | Path, ids: Sequence[str]) -> dict:
    """SHA-256 of the dataset's row files (names and bytes, media excluded) and of the selected ids."""
    path = Path(data)
    files = sorted(path.glob("*.parquet")) or sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return {"path": str(path.resolve()), "files": [f.name for f in files], "sha256": digest.hexdigest(),
            "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}


# ------------------------------------------------------------------------------------------ model
def model_dir(spec: str) -> str:
    """A checkpoint directory, or ``tiny:<family>`` (built once, offline, where training builds it)."""
    from mmreason.models import resolve_checkpoint

    try:
        return str(resolve_checkpoint(spec))
    except RecipeError as exc:
        raise RecipeError(f"--model: {exc}") from None


def model_record(path: str, family: str) -> dict:
    config = Path(path) / "config.json"
    digest = hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else None
    return {"path": str(Path(path).resolve()), "family": family, "config_sha256": digest}


def generate(model: Any, processor: Any, prompts: Sequence[Mapping[str, Any]], task: Task, setup: Setup,
             *, progress: bool = True) -> list[dict]:
    """Greedy rollouts in batches; per prompt its output, stop reason, tool calls and image frames."""
    from mmreason.modalities.collate import frame_columns
    from mmreason.rollout import RolloutConfig, rollout
    from mmreason.tools import ToolSettings

    g = setup.generation
    turns = g.max_turns if task.tools or task.call_syntax != "tool_call" else 1
    # room for what tools return: a picture costs at most the pixel budget in merged patches
    picture_tokens = setup.image_budget[1] // get_family(setup.family).factor ** 2 + 64
    config = RolloutConfig(tools=tuple(task.tools), max_turns=turns, max_new_tokens=g.max_new_tokens,
                           max_completion_tokens=(g.max_new_tokens + picture_tokens) * turns,
                           do_sample=g.do_sample, seed=g.seed, call_syntax=task.call_syntax)
    settings = ToolSettings(coord_frame=task.tool_frame, segment_seconds=setup.segment_seconds)
    out: list[dict] = []
    for start in range(0, len(prompts), g.batch_size):
        batch = prompts[start:start + g.batch_size]
        trajs = rollout(model, processor, batch, setup.family, config=config, media_options=setup.media,
                        tool_settings=settings)
        for t, frames in zip(trajs, frame_columns([t.frames for t in trajs])):
            out.append({"id": t.sample_id, "output": t.completion, "stop_reason": t.stop_reason,
                        "num_tool_calls": t.num_tool_calls, "image_frames": frames})
        if progress:
            print(f"  generated {len(out)}/{len(prompts)}", file=sys.stderr, flush=True)
    return out


# ---------------------------------------------------------------------------------------- scoring
def bound_metrics(task: Task, setup: Setup) -> dict[str, Any]:
    """Each metric bound with its task options plus the options the harness fills in (`AUTO_OPTIONS`)."""
    from mmreason.rewards import bind_reward, resolve_reward, reward_options

    auto = {"family": setup.family, "min_pixels": setup.image_budget[0], "max_pixels": setup.image_budget[1],
            "judge": dict(setup.judge) if setup.judge else None}
    out = {}
    for name, metric in task.metrics.items():
        fn = resolve_reward(metric.fn)
        known = reward_options(fn)
        options = {k: v for k, v in auto.items() if k in known and k not in metric.options and v is not None}
        out[name] = bind_reward(fn, **options, **metric.options)
    return out


def score(task: Task, setup: Setup, rows: Sequence[Mapping[str, Any]], outputs: Sequence[Mapping[str, Any]],
          prompts: Mapping[str, str] | None = None) -> list[dict]:
    """Per-sample records: the prompt text, the output, the parsed answer, boxes in original pixels (first
    image, the family's frame), and every metric. Each output is parsed once: the metrics read the parsed
    traces from the ``traces`` column, as rewards do in training."""
    from mmreason.geometry import ImageFrame, box_from_model
    from mmreason.rewards._common import TRACES, columns_of

    by_id = {r["id"]: r for r in rows}
    rollout_columns = ("image_frames", "num_tool_calls", "stop_reason")
    joined = [{**by_id[o["id"]], **{k: o[k] for k in rollout_columns if k in o}} for o in outputs]
    completions = [o["output"] for o in outputs]
    parsed = [traces.parse(c) for c in completions]
    columns = {**columns_of(joined), TRACES: parsed}
    values = {name: fn(completions, **columns) for name, fn in bound_metrics(task, setup).items()}
    records = []
    for i, (o, row, trace) in enumerate(zip(outputs, joined, parsed)):
        frames = row.get("image_frames") or []
        boxes = []
        if frames:
            f = frames[0]
            frame = ImageFrame(f["width"], f["height"], f["resized_width"], f["resized_height"])
            boxes = [[round(v, 1) for v in box_from_model(b.box, setup.family, frame)] for b in trace.boxes]
        records.append({
            "id": o["id"], "task": row["task"], "prompt": (prompts or {}).get(o["id"]), "output": o["output"],
            "answer": traces.extract_answer(o["output"]), "gt": row.get("answer"),
            "scores": {name: values[name][i] for name in values}, "boxes_pixel": boxes,
            "stop_reason": o.get("stop_reason"), "num_tool_calls": o.get("num_tool_calls"),
            "image_frames": frames, "issues": list(trace.issues[:5]),
        })
    return records


def prompt_texts(prompts: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The text of each prompt's last user turn, as sent (what samples.jsonl records)."""
    from mmreason.schema import text_of

    return {p["id"]: text_of([m for m in p["messages"] if m["role"] == "user"][-1]) for p in prompts}


# ---------------------------------------------------------------------------------------- writing
SETTINGS_FILE = "settings.json"  # the command line of the run that owns the folder, written first
OUTPUTS = ("results.json", "samples.jsonl")  # results.json, written last, marks a finished run
_NOT_SETTINGS = ("out", "quiet", "overwrite")


def run_settings(args: argparse.Namespace) -> dict:
    """What decides a run's results: its command line, paths made absolute, minus where it writes."""
    out = {}
    for key, value in sorted(vars(args).items()):
        if key in ("data", "predictions") or (key == "model" and value and Path(value).exists()):
            value = None if value is None else str(Path(value).resolve())
        if key not in _NOT_SETTINGS:
            out[key] = value
    return out


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a reader sees the old file or the whole new one, never a part


def claim_out(out: Path, settings: Mapping[str, Any], *, overwrite: bool = False) -> None:
    """Make `out` this run's before any work: a folder holding a run with other settings is refused (or,
    with `overwrite`, replaced); the previous results are removed, so an interrupted run leaves no
    results.json, and `settings.json` records what this run is."""
    record = out / SETTINGS_FILE
    held = [name for name in OUTPUTS if (out / name).exists()]
    try:
        old = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    except ValueError:
        old = {}
    if not overwrite and (held or old is not None) and old != dict(settings):
        if not isinstance(old, dict) or not old:
            what = f"{', '.join(held)} of a run whose settings it does not record"
        else:
            diffs = [f"--{k.replace('_', '-')} {old.get(k)!r} (now {settings.get(k)!r})"
                     for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
            what = "a run with other settings: " + ", ".join(diffs)
        raise RecipeError(f"--out {out} holds {what}. Pass another --out, or --overwrite to replace it")
    if held and old == dict(settings):
        print(f"mmreason eval: replacing the results of the same run in {out}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
    _atomic_write(record, json.dumps(dict(settings), indent=2, ensure_ascii=False) + "\n")


def write_outputs(out: Path, results: dict, records: Sequence[Mapping[str, Any]]) -> None:
    """samples.jsonl, then results.json: each written whole (atomic rename), the finished mark last."""
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "samples.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    _atomic_write(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")


def print_table(results: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    model = results["model"].get("spec") or results["model"]["family"]
    table = Table(title=results["task"], title_justify="left")
    for col in ("metric", "score", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, m in results["metrics"].items():
        table.add_row(name, "-" if m["mean"] is None else f"{m['mean']:.4f}", str(m["n"]))
    console = Console()
    header = f"{results['samples']} samples of {results['dataset']['path']}, model {model}"
    console.print(header, markup=False, highlight=False)
    console.print(table)


def results_record(task_name: str, setup: Setup, model: dict | None, data: dict, metrics: dict, n: int,
                   counts: dict, seconds: float) -> dict:
    task = get_task(task_name)
    return {
        "task": task_name, "description": task.description, "reference": task.reference,
        "metrics": metrics, "headline": next(iter(metrics)), "samples": n,
        "prompt": rendered_prompt(task), "media": {k: dict(v) for k, v in setup.media.items()},
        "image_budget": {"min_pixels": setup.image_budget[0], "max_pixels": setup.image_budget[1]},
        "generation": asdict(setup.generation), "judge": _public_judge(setup.judge),
        "segment_seconds": setup.segment_seconds,
        "metric_specs": {k: {"fn": m.fn, "options": dict(m.options)} for k, m in task.metrics.items()},
        "model": model, "dataset": {**data, **counts}, "mmreason_version": __version__,
        "seconds": round(seconds, 1), **dict(setup.extra),
    }


def _public_judge(judge: Mapping[str, Any] | None) -> dict | None:
    return None if judge is None else {k: v for k, v in judge.items() if k != "api_key_env"}


# ------------------------------------------------------------------------------------------- runs
def segment_seconds(rows: Sequence[Mapping[str, Any]], given: float | None) -> float | None:
    """The segment length video tools use: `given`, else the one the rows' ``meta.segments`` (``[[k, start,
    end], ...]``, as the video builder writes them) agree on, else None (segments undefined)."""
    if given is not None:
        return given
    lengths = set()
    for row in rows:
        segments = (row.get("meta") or {}).get("segments") or []
        if segments and len(segments[0]) == 3:
            lengths.add(round(float(segments[0][2]) - float(segments[0][1]), 6))
    if len(lengths) > 1:
        raise RecipeError(f"the rows' video segments differ in length ({sorted(lengths)} s): "
                          "pass --segment-seconds")
    return lengths.pop() if lengths else None


def checkpoint_image_budget(path: str | Path) -> dict[str, int]:
    """The image pixel budget saved with a checkpoint's processor, as far as it records one ({} if none).

    Transformers writes it as ``min_pixels``/``max_pixels`` or as ``size: {shortest_edge, longest_edge}``
    (pixel counts for the Qwen-VL processors), in ``preprocessor_config.json`` or under ``image_processor``
    in ``processor_config.json``.
    """
    for name, section in (("preprocessor_config.json", None), ("processor_config.json", "image_processor")):
        try:
            config = json.loads((Path(path) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        config = config.get(section) if section and isinstance(config, dict) else config
        if not isinstance(config, dict):
            continue
        size = config.get("size") if isinstance(config.get("size"), dict) else {}
        out = {}
        for key, edge in (("min_pixels", "shortest_edge"), ("max_pixels", "longest_edge")):
            value = config.get(key, size.get(key, size.get(edge)))
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                out[key] = int(value)
        if out:
            return out
    return {}


def make_setup(task: Task, task_name: str, family: str, args: argparse.Namespace,
               rows: Sequence[Mapping[str, Any]] = (), checkpoint: Mapping[str, int] | None = None) -> Setup:
    """The run's settings. Image budget, per key: the user's flag, else the task's pin, else `checkpoint`
    (the budget the model's processor was saved with: a tiny model's is 256 tokens, where the family's
    released default would feed it 16k), else the family's."""
    from mmreason.modalities.image import image_budget

    media = {k: dict(v) for k, v in task.media.items()}
    for key in ("min_pixels", "max_pixels"):
        if getattr(args, key) is not None:
            media.setdefault("image", {})[key] = getattr(args, key)
    saved = {k: v for k, v in (checkpoint or {}).items() if k not in media.get("image", {})}
    if saved:
        image = media.setdefault("image", {})
        image.update(saved)
        if image.get("min_pixels", 0) > image.get("max_pixels", float("inf")):  # the given bound wins
            del image[next(iter(saved))]
    if args.fps is not None:
        media.setdefault("video", {}).pop("nframes", None)
        media["video"]["fps"] = args.fps
    judge = json.loads(args.judge) if args.judge else None
    gen = Generation(max_new_tokens=args.max_new_tokens or task.max_new_tokens,
                     max_turns=args.max_turns or task.max_turns, batch_size=args.batch_size, seed=args.seed)
    try:
        budget = image_budget(None, family, media.get("image"))
    except ValueError as exc:
        raise RecipeError(f"pixel budget: {exc}") from None
    return Setup(task_name, family, media, gen, judge, budget, args.limit,
                 segment_seconds(rows, args.segment_seconds) if task.call_syntax == "video_com" else None)


def evaluate(args: argparse.Namespace) -> dict:
    """Generate and score (the CLI without printing); returns the results record."""
    from mmreason.models import detect_family, load

    start = time.perf_counter()
    task = get_task(args.task)
    rows, counts = select_rows(load_dataset_rows(args.data), task, args.limit)
    path = model_dir(args.model)
    family = detect_family(path)
    setup = make_setup(task, args.task, family, args, rows, checkpoint_image_budget(path))
    prompts = [{"id": r["id"], "messages": prompt_messages(r, task, family, setup.media)} for r in rows]
    claim_out(Path(args.out), run_settings(args), overwrite=getattr(args, "overwrite", False))
    model, processor = load({"path": path, "dtype": args.dtype, "device": args.device})
    model.eval()
    outputs = generate(model, processor, prompts, task, setup, progress=not args.quiet)
    records = score(task, setup, rows, outputs, prompt_texts(prompts))
    metrics = summarize([r["scores"] for r in records], list(task.metrics))
    data = fingerprint(args.data, [r["id"] for r in rows])
    model_info = {**model_record(path, family), "spec": args.model}
    results = results_record(args.task, setup, model_info, data, metrics, len(records), counts,
                             time.perf_counter() - start)
    write_outputs(Path(args.out), results, records)
    return results


def read_predictions(path: Path) -> list[dict]:
    """``{"id", "output", ...}`` per line; a bad line is a SchemaError naming the file and line."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SchemaError(f"invalid JSON: {exc.msg}", row=f"{path} line {n}") from None
            if not (isinstance(rec, dict) and all(isinstance(rec.get(k), str) for k in ("id", "output"))):
                raise SchemaError("expected an object with string 'id' and 'output'", row=f"{path} line {n}")
            out.append(rec)
    return out


def _prediction_family(args: argparse.Namespace, predictions: Path) -> str:
    if args.family:
        get_family(args.family)
        return args.family
    if args.model:
        from mmreason.models import detect_family

        return detect_family(model_dir(args.model))
    saved = predictions.parent / "results.json"
    if saved.is_file():
        family = (json.loads(saved.read_text(encoding="utf-8")).get("model") or {}).get("family")
        if family:
            return family
    raise RecipeError("re-scoring needs the family whose coordinate frame the outputs use: pass --family "
                      "(or --model, or keep results.json next to the predictions)")


def rescore(args: argparse.Namespace) -> dict:
    """Score saved outputs against the dataset: no model, same metrics; writes to --out as `evaluate` does."""
    start = time.perf_counter()
    task = get_task(args.task)
    predictions = Path(args.predictions)
    preds = read_predictions(predictions)
    rows, counts = select_rows(load_dataset_rows(args.data), task, None)
    by_id = {r["id"]: r for r in rows}
    missing = [p["id"] for p in preds if p["id"] not in by_id]
    if missing:
        raise SchemaError(f"{predictions}: {len(missing)} prediction id(s) are not rows of this task in "
                          f"{args.data}, e.g. {missing[0]!r}", row=missing[0], field="id")
    if args.limit:
        preds = preds[:args.limit]
    family = _prediction_family(args, predictions)
    setup = make_setup(task, args.task, family, args,
                       checkpoint=checkpoint_image_budget(model_dir(args.model)) if args.model else None)
    setup = replace(setup, extra={"rescored_from": str(predictions.resolve())})
    claim_out(Path(args.out), run_settings(args), overwrite=getattr(args, "overwrite", False))
    chosen = [by_id[p["id"]] for p in preds]
    for p, row in zip(preds, chosen):
        if not p.get("image_frames"):
            p["image_frames"] = _image_frames(row, setup)
    prompts = [{"id": r["id"], "messages": prompt_messages(r, task, family, setup.media)} for r in chosen]
    records = score(task, setup, chosen, preds, prompt_texts(prompts))
    metrics = summarize([r["scores"] for r in records], list(task.metrics))
    data = fingerprint(args.data, [p["id"] for p in preds])
    results = results_record(args.task, setup, {"family": family, "spec": args.model}, data, metrics,
                             len(records), counts, time.perf_counter() - start)
    write_outputs(Path(args.out), results, records)
    return results


def _image_frames(row: Mapping[str, Any], setup: Setup) -> list[dict]:
    """Frames of a row's images when the predictions did not record them: each image's size, resized by
    the family's rule at the evaluation's pixel budget (the part's own budget first)."""
    from mmreason.geometry import ImageFrame
    from mmreason.eval.tasks import part_budget
    from mmreason.modalities.image import open_image
    from mmreason.schema import IMAGE_TYPES

    out = []
    for m in row["messages"]:
        for part in m["content"]:
            if part["type"] in IMAGE_TYPES:
                image, _ = open_image(part[part["type"]], sample_id=row["id"])
                lo, hi = part_budget(part, setup.family, setup.media, sample_id=row["id"])
                f = ImageFrame.for_family(image.width, image.height, setup.family, min_pixels=lo,
                                          max_pixels=hi)
                out.append({"width": f.width, "height": f.height, "resized_width": f.resized_width,
                            "resized_height": f.resized_height})
    return out


def parser() -> argparse.ArgumentParser:
    from mmreason.eval.tasks import TASKS

    p = argparse.ArgumentParser(prog="mmreason eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True, choices=sorted(TASKS), help="benchmark task (tasks.TASKS)")
    p.add_argument("--data", required=True, help="canonical dataset folder or file")
    p.add_argument("--model", help="checkpoint directory, or tiny:<family>")
    p.add_argument("--predictions", help="re-score this samples.jsonl instead of generating")
    p.add_argument("--family", help="with --predictions: the family whose coordinate frame the outputs use")
    p.add_argument("--limit", type=int, help="score the first N rows of the task")
    p.add_argument("--out", help="output folder (default outputs/eval/<task>)")
    p.add_argument("--batch-size", type=int, default=4, help="prompts generated together (default 4)")
    p.add_argument("--max-new-tokens", type=int, help="tokens per turn (default: the task's)")
    p.add_argument("--max-turns", type=int, help="turns for tool tasks (default: the task's)")
    p.add_argument("--min-pixels", type=int, help="image pixel floor (default: the task's, else the checkpoint processor's, else "
                   "the family's)")
    p.add_argument("--max-pixels", type=int, help="image pixel ceiling (default: the task's, else the checkpoint processor's, "
                   "else the family's)")
    p.add_argument("--fps", type=float, help="video sampling rate (default: the task's)")
    p.add_argument("--segment-seconds", type=float,
                   help="video_com: length of the numbered segments (default: from the rows' meta.segments)")
    p.add_argument("--judge", help='LLM judge for accuracy metrics, JSON: {"base_url": ..., "model": ...}')
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    p.add_argument("--device", help="e.g. cuda, cpu, auto (default: where loading puts it)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--overwrite", action="store_true",
                   help="replace what --out holds even when it is a run with other settings")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.model and not args.predictions:
        print("mmreason eval: give --model to generate, or --predictions to re-score", file=sys.stderr)
        return 2
    for name in ("limit", "batch_size", "max_new_tokens", "max_turns", "min_pixels", "max_pixels"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"mmreason eval: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    if args.judge:
        try:
            json.loads(args.judge)
        except ValueError as exc:
            print(f"mmreason eval: --judge is not JSON: {exc}", file=sys.stderr)
            return 2
    args.out = args.out or str(Path("outputs") / "eval" / args.task)
    try:
        results = rescore(args) if args.predictions else evaluate(args)
    except FileNotFoundError as exc:  # no dataset or predictions there: a usage error, not a crash
        print(f"mmreason eval: {exc}", file=sys.stderr)
        return 2
    print_table(results)
    print(f"wrote {Path(args.out) / 'results.json'} and {Path(args.out) / 'samples.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
