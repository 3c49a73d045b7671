"""What every teaching notebook does first: stay offline, use slide-sized figures, and load the official
weights when they are in the cache, saying clearly when it runs on random weights instead.

>>> FAST = ghostnp.notebook.setup()                                   # doctest: +SKIP
>>> model, pretrained = ghostnp.notebook.pretrained_or_random("ghostnetv2_100")   # doctest: +SKIP
"""

import os

from ..errors import CheckpointError, DownloadError
from ..weights.create import create_model

SLIDE_STYLE = {"font.size": 15, "axes.titlesize": 17, "figure.dpi": 80, "image.cmap": "viridis"}


def setup():
    """Make no network request from here on (``GHOSTNP_OFFLINE=1``), use slide-sized matplotlib fonts, and
    return True in fast mode (``GHOSTNP_NOTEBOOK_FAST=1``, set by the test suite: small inputs, few repeats)."""
    import matplotlib.pyplot as plt

    os.environ["GHOSTNP_OFFLINE"] = "1"
    plt.rcParams.update(SLIDE_STYLE)
    return os.environ.get("GHOSTNP_NOTEBOOK_FAST") == "1"


def pretrained_or_random(name, *, seed=0, note="", **model_options):
    """The model with its official ImageNet weights from the cache, else seeded random weights.

    Prints which one it is (and ``note`` after the random-weights warning). ``model_options`` (such as
    ``backend``) go to :func:`ghostnp.create_model`. Returns ``(model, pretrained)``.
    """
    from ..weights.hub import cache_dir

    try:
        model = create_model(name, pretrained=True, **model_options)
        print(f"Using the official ImageNet weights of {name} from {cache_dir()}.")
        return model, True
    except (DownloadError, CheckpointError) as error:
        print(f"NOTE: the official weights of {name} are not in the cache, so this runs on RANDOM weights.")
        for line in note.splitlines():
            print(f"      {line}")
        print(f"      To use the real weights, run once (online): ghostnp.create_model({name!r}, pretrained=True)")
        print(f"      ({type(error).__name__}: {str(error).splitlines()[0]})")
        return create_model(name, seed=seed, **model_options), False
