"""The `mmreason` command: fast help, lazy dispatch, `ls`, `validate`, `print-recipe`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mmreason.cli as cli
from mmreason.config import load_recipe
from mmreason.families import FAMILIES
from mmreason.recipes import shipped_recipes

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "train" / "recipes").rglob("*.yaml"))


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}  # rich wraps at 80 columns when not on a terminal
    return subprocess.run([sys.executable, "-m", "mmreason", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, env=env, timeout=120)


def test_help_lists_every_verb_and_loads_no_heavy_library():
    out = run_cli("--help")
    assert out.returncode == 0, out.stderr
    for verb in cli.VERBS:
        assert verb in out.stdout
    # `--help` must stay instant: no verb module, torch or rich is imported to print it.
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, mmreason.cli as c; c.main(['--help']); "
         "print(sorted(m for m in ('torch', 'transformers', 'rich', 'yaml') if m in sys.modules))"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "[]"


def test_no_arguments_prints_help_and_version_works(capsys):
    assert cli.main([]) == 0
    assert "verbs" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert "mmreason 0." in capsys.readouterr().out


def test_unknown_verb_and_option_exit_2(capsys):
    assert cli.main(["valdiate", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert "unknown verb 'valdiate'" in err and "did you mean 'validate'" in err
    assert cli.main(["--frobnicate"]) == 2


def test_ls_families_lists_the_four_families():
    out = run_cli("ls", "families")
    assert out.returncode == 0, out.stderr
    for name, family in FAMILIES.items():
        line = next(line for line in out.stdout.splitlines() if f" {name} " in line)
        assert family.box_frame in line
    assert len(FAMILIES) == 4


def test_ls_recipes_lists_shipped_recipes_with_their_summary(capsys):
    assert cli.main(["ls", "recipes"]) == 0
    out = capsys.readouterr().out
    for path in SHIPPED:
        assert path.relative_to(REPO / "train" / "recipes").with_suffix("").as_posix() in out
    assert set(shipped_recipes()) == {p.relative_to(REPO / "train" / "recipes").with_suffix("").as_posix()
                                          for p in SHIPPED}


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A throwaway importable folder; tests write modules into it."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def add(name: str, source: str) -> None:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        sys.modules.pop(name, None)

    yield add


def test_ls_reads_a_registry_with_first_docstring_lines(fake_package, monkeypatch, capsys):
    fake_package("fake_rewards", '''\
        import functools

        def exact(completions, **kw):
            """Exact match of the [answer] tag.

            More text that is not shown.
            """

        def lazy_one(completions, **kw):
            """Imported only when listed."""

        REWARDS = {"exact": exact, "bound": functools.partial(exact), "lazy": "fake_rewards:lazy_one"}
    ''')
    monkeypatch.setitem(cli.REGISTRIES, "rewards", ("fake_rewards", "REWARDS"))
    assert cli.main(["ls", "rewards"]) == 0
    out = capsys.readouterr().out
    assert "rewards (3)" in out
    assert out.count("Exact match of the [answer] tag.") == 2  # partials show their function's doc
    assert "Imported only when listed." in out and "More text" not in out


def test_ls_shows_an_empty_table_while_a_registry_does_not_exist(fake_package, monkeypatch, capsys):
    fake_package("fake_no_attr", "X = 1\n")
    monkeypatch.setitem(cli.REGISTRIES, "tools", ("fake_no_attr", "TOOLS"))
    assert cli.main(["ls", "tools"]) == 0
    assert "tools (0)" in capsys.readouterr().out
    monkeypatch.setitem(cli.REGISTRIES, "tools", ("fake_not_a_module_at_all", "TOOLS"))
    assert cli.main(["ls", "tools"]) == 0
    assert "none registered yet" in capsys.readouterr().out


def test_ls_surfaces_a_real_import_error(fake_package, monkeypatch, capsys):
    fake_package("fake_broken", "import surely_not_installed_pkg_789\nBUILDERS = {}\n")
    monkeypatch.setitem(cli.REGISTRIES, "builders", ("fake_broken", "BUILDERS"))
    with pytest.raises(ModuleNotFoundError, match="surely_not_installed_pkg_789"):
        cli.main(["ls", "builders"])
    # A lazy entry that cannot be imported is shown in its row and fails the command.
    fake_package("fake_lazy", 'BUILDERS = {"good": "fake_lazy:ok", "bad": "fake_lazy_missing_mod:build"}\n'
                              'def ok():\n    "Fine."\n')
    monkeypatch.setitem(cli.REGISTRIES, "builders", ("fake_lazy", "BUILDERS"))
    assert cli.main(["ls", "builders"]) == 1
    captured = capsys.readouterr()
    assert "Fine." in captured.out and "cannot load" in captured.out and "bad" in captured.err


@pytest.mark.parametrize("recipe", SHIPPED, ids=lambda p: p.relative_to(REPO / "train" / "recipes").as_posix())
def test_validate_every_shipped_recipe(recipe, capsys):
    # the method recipes name checkpoints and datasets the user fetches first; their paths are checked below
    assert cli.main(["validate", str(recipe), "--skip-paths"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"# {recipe}: valid" in out and "model:" in out


def test_validate_by_shipped_name_with_overrides(capsys):
    name = "debug/base"  # a shipped name: no path, no suffix
    assert name in shipped_recipes()
    assert cli.main(["validate", name, "seed=123", "model.lora.r=4"]) == 0
    out = capsys.readouterr().out
    assert "seed: 123" in out and "# override model.lora.r=4" in out


def test_validate_reports_a_model_or_dataset_path_that_does_not_exist(tmp_path):
    (tmp_path / "data").mkdir()
    out = run_cli("validate", "debug/tiny_sft", f"model.path={tmp_path / 'ckpt'}",
                  f"data.train=[{tmp_path / 'data'}, {tmp_path / 'gone.jsonl'}]")
    assert out.returncode == 2 and "valid" not in out.stdout and "Traceback" not in out.stderr
    assert f"model.path '{tmp_path / 'ckpt'}' (no such folder" in out.stderr
    assert f"data.train.1 '{tmp_path / 'gone.jsonl'}' (no such file or folder)" in out.stderr
    assert "data.train.0" not in out.stderr and "--skip-paths" in out.stderr
    # a method recipe whose checkpoint the user has not fetched yet: named, not "valid"
    out = run_cli("validate", "grit/qwen2_5_vl_grpo")
    assert out.returncode == 2 and "model.path 'checkpoints/Qwen2.5-VL-3B-Instruct'" in out.stderr
    assert run_cli("validate", "grit/qwen2_5_vl_grpo", "--skip-paths", "-q").returncode == 0


def test_validate_unknown_key_exits_2_naming_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  path: tiny:qwen2_vl\n  lora: {enabled: true, rnak: 8}\n")
    out = run_cli("validate", str(path))
    assert out.returncode == 2
    assert "model.lora.rnak" in out.stderr and str(path) in out.stderr and out.stdout == ""
    out = run_cli("validate", str(path), "model.lora.rnak=3")
    assert out.returncode == 2 and "model.lora.rnak" in out.stderr


def test_validate_checks_reward_names_against_the_registry(tmp_path, fake_package, monkeypatch, capsys):
    fake_package("fake_rewards2", "def fmt(completions, **kw):\n    return [0.0]\nREWARDS = {'format': fmt}\n")
    monkeypatch.setitem(cli.REGISTRIES, "rewards", ("fake_rewards2", "REWARDS"))
    path = tmp_path / "r.yaml"
    path.write_text("rewards: [format, formt]\ngrpo: {}\n")
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "rewards.funcs.1.name" in err and "unknown reward 'formt'" in err and "did you mean 'format'" in err
    assert cli.main(["validate", str(path), "rewards.funcs.1.name=format", "-q"]) == 0
    assert capsys.readouterr().out == ""


def test_validate_binds_reward_options_with_the_reward_library(tmp_path, capsys):
    rewards = pytest.importorskip("mmreason.rewards")
    name = next(n for n, fn in rewards.REWARDS.items() if "coord_frame" in rewards.reward_options(fn))
    path = tmp_path / "r.yaml"
    path.write_text(f"rewards:\n  - {{name: {name}, kwargs: {{coord_frme: resized}}}}\n")
    assert cli.main(["validate", str(path), "-q"]) == 2
    err = capsys.readouterr().err
    assert "rewards.funcs.0.kwargs.coord_frme" in err and "did you mean 'coord_frame'" in err
    # A value the reward rejects is caught by binding it, as training will.
    assert cli.main(["validate", str(path), "rewards.funcs.0.kwargs={coord_frame: nowhere}", "-q"]) == 2
    err = capsys.readouterr().err
    assert "rewards.funcs.0" in err and "nowhere" in err


def test_validate_missing_recipe(capsys):
    assert cli.main(["validate", "debug/tiny_grop"]) == 2
    assert "no such recipe file" in capsys.readouterr().err


def test_print_recipe_stdout_and_file_reload_equal(tmp_path, capsys):
    src = SHIPPED[0]
    assert cli.main(["print-recipe", str(src), "seed=5"]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "resolved.yaml"
    assert cli.main(["print-recipe", str(src), "seed=5", "-o", str(out)]) == 0
    assert out.read_text() == printed
    assert load_recipe(out) == load_recipe(src, ["seed=5"])


def test_dispatch_to_verbs_reports_missing_modules_and_errors(fake_package, monkeypatch, capsys):
    fake_package("fake_verbs", '''\
        from mmreason.errors import RecipeError
        import argparse

        def ok(argv):
            print("args", argv)
            return 3

        def bad(argv):
            raise RecipeError("run.yaml: grpo.lr: expected float")

        def parse(argv):
            argparse.ArgumentParser(prog="x").parse_args(argv)
            return 0
    ''')
    fake_package("fake_verb_dep", "import surely_not_installed_pkg_321\ndef main(argv):\n    return 0\n")
    monkeypatch.setattr(cli, "VERBS", {
        "ok": "fake_verbs:ok", "bad": ("fake_verbs:bad", "fails"), "parse": "fake_verbs:parse",
        "gone": "mmreason.no_such_module:main", "dep": "fake_verb_dep:main", "noattr": "fake_verbs:nothing",
    })
    assert cli.main(["ok", "a", "--b"]) == 3 and "args ['a', '--b']" in capsys.readouterr().out
    assert cli.main(["bad"]) == 2 and "mmreason bad: error: run.yaml: grpo.lr" in capsys.readouterr().err
    assert cli.main(["parse", "--nope"]) == 2 and "unrecognized arguments" in capsys.readouterr().err
    assert cli.main(["parse", "--help"]) == 0
    capsys.readouterr()
    assert cli.main(["gone"]) == 2 and "not part of this installation" in capsys.readouterr().err
    assert cli.main(["dep"]) == 2 and "surely_not_installed_pkg_321" in capsys.readouterr().err
    assert cli.main(["noattr"]) == 2 and "does not exist" in capsys.readouterr().err


def _one_line_error(out: subprocess.CompletedProcess, *needles: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert all(n in last for n in needles), last


def test_a_converter_without_its_source_file_is_a_one_line_error(tmp_path):
    out = run_cli("build", "convert_screenspot", "--out", str(tmp_path / "ss"), "--n", "0",
                  "--set", "src=screenspot_mobile.json", cwd=tmp_path)
    _one_line_error(out, "convert_screenspot", f"src={tmp_path / 'screenspot_mobile.json'} does not exist",
                    "--set src=PATH")
    assert not (tmp_path / "ss").exists()


def test_a_missing_model_or_unknown_tiny_family_is_a_one_line_error(tmp_path):
    from mmreason.schema import write_jsonl

    write_jsonl([{"id": "q0", "task": "vqa", "source": "s", "answer": "red", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Colour?"}]}]}], tmp_path / "d.jsonl")
    _one_line_error(run_cli("demo", "grounded_chat", "--model", str(tmp_path / "ckpt"), "--port", "1"),
                    "mmreason demo: error:", f"{str(tmp_path / 'ckpt')!r} is not a checkpoint directory")
    _one_line_error(run_cli("demo", "spatial_3d", "--model", "tiny:qwen9"), "unknown tiny family 'qwen9'")
    _one_line_error(run_cli("eval", "--model", "tiny:qwen9", "--data", str(tmp_path), "--task", "vqa",
                            "--out", str(tmp_path / "ev")), "mmreason eval: error:", "unknown tiny family")
