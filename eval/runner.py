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
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from mmreason import __version__, traces
from mmreason.errors import RecipeError, SchemaError
from mmreason.families import get_family
from mmreason.eval.benchmarks import ALL_TASKS, find_task
from mmreason.eval.metrics import breakdown, derive, summarize
from mmreason.eval.records import append_records, claim_out, read_records, write_outputs
from mmreason.eval.tasks import Task, prompt_messages, rendered_prompt

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
    coord_frame: str | None = None  # --coord-frame: the reading of the outputs' coordinates, pinned
    readings: tuple[str, ...] = ()  # other readings scored beside the declared one (`coordinate_readings`)


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


def fingerprint(data: str | Path, ids: Sequence[str], files: Sequence[Path] | None = None) -> dict:
    """SHA-256 of the dataset's row files (names and bytes, media excluded; a benchmark's annotation
    `files` when given) and of the selected ids."""
    path = Path(data)
    if files is None:
        files = sorted(path.glob("*.parquet")) or sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return {"path": str(path.resolve()), "files": [f.name for f in files], "sha256": digest.hexdigest(),
            "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}


def task_rows(task: Task, data: str | Path, cache: Path) -> tuple[list[dict], list[Path] | None]:
    """A task's candidate rows: a benchmark release read through its layout (pictures a release embeds
    are decoded into `cache`), else a canonical dataset; with the files a benchmark's rows came from."""
    if task.layout is None:
        return load_dataset_rows(data), None
    from mmreason.eval.layouts import load_layout

    loaded = load_layout(task.layout, data, cache)
    return loaded.rows, loaded.files


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
             *, progress: bool = True, on_batch: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Greedy rollouts in batches; per prompt its output, stop reason, tool calls and image frames.
    `on_batch` gets each batch's outputs as soon as they exist (the runner scores and records them)."""
    from tqdm.auto import tqdm

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
    bar = tqdm(total=len(prompts), desc=setup.task, unit="sample", disable=not progress, file=sys.stderr)
    for start in range(0, len(prompts), g.batch_size):
        batch = prompts[start:start + g.batch_size]
        trajs = rollout(model, processor, batch, setup.family, config=config, media_options=setup.media,
                        tool_settings=settings)
        done = [{"id": t.sample_id, "output": t.completion, "stop_reason": t.stop_reason,
                 "num_tool_calls": t.num_tool_calls, "image_frames": frames}
                for t, frames in zip(trajs, frame_columns([t.frames for t in trajs]))]
        if on_batch is not None:
            on_batch(done)
        out += done
        bar.update(len(batch))
    bar.close()
    return out


# ---------------------------------------------------------------------------------------- scoring
# The two readings of a Qwen-VL model's coordinates: relative 0-1000 (Qwen2-VL, Qwen3-VL) and absolute
# pixels of the resized input (Qwen2.5-VL). A checkpoint fine-tuned from one family on data written in the
# other's frame (UI-TARS-1.5, OS-Atlas...) writes the other, so unless --coord-frame pins the reading, the
# coordinate metrics are scored in both and results.json says which won (lmms-eval's refcoco_grounding
# scores both readings too).
OTHER_READING = {"norm1000": "resized", "resized": "norm1000"}


def coordinate_metrics(task: Task) -> list[str]:
    """The task's metrics that read coordinates in a frame the harness chooses (the function takes
    ``coord_frame`` and the task does not pin it)."""
    from mmreason.rewards import resolve_reward, reward_options

    return [name for name, m in task.metrics.items()
            if "coord_frame" not in m.options and "coord_frame" in reward_options(resolve_reward(m.fn))]


def declared_frame(setup: Setup) -> str:
    """The reading the headline scores use: --coord-frame, else the family's output frame."""
    return setup.coord_frame or get_family(setup.family).box_frame


def coordinate_readings(task: Task, family: str, pinned: str | None) -> tuple[str, ...]:
    """The readings scored beside the declared one: none when --coord-frame pins it or the task reads no
    coordinates, else the other Qwen-VL frame."""
    other = OTHER_READING.get(get_family(family).box_frame)
    return () if pinned or other is None or not coordinate_metrics(task) else (other,)


def bound_metrics(task: Task, setup: Setup, frame: str | None = None) -> dict[str, Any]:
    """Each metric bound with its task options plus the options the harness fills in (`AUTO_OPTIONS`, and
    --coord-frame for coordinate metrics). With `frame`, only the coordinate metrics, reading in `frame`."""
    from mmreason.rewards import bind_reward, resolve_reward, reward_options

    auto = {"family": setup.family, "min_pixels": setup.image_budget[0], "max_pixels": setup.image_budget[1],
            "judge": dict(setup.judge) if setup.judge else None, "coord_frame": frame or setup.coord_frame}
    wanted = coordinate_metrics(task) if frame else list(task.metrics)
    out = {}
    for name in wanted:
        metric = task.metrics[name]
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
    readings = {frame: {name: fn(completions, **columns) for name, fn in bound_metrics(task, setup, frame).items()}
                for frame in setup.readings}
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
            **({"readings": {f: {n: v[i] for n, v in scored.items()} for f, scored in readings.items()}}
               if readings else {}),
        })
    return records


def prompt_texts(prompts: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The text of each prompt's last user turn, as sent (what samples.jsonl records)."""
    from mmreason.schema import text_of

    return {p["id"]: text_of([m for m in p["messages"] if m["role"] == "user"][-1]) for p in prompts}


# ---------------------------------------------------------------------------------------- writing
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


def print_table(results: Mapping[str, Any]) -> None:
    """The scores, the method papers' reported numbers beside them, then each breakdown."""
    from rich.console import Console
    from rich.table import Table

    model = results["model"].get("spec") or results["model"]["family"]
    paper = results.get("paper") or {}
    table = Table(title=results["task"], title_justify="left")
    for col in ("metric", "score", "n", *paper):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, m in results["metrics"].items():
        reported = [paper[src].get(name) for src in paper]
        table.add_row(name, _cell(m["mean"]), str(m["n"]), *(_cell(v) for v in reported))
    console = Console()
    header = f"{results['samples']} samples of {results['dataset']['path']}, model {model}"
    if results.get("resumed"):
        header += f" ({results['resumed']} read back from an interrupted run)"
    console.print(header, markup=False, highlight=False)
    console.print(table)
    readings = results.get("coord_readings")
    if readings:
        by, declared, won = readings["by"], readings["declared"], readings["won"]
        cells = "; ".join(f"as {f}{' (declared)' if f == declared else ''}: {by} {_cell(m[by]['mean'])}"
                          for f, m in readings["scored"].items())
        advice = "" if won == declared else f" (pass --coord-frame {won} to score in it)"
        console.print(f"coordinates read {cells} -> {won} won{advice}", markup=False, highlight=False,
                      soft_wrap=True)
    headline = results.get("headline")
    for key, groups in (results.get("breakdown") or {}).items():
        cells = ", ".join(f"{g} {_cell(v.get(headline, {}).get('mean'))} (n={v.get(headline, {}).get('n', 0)})"
                          for g, v in groups.items())
        console.print(f"  {headline} by {key}: {cells}", markup=False, highlight=False)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def summary_of(task: Task, records: Sequence[Mapping[str, Any]], metas: Sequence[Mapping[str, Any]],
               setup: Setup | None = None) -> dict:
    """Metric means (and derived numbers) over the records, the same by each breakdown key, and the
    coordinate readings compared (`readings_summary`)."""
    scores = [r["scores"] for r in records]
    metrics = summarize(scores, list(task.metrics))
    metrics.update(derive(metrics, task.derived))
    return {"metrics": metrics,
            "breakdown": breakdown(scores, metas, task.breakdown, list(task.metrics), task.derived),
            "coord_readings": readings_summary(task, setup, metrics, records) if setup else None}


def readings_summary(task: Task, setup: Setup, metrics: Mapping[str, Mapping[str, Any]],
                     records: Sequence[Mapping[str, Any]]) -> dict | None:
    """Each coordinate reading's metric means, and the one that won on the first coordinate metric (a tie
    keeps the declared reading); None when only one reading was scored."""
    if not setup.readings:
        return None
    names = coordinate_metrics(task)
    declared = declared_frame(setup)
    scored = {declared: {n: dict(metrics[n]) for n in names}}
    for frame in setup.readings:
        scored[frame] = summarize([(r.get("readings") or {}).get(frame, {}) for r in records], names)
    by = names[0]
    won = max(scored, key=lambda f: (scored[f][by]["mean"] or 0.0, f == declared))
    return {"declared": declared, "scored": scored, "by": by, "won": won}


def results_record(task_name: str, setup: Setup, model: dict | None, data: dict, summary: dict, n: int,
                   counts: dict, seconds: float, resumed: int = 0) -> dict:
    task = find_task(task_name)
    metrics = summary["metrics"]
    return {
        "task": task_name, "description": task.description, "reference": task.reference,
        "metrics": metrics, "headline": next(iter(metrics)), "samples": n,
        "breakdown": summary["breakdown"], "paper": {k: dict(v) for k, v in task.paper.items()},
        "coord_readings": summary.get("coord_readings"),
        "layout": None if task.layout is None else {"loader": task.layout.loader,
                                                     "options": _plain(task.layout.options)},
        "prompt": rendered_prompt(task), "media": {k: dict(v) for k, v in setup.media.items()},
        "image_budget": {"min_pixels": setup.image_budget[0], "max_pixels": setup.image_budget[1]},
        "generation": asdict(setup.generation), "judge": _public_judge(setup.judge),
        "segment_seconds": setup.segment_seconds,
        "metric_specs": {k: {"fn": m.fn, "options": dict(m.options)} for k, m in task.metrics.items()},
        "model": model, "dataset": {**data, **counts}, "mmreason_version": __version__,
        "seconds": round(seconds, 1), "resumed": resumed, **dict(setup.extra),
    }


def _plain(value: Any) -> Any:
    """Mappings and tuples of a layout's options as JSON values."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


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


def checkpoint_image_budget(path: str | Path, kind: str = "image") -> dict[str, int]:
    """The pixel budget saved with a checkpoint's processor for `kind` ("image", or "video": per frame), as
    far as it records one ({} if none).

    Transformers writes it as ``min_pixels``/``max_pixels`` or as ``size: {shortest_edge, longest_edge}``
    (pixel counts for the Qwen-VL processors), in ``preprocessor_config.json`` (``video_preprocessor_
    config.json``) or under ``image_processor`` (``video_processor``) in ``processor_config.json``.
    """
    own = "preprocessor_config.json" if kind == "image" else f"{kind}_preprocessor_config.json"
    for name, section in ((own, None), ("processor_config.json", f"{kind}_processor")):
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


def checkpoint_budgets(path: str | Path) -> dict[str, dict[str, int]]:
    """The image and video budgets a checkpoint's processor was saved with (`checkpoint_image_budget`)."""
    return {kind: checkpoint_image_budget(path, kind) for kind in ("image", "video")}


def _fill_saved(media: dict, kind: str, saved: Mapping[str, int]) -> None:
    """Add the saved budget keys `media[kind]` does not pin; a saved bound that would cross a given one is
    left out (the given bound wins)."""
    extra = {k: v for k, v in saved.items() if k not in media.get(kind, {})}
    if extra:
        part = media.setdefault(kind, {})
        part.update(extra)
        if part.get("min_pixels", 0) > part.get("max_pixels", float("inf")):
            del part[next(iter(extra))]


def make_setup(task: Task, task_name: str, family: str, args: argparse.Namespace,
               rows: Sequence[Mapping[str, Any]] = (),
               checkpoint: Mapping[str, Mapping[str, int]] | None = None) -> Setup:
    """The run's settings. Image budget, per key: the user's flag, else the task's pin, else `checkpoint`
    (the budget the model's processor was saved with: a tiny model's is 256 tokens, where the family's
    released default would feed it 16k), else the family's. Video frames (when the rows hold videos): the
    task's pin, else the checkpoint's saved video budget, else the family's."""
    from mmreason.modalities.image import image_budget
    from mmreason.schema import media_parts

    media = {k: dict(v) for k, v in task.media.items()}
    for key in ("min_pixels", "max_pixels"):
        if getattr(args, key) is not None:
            media.setdefault("image", {})[key] = getattr(args, key)
    saved = checkpoint or {}
    _fill_saved(media, "image", saved.get("image") or {})
    if any(kind == "video" for row in rows for kind, _ in media_parts(row)):
        _fill_saved(media, "video", saved.get("video") or {})
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
    pinned = getattr(args, "coord_frame", None)
    return Setup(task_name, family, media, gen, judge, budget, args.limit,
                 segment_seconds(rows, args.segment_seconds) if task.call_syntax == "video_com" else None,
                 coord_frame=pinned, readings=coordinate_readings(task, family, pinned))


class LoadedModel:
    """The checkpoint of a run: its path and family at once, the weights on first use (a resumed run with
    nothing left to generate never loads them), shared by every task of the run."""

    def __init__(self, args: argparse.Namespace):
        from mmreason.models import detect_family

        self.spec, self.dtype, self.device = args.model, args.dtype, args.device
        self.path = model_dir(args.model)
        self.family = detect_family(self.path)
        self.budgets = checkpoint_budgets(self.path)
        self._loaded: tuple[Any, Any] | None = None

    def get(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from mmreason.models import load

            model, processor = load({"path": self.path, "dtype": self.dtype, "device": self.device})
            model.eval()
            self._loaded = (model, processor)
        return self._loaded

    def record(self) -> dict:
        return {**model_record(self.path, self.family), "spec": self.spec}

    def check_task(self, task: Task, name: str) -> None:
        """A checkpoint runs every task (tool tasks with their tools)."""

    def generate(self, prompts: Sequence[Mapping[str, Any]], task: Task, setup: Setup, *, progress: bool = True,
                 on_batch: Callable[[list[dict]], None] | None = None) -> list[dict]:
        return generate(*self.get(), prompts, task, setup, progress=progress, on_batch=on_batch)


def open_model(args: argparse.Namespace) -> Any:
    """The run's model: an OpenAI-compatible ``--endpoint`` serving ``--model`` (`endpoint.EndpointModel`),
    else the checkpoint ``--model`` (`LoadedModel`)."""
    if getattr(args, "endpoint", None):
        from mmreason.eval.endpoint import EndpointModel

        return EndpointModel(args.endpoint, args.model, args.family, api_key_env=args.api_key_env)
    return LoadedModel(args)


def evaluate(args: argparse.Namespace, model: LoadedModel | None = None) -> dict:
    """Generate and score ``args.task`` into ``args.out`` (the CLI without printing), continuing an
    interrupted run of the same settings there; returns the results record."""
    start = time.perf_counter()
    name, out = args.task, Path(args.out)
    task = find_task(name)
    model = model or open_model(args)
    model.check_task(task, name)
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
    task = find_task(args.task)
    predictions = Path(args.predictions)
    preds = read_predictions(predictions)
    candidates, files = task_rows(task, args.data, Path(args.out))
    rows, counts = select_rows(candidates, task, None)
    by_id = {r["id"]: r for r in rows}
    missing = [p["id"] for p in preds if p["id"] not in by_id]
    if missing:
        raise SchemaError(f"{predictions}: {len(missing)} prediction id(s) are not rows of this task in "
                          f"{args.data}, e.g. {missing[0]!r}", row=missing[0], field="id")
    if args.limit:
        preds = preds[:args.limit]
    family = _prediction_family(args, predictions)
    chosen = [by_id[p["id"]] for p in preds]
    setup = make_setup(task, args.task, family, args, chosen,
                       checkpoint=checkpoint_budgets(model_dir(args.model)) if args.model else None)
    setup = replace(setup, extra={"rescored_from": str(predictions.resolve())})
    claim_out(Path(args.out), run_settings(args), overwrite=getattr(args, "overwrite", False))
    for p, row in zip(preds, chosen):
        if not p.get("image_frames"):
            p["image_frames"] = _image_frames(row, setup)
    prompts = [{"id": r["id"], "messages": prompt_messages(r, task, family, setup.media)} for r in chosen]
    records = score(task, setup, chosen, preds, prompt_texts(prompts))
    summary = summary_of(task, records, [r.get("meta") or {} for r in chosen], setup)
    data = fingerprint(args.data, [p["id"] for p in preds], files)
    results = results_record(args.task, setup, {"family": family, "spec": args.model}, data, summary,
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
