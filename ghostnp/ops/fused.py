"""The fused ops' reference compositions: each fused op of the table, written with the table's primitive ops.

A fused op does in one call what a few primitive ops do in a row, so that a fast table can keep the
intermediate results in cache and write the result straight into one buffer. Each is defined here as a
function of an op table ``ops`` and the op's arguments, from the primitive ops of ``OP_NAMES`` only:
``numpy_ops`` runs these compositions as its fused ops, the recording table of ``ghostnp.autodiff`` runs
them on itself (so every primitive op is recorded and needs no VJP of its own), and the tests hold every
fast fused op to them.

``ghost_module`` and ``dfc_gate`` need BatchNorm folded into the convolutions (:func:`ghostnp.fold_batchnorm`):
every convolution has a bias and no BatchNorm follows it. ``ghostnp.network.layers`` calls them when the
parameters are folded and no intermediate result is traced; ``squeeze_excite`` (no BatchNorm) whenever no
intermediate result is traced.
"""


def ghost_module(ops, x, primary_weight, primary_bias, cheap_weight, cheap_bias, out_chs, act=None, gate=None):
    """The Ghost module: a 1 x 1 convolution, a depthwise 3 x 3 on its result, both halves kept, [gated].

    x : (N, C_in, H, W); primary_weight : (init_chs, C_in, 1, 1); cheap_weight : (init_chs, 1, 3, 3);
    primary_bias, cheap_bias : (init_chs,); out_chs <= 2 * init_chs; act : None or "relu", after each conv;
    gate : None or the half-resolution DFC gate (N, out_chs, h, w) from :func:`dfc_gate`, upsampled to
    (H, W) by PyTorch's legacy nearest rule and multiplied in. Returns (N, out_chs, H, W).
    """
    intrinsic = ops.conv2d(x, primary_weight, primary_bias, act=act)  # (N, init_chs, H, W)
    ghost = ops.conv2d(intrinsic, cheap_weight, cheap_bias, padding=1, groups=intrinsic.shape[1], act=act)
    out = ops.slice_channels(ops.concat_channels(intrinsic, ghost), out_chs)  # (N, out_chs, H, W)
    if gate is None:
        return out
    return ops.multiply(out, ops.upsample_nearest(gate, out.shape[2:]))  # (N, out_chs, H, W)


def dfc_gate(ops, x, reduce_weight, reduce_bias, row_weight, row_bias, col_weight, col_bias):
    """The DFC attention gate at half resolution (paper Eq. 4-6), before its upsampling.

    x : (N, C_in, H, W), the Ghost module's input; reduce_weight : (C, C_in, 1, 1); row_weight :
    (C, 1, 1, 5); col_weight : (C, 1, 5, 1); the biases : (C,). Returns (N, C, H // 2, W // 2) in (0, 1).
    """
    r = ops.conv2d(ops.avg_pool_2x2(x), reduce_weight, reduce_bias)  # (N, C, H/2, W/2)
    r = ops.conv2d(r, row_weight, row_bias, padding=(0, 2), groups=r.shape[1])  # along W
    r = ops.conv2d(r, col_weight, col_bias, padding=(2, 0), groups=r.shape[1])  # along H
    return ops.sigmoid(r)  # (N, C, H/2, W/2)


def squeeze_excite(ops, x, reduce_weight, reduce_bias, expand_weight, expand_bias):
    """The squeeze-and-excite channel gate: x * hard_sigmoid(conv_expand(relu(conv_reduce(mean_hw(x))))).

    x : (N, C, H, W); reduce_weight : (C_se, C, 1, 1); expand_weight : (C, C_se, 1, 1); the biases : (C_se,),
    (C,). Returns (N, C, H, W).
    """
    s = ops.global_avg_pool(x)  # (N, C, 1, 1)
    s = ops.conv2d(s, reduce_weight, reduce_bias, act="relu")  # (N, C_se, 1, 1)
    s = ops.conv2d(s, expand_weight, expand_bias)  # (N, C, 1, 1)
    return ops.multiply(x, ops.hard_sigmoid(s))  # (N, C, H, W)
