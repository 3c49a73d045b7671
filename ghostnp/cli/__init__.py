"""The ``ghostnp`` command (``python -m ghostnp``): classify, evaluate, models, summary, convert, download,
cache, info, bench. Each subcommand's ``--help`` has examples."""

from .main import main

__all__ = ["main"]
