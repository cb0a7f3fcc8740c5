"""benchmarks/markdown_sections.py: a benchmark's marked section of RESULTS.md / LEARNING.md is replaced in
place or appended, every byte outside it (blank lines included) stays, and rewriting a section with the
same text leaves the file as it was: the shipped RESULTS.md and LEARNING.md, section by section, through
the writers the benchmarks call."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the benchmarks are scripts, not a package
try:
    import markdown_sections as ms
finally:
    sys.path.remove(str(BENCHMARKS))  # its rewards.py, rollout.py must not shadow anything else

A = ("<!-- a:start -->", "<!-- a:end -->")
B = ("<!-- b:start -->", "<!-- b:end -->")
DOC = ("# Benchmark results\n\nIntro.\n\n<!-- a:start -->\nold a\n<!-- a:end -->\n\n\n"
       "<!-- b:start -->\nold b\n<!-- b:end -->\n")


def test_a_section_is_replaced_in_place_and_nothing_else_moves():
    new = ms.replace_section(DOC, "<!-- a:start -->\nnew a\nsecond line\n<!-- a:end -->\n", *A)
    assert new == DOC.replace("old a", "new a\nsecond line")  # the two blank lines after it stay two
    new = ms.replace_section(DOC, "<!-- b:start -->\nnew b\n<!-- b:end -->", *B)  # no final line break
    assert new == DOC.replace("old b", "new b")


def test_a_new_section_is_appended_after_one_blank_line(tmp_path):
    c = "<!-- c:start -->\nc\n<!-- c:end -->\n"
    assert ms.replace_section(DOC + "\n\n", c, "<!-- c:start -->", "<!-- c:end -->") == DOC + "\n" + c
    assert ms.replace_section("", c, "<!-- c:start -->", "<!-- c:end -->") == c
    missing = tmp_path / "RESULTS.md"
    ms.write_section(missing, c, "<!-- c:start -->", "<!-- c:end -->", new_file=ms.RESULTS_TITLE)
    assert missing.read_text() == "# Benchmark results\n\n" + c


def test_two_writes_give_the_same_file(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(DOC)
    section = "<!-- a:start -->\nnew a\n<!-- a:end -->\n"
    ms.write_section(path, section, *A)
    once = path.read_text()
    ms.write_section(path, section, *A)
    assert path.read_text() == once and once.count("<!-- a:start -->") == 1
    assert "<!-- a:end -->\n\n\n<!-- b:start -->" in once  # the blank lines between sections kept
    appended = "<!-- c:start -->\nc\n<!-- c:end -->\n"
    ms.write_section(path, appended, "<!-- c:start -->", "<!-- c:end -->")
    twice = path.read_text()
    ms.write_section(path, appended, "<!-- c:start -->", "<!-- c:end -->")
    assert path.read_text() == twice == once + "\n" + appended


def test_broken_markers_are_errors_naming_the_file(tmp_path):
    path = tmp_path / "LEARNING.md"
    path.write_text("# Learning\n\n<!-- a:start -->\nno end marker\n")
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: '<!-- a:start -->' has no '<!-- a:end -->'"):
        ms.write_section(path, "<!-- a:start -->\nx\n<!-- a:end -->\n", *A)
    with pytest.raises(ValueError, match="must open with '<!-- a:start -->'"):
        ms.replace_section(DOC, "new a\n<!-- a:end -->\n", *A)
    assert path.read_text() == "# Learning\n\n<!-- a:start -->\nno end marker\n"  # nothing written


def sections(text: str) -> list[tuple[str, str, str]]:
    """(start, end, whole section) of every marked section: ``<!-- x:start -->`` .. ``<!-- x:end -->``
    (RESULTS.md) and ``<!-- learning.py:x -->`` .. ``<!-- /learning.py:x -->`` (LEARNING.md)."""
    found = []
    for match in re.finditer(r"<!-- (?:([\w:.-]+):start|(learning\.py:[\w:.-]+)) -->", text):
        start = match.group(0)
        end = f"<!-- {match.group(1)}:end -->" if match.group(1) else f"<!-- /{match.group(2)} -->"
        found.append((start, end, text[match.start():text.index(end, match.end()) + len(end)]))
    return found


@pytest.mark.parametrize("name", ["RESULTS.md", "LEARNING.md"])
def test_rewriting_every_shipped_section_with_its_own_text_changes_nothing(tmp_path, name):
    shipped = (BENCHMARKS / name).read_text(encoding="utf-8")
    found = sections(shipped)
    assert len(found) >= 5, name
    path = tmp_path / name
    shutil.copy(BENCHMARKS / name, path)
    for start, end, section in found:
        ms.write_section(path, section, start, end)
        assert path.read_bytes() == (BENCHMARKS / name).read_bytes(), start


def test_the_benchmarks_own_writers_leave_a_rewritten_section_as_it_was(tmp_path, monkeypatch):
    """grpo_step's writer (also grpo_tool_step's) builds its markers from a configuration key and takes the
    text between them; learning_report's builds them from the method and seed."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import grpo_step
    import learning_report

    results = tmp_path / "RESULTS.md"
    shutil.copy(BENCHMARKS / "RESULTS.md", results)
    shipped = results.read_text(encoding="utf-8")
    for key in ("tiny-cpu", "tools-tiny-cpu"):
        start, end = f"<!-- grpo-step-benchmark:{key}:start -->", f"<!-- grpo-step-benchmark:{key}:end -->"
        grpo_step.write_section(shipped.split(start + "\n")[1].split(end)[0], results, key)
        assert results.read_text(encoding="utf-8") == shipped, key
    learning = tmp_path / "LEARNING.md"
    shutil.copy(BENCHMARKS / "LEARNING.md", learning)
    shipped = learning.read_text(encoding="utf-8")
    start, end = "<!-- learning.py:grit:seed0 -->", "<!-- /learning.py:grit:seed0 -->"
    section = start + shipped.split(start)[1].split(end)[0] + end + "\n"
    learning_report.write_section(learning, "grit", 0, section)
    assert learning.read_text(encoding="utf-8") == shipped
