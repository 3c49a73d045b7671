"""Shared fixtures: every op, block and network test runs once per available backend.

``backend`` is ``"numpy"`` always, plus ``"numba"`` when numba is installed and the Numba op table exists,
so that both tables are held to the same specification. ``ops`` is that backend's op table.
"""

import importlib.util

import pytest

try:  # the PyTorch reference runs on one thread: a spinning 2-thread pool stalls whenever the machine is busy
    import torch

    torch.set_num_threads(1)
except ImportError:
    pass

from ghostnp.ops import get_ops, numba_available


def available_backends():
    """The backends this machine can run: ["numpy"] or ["numpy", "numba"]."""
    backends = ["numpy"]
    if numba_available() and importlib.util.find_spec("ghostnp.ops.numba_ops") is not None:
        backends.append("numba")
    return backends


@pytest.fixture(scope="session", params=available_backends())
def backend(request):
    """A backend name for ``ghostnp.ops.get_ops`` / ``ghostnp.create_model(..., backend=)``."""
    return request.param


@pytest.fixture(scope="session")
def ops(backend):
    """The op table of ``backend`` (a module with the ops of ``ghostnp.ops.OP_NAMES``)."""
    return get_ops(backend)
