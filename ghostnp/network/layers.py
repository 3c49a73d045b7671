"""GhostNetV2's layers as plain functions of ``(ops, params, prefix, x)``.

``ops`` is an op table (:mod:`ghostnp.ops`), ``params`` the flat state_dict-keyed dict, ``prefix`` the
layer's state_dict prefix (``"blocks.3.0.ghost1"``) and ``x`` an NCHW array. Beside each forward function
stands the function that lists its parameter shapes, so the two cannot drift apart.

``trace``, when a dict, receives named intermediate results (every conv output under its conv's key,
every block output, the DFC gates before and after upsampling): see ``GhostNet.forward_intermediates``.

With BatchNorm folded (:func:`ghostnp.fold_batchnorm`) and no trace, the Ghost module and the DFC gate are
each one fused op of the table (``ops.ghost_module``, ``ops.dfc_gate``), and without a trace so is
squeeze-and-excite (``ops.squeeze_excite``); their reference compositions in ``ghostnp.ops.fused`` are the
step-by-step code below: the result is the same, the fast table computes it in fewer passes.
"""

import math

BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var")
BIAS_WEIGHT = ("weight", "bias")  # a folded convolution's parameters, in the order the fused ops take them


def _record(trace, name, value):
    if trace is not None:
        trace[name] = value
    return value


# --- conv + BatchNorm (+ ReLU), the unit every layer is made of ---------------------------------------


def conv_bn(ops, params, conv, bn, x, *, stride=1, padding=0, groups=1, act=None, trace=None):
    """Convolution without bias, inference BatchNorm, optional ReLU: (N, C_in, H, W) -> (N, C_out, H', W').

    After :func:`ghostnp.fold_batchnorm` the ``bn`` keys are gone and ``conv`` has a bias instead:
    the same function then runs one (fused) convolution.
    """
    weight = params[f"{conv}.weight"]
    if f"{bn}.running_var" in params:
        y = ops.conv2d(x, weight, None, stride, padding, groups)
        y = ops.batch_norm(y, *(params[f"{bn}.{s}"] for s in BN_SUFFIXES))
        y = ops.relu(y) if act == "relu" else y
    else:  # BatchNorm folded into the convolution
        y = ops.conv2d(x, weight, params[f"{conv}.bias"], stride, padding, groups, act)
    return _record(trace, conv, y)


def is_folded(params, bn):
    """True when the BatchNorm ``bn`` has been folded into the convolution before it."""
    return f"{bn}.running_var" not in params


def conv_bn_shapes(conv, bn, in_chs, out_chs, kernel_size=(1, 1), groups=1):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    shapes = {f"{conv}.weight": (out_chs, in_chs // groups, kh, kw)}
    shapes.update({f"{bn}.{s}": (out_chs,) for s in BN_SUFFIXES})
    return shapes


# --- the DFC attention branch (paper Sec. 3.2, Eq. 4-6) ------------------------------------------------


def dfc_attention(ops, params, prefix, x, out_hw, *, trace=None):
    """Decoupled fully-connected attention: the gate G that multiplies the Ghost module's output.

    x : (N, C_in, H, W), the Ghost module's input; out_hw : (H, W) of the Ghost module's output.
    Returns G : (N, C_out, H, W) in (0, 1). The "fully connected" layers are depthwise convolutions with
    (1, 5) and (5, 1) kernels on the half-resolution map: each aggregates a row, then a column (Eq. 4, 5).
    """
    p = ops.avg_pool_2x2(x)  # (N, C_in, H/2, W/2), floor mode
    r = conv_bn(ops, params, f"{prefix}.0", f"{prefix}.1", p, trace=trace)  # (N, C_out, H/2, W/2)
    c_out = r.shape[1]
    r = conv_bn(ops, params, f"{prefix}.2", f"{prefix}.3", r, padding=(0, 2), groups=c_out, trace=trace)  # along W
    r = conv_bn(ops, params, f"{prefix}.4", f"{prefix}.5", r, padding=(2, 0), groups=c_out, trace=trace)  # along H
    gate = _record(trace, f"{prefix}.gate", ops.sigmoid(r))  # (N, C_out, H/2, W/2)
    return _record(trace, f"{prefix}.gate_upsampled", ops.upsample_nearest(gate, out_hw))  # (N, C_out, H, W)


def dfc_attention_shapes(prefix, in_chs, out_chs):
    shapes = conv_bn_shapes(f"{prefix}.0", f"{prefix}.1", in_chs, out_chs)
    shapes.update(conv_bn_shapes(f"{prefix}.2", f"{prefix}.3", out_chs, out_chs, (1, 5), groups=out_chs))
    shapes.update(conv_bn_shapes(f"{prefix}.4", f"{prefix}.5", out_chs, out_chs, (5, 1), groups=out_chs))
    return shapes


# --- the Ghost module (paper Sec. 3.1 of GhostNet; Fig. 4 of GhostNetV2) --------------------------------


def ghost_module(ops, params, prefix, x, *, out_chs, use_act, mode="original", trace=None):
    """Half the output channels from a 1x1 conv ("intrinsic"), half from a cheap depthwise 3x3 ("ghost").

    x : (N, C_in, H, W) -> (N, out_chs, H, W). ``mode="attn"`` multiplies the result by the DFC gate
    computed from ``x`` (``{prefix}.short_conv``).
    """
    init_chs = math.ceil(out_chs / 2)
    act = "relu" if use_act else None
    if trace is None and is_folded(params, f"{prefix}.primary_conv.1"):  # the same, as one fused op
        gate = None
        if mode == "attn":
            gate = ops.dfc_gate(x, *(params[f"{prefix}.short_conv.{i}.{s}"] for i in (0, 2, 4) for s in BIAS_WEIGHT))
        convs = ("primary_conv", "cheap_operation")
        weights = (params[f"{prefix}.{conv}.0.{s}"] for conv in convs for s in BIAS_WEIGHT)
        return ops.ghost_module(x, *weights, out_chs, act, gate)  # (N, out_chs, H, W)
    x1 = conv_bn(ops, params, f"{prefix}.primary_conv.0", f"{prefix}.primary_conv.1", x, act=act, trace=trace)
    x2 = conv_bn(  # the cheap operation: depthwise 3x3 on the intrinsic maps
        ops,
        params,
        f"{prefix}.cheap_operation.0",
        f"{prefix}.cheap_operation.1",
        x1,
        padding=1,
        groups=init_chs,
        act=act,
        trace=trace,
    )  # (N, init_chs, H, W)
    out = ops.slice_channels(ops.concat_channels(x1, x2), out_chs)  # (N, out_chs, H, W)
    if mode == "attn":
        gate = dfc_attention(ops, params, f"{prefix}.short_conv", x, out.shape[2:], trace=trace)
        out = ops.multiply(out, gate)  # (N, out_chs, H, W)
    return _record(trace, prefix, out)


def ghost_module_shapes(prefix, in_chs, out_chs, mode="original"):
    init_chs = math.ceil(out_chs / 2)
    shapes = conv_bn_shapes(f"{prefix}.primary_conv.0", f"{prefix}.primary_conv.1", in_chs, init_chs)
    shapes.update(
        conv_bn_shapes(f"{prefix}.cheap_operation.0", f"{prefix}.cheap_operation.1", init_chs, init_chs, 3, init_chs)
    )
    if mode == "attn":
        shapes.update(dfc_attention_shapes(f"{prefix}.short_conv", in_chs, out_chs))
    return shapes


# --- squeeze-and-excite ---------------------------------------------------------------------------------


def squeeze_excite(ops, params, prefix, x, *, trace=None):
    """Channel gate: x * hard_sigmoid(conv_expand(relu(conv_reduce(mean_hw(x))))). (N, C, H, W) -> same."""
    if trace is None:  # the same, as one fused op
        weights = (params[f"{prefix}.{conv}.{s}"] for conv in ("conv_reduce", "conv_expand") for s in BIAS_WEIGHT)
        return ops.squeeze_excite(x, *weights)  # (N, C, H, W)
    s = ops.global_avg_pool(x)  # (N, C, 1, 1)
    s = ops.conv2d(s, params[f"{prefix}.conv_reduce.weight"], params[f"{prefix}.conv_reduce.bias"], act="relu")
    s = _record(trace, f"{prefix}.conv_reduce", s)  # (N, se_chs, 1, 1)
    s = ops.conv2d(s, params[f"{prefix}.conv_expand.weight"], params[f"{prefix}.conv_expand.bias"])
    s = _record(trace, f"{prefix}.conv_expand", s)  # (N, C, 1, 1)
    return ops.multiply(x, ops.hard_sigmoid(s))  # (N, C, H, W)


def squeeze_excite_shapes(prefix, chs, se_chs):
    return {
        f"{prefix}.conv_reduce.weight": (se_chs, chs, 1, 1),
        f"{prefix}.conv_reduce.bias": (se_chs,),
        f"{prefix}.conv_expand.weight": (chs, se_chs, 1, 1),
        f"{prefix}.conv_expand.bias": (chs,),
    }


# --- the Ghost bottleneck ---------------------------------------------------------------------------------


def ghost_bottleneck(ops, params, spec, x, *, trace=None):
    """ghost1 (expand, ReLU, DFC in V2) -> [depthwise k x k stride s] -> [SE] -> ghost2 (project) + shortcut.

    spec : :class:`ghostnp.network.architecture.BlockSpec`. x : (N, in_chs, H, W) -> (N, out_chs, H / s, W / s).
    """
    p, k = spec.name, spec.dw_kernel_size
    y = ghost_module(ops, params, f"{p}.ghost1", x, out_chs=spec.mid_chs, use_act=True, mode=spec.mode, trace=trace)
    spatial = {"stride": spec.stride, "padding": (k - 1) // 2, "trace": trace}  # the depthwise k x k, stride s
    if spec.stride > 1:
        y = conv_bn(ops, params, f"{p}.conv_dw", f"{p}.bn_dw", y, groups=spec.mid_chs, **spatial)  # (N, mid, H/s, W/s)
    if spec.se_chs:
        y = squeeze_excite(ops, params, f"{p}.se", y, trace=trace)
    y = ghost_module(ops, params, f"{p}.ghost2", y, out_chs=spec.out_chs, use_act=False, trace=trace)
    if spec.has_conv_shortcut:
        # the shortcut: depthwise k x k, stride s -> (N, in_chs, H/s, W/s); then 1 x 1 -> (N, out_chs, H/s, W/s)
        s = conv_bn(ops, params, f"{p}.shortcut.0", f"{p}.shortcut.1", x, groups=spec.in_chs, **spatial)
        s = conv_bn(ops, params, f"{p}.shortcut.2", f"{p}.shortcut.3", s, trace=trace)
    else:
        s = x
    return _record(trace, p, ops.add(y, s))  # no activation after the sum


def ghost_bottleneck_shapes(spec):
    p, k = spec.name, spec.dw_kernel_size
    shapes = ghost_module_shapes(f"{p}.ghost1", spec.in_chs, spec.mid_chs, spec.mode)
    if spec.stride > 1:
        shapes.update(conv_bn_shapes(f"{p}.conv_dw", f"{p}.bn_dw", spec.mid_chs, spec.mid_chs, k, spec.mid_chs))
    if spec.se_chs:
        shapes.update(squeeze_excite_shapes(f"{p}.se", spec.mid_chs, spec.se_chs))
    shapes.update(ghost_module_shapes(f"{p}.ghost2", spec.mid_chs, spec.out_chs))
    if spec.has_conv_shortcut:
        shapes.update(conv_bn_shapes(f"{p}.shortcut.0", f"{p}.shortcut.1", spec.in_chs, spec.in_chs, k, spec.in_chs))
        shapes.update(conv_bn_shapes(f"{p}.shortcut.2", f"{p}.shortcut.3", spec.in_chs, spec.out_chs))
    return shapes


# --- stem and head ---------------------------------------------------------------------------------------


def stem(ops, params, x, *, trace=None):
    """conv_stem 3x3 stride 2 -> bn1 -> ReLU: (N, 3, H, W) -> (N, stem_chs, ceil(H/2), ceil(W/2))."""
    return conv_bn(ops, params, "conv_stem", "bn1", x, stride=2, padding=1, act="relu", trace=trace)


def stem_shapes(stem_chs):
    return conv_bn_shapes("conv_stem", "bn1", 3, stem_chs, 3)


def final_conv(ops, params, prefix, x, *, trace=None):
    """1x1 conv -> BN -> ReLU after the last stage (``blocks.9.0``): (N, C, H, W) -> (N, final_chs, H, W)."""
    return conv_bn(ops, params, f"{prefix}.conv", f"{prefix}.bn1", x, act="relu", trace=trace)


def final_conv_shapes(prefix, in_chs, final_chs):
    return conv_bn_shapes(f"{prefix}.conv", f"{prefix}.bn1", in_chs, final_chs)


def head(ops, params, features, *, pre_logits=False, drop_rate=0.0, trace=None):
    """Global average pool -> conv_head (1x1, bias) -> ReLU -> flatten -> dropout [-> classifier].

    features : (N, C, H, W). Returns (N, head_chs) with ``pre_logits``, else logits (N, num_classes).
    Dropout (timm's ``drop_rate``, 0.2) is the identity in the inference tables; a training table drops units.
    """
    pooled = ops.global_avg_pool(features)  # (N, C, 1, 1)
    h = ops.conv2d(pooled, params["conv_head.weight"], params["conv_head.bias"], act="relu")  # (N, 1280, 1, 1)
    h = _record(trace, "conv_head", ops.flatten(h))  # (N, 1280)
    h = ops.dropout(h, drop_rate)  # (N, 1280)
    if pre_logits:
        return h
    return _record(trace, "classifier", ops.linear(h, params["classifier.weight"], params["classifier.bias"]))


def head_shapes(in_chs, head_chs, num_classes):
    return {
        "conv_head.weight": (head_chs, in_chs, 1, 1),
        "conv_head.bias": (head_chs,),
        "classifier.weight": (num_classes, head_chs),
        "classifier.bias": (num_classes,),
    }
