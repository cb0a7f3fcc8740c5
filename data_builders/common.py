"""The machinery every builder shares: chunked, resumable, shardable writing of canonical rows + media.

A builder supplies ``make_sample(ctx) -> row | None`` (a module-level function, so worker processes can
import it) and calls `build_dataset`. Output layout (one folder, loadable with
``mmreason.schema.load_rows(out)`` or ``datasets.load_dataset(out)``)::

    out/build.json                      builder, n, seed, chunk size, options (a resume must match)
    out/part-000000000-000000064.parquet one file per chunk; names sort in sample order
    out/chunks/part-....json            the chunk's manifest: ids, media, stats, timings (written last)
    out/media/000000/<id>-<what>.png    media, 1000 samples a folder, paths in rows relative to out/
    out/README.md, out/preview.png      dataset card with statistics and a ground-truth preview
    out/manifest.json                   which chunks exist, rows, build status

Guarantees: sample j depends only on (seed, j) (`sharding.sample_rng`); a chunk's media are written
before its Parquet file, the Parquet file atomically before its manifest, so after a kill a restart
redoes exactly the chunks without a manifest (their half-written media are overwritten, never
referenced); ``--shard i/k`` builds every k-th chunk, so k runs into one folder (or k folders copied
together) equal one run, file for file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from mmreason import schema
from mmreason.data_builders import card
from mmreason.data_builders.sharding import chunk_name, chunk_ranges, media_dir, parse_shard, sample_id, \
    sample_rng, shard_chunk_size, shard_chunks

FORMAT_VERSION = 1
DEFAULT_CHUNK_SIZE = 64

# ------------------------------------------------------------------------------------ phase timing
_TIMES: Counter = Counter()


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the wall time of the block to this process's `name` total ("render", "encode", "write", ...)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        _TIMES[name] += time.perf_counter() - t0


# --------------------------------------------------------------------------------------- media I/O
def atomic_target(path: Path) -> Path:
    """A temporary sibling with the same suffix (encoders pick the format from it); `os.replace` it after."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def save_image(image, target: tuple[Path, str], *, compress_level: int = 3) -> str:
    """Encode a PIL image to `target` = (absolute path, relative path); returns the relative path."""
    path, rel = target
    with phase("encode"):
        tmp = atomic_target(path)
        fmt = "PNG" if path.suffix.lower() == ".png" else None
        image.save(tmp, format=fmt, compress_level=compress_level) if fmt else image.save(tmp, quality=92)
        os.replace(tmp, path)
    return rel


def save_wav(samples: np.ndarray, sample_rate: int, target: tuple[Path, str]) -> str:
    """16-bit PCM WAV via soundfile; returns the relative path."""
    import soundfile as sf

    path, rel = target
    with phase("encode"):
        tmp = atomic_target(path)
        sf.write(str(tmp), np.asarray(samples, dtype=np.float32), sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    return rel


# ------------------------------------------------------------------------------------ sample context
@dataclass
class SampleContext:
    """What `make_sample` gets: its index, id, private generator, options, and where media go."""

    name: str
    index: int
    seed: int
    root: Path
    options: dict
    rng: np.random.Generator
    counters: Counter = field(default_factory=Counter)

    @property
    def id(self) -> str:
        return sample_id(self.name, self.index)

    def media(self, what: str, ext: str) -> tuple[Path, str]:
        """(absolute path, dataset-relative path) for this sample's media file `what`.`ext`."""
        rel = f"{media_dir(self.index)}/{self.id}-{what}.{ext}"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, rel

    def count(self, key: str, n: int = 1) -> None:
        """Bump a builder-specific counter; totals appear in the dataset card (e.g. kept/rejected)."""
        self.counters[key] += n


# -------------------------------------------------------------------------------------- chunk work
@dataclass(frozen=True)
class _Job:
    name: str
    make_sample: Callable[[SampleContext], dict | None]
    root: str
    seed: int
    options: dict
    start: int
    end: int


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """One progress bar per build is enough: hide `datasets`' per-file bars while writing a chunk."""
    from datasets.utils import logging as ds_logging

    was = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            ds_logging.enable_progress_bar()


_TMP_OWNER = re.compile(r"\.(.+?-\d{9,})-")


def _remove_leftovers(root: Path, job: _Job) -> None:
    """Half-written files a killed run of this chunk left behind (only this chunk's: shards share folders)."""
    (root / f"{chunk_name(job.start, job.end)}.parquet.tmp").unlink(missing_ok=True)
    ids = {sample_id(job.name, j) for j in range(job.start, job.end)}
    for folder in {root / media_dir(j) for j in range(job.start, job.end)}:
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp*"):  # atomic_target names: .<id>-<what>.tmp<pid><ext>
                m = _TMP_OWNER.match(tmp.name)
                if m and m.group(1) in ids:
                    tmp.unlink(missing_ok=True)


def _run_chunk(job: _Job) -> dict:
    """Build one chunk end to end (media, Parquet, manifest); runs in the parent or a worker process."""
    import datasets  # noqa: F401  (imported before the clock starts: its import is not "write" time)

    _TIMES.clear()
    t0 = time.perf_counter()
    root = Path(job.root)
    _remove_leftovers(root, job)
    rows, skipped, counters = [], [], Counter()
    with phase("sample"):
        for j in range(job.start, job.end):
            ctx = SampleContext(job.name, j, job.seed, root, job.options, sample_rng(job.seed, j), counters)
            row = job.make_sample(ctx)
            if row is None:
                skipped.append(j)
                continue
            rows.append(schema.validate(row, index=ctx.id))
    stem = chunk_name(job.start, job.end)
    with phase("write"), _quiet_datasets():
        if rows:
            schema.write_parquet(rows, root, shard_name=f"{stem}.parquet")
    stats = card.chunk_stats(rows, root)
    stats["counters"] = dict(counters)
    times = dict(_TIMES)
    times["total"] = time.perf_counter() - t0
    entry = {"chunk": stem, "start": job.start, "end": job.end, "rows": len(rows), "skipped": skipped,
             "ids": [r["id"] for r in rows], "media": sorted({p for r in rows for _, p in schema.media_parts(r)}),
             "stats": stats, "timings": times}
    _write_json(root / "chunks" / f"{stem}.json", entry)
    return entry


def chunk_done(root: Path, start: int, end: int) -> bool:
    """A chunk is finished iff its manifest exists (it is written after the Parquet file) and, unless it
    holds no rows, its Parquet file is there too."""
    stem = chunk_name(start, end)
    man = root / "chunks" / f"{stem}.json"
    if not man.exists():
        return False
    try:
        rows = json.loads(man.read_text(encoding="utf-8"))["rows"]
    except (ValueError, KeyError):
        return False
    return rows == 0 or (root / f"{stem}.parquet").exists()


def _settings(name: str, n: int, seed: int, chunk_size: int, options: dict) -> dict:
    return {"builder": name, "n": int(n), "seed": int(seed), "chunk_size": int(chunk_size),
            "options": json.loads(json.dumps(options, sort_keys=True)), "format": FORMAT_VERSION}


def _claim_settings(root: Path, settings: dict) -> None:
    """Record the build's settings, or check a resumed/sibling-shard run uses the same ones."""
    path = root / "build.json"
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = sorted(k for k in settings if old.get(k) != settings[k])
        if diff:
            detail = "; ".join(f"{k}: {old.get(k)!r} here, {settings[k]!r} requested" for k in diff)
            raise ValueError(f"{path}: this folder holds a build with other settings ({detail}); "
                             "use a new --out folder or the same settings to resume")
        return
    _write_json(path, settings)


_SOURCE: dict[str, Any] = {}


def source_rows(src: str) -> list:
    """The rows of the canonical dataset `src` that a builder rewrites, loaded once per process however many
    chunks that process builds (the last path asked for is kept)."""
    if _SOURCE.get("path") != src:
        _SOURCE.clear()
        _SOURCE.update(path=src, rows=schema.load_rows(src))
    return _SOURCE["rows"]


def merge_options(builder: str, defaults: dict, options: dict) -> dict:
    """`defaults` updated by `options`; a ValueError naming `builder` and every known option when an option
    name is not one of the defaults (a misspelled ``--set`` is an error, never silently ignored).

    >>> merge_options("demo", {"n": 1, "src": None}, {"src": "x"})
    {'n': 1, 'src': 'x'}
    >>> merge_options("demo", {"n": 1}, {"nn": 2})
    Traceback (most recent call last):
    ValueError: demo: unknown option(s) ['nn']; known: n
    """
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"{builder}: unknown option(s) {unknown}; known: {', '.join(sorted(defaults))}")
    return {**defaults, **options}


def check_options(builder: str, opts: dict, qtypes: Any, traces: Any = None) -> None:
    """ValueError naming `builder` unless ``opts["qtypes"]`` is a non-empty selection of `qtypes` and (when
    `traces` is given) ``opts["trace"]`` is one of `traces`.

    >>> check_options("demo", {"qtypes": ["a", "z"]}, {"a": 1, "b": 2})
    Traceback (most recent call last):
    ValueError: demo: unknown or empty qtypes ['z']; known: a, b
    """
    unknown = sorted(set(opts["qtypes"]) - set(qtypes))
    if unknown or not opts["qtypes"]:
        raise ValueError(f"{builder}: unknown or empty qtypes {unknown}; known: {', '.join(sorted(qtypes))}")
    if traces is not None and opts["trace"] not in traces:
        raise ValueError(f"{builder}: trace must be one of {traces}, got {opts['trace']!r}")


def die_with_parent(parent: int) -> None:
    """Make this (worker) process end when `parent` does. A SIGKILLed build otherwise leaves its workers,
    re-parented to init, writing chunks for nobody (alive 26 minutes later). Linux: the kernel sends
    SIGKILL at the parent's death (prctl PR_SET_PDEATHSIG); elsewhere a thread polls the parent pid."""
    if sys.platform.startswith("linux"):
        import ctypes

        if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) != 0:  # 1: PR_SET_PDEATHSIG
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="die-with-parent").start()
    if os.getppid() != parent:  # the parent died before the watch was set up
        os._exit(1)


def build_dataset(
    out_dir: str | Path, *, name: str, make_sample: Callable[[SampleContext], dict | None], n: int, seed: int = 0,
    shard: tuple[int, int] | str = (0, 1), options: dict | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int = 1, progress: bool = True, preview: Callable | None = None,
) -> Path:
    """Build (or resume) shard `shard` of an `n`-sample dataset into `out_dir`; returns `out_dir`.

    `preview(row, root) -> PIL.Image` draws one sample's ground truth for the card (default:
    `card.default_preview`). `workers > 1` builds chunks in that many processes.
    """
    from tqdm.auto import tqdm

    root = Path(out_dir)
    (root / "chunks").mkdir(parents=True, exist_ok=True)
    shard = parse_shard(shard)
    if shard[1] > 1 and shard[0] >= n:
        raise ValueError(f"shard {shard[0]}/{shard[1]} of {n} samples holds none: use at most {n} shards")
    options = dict(options or {})
    chunk_size = shard_chunk_size(n, chunk_size, shard[1])
    _claim_settings(root, _settings(name, n, seed, chunk_size, options))
    todo = [(s, e) for s, e in shard_chunks(n, chunk_size, shard) if not chunk_done(root, s, e)]
    total = sum(e - s for s, e in shard_chunks(n, chunk_size, shard))
    jobs = [_Job(name, make_sample, str(root), seed, options, s, e) for s, e in todo]
    bar = tqdm(total=total, initial=total - sum(e - s for s, e in todo), unit="sample",
               desc=f"{name} {shard[0]}/{shard[1]}", disable=not progress)
    with bar:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                bar.update(_run_chunk(job)["end"] - job.start)
        else:
            # spawn: builders may hold non-fork-safe state (encoders, thread pools) in the parent
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                     initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                for fut in as_completed([pool.submit(_run_chunk, job) for job in jobs]):
                    entry = fut.result()
                    bar.update(entry["end"] - entry["start"])
    finalize(root, preview=preview)
    return root


def finalize(out_dir: str | Path, *, preview: Callable | None = None) -> dict:
    """Write manifest.json, README.md and preview.png from the chunks present; returns the manifest.

    Safe to call from any shard at any time: it describes whatever is finished and says what is missing.
    """
    root = Path(out_dir)
    settings = json.loads((root / "build.json").read_text(encoding="utf-8"))
    entries = []
    for s, e in chunk_ranges(settings["n"], settings["chunk_size"]):
        if chunk_done(root, s, e):
            entries.append(json.loads((root / "chunks" / f"{chunk_name(s, e)}.json").read_text(encoding="utf-8")))
    n_chunks = len(chunk_ranges(settings["n"], settings["chunk_size"]))
    done = {en["chunk"] for en in entries}
    manifest = {**settings, "chunks_total": n_chunks, "chunks_done": len(entries),
                "complete": len(entries) == n_chunks, "rows": sum(en["rows"] for en in entries),
                "skipped": sum(len(en["skipped"]) for en in entries),
                "files": [f"{en['chunk']}.parquet" for en in entries if en["rows"]],
                "missing": [chunk_name(s, e) for s, e in chunk_ranges(settings["n"], settings["chunk_size"])
                            if chunk_name(s, e) not in done]}
    card.write_card(root, manifest, entries, preview=preview)
    _write_json(root / "manifest.json", manifest)
    return manifest


def load(out_dir: str | Path):
    """The built dataset as canonical rows (`mmreason.schema.load_rows`), in sample order."""
    return schema.load_rows(out_dir)
