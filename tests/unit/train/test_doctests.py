"""The `>>>` examples in the training modules' docstrings hold."""

import doctest
import importlib

import pytest

MODULES = ["mmreason.train.common", "mmreason.train.grpo", "mmreason.train.logging", "mmreason.train.scoring"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
