"""Parameters as one flat dict keyed exactly like the PyTorch state_dict.

``param_shapes(arch)`` lists every key and shape in the state_dict's order; ``init_params`` makes a
seeded random set (with non-trivial BatchNorm statistics, so that a BatchNorm bug cannot hide);
``validate_params`` checks a dict from anywhere against the architecture and reports every problem at
once; ``fold_batchnorm`` merges each BatchNorm into the convolution before it, exactly, for inference.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import CheckpointError
from . import layers

# Keys a checkpoint may carry that inference does not use: BatchNorm's step counter and the buffers that
# a FLOP profiler (thop) leaves in the official GhostNetV2 release.
IGNORED_KEY_SUFFIXES = ("num_batches_tracked", "total_ops", "total_params")
SHOWN_KEYS = 10  # keys listed per kind of difference before "... and N more"


def param_shapes(arch):
    """Every parameter key of ``arch`` and its shape, in state_dict order (no ``num_batches_tracked``)."""
    shapes = layers.stem_shapes(arch.stem_chs)
    for spec in arch.blocks:
        shapes.update(layers.ghost_bottleneck_shapes(spec))
    shapes.update(layers.final_conv_shapes(arch.final_conv, arch.blocks[-1].out_chs, arch.final_chs))
    shapes.update(layers.head_shapes(arch.final_chs, arch.head_chs, arch.num_classes))
    return shapes


def is_trainable(key):
    """True for weights and biases, False for BatchNorm running statistics (PyTorch's 'buffers')."""
    return not key.endswith((".running_mean", ".running_var"))


def count_params(shapes):
    """Number of trainable parameters (weights and biases; running statistics are buffers, not counted)."""
    return sum(int(np.prod(shape)) for key, shape in shapes.items() if is_trainable(key))


def zero_params(arch):
    """Read-only zeros of every parameter's shape, without allocating them: for runs that only need shapes."""
    return {key: np.broadcast_to(np.float32(0), shape) for key, shape in param_shapes(arch).items()}


def init_params(arch, seed=0, dtype=np.float32):
    """A seeded random initialisation that keeps activations O(1) through the network.

    Convolutions and linears: normal with std 1 / sqrt(fan_in); biases: normal, std 0.1. BatchNorm:
    weight U(0.5, 1.5), bias N(0, 0.1), running_mean N(0, 0.1), running_var U(0.5, 1.5): far from the
    identity that a fresh PyTorch BatchNorm is.
    """
    rng = np.random.default_rng(seed)
    params = {}
    for key, shape in param_shapes(arch).items():
        if key.endswith(".running_var") or (key.endswith(".weight") and len(shape) == 1):
            value = rng.uniform(0.5, 1.5, shape)
        elif key.endswith((".bias", ".running_mean")):
            value = rng.normal(0.0, 0.1, shape)
        else:  # conv (O, I, kH, kW) or linear (O, I) weight
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        params[key] = value.astype(dtype)
    return params


@dataclass(frozen=True)
class KeyDiff:
    """How a state_dict differs from a model's expected keys and shapes."""

    missing: list
    unexpected: list
    wrong_shape: list  # "key: (got) vs expected (want)"

    @property
    def count(self):
        return len(self.missing) + len(self.unexpected) + len(self.wrong_shape)

    def describe(self):
        """Every kind of difference on its own line, at most ``SHOWN_KEYS`` keys each."""
        lines = []
        for label, keys in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("wrong shape", self.wrong_shape),
        ):
            if keys:
                more = f" ... and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
                lines.append(f"  {len(keys)} {label}: {', '.join(keys[:SHOWN_KEYS])}{more}")
        return "\n".join(lines)


def compare_shapes(weights, expected):
    """Compare a state_dict's keys and shapes with a model's expected ones (:func:`param_shapes`).

    Keys in :data:`IGNORED_KEY_SUFFIXES` are left out. Returns a :class:`KeyDiff` whose keys keep the order
    of ``expected`` (missing, wrong shape) and of ``weights`` (unexpected).
    """
    given = {k: v for k, v in weights.items() if not k.endswith(IGNORED_KEY_SUFFIXES)}
    missing = [key for key in expected if key not in given]
    unexpected = [key for key in given if key not in expected]
    wrong_shape = [
        f"{key}: {tuple(np.shape(given[key]))} vs expected {tuple(shape)}"
        for key, shape in expected.items()
        if key in given and tuple(np.shape(given[key])) != tuple(shape)
    ]
    return KeyDiff(missing, unexpected, wrong_shape)


def validate_params(weights, arch, source="weights"):
    """Check a state_dict-keyed dict against ``arch``; return a clean dict of float arrays.

    Drops the keys in :data:`IGNORED_KEY_SUFFIXES`. Raises :class:`CheckpointError` listing every missing,
    unexpected and wrong-shape key at once, or naming non-finite values and negative running variances.
    Float arrays keep their dtype (float16 and bfloat16-decoded arrays become float32).
    """
    expected = param_shapes(arch)
    diff = compare_shapes(weights, expected)
    if diff.count:
        raise CheckpointError(
            f"{source} do not fit {arch.name} ({diff.count} differences):\n{diff.describe()}\n"
            "Check that the file is for this model (see ghostnp.list_models()), or pass the matching model name."
        )
    clean = {}
    for key in expected:
        value = np.asarray(weights[key])
        if value.dtype.kind != "f":
            raise CheckpointError(f"{source}: {key} has dtype {value.dtype}; expected floating-point weights")
        value = value if value.dtype in (np.float32, np.float64) else value.astype(np.float32)
        if not np.all(np.isfinite(value)):
            raise CheckpointError(
                f"{source}: {key} contains NaN or Inf values; the file is damaged or was saved mid-divergence"
            )
        if key.endswith(".running_var") and np.any(value < 0):
            raise CheckpointError(f"{source}: {key} has negative running variances; the file is damaged")
        clean[key] = value
    return clean


def bn_to_conv_key(bn):
    """The convolution a BatchNorm follows, by PyTorch's module names.

    ``X.1 -> X.0``, ``X.3 -> X.2``, ``X.5 -> X.4`` (Sequential), ``bn_dw -> conv_dw``,
    top-level ``bn1 -> conv_stem``, ``blocks.9.0.bn1 -> blocks.9.0.conv``.
    """
    parent, _, last = bn.rpartition(".")
    if last.isdigit():
        return f"{parent}.{int(last) - 1}"
    if last == "bn_dw":
        return f"{parent}.conv_dw"
    if last == "bn1":
        return f"{parent}.conv" if parent else "conv_stem"
    raise KeyError(f"no convolution is known to precede BatchNorm {bn!r}")


def fold_batchnorm(params, eps=1e-5):
    """Merge every inference BatchNorm into the convolution before it (exact up to rounding).

    For ``y = BN(conv(x, W))`` with ``s = weight / sqrt(running_var + eps)``:
    ``W' = W * s[:, None, None, None]`` and ``b' = bias - running_mean * s``, so ``y = conv(x, W') + b'``.
    Returns a new dict without the BatchNorm keys and with a ``.bias`` for each folded conv; the layer
    functions run it unchanged (:func:`ghostnp.network.layers.conv_bn`). The arithmetic is done in float64.
    """
    folded = dict(params)
    for key in params:
        if not key.endswith(".running_var"):
            continue
        bn = key[: -len(".running_var")]
        conv = bn_to_conv_key(bn)
        weight, bias = (np.asarray(params[f"{bn}.{s}"], np.float64) for s in ("weight", "bias"))
        mean, var = (np.asarray(params[f"{bn}.{s}"], np.float64) for s in ("running_mean", "running_var"))
        scale = weight / np.sqrt(var + eps)  # (C_out,)
        dtype = params[f"{conv}.weight"].dtype
        folded[f"{conv}.weight"] = (params[f"{conv}.weight"].astype(np.float64) * scale[:, None, None, None]).astype(
            dtype
        )
        folded[f"{conv}.bias"] = (bias - mean * scale).astype(dtype)
        for s in layers.BN_SUFFIXES + ("num_batches_tracked",):
            folded.pop(f"{bn}.{s}", None)
    return folded
