"""Training GhostNetV2 in NumPy, as PyTorch trains it: loss and parameter gradients in training mode,
SGD and AdamW, learning-rate schedules and a ``fit`` loop.

=====================================  ========================================================================
``loss_and_grads(model, x, targets)``  the mean cross-entropy in training mode (batch statistics, dropout)
                                       and its gradient for every trainable parameter (gradients.py)
``SGD``, ``AdamW``                     ``step(params, grads)`` updates ``model.params`` (optimizers.py)
``cosine_lr``, ``step_lr``             learning rate as a function of the epoch (schedules.py)
``fit(model, images, labels, ...)``    shuffled mini-batches, a progress bar, a history per epoch (fit.py)
``cross_entropy``, ``accuracy``        the loss and its gradient (loss.py); inference accuracy (fit.py)
``with_new_head(model, num_classes)``  the same backbone with a fresh classifier, for new classes (head.py)
=====================================  ========================================================================

The forward and backward passes run on a recording op table (:mod:`ghostnp.autodiff.record`): the model
code is the one inference runs, in training mode.
"""

from .fit import accuracy, fit
from .gradients import loss_and_grads, trainable_keys
from .head import with_new_head
from .loss import cross_entropy
from .optimizers import SGD, AdamW
from .schedules import cosine_lr, step_lr

__all__ = [
    "SGD",
    "AdamW",
    "accuracy",
    "cosine_lr",
    "cross_entropy",
    "fit",
    "loss_and_grads",
    "step_lr",
    "trainable_keys",
    "with_new_head",
]
