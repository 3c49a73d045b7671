"""Gradients without a second copy of the network: a recording op table and a walk back along it.

The model calls every op through a table (:mod:`ghostnp.ops`). A :class:`Tape` is such a table: it has the
same op names, computes each op with the NumPy reference (:mod:`ghostnp.ops.numpy_ops`) and records the
call (op, inputs, output). Run the unchanged model on a tape, then walk the records in reverse with one
vector-Jacobian product per op (:mod:`ghostnp.autodiff.vjp`): that is reverse-mode differentiation, and it
gives the gradient of any recorded result with respect to the input image and to the parameters.

A :class:`TrainingTape` is the same table in PyTorch's ``model.train()`` mode: BatchNorm normalises with the
batch's statistics and updates the running ones, dropout drops units. :func:`record_training` runs a model
on it; ``ghostnp.train`` builds the loss, the optimizers and ``fit`` on top.

>>> import numpy as np, ghostnp
>>> model = ghostnp.create_model("ghostnetv2_tiny")
>>> x = np.random.default_rng(0).normal(size=(1, 3, 64, 64))
>>> saliency = ghostnp.input_gradient(model, x)                       # d top-logit / dx, (1, 3, 64, 64)
>>> unit = ghostnp.input_gradient(model, x, ("blocks.3.0", (5, 2, 2)))  # channel 5 at (2, 2) of a block

Every activation an op receives must be the tape's input or an earlier op's output: an array made outside
the op table would be invisible to the walk back, so the tape refuses it.
"""

from dataclasses import dataclass

import numpy as np

from ..network.model import GhostNet
from ..ops import FUSED_OP_NAMES, OP_NAMES, fused, numpy_ops
from .training_ops import batch_norm_training, batch_statistics
from .vjp import PARAM_VJPS, VJPS

BATCHNORM_MOMENTUM = 0.1  # PyTorch's default: running = (1 - momentum) * running + momentum * batch


@dataclass(frozen=True)
class Record:
    """One op call: ``out = op(*args, **kwargs)``."""

    op: str
    args: tuple
    kwargs: dict
    out: np.ndarray


class Tape:
    """An op table that computes with ``numpy_ops`` and records every call, for :meth:`backward`.

    Parameters
    ----------
    *inputs : ndarray
        The arrays to differentiate with respect to (the network input). Every activation an op receives
        must be one of these, a constant registered with :meth:`add_constant`, or the output of an earlier
        op on the tape.
    params : dict[str, ndarray], optional
        Parameters to differentiate with respect to, by state_dict key (the model passes them positionally,
        as weight and bias after the activation: see ``PARAM_VJPS``).

    Attributes
    ----------
    records : list of :class:`Record`, in the order the ops ran (a topological order of the network).
    """

    def __init__(self, *inputs, params=None):
        self.inputs = inputs
        self.records = []
        self._known = {id(x): x for x in inputs}  # every traceable array: the inputs and each op's output
        self._param_keys = {id(value): key for key, value in (params or {}).items()}
        self._needs_grad = set(self._known)  # ids of the arrays that depend on an input or a parameter

    def __getattr__(self, name):
        if name in FUSED_OP_NAMES:  # a fused op runs as its composition on this tape: each primitive is recorded
            return lambda *args, **kwargs: getattr(fused, name)(self, *args, **kwargs)
        if name not in OP_NAMES:
            raise AttributeError(f"{type(self).__name__} has no op {name!r}; the ops are {', '.join(OP_NAMES)}")
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)

    def add_constant(self, x):
        """Let ops receive ``x`` (e.g. a training batch) without differentiating with respect to it."""
        self._known[id(x)] = x

    def call(self, op, *args, **kwargs):
        """Run ``numpy_ops.<op>(*args, **kwargs)`` and record it; returns the op's output."""
        return self.run(op, getattr(numpy_ops, op), *args, **kwargs)

    def run(self, op, forward, *args, **kwargs):
        """Record ``out = forward(*args, **kwargs)`` under the op name ``op`` (a key of ``VJPS``); returns ``out``."""
        activations = args[: VJPS[op][1]]
        for x in activations:
            self.trace_back(x)
        out = forward(*args, **kwargs)
        self.records.append(Record(op, args, kwargs, out))
        self._known[id(out)] = out  # keeps the array alive, so its id stays unique
        if any(id(x) in self._needs_grad for x in activations) or self._parameters_of(op, args):
            self._needs_grad.add(id(out))
        return out

    def _parameters_of(self, op, args):
        """(argument position, state_dict key) of each differentiated parameter an op call received."""
        positions = PARAM_VJPS[op][1] if op in PARAM_VJPS else ()
        keys = ((i, self._param_keys.get(id(args[i]))) for i in positions if i < len(args))
        return [(i, key) for i, key in keys if key is not None]

    def trace_back(self, x):
        """Check that ``x`` is traceable: a tape input, a constant, or the output of an op on the tape."""
        if id(x) not in self._known:
            raise ValueError(
                f"the tape cannot trace an array of shape {np.shape(x)} back to the input: it was computed outside "
                "the op table; route that computation through an op of ghostnp.ops"
            )

    def backward(self, output, grad_output):
        """Reverse-mode gradient of ``sum(grad_output * output)`` w.r.t. the tape inputs and parameters.

        Parameters
        ----------
        output : ndarray, a result recorded on this tape (e.g. the logits).
        grad_output : ndarray, the shape of ``output``: the vector of the vector-Jacobian product.

        Returns
        -------
        input_grads : list of ndarray, one per tape input, each of that input's shape (zeros where nothing flows).
        param_grads : dict[str, ndarray], one per parameter the output depends on, each of its shape.
        """
        self.trace_back(output)
        grads = {id(output): np.asarray(grad_output, dtype=output.dtype)}
        param_grads = {}
        for record in reversed(self.records):
            grad_out = grads.pop(id(record.out), None)
            if grad_out is None:
                continue  # the output does not depend on this op
            vjp, num_inputs = VJPS[record.op]
            activations = record.args[:num_inputs]
            if any(id(x) in self._needs_grad for x in activations):
                for x, grad_x in zip(activations, vjp(grad_out, record.out, *record.args, **record.kwargs)):
                    if id(x) in self._needs_grad:
                        _accumulate(grads, id(x), grad_x)
            if parameters := self._parameters_of(record.op, record.args):
                param_vjp, positions = PARAM_VJPS[record.op]
                by_position = dict(zip(positions, param_vjp(grad_out, record.out, *record.args, **record.kwargs)))
                for position, key in parameters:
                    _accumulate(param_grads, key, by_position[position])
        input_grads = [np.array(grads.get(id(x), np.zeros_like(x)), dtype=output.dtype) for x in self.inputs]
        return input_grads, param_grads

    def gradient(self, output, grad_output):
        """The input gradients of :meth:`backward`: a list of arrays, one per tape input."""
        return self.backward(output, grad_output)[0]


def _accumulate(grads, key, grad):
    grads[key] = grads[key] + grad if key in grads else grad


class TrainingTape(Tape):
    """A tape in training mode (PyTorch's ``model.train()``) for one training step.

    - ``batch_norm`` normalises with the batch's mean and biased variance (``batch_norm_training``) and
      replaces the running statistics in ``params`` with ``(1 - 0.1) * running + 0.1 * batch``, the variance
      taken unbiased (times M / (M - 1), M = N H W), exactly as ``nn.BatchNorm2d`` does in training.
      A BatchNorm whose weight is not in ``trainable`` stays in inference mode (frozen, as timm's
      ``freeze_batch_norm_2d`` makes it): it uses and keeps its running statistics.
    - ``dropout`` drops each unit with probability ``rate``, the mask drawn from ``rng``, and rescales the
      kept ones by ``1 / (1 - rate)``.

    Parameters
    ----------
    x : ndarray, (N, 3, H, W), the batch (a constant: no gradient is computed for it).
    params : dict[str, ndarray], the model's parameters; its running statistics are replaced in place.
    trainable : collection of str, the keys of the parameters to differentiate.
    rng : numpy.random.Generator, for the dropout masks.

    Attributes
    ----------
    trained_batch_norms : list of str, the prefixes of the BatchNorms that ran on batch statistics.
    """

    def __init__(self, x, params, trainable, rng):
        super().__init__(params={key: params[key] for key in trainable})
        self.add_constant(x)
        self.params = params
        self.rng = rng
        self._batch_norm_of = {id(params[key]): key.removesuffix(".weight") for key in trainable}
        self.trained_batch_norms = []

    def call(self, op, *args, **kwargs):
        """As :meth:`Tape.call`, with training-mode BatchNorm (for trained BatchNorms) and dropout."""
        if op == "batch_norm" and id(args[1]) in self._batch_norm_of:
            return self.batch_norm_in_training(*args, **kwargs)
        if op == "dropout" and args[1] != 0:
            return self.dropout_in_training(*args)
        return super().call(op, *args, **kwargs)

    def batch_norm_in_training(self, x, weight, bias, running_mean, running_var, eps=numpy_ops.BATCHNORM_EPS):
        """Training BatchNorm (see the class): (N, C, H, W) -> (N, C, H, W); updates the running statistics."""
        out = self.run("batch_norm_training", batch_norm_training, x, weight, bias, eps=eps)
        bn = self._batch_norm_of[id(weight)]
        mean, var = batch_statistics(x)
        count = x.size // x.shape[1]
        m = BATCHNORM_MOMENTUM
        unbiased = var * (count / (count - 1))
        self.params[f"{bn}.running_mean"] = ((1 - m) * running_mean + m * mean).astype(running_mean.dtype)
        self.params[f"{bn}.running_var"] = ((1 - m) * running_var + m * unbiased).astype(running_var.dtype)
        self.trained_batch_norms.append(bn)
        return out

    def dropout_in_training(self, x, rate):
        """Drop each unit with probability ``rate`` (a mask from ``rng``): (N, F) -> (N, F)."""
        if not 0 <= rate < 1:
            raise ValueError(f"the dropout rate must be in [0, 1), got {rate}; 0 turns dropout off")
        keep = (self.rng.random(x.shape) >= rate).astype(x.dtype)
        return super().call("dropout", x, rate, keep)


def record(model, x):
    """Run a model on ``x`` on a fresh tape, with the NumPy ops and the unfolded parameters.

    model : :class:`ghostnp.network.model.GhostNet` (any backend: the tape always computes with NumPy);
    x : ndarray, shape (N, 3, H, W), float32 or float64 (float64 for gradients exact to ~1e-12).

    Returns
    -------
    tape : :class:`Tape` with input ``x``
    logits : ndarray, shape (N, num_classes)
    intermediates : dict of every named result, as :meth:`~ghostnp.network.model.GhostNet.forward_intermediates`.
    """
    tape = Tape(x)
    recorder = GhostNet(model.arch, model.params, backend="numpy", fold_bn=False)
    recorder.ops = tape  # the same model code, run on the recording table
    logits, intermediates = recorder.forward_intermediates(x)
    return tape, logits, intermediates


def record_training(model, x, *, trainable, rng, drop_rate=None):
    """One training-mode forward pass of ``model`` on a fresh :class:`TrainingTape`.

    Updates the running statistics of the trained BatchNorms in ``model.params`` (new arrays) and their
    ``model.num_batches_tracked``, as a forward pass of PyTorch's ``model.train()`` does.

    model : :class:`ghostnp.model.GhostNet` (any backend: the tape always computes with NumPy);
    x : ndarray, (N, 3, H, W), N >= 2; trainable : the keys of the parameters to differentiate;
    rng : numpy.random.Generator for dropout; drop_rate : None for the model's ``drop_rate``.

    Returns
    -------
    tape : :class:`TrainingTape`; logits : ndarray, shape (N, num_classes), recorded on it.
    """
    tape = TrainingTape(x, model.params, trainable, rng)
    recorder = GhostNet(model.arch, model.params, backend="numpy", fold_bn=False, threads=1)
    recorder.params = model.params  # the very arrays the tape knows by id
    recorder.refresh()
    recorder.drop_rate = model.drop_rate if drop_rate is None else drop_rate
    recorder.ops = tape  # the same model code, run on the recording table
    logits = recorder.forward(x)
    for bn in tape.trained_batch_norms:
        model.num_batches_tracked[bn] += 1
    return tape, logits


def _seed(output, logits, intermediates):
    """The result to differentiate and the vector of the VJP for an ``output`` choice of input_gradient."""
    if output is None or isinstance(output, (int, np.integer)):
        classes = logits.argmax(axis=1) if output is None else np.full(len(logits), output)
        seed = np.zeros_like(logits)
        seed[np.arange(len(logits)), classes] = 1
        return logits, seed
    if callable(output):
        seed = np.asarray(output(logits), dtype=logits.dtype)
        if seed.shape != logits.shape:
            raise ValueError(
                f"output(logits) must return an array of the logits' shape {logits.shape}, got {seed.shape}"
            )
        return logits, seed
    layer, index = output
    if layer not in intermediates:
        raise ValueError(
            f"unknown layer {layer!r}; choose a key of model.forward_intermediates(x)[1], "
            f"e.g. {', '.join(list(intermediates)[:3])}, ..., {list(intermediates)[-1]}"
        )
    value = intermediates[layer]
    seed = np.zeros_like(value)
    seed[(slice(None),) + (index if isinstance(index, tuple) else (index,))] = 1
    return value, seed


def input_gradient(model, x, output=None):
    """The gradient of a logit or of an intermediate unit with respect to the input image.

    Parameters
    ----------
    model : :class:`ghostnp.network.model.GhostNet`
    x : ndarray, shape (N, 3, H, W), float32 or float64. Each sample's gradient is its own (samples do
        not interact at inference), so a batch gives N gradients in one pass.
    output : what to differentiate, for every sample:

        - ``None``: the largest logit (the predicted class);
        - an int ``c``: the logit of class ``c``;
        - ``(layer, index)``: the sum of ``intermediates[layer][n][index]``, where ``layer`` is a key of
          ``model.forward_intermediates`` and ``index`` indexes one sample's result: ``(c, i, j)`` is one
          unit, ``c`` a whole channel, ``np.s_[:, i, j]`` all channels at one position;
        - a callable ``f(logits) -> v`` with ``v`` of the logits' shape: the gradient of
          ``sum(v * logits)`` (e.g. ``v = onehot - softmax(logits)`` for the log-probability).

    Returns
    -------
    ndarray, shape and dtype of ``x``.

    Examples
    --------
    >>> model = ghostnp.create_model("ghostnetv2_tiny")
    >>> x = np.random.default_rng(0).normal(size=(2, 3, 64, 64))
    >>> ghostnp.input_gradient(model, x, 281).shape                      # d logit[281] / dx
    (2, 3, 64, 64)
    >>> gate = ("blocks.2.0.ghost1.short_conv.gate", np.s_[:, 4, 4])     # a DFC gate position
    >>> ghostnp.input_gradient(model, x, gate).shape
    (2, 3, 64, 64)
    """
    tape, logits, intermediates = record(model, x)
    result, seed = _seed(output, logits, intermediates)
    (grad_x,) = tape.gradient(result, seed)
    return grad_x
