"""Run logs: JSONL and TensorBoard always, Weights & Biases when installed and asked for; a progress bar.

Every logged step is one JSON line ``{"step": 3, "loss": ..., "reward/accuracy": ...}`` in
``<output_dir>/metrics.jsonl``; the same scalars go to ``<output_dir>/tensorboard`` and, with ``wandb`` in the
recipe's ``report_to``, to wandb. What the policy wrote goes, when a trainer logs it
(`RunLogger.log_samples`), to ``<output_dir>/completions.jsonl``: ``{"step": 3, "samples":
[{"prompt_id", "completion", ...}]}`` per logged step. Only the main process writes (``enabled=False``
elsewhere).

On resume, lines logged after the checkpoint's step are dropped first (from both files): a run killed at
step 7 after a checkpoint at step 4 re-logs steps 5-7, and the files then read exactly like an
uninterrupted run.

>>> import tempfile, json, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with RunLogger(d, report_to=("jsonl",), tensorboard=False) as log:
...     record = log.log(1, {"loss": 0.5})
>>> read_jsonl(d / "metrics.jsonl")
[{'step': 1, 'loss': 0.5}]
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

log = logging.getLogger("mmreason.train")

METRICS_FILE = "metrics.jsonl"
COMPLETIONS_FILE = "completions.jsonl"


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records of a metrics file (a torn last line, from a kill mid-write, is ignored)."""
    out = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _scalar(value: Any) -> float | int | None:
    """A JSON-safe number (tensors and numpy scalars included); None for anything else or non-finite."""
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def truncate_after(path: str | os.PathLike, step: int) -> int:
    """Keep only records with ``step <= step`` (atomically); returns how many were dropped."""
    path = Path(path)
    if not path.exists():
        return 0
    records = read_jsonl(path)
    kept = [r for r in records if isinstance(r.get("step"), int) and r["step"] <= step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    os.replace(tmp, path)
    return len(records) - len(kept)


class RunLogger:
    """Scalar metrics of a run; use as a context manager (or call `close`)."""

    def __init__(self, output_dir: str | os.PathLike, *, report_to: Sequence[str] = ("jsonl",),
                 run_name: str | None = None, config: Mapping[str, Any] | None = None, enabled: bool = True,
                 resume_step: int | None = None, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(output_dir) / METRICS_FILE
        self.samples_path = Path(output_dir) / COMPLETIONS_FILE
        self._tb = None
        self._wandb = None
        self._samples = None  # opened on the first `log_samples`: runs that log none leave no file
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for path in (self.path, self.samples_path):
            _restart(path, resume_step)
        self._file = self.path.open("a", encoding="utf-8")
        if tensorboard:
            self._tb = _tensorboard(Path(output_dir) / "tensorboard", resume_step)
        if "wandb" in report_to:
            self._wandb = _wandb(run_name, config, Path(output_dir))

    def log(self, step: int, metrics: Mapping[str, Any]) -> dict:
        """Write one record; non-numeric and non-finite values are left out. Returns the record."""
        record: dict[str, Any] = {"step": int(step)}
        for key, value in metrics.items():
            number = _scalar(value)
            if number is not None:
                record[key] = number
        if not self.enabled:
            return record
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()  # a SIGKILL must not lose logged steps
        if self._tb is not None:
            for key, value in record.items():
                if key != "step":
                    self._tb.add_scalar(key, value, global_step=step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if k != "step"}, step=step)
        return record

    def log_samples(self, step: int, samples: Sequence[Mapping[str, Any]]) -> dict:
        """Write ``{"step", "samples"}`` to completions.jsonl (numbers as `log` keeps them, texts as they
        are). Returns the record."""
        record = {"step": int(step), "samples": [_json_safe(s) for s in samples]}
        if not self.enabled:
            return record
        if self._samples is None:
            self._samples = self.samples_path.open("a", encoding="utf-8")
        self._samples.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._samples.flush()
        return record

    def close(self) -> None:
        if not self.enabled:
            return
        self._file.close()
        if self._samples is not None:
            self._samples.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()

    def __enter__(self) -> "RunLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _restart(path: Path, resume_step: int | None) -> None:
    """A resumed run drops the records after its checkpoint's step; a fresh one in an old output_dir
    starts the file over."""
    if resume_step is not None:
        dropped = truncate_after(path, resume_step)
        if dropped:
            log.info("dropped %d lines of %s logged after step %d (the checkpoint resumed from)",
                     dropped, path.name, resume_step)
    elif path.exists():
        path.unlink()


def _json_safe(value: Any) -> Any:
    """Texts as they are, numbers as `_scalar` keeps them (None for the rest), through dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value if value is None or isinstance(value, str) else _scalar(value)


def _tensorboard(log_dir: Path, resume_step: int | None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is in the `train` extra; the JSONL file still has everything
        log.warning("tensorboard is not installed (pip install 'mmreason[train]'); logging to JSONL only")
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # purge_step drops events after the checkpoint, as the JSONL truncation does
        return SummaryWriter(str(log_dir), purge_step=None if resume_step is None else resume_step + 1)


def _wandb(run_name: str | None, config: Mapping[str, Any] | None, output_dir: Path):
    try:
        import wandb
    except ImportError:
        log.warning("report_to has 'wandb' but wandb is not installed (pip install wandb); skipping it")
        return None
    return wandb.init(name=run_name, config=dict(config or {}), dir=str(output_dir), resume="allow")


# ------------------------------------------------------------------------------------------ progress
class Progress:
    """A rich progress bar over optimizer steps showing the latest loss and reward (main process only)."""

    def __init__(self, total: int, *, start: int = 0, enabled: bool = True, description: str = "train"):
        self._bar = None
        if not enabled:
            return
        from rich import progress as rp

        self._bar = rp.Progress(rp.TextColumn("[bold]{task.description}"), rp.BarColumn(),
                                rp.MofNCompleteColumn(), rp.TimeElapsedColumn(), rp.TimeRemainingColumn(),
                                rp.TextColumn("{task.fields[info]}"))
        self._task = self._bar.add_task(description, total=total, completed=start, info="")
        self._bar.start()

    def update(self, step: int, metrics: Mapping[str, Any], keys: Sequence[str] = ("loss", "reward")) -> None:
        if self._bar is None:
            return
        info = "  ".join(f"{k} {metrics[k]:.4g}" for k in keys if _scalar(metrics.get(k)) is not None)
        self._bar.update(self._task, completed=step, info=info)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
