"""`mmreason build BUILDER --help` lists the builder's own ``--set`` options with their defaults, read from
where each builder declares them (so a new option shows up without a second list to keep)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmreason.cli as cli
from mmreason.data_builders import BUILDERS, get_builder
from mmreason.data_builders.converters import COMMON, FORMATS

REPO = Path(__file__).resolve().parents[3]


def _declared(name: str) -> dict:
    """The options as the builder's module declares them (what it resolves `--set` against)."""
    if name.startswith("convert_"):
        return {"src": None, **COMMON, **FORMATS[name[len("convert_"):]].defaults}
    return dict(sys.modules[get_builder(name).__module__].DEFAULTS)


def _help(capsys, name: str) -> str:
    assert cli.main(["build", name, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_help_lists_every_option_of_every_builder_with_its_default(capsys, name):
    out = _help(capsys, name)
    for key, default in _declared(name).items():
        assert f"  {key} = {json.dumps(default)}" in out, (key, out)


def test_image_scenes_help_from_the_shell_names_presets_and_known_values():
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "mmreason", "build", "image_scenes", "--help"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "image_scenes options" in text
    for line in ("  preset = null", "  refer_count = [2, 4]", '  trace = "grit"', "  question_first = false"):
        assert line in text, line
    assert "known: quickstart" in text  # the presets by name
    assert "refer" in text.split("  qtypes = ")[1].split("\n")[1]  # every qtype it knows, not just the default mix


def test_converter_help_lists_src_and_bare_build_help_says_how(capsys):
    assert "  src = null" in _help(capsys, "convert_screenspot")
    assert cli.main(["build", "--help"]) == 0
    assert "Name a builder before --help" in capsys.readouterr().out
