"""Each method's claim, measured at CPU scale: build the method's data, SFT the tiny base in the method's
trace format, run the method's RL stage, evaluate before and after, and write a LEARNING.md section.

    python benchmarks/learning.py --method deepeyes [--seed 0] [--smoke] [--out DIR]

Every stage is the `mmreason` command a user would type (`build`, `train`, `eval`), run as its own process on
one math thread, as `mmreason quickstart` runs them; a finished stage is reused by the next run while its
command and what it reads are unchanged (`run`). The table, the readings and the curves are recomputed from
the saved eval samples and metrics (`learning_report`). The experiments, their recipes and their debug-size
overrides are in `learning_methods`.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from learning_methods import METHODS, Method, Size  # noqa: E402

from mmreason.quickstart.pipeline import Stage, stage_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def stages(method: Method, size: Size, out: Path, seed: int) -> list[Stage]:
    """The experiment as `mmreason` commands, in order."""
    data = out / "data"
    build = [Stage(f"build_{split}", ("build", method.builder, "--out", str(data / split), "--n", str(n), "--seed",
                                      str(builder_seed), "--no-progress",
                                      *[a for o in method.options for a in ("--set", o)]),
                   data / split / "manifest.json")
             for split, n, builder_seed in (("train", size.n_train, 0), ("heldout", size.n_heldout, 1))]
    train_data = f"data.train=[{data / 'train'}]"

    def evaluate(model: str, path: Path) -> list[Stage]:
        return [Stage(f"eval_{model}_{name}", ("eval", "--task", e.task, "--data", str(data / "heldout"), "--model",
                                               str(path), "--out", str(out / "eval" / model / name),
                                               "--batch-size", "8", "--quiet", "--overwrite", *e.args),
                      out / "eval" / model / name / "results.json")
                for name, e in method.evaluations.items()]

    plan = [*build,
            Stage("sft", ("train", method.sft_recipe, f"output_dir={out / 'sft'}", train_data, f"seed={seed}",
                          *method.sft_overrides, *size.sft), out / "sft" / "final" / "config.json"),
            *evaluate("sft", out / "sft" / "final")]
    for arm, extra in method.arms.items():
        plan.append(Stage(arm, ("train", method.rl_recipe, f"output_dir={out / arm}",
                                f"model.path={out / 'sft' / 'final'}", train_data, f"seed={seed}",
                                *method.rl_overrides, *size.rl, *extra), out / arm / "final" / "config.json"))
        plan += evaluate(arm, out / arm / "final")
    return plan


def run_stage(stage: Stage, log_dir: Path) -> dict:
    """One stage as ``python -m mmreason ...``, its output to its log; wall time and peak RSS of the tree."""
    import psutil

    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{stage.name}.log"
    start, peak = time.perf_counter(), 0
    cpu: dict[int, float] = {}  # pid -> CPU seconds last seen: on a shared machine wall time is not comparable
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mmreason", *stage.argv], stdout=log,
                                stderr=subprocess.STDOUT, env=stage_env())
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [watched, *watched.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
                for p in tree:
                    times = p.cpu_times()
                    cpu[p.pid] = times.user + times.system
            except psutil.Error:
                pass
            time.sleep(0.5)
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise SystemExit(f"learning: stage {stage.name} failed (exit {proc.returncode}); command: "
                         f"{stage.command}; log {log_path}, ending:\n{tail}")
    return {"seconds": round(time.perf_counter() - start, 1), "cpu_seconds": round(sum(cpu.values()), 1),
            "peak_rss_mb": round(peak / 2 ** 20)}


def machine() -> str:
    import os

    return f"{os.cpu_count()} CPU cores ({platform.machine()}), no GPU, shared with other jobs"


def run(method: Method, seed: int, smoke: bool, out: Path, markdown: Path, figures: Path) -> Path:
    from learning_report import curves, section, tables, write_section

    size = method.smoke if smoke else method.full
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / "stages.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    settings = {"method": method.name, "seed": seed, "smoke": smoke, "n_train": size.n_train,
                "n_heldout": size.n_heldout, "sft": [*method.sft_overrides, *size.sft],
                "rl": [*method.rl_overrides, *size.rl]}
    record["settings"] = {**settings, "machine": machine()}
    plan = stages(method, size, out, seed)
    # a finished stage is reused when its command is the one recorded and nothing it reads changed: a
    # training stage reads the training split and the stages trained before it; an evaluation (or the
    # held-out split) reads everything before it. So new RL settings rerun RL and the evaluations on the same
    # SFT checkpoint, and a larger held-out split reruns only the evaluations.
    trained_anew = ran_anew = False
    for i, stage in enumerate(plan, 1):
        done = record.setdefault("stages", {}).get(stage.name)
        finished = stage.done.exists() and done is not None and done["command"] == stage.command
        scoring = stage.name.startswith("eval_") or stage.name == "build_heldout"
        if finished and not (ran_anew if scoring else trained_anew):
            print(f"[{method.name} {i}/{len(plan)}] {stage.name}: done already, reused", flush=True)
            continue
        ran_anew = True
        trained_anew = trained_anew or not scoring
        if stage.name.startswith("build_") and stage.done.parent.exists():
            shutil.rmtree(stage.done.parent)  # its split, built with other settings: the builder would refuse
        print(f"[{method.name} {i}/{len(plan)}] {stage.name}: {stage.command}", flush=True)
        result = run_stage(stage, out / "logs")
        if not stage.done.exists():
            raise SystemExit(f"learning: stage {stage.name} exited 0 but left no {stage.done}")
        record.setdefault("stages", {})[stage.name] = {"command": stage.command, **result}
        record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    table = tables(out, method, ["sft", *method.arms])
    (out / "table.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    figure = curves(out, method, figures / f"{method.name}-seed{seed}{'-smoke' if smoke else ''}.png")
    command = "python benchmarks/learning.py " + shlex.join(
        ["--method", method.name, "--seed", str(seed), *(["--smoke"] if smoke else [])])
    text = section(out, method, seed, command, record["settings"], record, table, figure, markdown)
    write_section(markdown, method.name, seed, text)
    print(f"learning: wrote the {method.name} seed {seed} section of {markdown}")
    return markdown


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", required=True, choices=sorted(METHODS))
    p.add_argument("--seed", type=int, default=0, help="seeds SFT and RL (the data splits stay fixed)")
    p.add_argument("--smoke", action="store_true", help="every stage at a few samples and steps")
    p.add_argument("--out", type=Path, help="where the stages write (default outputs/learning/<method>-seed<S>)")
    p.add_argument("--markdown", type=Path, default=ROOT / "benchmarks" / "LEARNING.md",
                   help="the file whose section for this method and seed is written")
    p.add_argument("--figures", type=Path, default=ROOT / "benchmarks" / "learning", help="where the curves go")
    args = p.parse_args(argv)
    out = args.out or Path("outputs/learning") / f"{args.method}-seed{args.seed}{'-smoke' if args.smoke else ''}"
    run(METHODS[args.method], args.seed, args.smoke, out, args.markdown, args.figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
