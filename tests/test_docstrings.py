"""Every example in the docstrings runs and prints what it says (docs that run)."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import ghostnp
import weights_converter


def modules():
    for package in (ghostnp, weights_converter):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):  # running it would start the command line
                yield info.name
    yield "ghostnp"


@pytest.mark.parametrize("name", sorted(modules()))
def test_docstring_examples(name, tmp_path, monkeypatch):
    if name in ("ghostnp.teaching.viz", "ghostnp.teaching.notebook"):
        pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(
        module,
        extraglobs={"np": np, "ghostnp": ghostnp},
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        report=True,
    )
    assert result.failed == 0
