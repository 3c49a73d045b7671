"""SGD and AdamW with ``step(params, grads)``: each step the update ``torch.optim.SGD`` / ``AdamW`` makes.

``params`` is a dict keyed like the state_dict (``model.params``); ``grads`` holds one array per parameter
to update (what :func:`ghostnp.train.loss_and_grads` returns). A step writes a new array for each updated
key into ``params`` (the dict changes in place, the arrays are replaced, never edited), which is how the
model notices the change and re-folds BatchNorm on the numba backend. Keys not in ``grads`` are left
alone. ``lr`` is an attribute: a schedule may change it between steps.
"""

import numpy as np


def _check(name, value, low=0.0, high=None):
    if not (value >= low and (high is None or value < high)):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


class SGD:
    """Stochastic gradient descent with momentum, weight decay and Nesterov momentum (dampening 0).

    Per parameter ``p`` with gradient ``g``: ``d = g + weight_decay p``; with momentum, the buffer
    ``b = d`` at the first step and ``b = momentum b + d`` after, and ``d = b`` (or ``d + momentum b`` with
    Nesterov); then ``p = p - lr d``.
    """

    def __init__(self, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        _check("lr", lr)
        _check("momentum", momentum)
        _check("weight_decay", weight_decay)
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0, e.g. SGD(lr, momentum=0.9, nesterov=True)")
        self.lr, self.momentum, self.weight_decay, self.nesterov = lr, momentum, weight_decay, nesterov
        self.momentum_buffers = {}

    def step(self, params, grads):
        """Update ``params[key]`` for every key of ``grads`` (see the class)."""
        for key, grad in grads.items():
            p = params[key]
            d = grad + self.weight_decay * p if self.weight_decay else grad
            if self.momentum:
                buffer = self.momentum_buffers.get(key)
                buffer = np.array(d) if buffer is None else self.momentum * buffer + d
                self.momentum_buffers[key] = buffer
                d = d + self.momentum * buffer if self.nesterov else buffer
            params[key] = (p - self.lr * d).astype(p.dtype, copy=False)


class AdamW:
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as ``torch.optim.AdamW``.

    Per parameter, at step t: ``p = p (1 - lr weight_decay)``; ``m = b1 m + (1 - b1) g``;
    ``v = b2 v + (1 - b2) g^2``; ``p = p - lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        _check("lr", lr)
        _check("betas[0]", betas[0], 0.0, 1.0)
        _check("betas[1]", betas[1], 0.0, 1.0)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.state = {}  # key -> (step t, first moment m, second moment v)

    def step(self, params, grads):
        """Update ``params[key]`` for every key of ``grads`` (see the class)."""
        beta1, beta2 = self.betas
        for key, grad in grads.items():
            t, m, v = self.state.get(key, (0, np.zeros_like(grad), np.zeros_like(grad)))
            t, m, v = t + 1, beta1 * m + (1 - beta1) * grad, beta2 * v + (1 - beta2) * grad * grad
            self.state[key] = (t, m, v)
            p = params[key] * (1 - self.lr * self.weight_decay)
            denominator = np.sqrt(v) / np.sqrt(1 - beta2**t) + self.eps
            params[key] = (p - self.lr / (1 - beta1**t) * m / denominator).astype(params[key].dtype, copy=False)
