"""Progress bars for long work (downloads, folders of images, evaluation, training): tqdm on stderr.

A bar is drawn only when it is asked for and stderr is a terminal, so ``--json`` output, pipes, logs and
the tests stay clean. tqdm is imported only when a bar is actually drawn: ``import ghostnp`` stays light.

>>> with progress_bar(3, desc="images", enabled=False) as bar:
...     for _ in range(3):
...         bar.update(1)
"""

import sys


class SilentBar:
    """What :func:`progress_bar` returns when nothing is drawn: the same methods, doing nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def update(self, n=1):
        pass

    def set_postfix_str(self, s="", refresh=True):
        pass

    def close(self):
        pass


def progress_bar(total=None, *, desc=None, unit="it", enabled=True, **tqdm_options):
    """A tqdm bar on stderr (rate and time left included) when ``enabled`` and stderr is a terminal.

    Parameters
    ----------
    total : int, optional
        The number of steps (bytes, images, batches); None when unknown.
    desc : str, optional
        The label in front of the bar.
    unit : str
        What one step is ('B', 'img', 'batch').
    enabled : bool
        False for quiet modes (``--json``, ``progress=False``).
    **tqdm_options
        Passed to ``tqdm.tqdm`` (e.g. ``unit_scale=True`` for bytes).

    Returns
    -------
    tqdm.tqdm or SilentBar
        Use it as a context manager and call ``update(n)``.
    """
    if not (enabled and sys.stderr.isatty()):
        return SilentBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=True, **tqdm_options)
