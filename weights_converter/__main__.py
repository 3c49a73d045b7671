"""``python -m weights_converter``: see ``weights_converter.cli``."""

from .cli import main

raise SystemExit(main())
