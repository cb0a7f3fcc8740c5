"""Reading source columns as they come from users' files: lists, numpy arrays, single items, JSON values.

The base that `mmreason.schema.readers` and `mmreason.schema.swift` share, so neither imports the other
for these. A column read by pandas from Parquet is a numpy array, one read from JSON a list, and a
single item may stand where a list is expected: these helpers take all three.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from PIL import Image


def as_list(value: Any) -> list:
    """A column as a list: None -> [], one item -> [item]; numpy arrays (pandas-read parquet) -> list.

    >>> as_list(None), as_list("a.png"), as_list(("a.png", "b.png"))
    ([], ['a.png'], ['a.png', 'b.png'])
    """
    if value is None:
        return []
    if isinstance(value, (str, bytes, bytearray, Mapping, Path, Image.Image)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def is_sequence(value: Any) -> bool:
    """A list-like value (list, tuple, numpy array), not a string, bytes or a mapping.

    >>> is_sequence([640, 480]), is_sequence("640")
    (True, False)
    """
    return not isinstance(value, (str, bytes, Mapping)) and hasattr(value, "__len__") \
        and hasattr(value, "__iter__")


def json_default(value: Any) -> Any:
    """`json.dumps`' ``default=`` for reader columns: numpy values become lists/scalars, paths strings."""
    if hasattr(value, "tolist"):  # numpy arrays and scalars, as pandas-read parquet gives them
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
