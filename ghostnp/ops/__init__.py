"""The op table: one set of op names, two implementations.

``numpy_ops`` is the reference (always available); ``numba_ops`` has the same signatures with jitted loops
and is imported only when asked for. The model code calls ops through a table, so a backend is a choice
of table, never a second copy of the network.

Backends: ``"numpy"``, ``"numba"``, ``"auto"`` (numba when importable, else numpy). ``None`` reads the
environment variable ``GHOSTNP_BACKEND`` and defaults to ``"numpy"``.
"""

import importlib
import os

from . import numpy_ops
from .names import FUSED_OP_NAMES, OP_NAMES  # noqa: F401  (re-exported: ghostnp.ops.OP_NAMES)

BACKENDS = ("numpy", "numba", "auto")


def numba_available():
    """True when numba can be imported (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def resolve_backend(backend=None):
    """Turn ``None`` / ``"auto"`` / a name into the concrete backend name, checking it."""
    if backend is None:
        backend = os.environ.get("GHOSTNP_BACKEND", "numpy") or "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "numba" if numba_available() else "numpy"
    if backend == "numba" and not numba_available():
        raise ImportError(
            "the 'numba' backend needs numba, which is not installed: pip install 'ghostnp[fast]' "
            "(or use backend='numpy')"
        )
    return backend


def get_ops(backend=None):
    """The op table (a module whose attributes are the ops in ``OP_NAMES`` and ``FUSED_OP_NAMES``)."""
    name = resolve_backend(backend)
    if name == "numpy":
        return numpy_ops
    from . import numba_ops

    return numba_ops
