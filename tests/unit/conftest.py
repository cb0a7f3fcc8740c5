"""Fixtures shared by the unit tests."""

import pytest


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    """Factory: `processor("qwen2_5_vl") -> AutoProcessor` of the tiny checkpoint, loaded once per module."""
    from transformers import AutoProcessor

    loaded = {}

    def get(family="qwen2_5_vl"):
        if family not in loaded:
            loaded[family] = AutoProcessor.from_pretrained(tiny_model_dir(family))
        return loaded[family]

    return get
