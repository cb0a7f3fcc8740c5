"""A benchmark's own section of a Markdown results file (RESULTS.md, LEARNING.md): the lines from a start
marker to an end marker, which the benchmark rewrites on each run. Everything outside that span stays
byte for byte, blank lines included, so a section rewritten with the same text leaves the file unchanged
and other sections never move."""

from __future__ import annotations

from pathlib import Path

RESULTS_TITLE = "# Benchmark results\n"  # what a missing RESULTS.md starts as


def replace_section(document: str, section: str, start: str, end: str, *, where: str = "the document") -> str:
    """`document` with the span from its first `start` marker through the first `end` marker after it
    replaced by `section`, which opens with `start` and closes with `end` (a final line break is allowed and
    dropped: the document's own text after the end marker is kept). A document without `start` gets the
    section appended after one blank line (an empty one: the section alone). A `start` with no `end`
    after it is an error naming `where`: appending would leave two start markers, and the next rewrite
    would swallow everything between them."""
    body = section.rstrip("\n")
    if not (body.startswith(start) and body.endswith(end)):
        raise ValueError(f"{where}: the new section must open with {start!r} and close with {end!r}")
    at = document.find(start)
    if at < 0:
        head = document.rstrip("\n")
        return (head + "\n\n" if head else "") + body + "\n"
    stop = document.find(end, at + len(start))
    if stop < 0:
        raise ValueError(f"{where}: {start!r} has no {end!r} after it; mend the markers by hand")
    return document[:at] + body + document[stop + len(end):]


def write_section(path: Path, section: str, start: str, end: str, *, new_file: str = "") -> None:
    """Replace (or append) `section` in the Markdown file at `path` as `replace_section` does; a missing
    file starts as `new_file`. The file is written only when its text changes."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else None
    new = replace_section(new_file if old is None else old, section, start, end, where=str(path))
    if new != old:
        path.write_text(new, encoding="utf-8")
