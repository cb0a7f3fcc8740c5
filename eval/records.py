"""An eval run's output folder: claimed before any work, per-sample records appended as they are scored,
and the finished results written whole.

    <out>/settings.json   the command line of the run that owns the folder (`run_settings`; written first)
    <out>/records.jsonl   one scored sample per line, appended after every batch (the resume point)
    <out>/samples.jsonl   every sample, in dataset order, written whole when the run ends
    <out>/results.json    the scores, written last: its presence marks a finished run

A run killed midway leaves settings.json and records.jsonl; the same command again continues from the
records: the samples they hold are neither generated nor scored again. A line cut short by the kill is
dropped (its sample is redone). A finished run's folder is replaced by the same command (results removed
first), and a folder holding a run with other settings is refused unless ``overwrite``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmreason.errors import RecipeError

SETTINGS_FILE = "settings.json"
RECORDS_FILE = "records.jsonl"
OUTPUTS = ("results.json", "samples.jsonl")  # results.json, written last, marks a finished run
_NOT_SETTINGS = ("out", "quiet", "overwrite")


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a reader sees the old file or the whole new one, never a part


def claim_out(out: Path, settings: Mapping[str, Any], *, overwrite: bool = False) -> bool:
    """Make `out` this run's before any work; True when it resumes an interrupted run of the same settings
    (its records are kept), False when it starts afresh (earlier results and records removed)."""
    record = out / SETTINGS_FILE
    held = [name for name in OUTPUTS if (out / name).exists()]
    try:
        old = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    except ValueError:
        old = {}
    partial = (out / RECORDS_FILE).is_file()
    if not overwrite and (held or old is not None or partial) and old != dict(settings):
        if not isinstance(old, dict) or not old:
            what = f"{', '.join(held) or RECORDS_FILE} of a run whose settings it does not record"
        else:
            diffs = [f"--{k.replace('_', '-')} {old.get(k)!r} (now {settings.get(k)!r})"
                     for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
            what = "a run with other settings: " + ", ".join(diffs)
        raise RecipeError(f"--out {out} holds {what}. Pass another --out, or --overwrite to replace it")
    resume = partial and not held and old == dict(settings)
    if held and old == dict(settings):
        print(f"mmreason eval: replacing the results of the same run in {out}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS if resume else (*OUTPUTS, RECORDS_FILE):
        (out / name).unlink(missing_ok=True)
    atomic_write(record, json.dumps(dict(settings), indent=2, ensure_ascii=False) + "\n")
    return resume


def read_records(out: Path, wanted: Sequence[str]) -> dict[str, dict]:
    """The scored records of an interrupted run, by id, for the ids still `wanted` (first record wins).
    A line that does not parse (the one a kill cut short) is dropped, so its sample is redone."""
    path = out / RECORDS_FILE
    keep = set(wanted)
    found: dict[str, dict] = {}
    if not path.is_file():
        return found
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("id") in keep and rec["id"] not in found:
                found[rec["id"]] = rec
    return found


def append_records(out: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Append scored records and push them to disk before the next batch starts."""
    with open(out / RECORDS_FILE, "a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        fh.flush()
        os.fsync(fh.fileno())


def write_outputs(out: Path, results: dict, records: Sequence[Mapping[str, Any]]) -> None:
    """samples.jsonl, then results.json: each written whole (atomic rename), the finished mark last; the
    resume records are removed once both are there."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "samples.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    atomic_write(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (out / RECORDS_FILE).unlink(missing_ok=True)


def run_settings(args: argparse.Namespace) -> dict:
    """What decides a run's results: its command line, paths made absolute, minus where it writes."""
    out = {}
    for key, value in sorted(vars(args).items()):
        if key in ("data", "predictions") or (key == "model" and value and Path(value).exists()):
            value = None if value is None else str(Path(value).resolve())
        if key not in _NOT_SETTINGS:
            out[key] = value
    return out


__all__ = ["claim_out", "read_records", "append_records", "write_outputs", "atomic_write", "run_settings",
           "SETTINGS_FILE", "RECORDS_FILE", "OUTPUTS"]
