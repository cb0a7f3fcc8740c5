"""Recipes: one YAML file per run, read into frozen dataclasses with strict checking.

A recipe has fixed sections — `model`, `data`, `rewards`, `tools`, `sft`, `grpo` — plus top-level
`output_dir`, `run_name`, `report_to`, `seed`. Each section is one dataclass below; adding a field is
one line. Unknown keys are errors (with the closest known key suggested), wrong types are errors
naming the key, the expected type and the value. A recipe may `include:` base files (a path relative
to itself, else a shipped recipe's name such as ``debug/base``) that it overrides, and
`section.key=value` overrides from the command line win over both.

>>> r = load_recipe_dict({"grpo": {"lr": "1e-6"}}, overrides=["model.lora.r=8"])
>>> r.grpo.lr, r.model.lora.r, r.model.family
(1e-06, 8, 'qwen2_5_vl')
"""

from __future__ import annotations

import copy
import difflib
import inspect
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl

import yaml

from mmreason.errors import RecipeError
from mmreason.prompts import PROMPTS
from mmreason.families import FAMILIES
from mmreason.registry import resolve_callable, resolve_name
from mmreason.strict import bounded, build, hints, to_plain

TINY_PREFIX = "tiny:"  # tiny:<family>: a random tiny model, built offline on first use
BASE_PREFIX = "base:"  # base:<family>: the project's pretrained tiny base, shipped in models/tiny_base/


Scheduler = Literal[
    "linear", "cosine", "cosine_with_min_lr", "constant", "constant_with_warmup", "polynomial",
    "inverse_sqrt", "warmup_stable_decay",
]


@dataclass(frozen=True)
class LoraConfig:
    enabled: bool = False
    r: int = bounded(16, ge=1)
    alpha: int = bounded(32, ge=1)
    dropout: float = bounded(0.05, ge=0, le=1)
    target_modules: tuple[str, ...] | None = None  # None: the family table's `lora_targets`


@dataclass(frozen=True)
class ModelConfig:
    path: str = "tiny:qwen2_5_vl"  # a local checkpoint, tiny:<family> (offline tiny model) or base:<family>
    family: str | None = None  # inferred from tiny:<family> or the checkpoint's config.json
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2", "flash_attention_3"] = "sdpa"
    lora: LoraConfig = field(default_factory=LoraConfig)
    # Frozen by default: small RL datasets otherwise drift the vision features for little gain.
    freeze_vision: bool = True
    gradient_checkpointing: bool = False
    min_pixels: int | None = bounded(None, ge=1)  # None: the family's processor default
    max_pixels: int | None = bounded(None, ge=1)

    @property
    def tiny_family(self) -> str | None:
        """The family of a `tiny:<family>` or `base:<family>` path, else None."""
        for prefix in (TINY_PREFIX, BASE_PREFIX):
            if self.path.startswith(prefix):
                return self.path[len(prefix):]
        return None


@dataclass(frozen=True)
class VideoConfig:
    fps: float | None = bounded(2.0, gt=0)
    nframes: int | None = bounded(None, ge=1)  # when set, wins over fps
    max_pixels: int | None = bounded(None, ge=1)


PromptName = Literal[tuple(PROMPTS)]  # type: ignore[valid-type]


@dataclass(frozen=True)
class DataConfig:
    train: tuple[str, ...] = ()  # dataset dirs/files, or builder:<name>?n=..&seed=..
    eval: tuple[str, ...] = ()
    format: Literal["canonical", "trl", "llava", "swift", "easyr1", "verl"] = "canonical"
    # None: no cut. Truncating a multimodal prompt can split a vision span, so cutting is opt-in.
    max_prompt_length: int | None = bounded(None, ge=1)
    video: VideoConfig = field(default_factory=VideoConfig)
    on_error: Literal["raise", "skip"] = "raise"
    shuffle: bool = True
    seed: int | None = None  # None: the recipe's seed
    # The method's instruction around each question (mmreason.prompts.PROMPTS); parts may be overridden.
    prompt: PromptName = "none"
    system_prompt: str | None = None  # "{tools}" is replaced by the declarations of tools.names
    prompt_prefix: str | None = None
    prompt_suffix: str | None = None


@dataclass(frozen=True)
class RewardSpec:
    name: str  # a key of mmreason.rewards.REWARDS, or package.module:attr, or path/file.py:attr
    weight: float = 1.0
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RewardsConfig:
    funcs: tuple[RewardSpec, ...] = ()
    # Rows whose `source` is a key here get only the named rewards (e.g. DeepEyes' math branch).
    route_by_source: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolsConfig:
    names: tuple[str, ...] = ()  # keys of mmreason.tools.TOOLS, or module:attr specs
    max_turns: int = bounded(5, ge=1)  # DeepEyes' released 7B script
    max_images: int = bounded(32, ge=1)
    max_tool_calls: int = bounded(4, ge=0)
    # Frame of the boxes the model writes in tool calls; None: the family's output frame. DeepEyes: "pixel".
    coord_frame: Literal["pixel", "resized", "norm1000", "norm1"] | None = None
    call_syntax: Literal["tool_call", "video_com"] = "tool_call"  # how calls are written; see mmreason.rollout
    # Zoom boxes: DeepEyes rejects a side <= 30 px; upstream verl enlarges to 28 px and gives -0.05 if invalid.
    small_box: Literal["reject", "enlarge"] = "reject"
    invalid_penalty: float = 0.0
    segment_seconds: float | None = bounded(None, gt=0)  # Video-CoM numbered segments; None: not defined
    segment_frames: int = bounded(16, ge=1)  # frames in a re-watched segment (Video-CoM: 16)
    # Tools per sample (DeepEyes' `env_name`): a row field (dotted: meta.env_name) whose value names a key of
    # `sets` or lists tool names; rows without it get `names`. See mmreason.train.tool_sets.
    column: str | None = None
    sets: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SFTConfig:
    epochs: float = bounded(1.0, gt=0)
    lr: float = bounded(1e-5, gt=0)
    # Learning rates of named submodules ({"visual": 5e-3}): a key matches every parameter whose dotted
    # name holds it as whole components. A small encoder can learn far slower than the language model at
    # one shared rate (measured in benchmarks/LEARNING.md); GS-Reasoner-style new parts want their own.
    lr_by_module: dict[str, float] = field(default_factory=dict)
    batch_size: int = bounded(1, ge=1)
    grad_accum: int = bounded(1, ge=1)
    max_length: int | None = bounded(None, ge=1)  # None, as TRL advises for VLMs: never cut an image span
    assistant_only_loss: bool = True
    warmup: float = bounded(0.03, ge=0)  # < 1: fraction of the steps; >= 1: number of steps
    scheduler: Scheduler = "cosine"
    max_steps: int | None = bounded(None, ge=1)  # None: run `epochs`
    logging_steps: int = bounded(10, ge=1)
    save_steps: int = bounded(500, ge=1)
    save_total_limit: int | None = bounded(None, ge=1)  # None: keep every checkpoint
    # Validation on data.eval (TRL's names): the loss on its rows, logged as eval_loss every eval_steps steps
    # (None: save_steps) and at the last step, or at each epoch's end; "no" skips it.
    eval_strategy: Literal["no", "steps", "epoch"] = "steps"
    eval_steps: int | None = bounded(None, ge=1)
    eval_on_start: bool = False  # also before the first step (logged as step 0)
    max_eval_samples: int | None = bounded(None, ge=1)  # the first rows of data.eval; None: all of them
    resume: str | None = None  # a checkpoint dir, or "auto" for the newest one under output_dir
    # Batches are collated (media decoded, processor run) in this many DataLoader worker processes, each
    # keeping `prefetch_batches` ready ahead of the step; 0 collates in the training process, between steps.
    # The collator is a pure function of the rows, so the batches are the same either way.
    dataloader_workers: int = bounded(2, ge=0)
    prefetch_batches: int = bounded(2, ge=1)


@dataclass(frozen=True)
class GRPOConfig:
    num_generations: int = bounded(8, ge=2)  # a group of one has no advantage
    batch_size: int = bounded(8, ge=1)  # prompts per step
    grad_accum: int = bounded(1, ge=1)
    # TRL's name: clipped updates per rollout batch, old log-probs those of the policy that sampled it. One
    # step here is one batch, so it takes num_iterations optimizer steps (TRL counts each as a step).
    num_iterations: int = bounded(1, ge=1)
    lr: float = bounded(1e-6, gt=0)
    lr_by_module: dict[str, float] = field(default_factory=dict)  # as in SFTConfig
    scheduler: Scheduler = "constant"
    warmup: float = bounded(0.0, ge=0)
    weight_decay: float = bounded(0.0, ge=0)
    max_grad_norm: float | None = bounded(1.0, gt=0)  # None: no clipping
    beta: float = bounded(0.0, ge=0)  # KL coefficient; 0 loads no reference model
    kl_estimator: Literal["k3"] = "k3"  # what mmreason.rl implements; add k1/k2 there first
    epsilon: float = bounded(0.2, gt=0)
    epsilon_high: float | None = bounded(None, gt=0)  # None: epsilon (symmetric clip); DAPO uses 0.28
    advantage: Literal["grpo", "dr_grpo", "rloo"] = "grpo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    loss_agg: Literal["token_mean", "seq_mean", "dr_grpo"] = "token_mean"
    filter_zero_variance: bool = False
    step_rewards: bool = False
    step_reward_weight: float = 1.0
    max_completion_length: int = bounded(512, ge=1)
    temperature: float = bounded(1.0, gt=0)
    top_p: float = bounded(1.0, gt=0, le=1)
    rollout_backend: Literal["hf", "vllm"] = "hf"
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_server_url: str = "http://127.0.0.1:8000"
    vllm_gpu_memory_utilization: float = bounded(0.3, gt=0, le=1)  # colocated engine's share of the GPU
    max_steps: int = bounded(100, ge=1)
    save_steps: int = bounded(50, ge=1)
    logging_steps: int = bounded(1, ge=1)
    # decoded completions written to <output_dir>/completions.jsonl every logging step (0: none)
    log_completions: int = bounded(4, ge=0)
    # Validation on data.eval (TRL's names): greedy, one completion per row, the recipe's rewards as eval/*
    # metrics, every eval_steps steps (None: save_steps) and at the last step; "no" skips it.
    eval_strategy: Literal["no", "steps"] = "steps"
    eval_steps: int | None = bounded(None, ge=1)
    eval_on_start: bool = False  # also before the first step (logged as step 0)
    max_eval_samples: int | None = bounded(64, ge=1)  # the first rows of data.eval; None: all of them
    save_total_limit: int | None = bounded(None, ge=1)  # None: keep every checkpoint
    seed: int | None = None  # None: the recipe's seed
    resume: str | None = None  # a checkpoint dir, or "auto" for the newest one under output_dir


@dataclass(frozen=True)
class Recipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    sft: SFTConfig | None = None  # present when the recipe runs SFT
    grpo: GRPOConfig | None = None  # present when the recipe runs GRPO
    output_dir: str | None = None  # None: outputs/<run_name>
    run_name: str | None = None  # None: the recipe file's stem
    report_to: tuple[Literal["tensorboard", "jsonl", "wandb"], ...] = ("jsonl",)
    seed: int = 42


# Sections a recipe may leave out (`sft`, `grpo`): omitted from the saved recipe when absent.
_OPTIONAL_SECTIONS = frozenset(
    name for name, tp in hints(Recipe).items() if any(is_dataclass(a) for a in get_args(tp)))

# Bare lists are accepted for these two sections: `rewards: [format, accuracy]`, `tools: [zoom_in]`.
_LIST_SHORTHAND = {"rewards": "funcs", "tools": "names"}


# ---------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DataSource:
    """One entry of `data.train` / `data.eval`: a dataset path, or a builder to run first.

    >>> parse_data_source("builder:image_scenes?n=16&seed=3")
    DataSource(spec='builder:image_scenes?n=16&seed=3', path=None, builder='image_scenes', options={'n': 16, 'seed': 3})
    """

    spec: str
    path: str | None
    builder: str | None
    options: dict[str, Any]


def parse_data_source(spec: str, *, key: str = "data") -> DataSource:
    if not spec.startswith("builder:"):
        return DataSource(spec, spec, None, {})
    name, _, query = spec[len("builder:"):].partition("?")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise RecipeError(f"{key}: {spec!r}: expected builder:<name>?key=value&... with a builder name")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise RecipeError(f"{key}: {spec!r}: options must look like key=value&key=value") from None
    return DataSource(spec, None, name, {k: yaml.safe_load(v) if v else None for k, v in pairs})


# ------------------------------------------------------------------------------------------- loading


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read recipe: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections, got {type(data).__name__}")
    return _normalise(data)


def _normalise(raw: dict) -> dict:
    """Expand the shorthands: a bare list for `rewards`/`tools`, a bare name for one reward."""
    out = dict(raw)
    for section, key in _LIST_SHORTHAND.items():
        if isinstance(out.get(section), list):
            out[section] = {key: out[section]}
    rewards = out.get("rewards")
    if isinstance(rewards, dict) and isinstance(rewards.get("funcs"), list):
        funcs = [{"name": f} if isinstance(f, str) else f for f in rewards["funcs"]]
        out["rewards"] = {**rewards, "funcs": funcs}
    return out


def _build_recipe(raw: dict, source: str) -> Recipe:
    return build(Recipe, _normalise(raw), source=source)


def _merge(base: dict, top: dict) -> dict:
    """Mappings merge key by key; anything else (lists included) in `top` replaces `base`."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _load_raw(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise RecipeError(f"{path}: include cycle: {cycle}")
    raw = _read_yaml(path)
    includes = raw.pop("include", None)
    if isinstance(includes, str):
        includes = [includes]
    if includes is not None and not (isinstance(includes, list) and all(isinstance(i, str) for i in includes)):
        raise RecipeError(f"{path}: include: expected a path or a list of paths, got {includes!r}")
    # Check this file on its own first, so an error names the file that holds the bad key.
    _build_recipe(raw, str(path))
    merged: dict = {}
    for inc in includes or ():
        merged = _merge(merged, _load_raw(_include_path(inc, path), (*chain, path)))
    return _merge(merged, raw)


def _include_path(inc: str, path: Path) -> Path:
    """An `include:` of `path`: a file relative to it (or absolute), else a shipped recipe by name, so a
    copied shipped recipe still finds `include: debug/base` wherever the copy lives."""
    from importlib.resources import files  # the shipped recipes are package data of mmreason.train

    local = Path(inc).expanduser() if Path(inc).expanduser().is_absolute() else path.parent / inc
    if local.is_file():
        return local
    key = inc.rsplit(".", 1)[0] if inc.endswith((".yaml", ".yml")) else inc
    parts = [p for p in key.split("/") if p]
    shipped = files("mmreason.train").joinpath("recipes", *parts[:-1], f"{parts[-1]}.yaml") if parts else None
    if shipped is not None and ".." not in parts and shipped.is_file():
        return Path(str(shipped))
    raise RecipeError(f"{path}: include: {inc!r} is neither a file next to it ({local}) nor a shipped recipe "
                      "(named like 'debug/base'; `mmreason ls recipes` lists them)")


def parse_override(text: str) -> tuple[list[str], Any]:
    """`section.key=value` -> (path, value); the value is read as YAML (int, float, bool, list, null).

    >>> parse_override("model.lora.target_modules=[q_proj, v_proj]")
    (['model', 'lora', 'target_modules'], ['q_proj', 'v_proj'])
    """
    key, eq, value = text.partition("=")
    path = key.strip().split(".")
    if not eq or not all(re.fullmatch(r"[A-Za-z0-9_]+", p) for p in path):
        raise RecipeError(f"override {text!r}: expected section.key=value (e.g. grpo.lr=1e-6)")
    try:
        return path, yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise RecipeError(f"override {text!r}: value is not valid YAML: {exc}") from None


def _set_path(raw: dict, path: list[str], value: Any, text: str) -> dict:
    """A copy of `raw` with `value` at `path`; list items are addressed by index (rewards.funcs.0.weight)."""
    raw = copy.deepcopy(_normalise(raw))
    node: Any = raw
    for i, part in enumerate(path):
        last = i == len(path) - 1
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise RecipeError(f"override {text!r}: {where}: no item {part} in a list of {len(node)}")
            part = int(part)
        elif not isinstance(node, dict):
            raise RecipeError(f"override {text!r}: {'.'.join(path[:i])} is a value, not a section")
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}  # `grpo.lr=..` on a recipe without a grpo section creates it
            node = node[part]
    return raw


# ------------------------------------------------------------------------------- resolving, checking


def _infer_family(path: str) -> str | None:
    config = Path(path).expanduser() / "config.json"
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None  # not a local checkpoint (yet): the loader reads the family when it opens it
    by_type = {fam.model_type: name for name, fam in FAMILIES.items()} | {name: name for name in FAMILIES}
    return by_type.get(model_type)


def _resolve(recipe: Recipe, source: str, stem: str) -> Recipe:
    """Fill every default that depends on another value, so the saved recipe says what ran."""
    model = recipe.model
    tiny = model.tiny_family
    if tiny is not None and tiny not in FAMILIES:
        raise RecipeError(f"{source}: model.path: unknown tiny family {tiny!r}; known: {', '.join(FAMILIES)}")
    if model.family is not None and model.family not in FAMILIES:
        close = difflib.get_close_matches(model.family, list(FAMILIES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise RecipeError(f"{source}: model.family: unknown family {model.family!r}; {hint}known: {', '.join(FAMILIES)}")
    if tiny is not None and model.family not in (None, tiny):
        raise RecipeError(f"{source}: model.family is {model.family!r} but model.path is {model.path!r}")
    family = model.family or tiny or _infer_family(model.path)
    lora = model.lora
    if lora.target_modules is None and family is not None:
        lora = replace(lora, target_modules=FAMILIES[family].lora_targets)
    recipe = replace(recipe, model=replace(model, family=family, lora=lora))
    run_name = recipe.run_name or stem
    recipe = replace(recipe, run_name=run_name, output_dir=recipe.output_dir or f"outputs/{run_name}")
    if recipe.data.seed is None:
        recipe = replace(recipe, data=replace(recipe.data, seed=recipe.seed))
    if recipe.grpo is not None:
        g = recipe.grpo
        recipe = replace(recipe, grpo=replace(
            g, seed=recipe.seed if g.seed is None else g.seed,
            epsilon_high=g.epsilon if g.epsilon_high is None else g.epsilon_high))
    _check(recipe, source)
    return recipe


def _check(r: Recipe, source: str) -> None:
    """Rules that tie two values together; one-value rules live on the fields."""
    def fail(msg: str) -> None:
        raise RecipeError(f"{source}: {msg}")

    m = r.model
    if m.min_pixels is not None and m.max_pixels is not None and m.min_pixels > m.max_pixels:
        fail(f"model.min_pixels ({m.min_pixels}) is larger than model.max_pixels ({m.max_pixels})")
    for section in ("train", "eval"):
        for i, spec in enumerate(getattr(r.data, section)):
            parse_data_source(spec, key=f"{source}: data.{section}.{i}")
    names = [f.name for f in r.rewards.funcs]
    for src, routed in r.rewards.route_by_source.items():
        for name in routed:
            if name not in names:
                fail(f"rewards.route_by_source.{src}: {name!r} is not in rewards.funcs ({', '.join(names) or 'empty'})")
    g = r.grpo
    if g is not None:
        if g.epsilon_high is not None and g.epsilon_high < g.epsilon:
            fail(f"grpo.epsilon_high ({g.epsilon_high}) is smaller than grpo.epsilon ({g.epsilon})")
        if g.rollout_backend == "vllm" and g.vllm_mode == "server" and not g.vllm_server_url:
            fail("grpo.vllm_server_url is required with grpo.vllm_mode=server")
        if g.step_rewards and not r.rewards.funcs:
            fail("grpo.step_rewards needs at least one reward in rewards.funcs")
    if r.tools.sets and r.tools.column is None:
        fail("tools.sets is set but tools.column is not: name the row field that picks a set "
             "(DeepEyes: meta.env_name)")


def _check_kwargs(fn: Any, spec: RewardSpec, where: str) -> None:
    """A reward option must name one of the reward's keyword-only parameters.

    Rewards take dataset columns through `**columns`, so a misspelt option would otherwise vanish
    into them and the reward would silently run with its default. A function that declares no
    keyword-only parameter (a third-party reward reading `**kwargs`) cannot be checked.
    """
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return  # some builtins have no signature
    named = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    for key in spec.kwargs if named else ():
        if key not in named:
            close = difflib.get_close_matches(str(key), named, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise RecipeError(f"{where}.{key}: {spec.name!r} has no option {key!r}; {hint}"
                              f"its options: {', '.join(named)}")


def check_names(
    recipe: Recipe,
    *,
    rewards: Mapping[str, Any] | None = None,
    tools: Mapping[str, Any] | None = None,
    builders: Mapping[str, Any] | None = None,
    source: str = "<recipe>",
) -> None:
    """Check that every reward, tool and builder the recipe names resolves, and every reward option.

    Registries that are not available yet are passed as None: then only `module:attr` specs are
    resolved for that kind.
    """
    def one(name: str, registry: Mapping | None, kind: str, key: str) -> Any:
        try:
            if registry is not None:
                return resolve_name(name, registry, kind=kind)
            return resolve_callable(name) if ":" in name else None
        except RecipeError as exc:
            raise RecipeError(f"{source}: {key}: {exc}") from None

    for i, spec in enumerate(recipe.rewards.funcs):
        fn = one(spec.name, rewards, "reward", f"rewards.funcs.{i}.name")
        if fn is not None:
            _check_kwargs(fn, spec, f"{source}: rewards.funcs.{i}.kwargs")
    for i, name in enumerate(recipe.tools.names):
        one(name, tools, "tool", f"tools.names.{i}")
    for key, names in recipe.tools.sets.items():
        for i, name in enumerate(names):
            one(name, tools, "tool", f"tools.sets.{key}.{i}")
    for section in ("train", "eval"):
        for i, spec in enumerate(getattr(recipe.data, section)):
            ds = parse_data_source(spec)
            if ds.builder is not None and builders is not None and ds.builder not in builders:
                close = difflib.get_close_matches(ds.builder, list(builders), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise RecipeError(f"{source}: data.{section}.{i}: unknown builder {ds.builder!r}{hint} "
                                  f"(known: {', '.join(sorted(builders)) or 'none'})")


def missing_paths(recipe: Recipe) -> list[str]:
    """The model and data paths of a recipe that do not exist (relative ones are read from the current
    folder, as training reads them), each as ``key 'value' (what is missing)``; ``tiny:``/``base:`` models
    and ``builder:`` data are made by the toolkit and always count as present.

    >>> missing_paths(load_recipe_dict({"model": {"path": "no/such/ckpt"}, "data": {"train": ["builder:x?n=1"]}}))
    ["model.path 'no/such/ckpt' (no such folder: a checkpoint directory, tiny:<family> or base:<family>)"]
    """
    out = []
    if recipe.model.tiny_family is None and not Path(recipe.model.path).expanduser().is_dir():
        out.append(f"model.path {recipe.model.path!r} (no such folder: a checkpoint directory, tiny:<family> "
                   "or base:<family>)")
    for section in ("train", "eval"):
        for i, spec in enumerate(getattr(recipe.data, section)):
            ds = parse_data_source(spec)
            if ds.builder is None and not Path(spec).expanduser().exists():
                out.append(f"data.{section}.{i} {spec!r} (no such file or folder)")
    return out


# ------------------------------------------------------------------------------------------- public


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe file (following `include:`), apply `section.key=value` overrides, resolve defaults.

    Errors are `RecipeError`s naming the file (or the override) and the full dotted key.
    """
    path = Path(path)
    raw = _load_raw(path)
    return _finish(raw, overrides, source=str(path), stem=path.stem)


def load_recipe_dict(raw: Mapping[str, Any], overrides: Sequence[str] = (), *, source: str = "<dict>",
                     stem: str = "run") -> Recipe:
    """Like `load_recipe` for a mapping already in memory (tests, notebooks); no `include:`."""
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{source}: a recipe is a mapping of sections, got {type(raw).__name__}")
    raw = _normalise(dict(raw))
    _build_recipe(raw, source)
    return _finish(raw, overrides, source=source, stem=stem)


def _finish(raw: dict, overrides: Sequence[str], *, source: str, stem: str) -> Recipe:
    if isinstance(overrides, str):
        overrides = [overrides]
    for text in overrides:
        path, value = parse_override(text)
        try:
            _build_recipe(_set_path(raw, path, value, text), source)
        except RecipeError as exc:
            # `run_name=2024-01-01` or `run_name=7` reads as a date or int: a str key takes the text as typed.
            literal = text.partition("=")[2].strip()
            try:
                _build_recipe(_set_path(raw, path, literal, text), source)
            except RecipeError:
                raise RecipeError(f"override {text!r}: {exc}") from None
            value = literal
        raw = _set_path(raw, path, value, text)
    suffix = f" (with overrides {' '.join(overrides)})" if overrides else ""
    return _resolve(_build_recipe(raw, source), source + suffix, stem)


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """Plain dicts and lists (YAML/JSON-ready), in field order; absent sections are omitted."""
    return {k: v for k, v in to_plain(recipe).items() if not (v is None and k in _OPTIONAL_SECTIONS)}


class _Dumper(yaml.SafeDumper):
    """Block-style sections, but one-line lists of scalars (`target_modules: [q_proj, v_proj]`)."""


_Dumper.add_representer(list, lambda d, data: d.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=all(not isinstance(v, (dict, list)) for v in data)))


def format_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML text, sections in their fixed order."""
    return yaml.dump(recipe_to_dict(recipe), Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


def dump_recipe(recipe: Recipe, path: str | Path) -> Path:
    """Save the resolved recipe; `load_recipe(path)` gives back an equal `Recipe`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_recipe(recipe), encoding="utf-8")
    return path
