"""Input gradients without a second copy of the network: a recording op table and a walk back along it.

The model calls every op through a table (:mod:`ghostnp.ops`). A :class:`Tape` is such a table: it has the
same op names, computes each op with the NumPy reference (:mod:`ghostnp.ops.numpy_ops`) and records the
call (op, inputs, output). Run the unchanged model on a tape, then walk the records in reverse with one
vector-Jacobian product per op (:mod:`ghostnp.autodiff.vjp`): that is reverse-mode differentiation, and it gives the
gradient of any recorded result with respect to the input image.

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
from .vjp import VJPS


@dataclass(frozen=True)
class Record:
    """One op call: ``out = op(*args, **kwargs)``."""

    op: str
    args: tuple
    kwargs: dict
    out: np.ndarray


class Tape:
    """An op table that computes with ``numpy_ops`` and records every call, for :meth:`gradient`.

    Parameters
    ----------
    *inputs : ndarray
        The arrays to differentiate with respect to (the network input). Every activation an op receives
        must be one of these or the output of an earlier op on the tape.

    Attributes
    ----------
    records : list of :class:`Record`, in the order the ops ran (a topological order of the network).
    """

    def __init__(self, *inputs):
        self.inputs = inputs
        self.records = []
        self._known = {id(x): x for x in inputs}  # every traceable array: the inputs and each op's output

    def __getattr__(self, name):
        if name in FUSED_OP_NAMES:  # a fused op runs as its composition on this tape: each primitive is recorded
            return lambda *args, **kwargs: getattr(fused, name)(self, *args, **kwargs)
        if name not in OP_NAMES:
            raise AttributeError(f"{type(self).__name__} has no op {name!r}; the ops are {', '.join(OP_NAMES)}")
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)

    def call(self, op, *args, **kwargs):
        """Run ``numpy_ops.<op>(*args, **kwargs)`` and record it; returns the op's output."""
        for x in args[: VJPS[op][1]]:
            self.trace_back(x)
        out = getattr(numpy_ops, op)(*args, **kwargs)
        self._append(Record(op, args, kwargs, out))
        return out

    def _append(self, record):
        self.records.append(record)
        self._known[id(record.out)] = record.out  # keeps the array alive, so its id stays unique

    def trace_back(self, x):
        """Check that ``x`` is traceable: a tape input or the output of an op on the tape."""
        if id(x) not in self._known:
            raise ValueError(
                f"the tape cannot trace an array of shape {np.shape(x)} back to the input: it was computed outside "
                "the op table; route that computation through an op of ghostnp.ops"
            )

    def gradient(self, output, grad_output):
        """Reverse-mode gradient of ``sum(grad_output * output)`` with respect to each tape input.

        Parameters
        ----------
        output : ndarray, a result recorded on this tape (e.g. a value of ``forward_intermediates``).
        grad_output : ndarray, the shape of ``output``: the vector of the vector-Jacobian product.

        Returns
        -------
        list of ndarray, one per tape input, each of that input's shape (zeros where nothing flows).
        """
        self.trace_back(output)
        grads = {id(output): np.asarray(grad_output, dtype=output.dtype)}
        for record in reversed(self.records):
            grad_out = grads.pop(id(record.out), None)
            if grad_out is None:
                continue  # the output does not depend on this op
            vjp, num_inputs = VJPS[record.op]
            for x, grad_x in zip(record.args[:num_inputs], vjp(grad_out, record.out, *record.args, **record.kwargs)):
                grads[id(x)] = grads[id(x)] + grad_x if id(x) in grads else grad_x
        return [np.array(grads.get(id(x), np.zeros_like(x)), dtype=output.dtype) for x in self.inputs]


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
