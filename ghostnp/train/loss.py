"""The training loss: mean cross-entropy, as ``torch.nn.functional.cross_entropy``, and its gradient."""

import numpy as np


def check_targets(targets, num_samples, num_classes):
    """Class indices as an int64 array of shape (N,), or a ValueError saying what is wrong with them."""
    array = np.asarray(targets)
    if array.shape != (num_samples,):
        hint = " (pass class indices, not one-hot rows)" if array.shape == (num_samples, num_classes) else ""
        raise ValueError(
            f"targets must be {num_samples} class indices, one per image (shape ({num_samples},)), "
            f"got shape {array.shape}{hint}"
        )
    if array.dtype.kind not in "iu":
        raise ValueError(f"targets must be integer class indices, got dtype {array.dtype} (use .astype(int))")
    array = array.astype(np.int64)
    outside = (array < 0) | (array >= num_classes)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"targets must be class indices in [0, {num_classes}), got {array[first]} at position {first} "
            f"({int(outside.sum())} out of range); for other classes make a new head: "
            "create_model(name, num_classes=K)"
        )
    return array


def cross_entropy(logits, targets, label_smoothing=0.0):
    """Mean cross-entropy over the batch and its gradient with respect to the logits.

    With ``log p = log_softmax(logits)`` and the target distribution ``q = (1 - e) onehot(t) + e / C``
    (label smoothing e): ``loss = -mean over n of sum over c of q[n, c] log p[n, c]``, which is
    ``F.cross_entropy(logits, t, label_smoothing=e)``. Its gradient is ``(softmax(logits) - q) / N``.

    Parameters
    ----------
    logits : ndarray, shape (N, C)
    targets : ndarray of int, shape (N,), values in [0, C)
    label_smoothing : float in [0, 1]

    Returns
    -------
    loss : float; grad_logits : ndarray, shape (N, C), in the logits' dtype.
    """
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    n, c = logits.shape
    targets = check_targets(targets, n, c)
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), <= 0: exp never overflows
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)
    q = np.full_like(logits, label_smoothing / c)  # (N, C)
    q[np.arange(n), targets] += 1 - label_smoothing
    loss = -float((q * log_p).sum()) / n
    return loss, (np.exp(log_p) - q) / logits.dtype.type(n)
