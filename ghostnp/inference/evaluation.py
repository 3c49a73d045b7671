"""``evaluate``: the top-1 / top-5 accuracy of a model on a labelled image set, as the paper reports it.

>>> result = ghostnp.evaluate("imagenet/val", weights="ck_ghostnetv2_10.pth.tar")   # doctest: +SKIP
>>> result.top1, result.top5                                                     # doctest: +SKIP
(75.186, 92.334)

The set is read in any layout of :mod:`ghostnp.images.datasets`; images are decoded and preprocessed with
timm's evaluation transform by worker processes (:mod:`ghostnp.images.pipeline`) while this process runs the
forward passes. An image is correct at k when fewer than k classes have a strictly larger logit than its
true class (the true class is among the k largest logits).
"""

import time
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from ..images.datasets import find_labelled_images
from ..images.labels import imagenet_classes
from ..images.pipeline import preprocessed_batches
from ..progress import progress_bar
from .classification import DEFAULT_MODEL, eval_config, load_model


@dataclass(frozen=True)
class ClassAccuracy:
    """The accuracy on the images of one class.

    Attributes
    ----------
    index, wnid, name : the class (``ghostnp.images.labels.imagenet_classes()[index]``).
    count : int, images of this class scored.
    top1, top5 : float, percent of them whose class is the first / among the first five predictions.
    """

    index: int
    wnid: str
    name: str
    count: int
    top1: float
    top5: float


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` measured.

    Attributes
    ----------
    top1, top5 : float
        Percent of the scored images whose class is the first / among the first five predictions.
    count : int
        Images scored (read and run through the network).
    failed : list of (str, str)
        (path, reason) of each image that could not be read; left out of the score.
    images_per_second : float
        Images handled (scored and failed) per second of wall time.
    seconds : float
        Wall time of the run: decoding, forward passes and scoring (listing the folder and loading the
        model are not counted).
    per_class : dict of int to ClassAccuracy
        The accuracy of each class that has images, by class index.
    model, backend, layout : str
        The model name, the backend that ran it, and the layout the folder was read as.
    """

    top1: float
    top5: float
    count: int
    failed: list
    images_per_second: float
    seconds: float
    per_class: dict = field(repr=False)
    model: str = DEFAULT_MODEL
    backend: str = "numpy"
    layout: str = ""


def true_class_ranks(logits, labels):
    """How many classes score strictly higher than the true class: 0 is a top-1 hit, < 5 a top-5 hit.

    Parameters
    ----------
    logits : numpy.ndarray, shape (N, K)
    labels : numpy.ndarray of int, shape (N,)

    Returns
    -------
    numpy.ndarray of int, shape (N,)
    """
    true_logit = logits[np.arange(len(labels)), labels]  # (N,)
    return (logits > true_logit[:, np.newaxis]).sum(axis=1)  # (N,)


def accuracy_from_ranks(ranks, labels, failed=(), *, seconds=0.0, model=DEFAULT_MODEL, backend="numpy", layout=""):
    """An :class:`EvaluationResult` from the true-class rank of each scored image.

    Parameters
    ----------
    ranks, labels : sequences of int, length N (see :func:`true_class_ranks`).
    failed : list of (path, reason).
    seconds : float, the wall time the run took.
    """
    ranks, labels = np.asarray(ranks, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    classes = imagenet_classes()
    per_class = {}
    for index in np.unique(labels):
        mine = ranks[labels == index]
        name = classes[index]
        per_class[int(index)] = ClassAccuracy(
            name.index, name.wnid, name.name, len(mine), _percent(mine < 1), _percent(mine < 5)
        )
    handled = len(ranks) + len(failed)
    return EvaluationResult(
        top1=_percent(ranks < 1),
        top5=_percent(ranks < 5),
        count=len(ranks),
        failed=list(failed),
        images_per_second=handled / seconds if seconds > 0 else 0.0,
        seconds=seconds,
        per_class=per_class,
        model=model,
        backend=backend,
        layout=layout,
    )


def _percent(hits):
    """100 * the fraction of True values; 0.0 for none."""
    return 100.0 * float(np.count_nonzero(hits)) / len(hits) if len(hits) else 0.0


def evaluate(
    root,
    model=DEFAULT_MODEL,
    *,
    weights=None,
    backend=None,
    labels=None,
    batch_size=32,
    workers=None,
    limit=None,
    progress=True,
):
    """Score a model on a labelled image set: top-1, top-5 and per-class accuracy over the 1000 classes.

    Parameters
    ----------
    root : str or os.PathLike
        Class folders named by WordNet id or index, or a flat folder with ``labels``
        (see :mod:`ghostnp.images.datasets`).
    model : str
        A model name (``ghostnp.list_models()``); its pretrained config gives the transform.
    weights : str or os.PathLike, optional
        A weights file; None loads the pretrained weights (downloading them once).
    backend : "numpy", "numba", "auto" or None (``GHOSTNP_BACKEND``).
    labels : str or os.PathLike, optional
        The labels file of a flat folder.
    batch_size : int
        Images per forward pass.
    workers : int, optional
        Processes decoding images beside the forward passes; 0 decodes in this process. Default: one per
        usable core, or 0 when the set fits in one batch.
    limit : int, optional
        Score only the first ``limit`` images in sorted order.
    progress : bool
        Draw a progress bar (images/s, time left) when stderr is a terminal.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    ghostnp.images.datasets.DatasetError
        If the folder or labels file is in no accepted layout (the message lists them).
    ghostnp.DownloadError
        If ``weights`` is None and the pretrained weights are not available.
    ghostnp.images.pipeline.PipelineError
        If a worker process dies.
    """
    dataset = find_labelled_images(root, labels, limit=limit)
    net = load_model(model, weights, backend)
    start = time.perf_counter()
    batches = preprocessed_batches(dataset.paths, eval_config(model), batch_size=batch_size, workers=workers)
    ranks, scored_labels, failed = [], [], []
    with closing(batches), progress_bar(len(dataset.paths), desc="evaluate", unit="img", enabled=progress) as bar:
        for batch in batches:
            failed.extend((str(dataset.paths[position]), reason) for position, reason in batch.failures)
            if batch.positions:
                batch_labels = np.array([dataset.labels[position] for position in batch.positions])  # (B,)
                ranks.extend(true_class_ranks(net(batch.inputs), batch_labels))  # logits (B, 1000)
                scored_labels.extend(batch_labels)
            bar.update(len(batch.positions) + len(batch.failures))
    return accuracy_from_ranks(
        ranks,
        scored_labels,
        failed,
        seconds=time.perf_counter() - start,
        model=model,
        backend=net.backend,
        layout=dataset.layout,
    )
