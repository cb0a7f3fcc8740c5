"""Rows and media the schema tests share: a small valid grounding row and PNG bytes."""

import io

import pytest
from PIL import Image


def _row(**over):
    row = {
        "id": "s1", "task": "grounding", "source": "unit",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Think first."}]},
            {"role": "user", "content": [{"type": "image", "image": "a.png"},
                                         {"type": "text", "text": "Where is the dog?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "<answer>[1,2,30,40]</answer>"}]},
        ],
        "answer": "[1,2,30,40]",
        "boxes": [{"label": "dog", "box": [1, 2, 30, 40], "image": 0}],
    }
    row.update(over)
    return row


def _png(color=(255, 0, 0), size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def make_row():
    """Factory: `make_row(**fields)` -> a fresh raw grounding row (one image, one dog box), with `fields`."""
    return _row


@pytest.fixture
def png():
    """Factory: `png(color, size)` -> the bytes of a one-colour PNG."""
    return _png
