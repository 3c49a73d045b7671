"""``python -m ghostnp``: the ghostnp command."""

import sys

from .cli import main

sys.exit(main())
