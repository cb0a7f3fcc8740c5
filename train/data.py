"""Datasets from a recipe's `data` section, and the collator's media options from its `model` and `data`.

`load_data` reads every dataset of ``data.train`` (or ``data.eval``): canonical folders, the formats users
already have (converted on the fly), and ``builder:name?n=..`` specs (built once into output_dir/data),
with media paths made absolute and each prompt wrapped in the recipe's method prompt. A builder's folder is
built by one process while the other processes of a launch wait for it (`build_once`).

>>> media_options(load_recipe_dict({"model": {"max_pixels": 50176}}))["image"]
{'max_pixels': 50176}
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from mmreason.config import Recipe, load_recipe_dict, parse_data_source  # noqa: F401 (doctest)
from mmreason.errors import RecipeError

log = logging.getLogger("mmreason.train")


def media_options(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """The collator's per-type defaults from the recipe (pixel budgets, video sampling)."""
    m, v = recipe.model, recipe.data.video
    image = {k: val for k, val in (("min_pixels", m.min_pixels), ("max_pixels", m.max_pixels))
             if val is not None}
    video = {"fps": v.fps} if v.nframes is None else {"nframes": v.nframes}
    if v.max_pixels is not None:
        video["max_pixels"] = v.max_pixels
    return {"image": image, "video": video}


@dataclass(frozen=True)
class Rows:
    """Canonical rows of every dataset in a recipe's `data.train` (or `data.eval`), media paths absolute,
    so rows from datasets with different roots can share a batch."""

    rows: tuple[dict, ...]
    sources: tuple[str, ...]  # the data spec each row came from

    def __len__(self) -> int:
        return len(self.rows)


def _dataset_dir(spec: str, output_dir: Path, accelerator: Any) -> Path:
    ds = parse_data_source(spec)
    if ds.builder is None:
        return Path(spec).expanduser()
    slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", spec[len("builder:"):])
    out = output_dir / "data" / slug
    options = dict(ds.options)
    n = options.pop("n", None)
    if not isinstance(n, int) or n < 1:
        raise RecipeError(f"data: {spec!r}: a builder needs n=<number of samples>, "
                          f"e.g. builder:{ds.builder}?n=64")
    seed = options.pop("seed", 0)
    # Every process of a launch comes here (SFT's before its Trainer has set up the process group): the first
    # to take the lock builds, the others find the build finished. Each machine of a multi-node launch that
    # does not share output_dir builds its own copy.
    build_once(spec, out, ds.builder, n=n, seed=seed, options=options)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return out


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `lock` (created if missing); other processes wait for it. The
    kernel drops it when the holder dies, so a killed build never leaves the others waiting."""
    import fcntl

    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_finished(out: Path, n: int, seed: int) -> bool:
    """True when `out` holds a complete build of `n` samples from `seed` (its manifest says so)."""
    import json

    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("complete") is True and manifest.get("n") == n and manifest.get("seed") == seed


def build_once(spec: str, out: Path, builder: str, *, n: int, seed: int, options: dict) -> bool:
    """Build `spec` into `out` unless a finished build is there; returns True when this call built.

    Every process of a launch (and every run sharing an output_dir) may ask for the same folder at once:
    two builders writing one folder remove each other's half-written files and rewrite its manifest while
    the other reads it. A lock file beside the folder lets one process build; the others wait for it (no
    timeout: a large build may take longer than a collective's) and then read the finished folder without
    touching it."""
    from mmreason.data_builders import get_builder

    out.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(out.with_name(out.name + ".lock")):
        if build_finished(out, n, seed):
            log.info("data: %s is built in %s", spec, out)
            return False
        log.info("data: building %s into %s", spec, out)
        # builders resume: chunks a killed run finished are kept
        get_builder(builder)(out, n=n, seed=seed, progress=False, **options)
        return True


def _read(path: Path, fmt: str, media_dir: Path) -> list[dict]:
    """Canonical rows with absolute media paths; other formats are converted (media they carry in memory,
    bytes or images, are written under `media_dir`, never into the dataset's own folder)."""
    from mmreason.schema import dataset_root, load_rows, resolve_media

    root = dataset_root(path)
    if fmt == "canonical":
        rows = list(load_rows(path))
    else:
        from mmreason.schema.readers import read_rows

        raw = _raw_rows(path)
        rows = list(read_rows(raw, fmt, media_dir=media_dir, root=root, id_prefix=f"{path.stem}-"))
    return [resolve_media(r, root) for r in rows]


def _raw_rows(path: Path) -> list[dict]:
    import datasets

    files = sorted(path.glob("*.parquet")) + sorted(path.glob("*.jsonl")) + sorted(path.glob("*.json")) \
        if path.is_dir() else [path]
    if not files:
        raise RecipeError(f"data: {path}: no .parquet, .jsonl or .json files")
    kind = "parquet" if files[0].suffix == ".parquet" else "json"
    return list(datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train"))


def with_prompt(recipe: Recipe, rows: list[dict]) -> list[dict]:
    """Rows wrapped in the recipe's method prompt (`mmreason.prompts`), tools declared in the system turn:
    each row's own tool set where ``tools.column`` picks one (`mmreason.train.tool_sets`)."""
    from mmreason.prompts import apply_prompt, prompt_style
    from mmreason.train.tool_sets import row_tools

    d = recipe.data
    style = prompt_style(d.prompt, system=d.system_prompt, prefix=d.prompt_prefix, suffix=d.prompt_suffix)
    if style == prompt_style("none"):
        return rows
    declares = bool(style.system and "{tools}" in style.system)
    texts: dict[tuple[str, ...], str] = {(): ""}

    def declared(names: tuple[str, ...]) -> str:
        if names not in texts:
            from mmreason.tools import tools_prompt

            texts[names] = tools_prompt(list(names))
        return texts[names]

    out, undeclared = [], []
    for r in rows:
        names = row_tools(recipe.tools, r) if declares else ()
        if declares and not names and _calls_a_tool(r):
            undeclared.append(r.get("id"))
        out.append(apply_prompt(r, style, tools_text=declared(names) if declares else ""))
    if undeclared:
        # eval tasks and GRPO rollouts declare their tools in the system turn; a row trained without the
        # declaration learns to call tools after a prompt the model will never see again
        log.warning("data.prompt %r declares the tools in the system turn, but no tools are named for %d row(s) "
                    "whose answers call a tool (e.g. sample %r): they train without the declaration that eval and "
                    "GRPO show; name them in the recipe (tools.names=[...])", d.prompt, len(undeclared),
                    undeclared[0])
    return out


def in_model_frame(recipe: Recipe, rows: Rows, saved: Mapping[str, int] | None = None) -> Rows:
    """SFT targets in the coordinates the model writes: builders give every box and point of an answer in
    original pixels (``meta["coord_frame"] == "pixel"``), a Qwen2.5-VL policy answers in pixels of the
    resized picture and Qwen2-VL / Qwen3-VL in 0-1000, so each picture row is rewritten by
    `mmreason.data_builders.frames.render_for_family` at the budget the collator resizes it to (the part's,
    else the recipe's, else `saved`: the checkpoint processor's). Tool calls stay in ``tools.coord_frame``
    when it is "pixel"; rows with a video keep their coordinates (their tools read the frames' pixels)."""
    from mmreason.data_builders.frames import render_for_family

    family = recipe.model.family
    if family is None:
        log.warning("model.family is unknown: SFT targets keep the dataset's coordinates; set model.family")
        return rows
    out = []
    for row in rows.rows:
        parts = [p for msg in row.get("messages") or [] if msg.get("role") == "user"
                 for p in msg.get("content") or []]
        picture = next((p for p in parts if p.get("type") in ("image", "screenshot")), None)
        if picture is None or any(p.get("type") == "video" for p in parts):
            out.append(row)
            continue
        budget = {k: picture.get(k) or getattr(recipe.model, k) or (saved or {}).get(k)
                  for k in ("min_pixels", "max_pixels")}
        out.append(render_for_family(row, family, tool_frame=recipe.tools.coord_frame, **budget))
    return Rows(tuple(out), rows.sources)


def _calls_a_tool(row: dict) -> bool:
    from mmreason.schema import text_of

    return any(m.get("role") == "assistant" and "<tool_call>" in text_of(m) for m in row.get("messages") or [])


def load_data(recipe: Recipe, *, split: str = "train", accelerator: Any = None) -> Rows:
    """Every dataset of ``data.<split>``; builders (``builder:name?n=..``) run first, into output_dir/data."""
    specs = getattr(recipe.data, split)
    if not specs:
        raise RecipeError(f"data.{split} is empty: name at least one dataset (a folder, a file, or "
                          "builder:image_scenes?n=64)")
    rows, sources = [], []
    for spec in specs:
        path = _dataset_dir(spec, Path(recipe.output_dir), accelerator)
        if not path.exists():
            raise RecipeError(f"data.{split}: {spec!r}: {path} does not exist")
        got = _read(path, recipe.data.format, Path(recipe.output_dir) / "data" / f"{path.stem}-media")
        rows.extend(with_prompt(recipe, got))
        sources.extend([spec] * len(got))
    if not rows:
        raise RecipeError(f"data.{split}: the datasets {list(specs)} hold no rows")
    return Rows(tuple(rows), tuple(sources))
