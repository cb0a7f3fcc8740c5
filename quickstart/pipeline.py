"""`mmreason quickstart`: teach a tiny Qwen2.5-VL to box the *named* shape, with the toolkit's own verbs.

Each stage is the `mmreason` command a user would type, run as its own process (its command, time and
peak memory go into the report):

1. ``build image_scenes --set preset=quickstart``: a train split (seed 0) and a held-out split (seed 1)
   of 112-px scenes with 1-4 shapes, "Where is the red circle?" -> ``{"bbox_2d": [...]}``;
2. ``tiny-model --size base``: the random model of the base's architecture (the "random" row);
3. ``train quickstart/qwen2_5_vl_sft``: SFT from the project's pretrained tiny base (``base:qwen2_5_vl``);
4. ``train quickstart/qwen2_5_vl_grpo``: GRPO from the SFT checkpoint, rewarded by `referring_iou`;
5. ``eval --task refer`` on the held-out split for the random model, the base, after SFT, after GRPO;
6. `mmreason.quickstart.report`: ``report.md`` with tables and plots, recomputed from the saved samples.

A finished stage leaves its output behind and is reused by the next run (``--fresh`` starts over).
``--smoke`` shrinks every stage to seconds (the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mmreason.quickstart import BASE, FAMILY, GRPO_RECIPE, SFT_RECIPE


@dataclass(frozen=True)
class Stage:
    name: str
    argv: tuple[str, ...]  # after `mmreason`
    done: Path  # exists once the stage has finished

    @property
    def command(self) -> str:
        return "mmreason " + shlex.join(self.argv)


@dataclass(frozen=True)
class Settings:
    out: Path
    n_train: int = 2000
    n_heldout: int = 240
    seed: int = 0  # seeds SFT and GRPO; the data splits stay fixed so runs compare on the same scenes
    sft: tuple[str, ...] = ()  # extra recipe overrides
    grpo: tuple[str, ...] = ()
    eval_batch: int = 48


SMOKE = dict(n_train=16, n_heldout=8, sft=("sft.max_steps=2", "sft.batch_size=4"),
             grpo=("grpo.max_steps=1", "grpo.num_generations=2", "grpo.batch_size=2"), eval_batch=8)


def stages(s: Settings) -> list[Stage]:
    """The pipeline as `mmreason` commands, in order."""
    out, data = s.out, s.out / "data"
    build = ("build", "image_scenes", "--set", "preset=quickstart")
    models = {"random": out / "models" / "random", "base": BASE, "sft": out / "sft" / "final",
              "grpo": out / "grpo" / "final"}

    def evaluate(name: str) -> Stage:
        return Stage(f"eval_{name}", ("eval", "--task", "refer", "--data", str(data / "heldout"), "--model",
                                      str(models[name]), "--out", str(out / "eval" / name), "--batch-size",
                                      str(s.eval_batch), "--quiet"), out / "eval" / name / "results.json")

    train_data = f"data.train=[{data / 'train'}]"
    return [
        Stage("build_train", (*build[:2], "--out", str(data / "train"), "--n", str(s.n_train), "--seed", "0",
                              *build[2:]), data / "train" / "manifest.json"),
        Stage("build_heldout", (*build[:2], "--out", str(data / "heldout"), "--n", str(s.n_heldout), "--seed",
                                "1", *build[2:]), data / "heldout" / "manifest.json"),
        Stage("random_model", ("tiny-model", "--family", FAMILY, "--size", "base", "--out", str(models["random"])),
              models["random"] / "mmreason_tiny.json"),
        evaluate("random"),
        evaluate("base"),
        Stage("sft", ("train", SFT_RECIPE, f"output_dir={out / 'sft'}", train_data, f"seed={s.seed}", *s.sft),
              out / "sft" / "final" / "config.json"),
        evaluate("sft"),
        Stage("grpo", ("train", GRPO_RECIPE, f"output_dir={out / 'grpo'}", f"model.path={models['sft']}",
                       train_data, f"seed={s.seed}", *s.grpo), out / "grpo" / "final" / "config.json"),
        evaluate("grpo"),
    ]


def stage_env() -> dict[str, str]:
    """The stages' environment: one math thread unless the user chose otherwise. A 2M-parameter model's
    matrices are too small to split; measured on 2 cores, SFT ran 0.35 s/step on one thread and over
    3 s/step with the default thread count while another process shared the cores."""
    import os

    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_stage(stage: Stage, log_dir: Path) -> dict:
    """Run one stage as ``python -m mmreason ...``; its output streams to the terminal and to its log.
    Returns the wall time and the peak resident memory of the process tree."""
    import psutil

    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{stage.name}.log"
    start, peak = time.perf_counter(), 0
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mmreason", *stage.argv], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=stage_env())
        watched = psutil.Process(proc.pid)
        while True:
            chunk = proc.stdout.read1(4096) if proc.stdout else b""
            if chunk:
                log.write(chunk)
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            try:
                tree = [watched, *watched.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            if not chunk and proc.poll() is not None:
                break
    if proc.returncode != 0:
        raise SystemExit(f"quickstart: stage {stage.name} failed (exit {proc.returncode}); its output is in "
                         f"{log_path}; command: {stage.command}")
    return {"seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(peak / 2 ** 20)}


def check_recipes(s: Settings) -> None:
    """Both recipes load with the user's overrides, before any stage spends time (a typo in ``--sft`` must
    not surface after the data and three evaluations)."""
    from mmreason.config import load_recipe
    from mmreason.errors import RecipeError
    from mmreason.recipes import find_recipe

    for name, overrides in ((SFT_RECIPE, s.sft), (GRPO_RECIPE, s.grpo)):
        try:
            load_recipe(find_recipe(name), [f"output_dir={s.out / 'check'}", *overrides])
        except RecipeError as exc:
            raise SystemExit(f"quickstart: {exc}") from None


def run(s: Settings, *, fresh: bool = False) -> Path:
    """Run (or reuse) every stage, then write the report; returns the report's path."""
    from mmreason.quickstart.report import write_report

    record_path = s.out / "stages.json"
    if fresh and s.out.exists():
        import shutil

        shutil.rmtree(s.out)
    s.out.mkdir(parents=True, exist_ok=True)
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    settings = {"n_train": s.n_train, "n_heldout": s.n_heldout, "seed": s.seed, "sft": list(s.sft),
                "grpo": list(s.grpo)}
    changed = {k: (v, settings[k]) for k, v in record.get("settings", {}).items() if settings.get(k) != v}
    if changed and record.get("stages"):
        what = "; ".join(f"{k}: {old} there, {new} now" for k, (old, new) in changed.items())
        raise SystemExit(f"quickstart: {s.out} holds a run with other settings ({what}); pass --out to a new "
                         f"folder, or --fresh to start this one over")
    check_recipes(s)
    record["settings"] = settings
    plan = stages(s)
    for i, stage in enumerate(plan, 1):
        entry = record.setdefault("stages", {}).get(stage.name)
        if stage.done.exists() and entry is not None:
            print(f"[quickstart {i}/{len(plan)}] {stage.name}: done already ({entry['seconds']} s), reused",
                  flush=True)
            continue
        print(f"\n[quickstart {i}/{len(plan)}] {stage.name}: {stage.command}", flush=True)
        result = run_stage(stage, s.out / "logs")
        if not stage.done.exists():
            raise SystemExit(f"quickstart: stage {stage.name} exited 0 but left no {stage.done}")
        record["stages"][stage.name] = {"command": stage.command, **result}
        record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    report = write_report(s.out, record)
    print(f"\nreport: {report}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mmreason quickstart", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("outputs/quickstart"), help="where every stage writes")
    p.add_argument("--seed", type=int, default=0, help="seed of SFT and GRPO (the data splits stay fixed)")
    p.add_argument("--n-train", type=int, default=Settings.n_train, help="training scenes")
    p.add_argument("--n-heldout", type=int, default=Settings.n_heldout, help="held-out scenes")
    p.add_argument("--sft", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of the SFT recipe")
    p.add_argument("--grpo", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of the GRPO recipe")
    p.add_argument("--smoke", action="store_true", help="every stage at a few samples and steps (seconds)")
    p.add_argument("--fresh", action="store_true", help="delete --out first instead of reusing finished stages")
    args = p.parse_args(argv)
    if args.n_train < 1 or args.n_heldout < 1:
        p.error("--n-train and --n-heldout must be >= 1")
    s = Settings(args.out, args.n_train, args.n_heldout, args.seed, tuple(args.sft), tuple(args.grpo))
    if args.smoke:
        s = Settings(args.out, seed=args.seed, **{**SMOKE, "sft": SMOKE["sft"] + s.sft, "grpo": SMOKE["grpo"] + s.grpo})
    run(s, fresh=args.fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
