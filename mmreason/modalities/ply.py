"""PLY files checked (and ASCII ones read) here, because Open3D reports neither a cut nor a bad file.

Open3D fills the missing vertices of a cut file, and on an unreadable ASCII line (a stray word, an
``inf``) it prints "Read PLY failed" to stderr and still returns every vertex the header declared, the
unread ones uninitialised memory. So the header is read here, a binary body's size is checked against
it, and an ASCII body is parsed here with numpy: a value that does not parse is an error naming the
vertex, never a point.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmreason.errors import MediaError

_SIZES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
          "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}
_COLOUR_NAMES = (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue"))


@dataclass(frozen=True)
class PlyHeader:
    """What a PLY header declares: format, where the body starts, and each element's properties."""

    fmt: str
    body_start: int
    elements: tuple[tuple[str, int, tuple[tuple[str, str], ...]], ...]  # (name, count, ((type, name), ...))

    def vertex(self) -> tuple[int, int, tuple[tuple[str, str], ...]]:
        """(ASCII lines before the vertices, vertex count, vertex properties); a list's type is 'list'."""
        before = 0
        for name, count, props in self.elements:
            if name == "vertex":
                return before, count, props
            before += count
        return before, 0, ()


def read_header(path: Path) -> PlyHeader | None:
    """The header of a PLY file, or None when the file does not start like one (Open3D then decides)."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0 or head.find(b"\n", end) < 0:
        return None
    fmt, elements = "", []
    for line in head[:end].decode("ascii", "replace").splitlines():
        words = line.split()
        if words[:1] == ["format"] and len(words) > 1:
            fmt = words[1]
        elif words[:1] == ["element"] and len(words) > 2 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[:1] == ["property"] and elements and len(words) > 2:
            elements[-1][2].append(("list" if words[1] == "list" else words[1], words[-1]))
    return PlyHeader(fmt, head.index(b"\n", end) + 1, tuple((n, c, tuple(p)) for n, c, p in elements))


def truncation(path: Path, header: PlyHeader) -> str | None:
    """Why the file holds fewer vertices than its header declares, or None (a list property in the
    vertex element makes binary sizes unknowable: then nothing is checked)."""
    _, count, props = header.vertex()
    if any(t == "list" for t, _ in props):
        return None
    if header.fmt.startswith("binary"):
        row = sum(_SIZES.get(t, 0) for t, _ in props)
        have = (path.stat().st_size - header.body_start) // max(row, 1)
    else:
        with open(path, "rb") as fh:
            fh.seek(header.body_start)
            have = sum(1 for line in fh if line.strip())
    return f"truncated: header declares {count} points, file holds {have}" if have < count else None


def read_ascii(path: Path, header: PlyHeader, sample_id: object) -> tuple[np.ndarray, np.ndarray | None]:
    """xyz (float64) and colours (as stored: integers 0-255 or floats) of an ASCII PLY file."""
    before, count, props = header.vertex()
    names = [n for _, n in props]
    if any(t == "list" for t, _ in props) or not {"x", "y", "z"} <= set(names):
        raise MediaError(path, f"ASCII PLY vertices need scalar x, y, z properties, header has {names}",
                         sample_id=sample_id)
    with open(path, "rb") as raw:
        raw.seek(header.body_start)
        text = io.TextIOWrapper(raw, encoding="latin-1")
        for _ in range(before):
            text.readline()
        try:
            values = np.loadtxt(text, dtype=np.float64, max_rows=count, ndmin=2, comments=None)
        except ValueError as exc:  # numpy names the row and column that did not parse
            raise MediaError(path, f"unreadable vertex data ({exc})", sample_id=sample_id) from None
    if values.shape != (count, len(names)):
        raise MediaError(path, f"vertex data has shape {values.shape}, header declares {count} x "
                         f"{len(names)}", sample_id=sample_id)
    xyz = values[:, [names.index(a) for a in "xyz"]]
    for trio in _COLOUR_NAMES:
        if set(trio) <= set(names):
            rgb = values[:, [names.index(c) for c in trio]]
            integral = all(not props[names.index(c)][0].startswith(("float", "double")) for c in trio)
            return xyz, (rgb.astype(np.int64) if integral else rgb)
    return xyz, None
