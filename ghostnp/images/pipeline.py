"""Decode and preprocess images in worker processes while the caller runs the network: in order, bounded.

::

    for batch in preprocessed_batches(paths, config, batch_size=32, workers=2):
        logits = model(batch.inputs)          # (B, 1000): the network runs here while the workers decode ahead
        ...                                   # batch.positions: which paths; batch.failures: what could not be read

Each batch of file names is one task for a pool of ``workers`` processes (``concurrent.futures``); the task
decodes and preprocesses its images with :func:`~ghostnp.images.preprocess.preprocess` and sends back one
(B, 3, S, S) float32 array. At most ``prefetch`` batches are in flight and they are handed out in input order,
so memory stays flat however many images there are (a few batches, about 20 MB each at batch 32). A file that
cannot be read is reported in the batch's ``failures`` with the reason and skipped; a worker process that dies
(killed, out of memory) stops the run with :class:`PipelineError` instead of leaving it waiting.

Processes, not threads. Pillow's decoders and resize release the GIL, and so do the Numba kernels, but the
network's op-by-op dispatch and the preprocessing's small NumPy steps are Python: threads would share one GIL
with the forward pass's own threads (one per core, ``GhostNet(threads=)``), while a process decodes beside
the network whatever it holds, and a decoder that crashes (a bug on a hostile file) ends the run with a clear
error instead of killing the caller. Measured on the shared project machine with other jobs running
(``benchmarks/pipeline.py --threads``), the two were within the noise of each other (40.0 and 41.0 images/s).
Processes start with the platform's default method (``fork`` on Linux; ``spawn`` on macOS and Windows, where
a script must call this from under ``if __name__ == "__main__":``, as with any process pool).
"""

import os
from collections import deque
from typing import NamedTuple

import numpy as np

from ..cores import usable_cores
from ..errors import GhostnpError, ImageError
from .preprocess import preprocess

WORKER_NICENESS = 4
"""How much lower than the caller's the workers' priority is. On a core it shares with the network, a worker at
nice 4 gets about 30 % of the time (Linux's scheduler weighs nice 4 at 423 against 1024 for nice 0): more than
decoding needs to keep pace (about 6 ms of decoding per 26 ms of forward pass, numba, batch 32), less than an
equal share, so the network's threads are not preempted half of the time. When the network waits for a batch,
its cores are idle and the workers get all of them. At nice 10 the rate varied more on the busy shared project
machine (18 to 30 images/s, against 23 to 29 at nice 0): a worker that yields to everyone starves when other
programs keep the cores busy."""


class PipelineError(GhostnpError, RuntimeError):
    """A worker process decoding images died (killed, out of memory), so the run cannot finish."""


class PreprocessedBatch(NamedTuple):
    """One batch of network inputs and what happened to each image of it.

    Attributes
    ----------
    positions : list of int
        Where each row of ``inputs`` came from: positions in the sequence given to :func:`preprocessed_batches`.
    inputs : numpy.ndarray, shape (B, 3, S, S), float32
        The preprocessed images, B = ``len(positions)`` (0 when every image of the batch failed).
    failures : list of (int, str)
        (position, reason) of each image that could not be read; the reason names the file.
    """

    positions: list
    inputs: np.ndarray
    failures: list


def lower_priority(niceness=WORKER_NICENESS):
    """Run this process at a lower priority (``os.nice``), where the OS allows: a worker's initializer."""
    if hasattr(os, "nice"):
        try:
            os.nice(niceness)
        except OSError:  # not permitted here: decode at normal priority
            pass


def preprocess_batch(sources, config, offset=0):
    """Preprocess ``sources`` with ``config``: one worker task, also run in-process when ``workers=0``.

    Parameters
    ----------
    sources : sequence of str, os.PathLike, PIL.Image.Image or numpy.ndarray
        Anything :func:`~ghostnp.images.preprocess.preprocess` accepts.
    config : ghostnp.weights.pretrained.PretrainedConfig
        The evaluation transform (input size S, crop_pct, interpolation, mean, std).
    offset : int
        Position of ``sources[0]`` in the whole sequence.

    Returns
    -------
    PreprocessedBatch
        ``inputs`` of shape (B, 3, S, S) for the B sources that could be read, in order.
    """
    arrays, positions, failures = [], [], []
    for position, source in enumerate(sources, offset):
        try:
            arrays.append(preprocess(source, config=config))  # (1, 3, S, S)
            positions.append(position)
        except (ImageError, OSError) as error:
            failures.append((position, str(error)))
    _, size, _ = config.input_size
    inputs = np.concatenate(arrays) if arrays else np.empty((0, 3, size, size), np.float32)  # (B, 3, S, S)
    return PreprocessedBatch(positions, inputs, failures)


def preprocessed_batches(sources, config, *, batch_size=32, workers=None, prefetch=None, threads=False):
    """The preprocessed images of ``sources``, batch by batch, in order, decoded ``prefetch`` batches ahead.

    Parameters
    ----------
    sources : sequence of str, os.PathLike, PIL.Image.Image or numpy.ndarray
        The images (paths are best: only the name travels to the worker).
    config : ghostnp.weights.pretrained.PretrainedConfig
        The evaluation transform.
    batch_size : int
        Images per batch (per worker task).
    workers : int, optional
        Worker processes; 0 decodes in this process, one batch at a time, when the batch is asked for.
        Default: one per usable core when there is more than one batch, else 0.
    prefetch : int, optional
        Most batches in flight at once (decoded or being decoded, not yet taken); default ``2 * workers``.
    threads : bool
        Decode in ``workers`` threads of this process instead (slower beside the Numba backend; see above).

    Yields
    ------
    PreprocessedBatch
        ``inputs`` (B, 3, S, S) float32, B <= batch_size, for consecutive slices of ``sources``.

    Raises
    ------
    PipelineError
        If a worker process dies.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if workers is None:
        workers = usable_cores() if len(sources) > batch_size else 0
    if workers < 0:
        raise ValueError(f"workers must be 0 (decode in this process) or more, got {workers}")
    starts = range(0, len(sources), batch_size)
    if workers == 0:
        for start in starts:
            yield preprocess_batch(sources[start : start + batch_size], config, start)
        return
    import multiprocessing  # the process machinery is loaded when a pool is first used, not by ``import ghostnp``
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    prefetch = max(1, 2 * workers if prefetch is None else prefetch)
    if threads:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="ghostnp-decode")
    else:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(), initializer=lower_priority)
    pending = deque()  # futures of the batches in flight, oldest first
    next_start = iter(starts)
    try:
        while True:
            while len(pending) < prefetch:
                start = next(next_start, None)
                if start is None:
                    break
                pending.append(pool.submit(preprocess_batch, sources[start : start + batch_size], config, start))
            if not pending:
                return
            yield pending.popleft().result()
    except BrokenProcessPool as error:
        raise PipelineError(
            "a worker process decoding images died (it was killed, or ran out of memory), so the run is stopped. "
            "Run again with fewer workers or a smaller batch size, or with workers=0 (--workers 0) to decode "
            "in this process."
        ) from error
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
