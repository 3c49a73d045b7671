"""``fit``: mini-batch training of a model on arrays of images and labels, with a history of the epochs.

>>> import numpy as np, ghostnp
>>> model = ghostnp.create_model("ghostnetv2_tiny", num_classes=2)
>>> images = np.random.default_rng(0).normal(size=(8, 3, 33, 33)).astype(np.float32)
>>> history = ghostnp.train.fit(model, images, [0, 1] * 4, epochs=2, batch_size=4,
...                             optimizer=ghostnp.train.SGD(0.05, momentum=0.9), progress=False)
>>> sorted(history)
['accuracy', 'epoch', 'loss', 'lr']
"""

import numpy as np

from ..network.model import check_input
from ..progress import progress_bar
from .gradients import forward_backward
from .loss import check_targets


def accuracy(model, images, labels, *, batch_size=64):
    """The fraction of ``images`` (N, 3, H, W) whose predicted class (inference mode) is their label (N,)."""
    labels = check_targets(labels, len(images), model.arch.num_classes)
    predictions = [model(images[i : i + batch_size]).argmax(axis=1) for i in range(0, len(images), batch_size)]
    return float(np.mean(np.concatenate(predictions) == labels))


def fit(
    model,
    images,
    labels,
    *,
    epochs,
    batch_size,
    optimizer,
    trainable=None,
    lr_schedule=None,
    label_smoothing=0.0,
    drop_rate=None,
    validation=None,
    seed=0,
    progress=True,
):
    """Train ``model`` in place on ``images`` and ``labels``; returns the history of the epochs.

    Each epoch shuffles the images (a generator seeded with ``seed``, which also draws the dropout masks,
    so a run is reproducible) and takes ``len(images) // batch_size`` full batches (the few left over,
    different each epoch, are skipped, as timm's training loader does); each batch is one
    :func:`~ghostnp.train.loss_and_grads` and one ``optimizer.step``. After each epoch the model is
    refreshed (:meth:`~ghostnp.network.model.GhostNet.refresh`), so it runs with the new weights on every
    backend, and ``model.state_dict()`` holds them.

    Parameters
    ----------
    model : :class:`ghostnp.network.model.GhostNet`
    images : ndarray, shape (N, 3, H, W), float32 or float64 (cast to the model's dtype per batch).
    labels : int array, shape (N,), class indices in [0, num_classes).
    epochs : int; batch_size : int, 2 <= batch_size <= N (BatchNorm needs two images).
    optimizer : :class:`~ghostnp.train.SGD` or :class:`~ghostnp.train.AdamW` (or any ``step(params, grads)``
        with an ``lr`` attribute).
    trainable : None for every parameter, or state_dict prefixes (e.g. ``"classifier"`` to fine-tune the
        head only): the other parameters and their BatchNorm statistics stay bit-identical.
    lr_schedule : None, or a function epoch -> learning rate (see :mod:`ghostnp.train.schedules`).
    label_smoothing, drop_rate : as :func:`~ghostnp.train.loss_and_grads`.
    validation : None, or ``(images, labels)`` scored in inference mode after each epoch.
    seed : the seed of the shuffling and of the dropout masks.
    progress : draw a progress bar (on a terminal).

    Returns
    -------
    dict of lists, one entry per epoch: ``epoch`` (1, 2, ...), ``lr``, ``loss`` (the mean training loss)
    and ``accuracy`` (the training batches' accuracy, in training mode), plus ``val_accuracy``.

    Raises
    ------
    FloatingPointError
        The loss became NaN or infinite: the message names the step and suggests a lower learning rate.
    """
    check_input(images)
    labels = check_targets(labels, len(images), model.arch.num_classes)
    if not 2 <= batch_size <= len(images):
        raise ValueError(
            f"batch_size must be between 2 (BatchNorm needs two images in training) and the number of images "
            f"({len(images)}), got {batch_size}"
        )
    dtype = model.params["conv_stem.weight"].dtype
    rng = np.random.default_rng(seed)
    steps = len(images) // batch_size
    history = {"epoch": [], "lr": [], "loss": [], "accuracy": []}
    if validation is not None:
        history["val_accuracy"] = []
    with progress_bar(epochs * steps, desc="training", unit="batch", enabled=progress) as bar:
        for epoch in range(epochs):
            if lr_schedule is not None:
                optimizer.lr = lr_schedule(epoch)
            order = rng.permutation(len(images))
            losses, correct = [], 0
            for step in range(steps):
                batch = order[step * batch_size : (step + 1) * batch_size]
                x, y = images[batch].astype(dtype, copy=False), labels[batch]
                loss, grads, logits = forward_backward(
                    model, x, y, label_smoothing=label_smoothing, drop_rate=drop_rate, rng=rng, trainable=trainable
                )
                if not np.isfinite(loss):
                    raise FloatingPointError(
                        f"the training loss is {loss} at step {epoch * steps + step + 1} (epoch {epoch + 1}, batch "
                        f"{step + 1} of {steps}) with learning rate {optimizer.lr:g}: training diverged. "
                        f"Lower the learning rate (e.g. {optimizer.lr / 10:g}) and start again from fresh weights."
                    )
                optimizer.step(model.params, grads)
                losses.append(loss)
                correct += int(np.sum(logits.argmax(axis=1) == y))
                bar.update(1)
                bar.set_postfix_str(f"epoch {epoch + 1}, loss {loss:.3f}")
            model.refresh()
            history["epoch"].append(epoch + 1)
            history["lr"].append(optimizer.lr)
            history["loss"].append(float(np.mean(losses)))
            history["accuracy"].append(correct / (steps * batch_size))
            if validation is not None:
                history["val_accuracy"].append(accuracy(model, *validation))
    return history
