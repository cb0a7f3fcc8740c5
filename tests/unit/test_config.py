"""Recipes: strict keys and types, overrides, includes, resolution, dump/reload."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import mmreason.config as config
from mmreason.config import (
    Recipe,
    check_names,
    dump_recipe,
    format_recipe,
    load_recipe,
    load_recipe_dict,
    parse_data_source,
    parse_override,
    recipe_to_dict,
)
from mmreason.errors import RecipeError
from mmreason.families import FAMILIES


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(RecipeError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# ------------------------------------------------------------------------------------ unknown keys


def test_unknown_top_level_key_names_key_and_file(tmp_path):
    path = write(tmp_path / "r.yaml", "modle: {path: tiny:qwen2_vl}\n")
    msg = error_of(load_recipe, path)
    assert str(path) in msg and "'modle'" in msg and "did you mean 'model'" in msg


def test_unknown_nested_key_names_full_dotted_key(tmp_path):
    path = write(tmp_path / "r.yaml", "model:\n  lora: {enabled: true, rr: 4}\n")
    msg = error_of(load_recipe, path)
    assert "'model.lora.rr'" in msg and "did you mean 'model.lora.r'" in msg and str(path) in msg


def test_unknown_key_in_a_list_item_names_its_index():
    msg = error_of(load_recipe_dict, {"rewards": [{"name": "format", "wieght": 2}]})
    assert "'rewards.funcs.0.wieght'" in msg and "'rewards.funcs.0.weight'" in msg


def test_key_in_the_wrong_section_says_where_it_lives():
    msg = error_of(load_recipe_dict, {"model": {"lr": 1e-5}})
    assert "'model.lr'" in msg and "sft" in msg and "grpo" in msg


def test_unknown_key_in_an_absent_optional_section():
    msg = error_of(load_recipe_dict, {"grpo": {"num_generation": 4}})
    assert "'grpo.num_generation'" in msg and "'grpo.num_generations'" in msg


# ------------------------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("raw", "key", "expected", "got"),
    [
        ({"model": {"lora": {"r": "sixteen"}}}, "model.lora.r", "expected int", "'sixteen'"),
        ({"model": {"lora": {"r": True}}}, "model.lora.r", "expected int", "True"),
        ({"grpo": {"lr": [1]}}, "grpo.lr", "expected float", "[1]"),
        ({"sft": {"assistant_only_loss": "yes"}}, "sft.assistant_only_loss", "expected bool", "'yes'"),
        ({"data": {"train": 5}}, "data.train", "expected list of str", "5"),
        ({"model": "tiny:qwen2_vl"}, "model", "expected mapping (ModelConfig)", "'tiny:qwen2_vl'"),
        ({"seed": 1.5}, "seed", "expected int", "1.5"),
        ({"rewards": {"route_by_source": {"math": 3}}}, "rewards.route_by_source.math", "expected list of str", "3"),
    ],
)
def test_wrong_type_names_key_expected_type_and_value(raw, key, expected, got):
    msg = error_of(load_recipe_dict, raw)
    assert f"{key}: {expected}" in msg and got in msg


def test_choice_error_lists_choices_and_suggests():
    msg = error_of(load_recipe_dict, {"grpo": {"advantage": "dr-grpo"}})
    assert "grpo.advantage" in msg and "'rloo'" in msg and "did you mean 'dr_grpo'" in msg


def test_bounds_are_checked():
    assert "grpo.num_generations: must be >= 2, got 1" in error_of(load_recipe_dict, {"grpo": {"num_generations": 1}})
    assert "grpo.top_p: must be <= 1" in error_of(load_recipe_dict, {"grpo": {"top_p": 1.5}})


def test_yaml_exponent_without_dot_is_a_float(tmp_path):
    # PyYAML reads `1e-6` as a string; a recipe must still get a float.
    path = write(tmp_path / "r.yaml", "grpo: {lr: 1e-6, beta: 4e-2}\nsft: {lr: 2E-5}\n")
    recipe = load_recipe(path)
    assert recipe.grpo.lr == 1e-6 and recipe.grpo.beta == 0.04 and recipe.sft.lr == 2e-5


def test_int_is_accepted_for_float_but_not_the_reverse():
    assert load_recipe_dict({"sft": {"epochs": 2}}).sft.epochs == 2.0
    assert "expected int" in error_of(load_recipe_dict, {"sft": {"batch_size": 2.0}})


def test_recipe_must_be_a_mapping(tmp_path):
    assert "a recipe is a mapping" in error_of(load_recipe, write(tmp_path / "r.yaml", "- a\n- b\n"))
    assert "not valid YAML" in error_of(load_recipe, write(tmp_path / "s.yaml", "model: [\n"))
    assert "cannot read recipe" in error_of(load_recipe, tmp_path / "missing.yaml")


def test_empty_file_gives_defaults(tmp_path):
    recipe = load_recipe(write(tmp_path / "empty.yaml", ""))
    assert recipe.model.path == "tiny:qwen2_5_vl" and recipe.sft is None and recipe.grpo is None
    assert recipe.run_name == "empty" and recipe.output_dir == "outputs/empty"


# --------------------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("grpo.num_generations=16", ["grpo", "num_generations"], 16),
        ("grpo.lr=3.0e-6", ["grpo", "lr"], 3e-6),
        ("model.lora.enabled=true", ["model", "lora", "enabled"], True),
        ("data.train=[a.parquet, b.parquet]", ["data", "train"], ["a.parquet", "b.parquet"]),
        ("model.path=/ckpt/qwen", ["model", "path"], "/ckpt/qwen"),
        ("grpo.resume=", ["grpo", "resume"], None),
        ("run_name=exp 1", ["run_name"], "exp 1"),
    ],
)
def test_parse_override(text, path, value):
    assert parse_override(text) == (path, value)


@pytest.mark.parametrize("bad", ["grpo.lr", "=3", "grpo..lr=1", "grpo.lr-x=1"])
def test_malformed_override_is_an_error(bad):
    assert "expected section.key=value" in error_of(parse_override, bad)


def test_overrides_apply_with_types():
    recipe = load_recipe_dict({"grpo": {}}, overrides=[
        "grpo.num_generations=4", "grpo.lr=1e-6", "grpo.filter_zero_variance=true",
        "model.lora.target_modules=[q_proj, v_proj]", "data.train=scenes/", "run_name=abc",
    ])
    assert recipe.grpo.num_generations == 4 and recipe.grpo.lr == 1e-6 and recipe.grpo.filter_zero_variance is True
    assert recipe.model.lora.target_modules == ("q_proj", "v_proj")
    assert recipe.data.train == ("scenes/",)  # a single string is a list of one
    assert recipe.run_name == "abc" and recipe.output_dir == "outputs/abc"


def test_override_creates_an_absent_section_and_sets_null():
    recipe = load_recipe_dict({}, overrides=["grpo.beta=0.04", "model.max_pixels=null"])
    assert recipe.grpo is not None and recipe.grpo.beta == 0.04 and recipe.grpo.num_generations == 8
    assert recipe.model.max_pixels is None


def test_override_of_a_string_key_keeps_the_text_as_typed():
    # YAML would read these as a date and an int; the keys want strings.
    recipe = load_recipe_dict({}, overrides=["run_name=2024-01-01", "output_dir=7", "grpo.resume=auto"])
    assert (recipe.run_name, recipe.output_dir, recipe.grpo.resume) == ("2024-01-01", "7", "auto")
    assert "seed: expected int" in error_of(load_recipe_dict, {}, overrides=["seed=2024-01-01"])


def test_override_list_items_by_index():
    raw = {"rewards": ["format", {"name": "accuracy", "kwargs": {"rel_tol": 0.1}}]}
    recipe = load_recipe_dict(raw, overrides=["rewards.funcs.0.weight=0.25", "rewards.funcs.1.kwargs.rel_tol=0.01"])
    assert [(f.name, f.weight) for f in recipe.rewards.funcs] == [("format", 0.25), ("accuracy", 1.0)]
    assert recipe.rewards.funcs[1].kwargs == {"rel_tol": 0.01}
    msg = error_of(load_recipe_dict, raw, overrides=["rewards.funcs.2.weight=1"])
    assert "override 'rewards.funcs.2.weight=1'" in msg and "no item 2 in a list of 2" in msg


def test_override_errors_name_the_override_and_key():
    msg = error_of(load_recipe_dict, {}, overrides=["model.lora.rank=8"])
    assert "override 'model.lora.rank=8'" in msg and "'model.lora.rank'" in msg
    msg = error_of(load_recipe_dict, {}, overrides=["grpo.lr=fast"])
    assert "override 'grpo.lr=fast'" in msg and "grpo.lr: expected float" in msg and "'fast'" in msg
    assert "is a value, not a section" in error_of(load_recipe_dict, {"seed": 3}, overrides=["seed.x=1"])


# ---------------------------------------------------------------------------------------- includes


def test_include_precedence_base_then_file_then_overrides(tmp_path):
    write(tmp_path / "shared" / "base.yaml", """\
        model: {path: tiny:qwen3_vl, lora: {enabled: true, r: 4}}
        grpo: {lr: 1.0e-6, num_generations: 4, beta: 0.04}
        rewards: [format, accuracy]
        seed: 7
    """)
    path = write(tmp_path / "exp" / "run.yaml", """\
        include: ../shared/base.yaml
        model: {lora: {r: 8}}
        grpo: {num_generations: 6}
        rewards: [iou]
    """)
    recipe = load_recipe(path, ["grpo.beta=0.0"])
    assert recipe.model.path == "tiny:qwen3_vl" and recipe.model.lora.enabled and recipe.model.lora.r == 8
    assert (recipe.grpo.lr, recipe.grpo.num_generations, recipe.grpo.beta) == (1e-6, 6, 0.0)
    assert [f.name for f in recipe.rewards.funcs] == ["iou"]  # lists replace, they do not append
    assert recipe.seed == 7 and recipe.grpo.seed == 7 and recipe.run_name == "run"


def test_several_and_nested_includes_merge_in_order(tmp_path):
    write(tmp_path / "a.yaml", "sft: {lr: 1.0e-5, batch_size: 2}\nseed: 1\n")
    write(tmp_path / "b.yaml", "include: a.yaml\nsft: {batch_size: 4}\n")
    write(tmp_path / "c.yaml", "seed: 3\nsft: {grad_accum: 8}\n")
    recipe = load_recipe(write(tmp_path / "top.yaml", "include: [b.yaml, c.yaml]\nsft: {lr: 2.0e-5}\n"))
    assert (recipe.sft.lr, recipe.sft.batch_size, recipe.sft.grad_accum, recipe.seed) == (2e-5, 4, 8, 3)


def test_error_in_an_included_file_names_that_file(tmp_path):
    base = write(tmp_path / "base.yaml", "data: {shufle: false}\n")
    path = write(tmp_path / "run.yaml", "include: base.yaml\n")
    msg = error_of(load_recipe, path)
    assert str(base) in msg and "'data.shufle'" in msg and "'data.shuffle'" in msg


def test_include_cycle_and_missing_include(tmp_path):
    write(tmp_path / "a.yaml", "include: b.yaml\n")
    write(tmp_path / "b.yaml", "include: a.yaml\n")
    assert "include cycle" in error_of(load_recipe, tmp_path / "a.yaml")
    msg = error_of(load_recipe, write(tmp_path / "c.yaml", "include: nowhere.yaml\n"))
    assert "'nowhere.yaml' is neither a file next to it" in msg and str(tmp_path / "c.yaml") in msg
    assert "nor a shipped recipe" in msg and "debug/base" in msg


def test_a_copied_shipped_recipe_still_finds_its_include(tmp_path):
    """Users make recipes by copying a shipped one: `include: debug/base` resolves by name anywhere."""
    import shutil
    import subprocess
    import sys

    from mmreason.recipes import shipped_recipes

    copy = tmp_path / "mine" / "my_grpo.yaml"
    copy.parent.mkdir()
    shutil.copy(shipped_recipes()["debug/tiny_grpo"], copy)
    out = subprocess.run([sys.executable, "-m", "mmreason", "validate", str(copy)], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "path: tiny:qwen2_5_vl" in out.stdout and "max_pixels: 50176" in out.stdout  # from debug/base
    # by name with or without the suffix; a file next to the recipe comes first
    for name in ("debug/base", "debug/base.yaml"):
        assert load_recipe(write(tmp_path / "n.yaml", f"include: {name}\n")).model.max_pixels == 50176
    write(tmp_path / "debug" / "base.yaml", "model: {max_pixels: 1000}\n")
    assert load_recipe(write(tmp_path / "n.yaml", "include: debug/base.yaml\n")).model.max_pixels == 1000


# -------------------------------------------------------------------------------------- resolution


def test_tiny_family_fills_family_and_lora_targets_from_the_family_table():
    recipe = load_recipe_dict({"model": {"path": "tiny:qwen3_vl"}})
    assert recipe.model.family == "qwen3_vl" and recipe.model.tiny_family == "qwen3_vl"
    assert recipe.model.lora.target_modules == FAMILIES["qwen3_vl"].lora_targets
    explicit = load_recipe_dict({"model": {"path": "tiny:qwen3_vl", "lora": {"target_modules": ["q_proj"]}}})
    assert explicit.model.lora.target_modules == ("q_proj",)


def test_family_from_a_local_checkpoint_config(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"model_type": "qwen2_5_omni_thinker"}))
    assert load_recipe_dict({"model": {"path": str(tmp_path / "ckpt")}}).model.family == "qwen2_5_omni"
    remote = load_recipe_dict({"model": {"path": "Qwen/Qwen2.5-VL-7B-Instruct"}})
    assert remote.model.family is None and remote.model.lora.target_modules is None


def test_family_errors():
    assert "unknown tiny family 'qwen4'" in error_of(load_recipe_dict, {"model": {"path": "tiny:qwen4"}})
    msg = error_of(load_recipe_dict, {"model": {"path": "/x", "family": "qwen25_vl"}})
    assert "model.family" in msg and "did you mean 'qwen2_5_vl'" in msg
    msg = error_of(load_recipe_dict, {"model": {"path": "tiny:qwen2_vl", "family": "qwen3_vl"}})
    assert "model.family is 'qwen3_vl' but model.path is 'tiny:qwen2_vl'" in msg


def test_cross_field_checks():
    msg = error_of(load_recipe_dict, {"rewards": {"funcs": ["format"], "route_by_source": {"math": ["acc"]}}})
    assert "rewards.route_by_source.math" in msg and "'acc'" in msg
    assert "epsilon_high" in error_of(load_recipe_dict, {"grpo": {"epsilon": 0.3, "epsilon_high": 0.2}})
    assert "min_pixels" in error_of(load_recipe_dict, {"model": {"min_pixels": 100, "max_pixels": 10}})
    assert "data.train.1" in error_of(load_recipe_dict, {"data": {"train": ["ok/", "builder:?n=1"]}})
    assert load_recipe_dict({"grpo": {"epsilon": 0.2}}).grpo.epsilon_high == 0.2
    assert load_recipe_dict({"grpo": {"epsilon_high": 0.28}}).grpo.epsilon_high == 0.28


def test_shorthands_for_rewards_and_tools():
    recipe = load_recipe_dict({"rewards": ["format", {"name": "iou", "weight": 2, "kwargs": {"tau": 0.5}}],
                               "tools": ["zoom_in"]})
    assert recipe.rewards.funcs[0] == config.RewardSpec("format")
    assert recipe.rewards.funcs[1] == config.RewardSpec("iou", 2.0, {"tau": 0.5})
    assert recipe.tools.names == ("zoom_in",) and recipe.tools.max_turns == 5


def test_parse_data_source():
    ds = parse_data_source("builder:image_scenes?n=16&seed=3&trace=grit&hard=true")
    assert ds.builder == "image_scenes" and ds.path is None
    assert ds.options == {"n": 16, "seed": 3, "trace": "grit", "hard": True}
    assert parse_data_source("data/scenes").path == "data/scenes"
    assert "key=value" in error_of(parse_data_source, "builder:x?n", key="data.train.0")


# ------------------------------------------------------------------------------- dump, format, names


def test_dump_and_reload_is_equal(tmp_path):
    write(tmp_path / "base.yaml", "grpo: {lr: 1e-6}\nrewards: [format]\n")
    path = write(tmp_path / "run.yaml", """\
        include: base.yaml
        model: {path: tiny:qwen2_vl, lora: {enabled: true}}
        data: {train: ["builder:image_scenes?n=4"], video: {nframes: 8}}
        rewards:
          funcs: [format, {name: "x.py:score", weight: 0.5, kwargs: {scale: [1, 2], mode: strict}}]
          route_by_source: {math: [format]}
        tools: {names: [zoom_in], max_turns: 3}
        sft: {max_steps: 3}
        report_to: [jsonl, tensorboard]
    """)
    recipe = load_recipe(path, ["grpo.temperature=0.7"])
    saved = dump_recipe(recipe, tmp_path / "out" / "recipe.yaml")
    again = load_recipe(saved)
    assert again == recipe
    assert isinstance(again, Recipe) and again.grpo.temperature == 0.7
    assert format_recipe(again) == saved.read_text()


def test_recipe_to_dict_keeps_section_order_and_omits_absent_algorithms():
    d = recipe_to_dict(load_recipe_dict({"sft": {}}))
    assert list(d) == ["model", "data", "rewards", "tools", "sft", "output_dir", "run_name", "report_to", "seed"]
    assert d["model"]["lora"]["target_modules"] == list(FAMILIES["qwen2_5_vl"].lora_targets)


def test_check_names_against_registries(tmp_path):
    reward_file = write(tmp_path / "my_reward.py", "def score(completions, **kw):\n    return [1.0] * len(completions)\n")
    recipe = load_recipe_dict({
        "rewards": ["format", {"name": f"{reward_file}:score"}],
        "tools": ["zoom_in"],
        "data": {"train": ["builder:image_scenes?n=2"]},
    })
    registries = {"rewards": {"format": len}, "tools": {"zoom_in": len}, "builders": {"image_scenes": "m:build"}}
    check_names(recipe, **registries)
    check_names(recipe)  # no registries yet: only the file spec is resolved
    msg = error_of(check_names, recipe, rewards={"formats": len}, source="r.yaml")
    assert "r.yaml: rewards.funcs.0.name" in msg and "did you mean 'formats'" in msg
    msg = error_of(check_names, recipe, tools={"zoom": len})
    assert "tools.names.0" in msg and "'zoom_in'" in msg
    msg = error_of(check_names, recipe, builders={"video_clips": "m:build"})
    assert "data.train.0" in msg and "unknown builder 'image_scenes'" in msg
    bad = load_recipe_dict({"rewards": [f"{reward_file}:scroe"]})
    assert "did you mean 'score'" in error_of(check_names, bad)


def test_check_names_rejects_reward_options_the_function_does_not_take():
    def iou_reward(completions, *, threshold=0.5, coord_frame=None, **columns):
        return [0.0] * len(completions)

    ok = load_recipe_dict({"rewards": [{"name": "iou", "kwargs": {"threshold": 0.7, "coord_frame": "resized"}}]})
    check_names(ok, rewards={"iou": iou_reward})
    bad = load_recipe_dict({"rewards": ["format", {"name": "iou", "kwargs": {"treshold": 0.7}}]})
    msg = error_of(check_names, bad, rewards={"iou": iou_reward, "format": iou_reward}, source="r.yaml")
    assert "r.yaml: rewards.funcs.1.kwargs.treshold" in msg and "did you mean 'threshold'" in msg

    def reads_kwargs(completions, **kwargs):  # declares no options: nothing to check against
        return [kwargs.get("scale", 1.0)] * len(completions)

    check_names(load_recipe_dict({"rewards": [{"name": "free", "kwargs": {"scale": 2}}]}),
                rewards={"free": reads_kwargs})
