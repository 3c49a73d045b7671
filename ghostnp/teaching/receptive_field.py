"""Receptive fields: which input pixels can reach a unit (theoretical), and which ones do (effective).

**Theoretical.** The network is run once on :class:`FieldMap` objects instead of arrays, through an op table
(:class:`FieldOps`) whose ops compute, for every output row and column, the first and last input row and
column any of its inputs can see: a convolution takes the hull over its window's taps (padding taps see
no pixel), a pool likewise, an element-wise op the hull of its operands, the nearest upsample copies the
field of the source row it copies. The model code is the same as for inference, so the field is exact for
the real network at the given input size: borders, odd sizes, floor-mode pooling and PyTorch's legacy
nearest index map included. (The textbook recurrence ``size += (k - 1) * jump; jump *= stride`` assumes
every map keeps a fixed stride, which the DFC upsample breaks: at 224 x 224 the last stage's 7 x 7 maps
get their gate from a 3 x 3 map, copied to rows 0, 0, 0, 1, 1, 2, 2.)

How the DFC branch widens the field, for a Ghost module whose input units each see one pixel (rows
``y``, stride 1): the intrinsic 1 x 1 conv plus the cheap 3 x 3 see rows ``y - 1 .. y + 1``. The DFC gate
pools 2 x 2 (half-row ``q`` sees rows ``2q, 2q + 1``), its (5, 1) convolution spans half-rows
``q - 2 .. q + 2``, i.e. rows ``2q - 4 .. 2q + 5``, and the nearest upsample gives row ``y`` the gate of
half-row ``q = y // 2``. So an even row sees ``y - 4 .. y + 5``, an odd row ``y - 5 .. y + 4``: 10 rows
instead of 3, asymmetric, alternating with the parity of ``y`` (11 rows for the hull over both parities,
the number a fixed-stride recurrence would quote), and the (1, 5) convolution does the same for columns.
On a map of stride ``s`` every number is multiplied by ``s``.

Squeeze-and-excite multiplies every unit by a gate computed from the global average of the whole map, so
strictly every unit after the first SE block sees the whole image (``through_se=True``). Treating the SE
gates as constants (``through_se=False``) gives the field of the convolutions and DFC branches alone,
the number usually quoted, and the one where GhostNet V1 and GhostNetV2 differ.

**Effective.** The mean magnitude of the input gradient of one unit over random inputs (Luo et al.,
"Understanding the Effective Receptive Field in Deep Convolutional Neural Networks", NeurIPS 2016): where
the unit actually looks, concentrated in the middle of the theoretical field.

>>> import ghostnp
>>> fields = ghostnp.theoretical_receptive_fields("ghostnetv2_100", input_size=224, through_se=False)
>>> fields["blocks.9.0.conv"].size                                 # rows, columns of the centre unit's field
(224, 224)
>>> model = ghostnp.create_model("ghostnetv2_tiny")
>>> ghostnp.effective_receptive_field(model, "blocks.2.0", input_size=64, num_inputs=2).shape
(64, 64)
"""

from dataclasses import dataclass

import numpy as np

from ..autodiff.record import record
from ..network import layers
from ..network.architecture import Architecture
from ..network.params import zero_params
from ..network.registry import get_architecture
from ..ops import fused
from ..ops.numpy_ops import nearest_source_index

_NO_PIXEL = np.iinfo(np.int64).max // 2  # the empty interval is (_NO_PIXEL, -_NO_PIXEL)


@dataclass(frozen=True)
class FieldMap:
    """A feature map as the receptive-field op table sees it: a channel count and, per output row and
    column, the first and last input row and column that can reach it.

    rows : ndarray, shape (H, 2), int64; cols : ndarray, shape (W, 2), int64 (inclusive bounds).
    """

    channels: int
    rows: np.ndarray
    cols: np.ndarray

    @property
    def shape(self):
        return (1, self.channels, len(self.rows), len(self.cols))


def _window(fields, kernel_size, stride, padding):
    """The field of each output position of a sliding window: the hull over its taps inside the map.

    fields : (n, 2) [first, last] per input position -> (n_out, 2), n_out = (n + 2p - k) // s + 1.
    """
    n = len(fields)
    n_out = (n + 2 * padding - kernel_size) // stride + 1
    taps = np.arange(n_out)[:, None] * stride - padding + np.arange(kernel_size)[None, :]  # (n_out, k)
    inside = (taps >= 0) & (taps < n)  # padding taps see no pixel
    seen = fields[np.clip(taps, 0, n - 1)]  # (n_out, k, 2)
    first = np.where(inside, seen[:, :, 0], _NO_PIXEL).min(axis=1)
    last = np.where(inside, seen[:, :, 1], -_NO_PIXEL).max(axis=1)
    return np.stack([first, last], axis=1)


def _hull(a, b):
    """Element-wise union of two field arrays, broadcasting a length-1 axis (a gate of size 1 x 1)."""
    a, b = np.broadcast_arrays(a, b)
    return np.stack([np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])], axis=1)


def _span(fields):
    """One position that sees everything ``fields`` sees: (n, 2) -> (1, 2)."""
    return np.array([[fields[:, 0].min(), fields[:, 1].max()]])


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class FieldOps:
    """The op table of receptive fields: the ops of :mod:`ghostnp.ops` that the features use (all but
    ``linear``), on :class:`FieldMap` values.

    through_se : bool. If False, ``global_avg_pool`` (used only by squeeze-and-excite inside the features)
        sees no pixel, so SE gates act as constants and leave the spatial field alone.
    """

    def __init__(self, through_se=True):
        self.through_se = through_se

    def conv2d(self, x, weight, bias=None, stride=1, padding=0, groups=1, act=None):
        (kh, kw), (sh, sw), (ph, pw) = weight.shape[2:], _pair(stride), _pair(padding)
        return FieldMap(weight.shape[0], _window(x.rows, kh, sh, ph), _window(x.cols, kw, sw, pw))

    def avg_pool_2x2(self, x):
        return FieldMap(x.channels, _window(x.rows, 2, 2, 0), _window(x.cols, 2, 2, 0))  # floor mode

    def global_avg_pool(self, x):
        if not self.through_se:
            empty = np.array([[_NO_PIXEL, -_NO_PIXEL]])
            return FieldMap(x.channels, empty, empty)
        return FieldMap(x.channels, _span(x.rows), _span(x.cols))

    def upsample_nearest(self, x, size):
        rows = nearest_source_index(len(x.rows), size[0])
        cols = nearest_source_index(len(x.cols), size[1])
        return FieldMap(x.channels, x.rows[rows], x.cols[cols])  # each output copies its source's field

    def batch_norm(self, x, *args, **kwargs):
        return x

    def squeeze_excite(self, x, *weights):
        return fused.squeeze_excite(self, x, *weights)  # the composition: global_avg_pool decides the field

    def relu(self, x):
        return x

    def sigmoid(self, x):
        return x

    def hard_sigmoid(self, x):
        return x

    def add(self, a, b):
        return FieldMap(max(a.channels, b.channels), _hull(a.rows, b.rows), _hull(a.cols, b.cols))

    multiply = add

    def concat_channels(self, a, b):
        return FieldMap(a.channels + b.channels, _hull(a.rows, b.rows), _hull(a.cols, b.cols))

    def slice_channels(self, x, stop):
        return FieldMap(stop, x.rows, x.cols)


@dataclass(frozen=True)
class ReceptiveField:
    """The theoretical receptive field of every unit of one layer.

    name : the layer's key in ``forward_intermediates``; shape : (C, H, W) of its output for one image.
    rows : (H, 2) and cols : (W, 2) int arrays: unit (i, j) can be reached by the input pixels in rows
    ``rows[i, 0] .. rows[i, 1]`` and columns ``cols[j, 0] .. cols[j, 1]`` (inclusive, inside the image)
    and by no other pixel.
    input_size : (H, W) of the image.
    """

    name: str
    shape: tuple
    rows: np.ndarray
    cols: np.ndarray
    input_size: tuple

    @property
    def centre(self):
        """The (row, column) of the unit in the middle of the map: (H // 2, W // 2)."""
        return self.shape[1] // 2, self.shape[2] // 2

    def box(self, i=None, j=None):
        """(top, bottom, left, right), inclusive, of unit (i, j)'s field; the centre unit by default."""
        ci, cj = self.centre
        i, j = ci if i is None else i, cj if j is None else j
        return int(self.rows[i, 0]), int(self.rows[i, 1]), int(self.cols[j, 0]), int(self.cols[j, 1])

    @property
    def size(self):
        """(rows, columns) of the centre unit's field, clipped to the image."""
        top, bottom, left, right = self.box()
        return max(bottom - top + 1, 0), max(right - left + 1, 0)

    @property
    def stride(self):
        """Input pixels per unit along (H, W): 2 ** (number of stride-2 layers) when the sizes divide."""
        return self.input_size[0] / self.shape[1], self.input_size[1] / self.shape[2]


def theoretical_receptive_fields(model, input_size=224, *, through_se=True):
    """The theoretical receptive field of every layer of the features, in the order they are computed.

    Parameters
    ----------
    model : a model name (``"ghostnetv2_100"``, ``"ghostnet_100"``, ...), an Architecture or a GhostNet.
    input_size : int or (H, W). Fields are clipped to the image: take a large input (e.g. 2048) to see the
        unclipped size of deep layers.
    through_se : False treats squeeze-and-excite gates as constants (see the module docstring).

    Returns
    -------
    dict mapping each key of ``forward_intermediates`` up to the final 1 x 1 conv (``"conv_stem"``, every
    conv, Ghost module, DFC gate and block, ``"blocks.9.0.conv"``) to its :class:`ReceptiveField`.

    Examples
    --------
    >>> v1 = theoretical_receptive_fields("ghostnet_100", 1024, through_se=False)
    >>> v2 = theoretical_receptive_fields("ghostnetv2_100", 1024, through_se=False)
    >>> v1["blocks.2.0"].size, v2["blocks.2.0"].size      # the first DFC block
    ((43, 43), (71, 71))
    """
    arch = (
        get_architecture(model) if isinstance(model, str) else model if isinstance(model, Architecture) else model.arch
    )
    h, w = (input_size, input_size) if np.isscalar(input_size) else tuple(input_size)
    ops = FieldOps(through_se)
    params = zero_params(arch)  # the field ops read shapes only
    pixels = FieldMap(3, np.repeat(np.arange(h), 2).reshape(h, 2), np.repeat(np.arange(w), 2).reshape(w, 2))
    trace = {}
    # the sequence of GhostNet.forward_features, run on field maps
    x = layers.stem(ops, params, pixels, trace=trace)
    for spec in arch.blocks:
        x = layers.ghost_bottleneck(ops, params, spec, x, trace=trace)
    layers.final_conv(ops, params, arch.final_conv, x, trace=trace)
    return {name: ReceptiveField(name, f.shape[1:], f.rows, f.cols, (h, w)) for name, f in trace.items()}


def effective_receptive_field(model, layer, input_size=224, *, num_inputs=8, unit=None, seed=0):
    """Where a unit actually looks: the mean |input gradient| of one position of a layer over random inputs.

    Parameters
    ----------
    model : :class:`ghostnp.network.model.GhostNet`
    layer : a key of ``model.forward_intermediates`` with a spatial output (C, H, W).
    input_size : int or (H, W).
    num_inputs : how many standard-normal images to average over (one batch).
    unit : (i, j) position in the layer's map; the centre (H // 2, W // 2) by default. The gradient is that
        of the sum over the layer's channels at that position.
    seed : seed of the random inputs.

    Returns
    -------
    ndarray, shape (H, W), float32: ``mean_n sum_colour |d out[n, :, i, j].sum() / d x[n]|``. It is exactly 0
    outside the theoretical field (:func:`theoretical_receptive_fields`).
    """
    h, w = (input_size, input_size) if np.isscalar(input_size) else tuple(input_size)
    x = np.random.default_rng(seed).standard_normal((num_inputs, 3, h, w)).astype(np.float32)
    tape, _, intermediates = record(model, x)
    if layer not in intermediates or intermediates[layer].ndim != 4:
        spatial = [k for k, v in intermediates.items() if v.ndim == 4]
        raise ValueError(
            f"layer must be a key of forward_intermediates with a spatial output, e.g. {spatial[-1]!r}; got {layer!r}"
        )
    value = intermediates[layer]
    i, j = (value.shape[2] // 2, value.shape[3] // 2) if unit is None else unit
    seed_grad = np.zeros_like(value)
    seed_grad[:, :, i, j] = 1
    (grad,) = tape.gradient(value, seed_grad)
    return np.abs(grad).sum(axis=1).mean(axis=0)
