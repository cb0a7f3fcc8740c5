"""resolve_callable / resolve_name: `module:attr` and `file.py:attr` specs, with errors naming the spec."""

from __future__ import annotations

import functools
import pickle
import textwrap

import pytest

from mmreason.errors import RecipeError
from mmreason.families import get_family
from mmreason.registry import resolve_callable, resolve_name, resolve_object


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(RecipeError) as info:
        fn(*args, **kwargs)
    return str(info.value)


@pytest.fixture
def reward_file(tmp_path):
    path = tmp_path / "rewards_here.py"
    path.write_text(textwrap.dedent("""\
        LIMIT = 3

        def length(completions, **kwargs):
            "Reward = number of characters."
            return [float(len(c)) for c in completions]

        class Scorer:
            @staticmethod
            def score(completions, **kwargs):
                return [0.5 for _ in completions]
    """))
    return path


def test_module_spec_and_dotted_attribute():
    assert resolve_callable("mmreason.families:get_family") is get_family
    assert resolve_callable("functools:partial.__call__") is functools.partial.__call__


def test_file_spec_loads_once_and_pickles(reward_file):
    fn = resolve_callable(f"{reward_file}:length")
    assert fn(["ab", "abcd"]) == [2.0, 4.0]
    assert resolve_callable(f"{reward_file}:length") is fn  # same module object the second time
    assert resolve_callable(f"{reward_file}:Scorer.score")(["x"]) == [0.5]
    assert pickle.loads(pickle.dumps(fn)) is fn  # bound later with functools.partial, which must pickle


def test_relative_file_spec_is_read_from_the_working_directory(reward_file, monkeypatch):
    monkeypatch.chdir(reward_file.parent)
    assert resolve_callable("./rewards_here.py:length")(["abc"]) == [3.0]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("no_colon_here", "expected 'package.module:attr'"),
        ("mmreason.families:", "expected 'package.module:attr'"),
        ("mmreason.nonexistent_mod:fn", "no module named 'mmreason.nonexistent_mod'"),
        ("mmreason.families:get_famly", "did you mean 'get_family'"),
        ("mmreason.families:FAMILIES", "dict object is not callable"),
        ("missing/dir/x.py:fn", "does not exist"),
    ],
)
def test_errors_name_the_spec(spec, fragment):
    msg = error_of(resolve_callable, spec)
    assert repr(spec) in msg and fragment in msg


def test_file_that_fails_to_run_is_reported(tmp_path):
    bad = tmp_path / "bad_reward.py"
    bad.write_text("import math\nraise RuntimeError('boom at import')\n")
    msg = error_of(resolve_callable, f"{bad}:fn")
    assert "RuntimeError: boom at import" in msg and str(bad) in msg
    dep = tmp_path / "needs_dep.py"
    dep.write_text("import surely_not_installed_pkg_123\n")
    assert "surely_not_installed_pkg_123" in error_of(resolve_callable, f"{dep}:fn")


def test_module_whose_dependency_is_missing_names_the_dependency(tmp_path, monkeypatch):
    (tmp_path / "uses_missing_dep.py").write_text("import surely_not_installed_pkg_456\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    msg = error_of(resolve_callable, "uses_missing_dep:fn")
    assert "'surely_not_installed_pkg_456', which is not installed" in msg


def test_resolve_object_allows_data(reward_file):
    assert resolve_object(f"{reward_file}:LIMIT") == 3


def test_resolve_name(reward_file):
    reg = {"len": len, "lazy": f"{reward_file}:length"}
    assert resolve_name("len", reg) is len
    assert resolve_name("lazy", reg)(["a"]) == [1.0]
    assert resolve_name("mmreason.families:get_family", reg) is get_family
    msg = error_of(resolve_name, "lenn", reg, kind="reward")
    assert "unknown reward 'lenn'" in msg and "did you mean 'len'" in msg and "known: lazy, len" in msg
