"""Hypothesis strategies shared by the op tests and the gradient tests."""

from hypothesis import strategies as st


@st.composite
def conv_cases(draw, max_stride=2, max_size=20):
    """A valid F.conv2d configuration: dense, grouped or depthwise; square or rectangular kernel; per-axis
    stride and padding; odd sizes from the smallest the kernel allows up to ``max_size``."""
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    if kind == "dense":
        groups, c_in, c_out = 1, draw(st.integers(1, 6)), draw(st.integers(1, 6))
    elif kind == "grouped":
        groups = draw(st.integers(2, 3))
        c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    else:  # depthwise, with channel multiplier 1 (as in GhostNet) or 2
        c_in = groups = draw(st.integers(1, 6))
        c_out = c_in * draw(st.sampled_from([1, 1, 2]))
    kernel = draw(st.sampled_from([(1, 1), (3, 3), (5, 5), (1, 5), (5, 1), (2, 3)]))
    padding = tuple(draw(st.integers(0, k // 2 + 1)) for k in kernel)
    stride = tuple(draw(st.integers(1, max_stride)) for _ in kernel)
    hw = tuple(draw(st.integers(max(1, k - 2 * p), max_size)) for k, p in zip(kernel, padding))
    return {
        "n": draw(st.integers(1, 2)), "c_in": c_in, "c_out": c_out, "groups": groups, "kernel": kernel,
        "hw": hw, "stride": stride, "padding": padding, "bias": draw(st.booleans()),
        "act": draw(st.sampled_from([None, "relu"])), "contiguous": draw(st.booleans()),
    }  # fmt: skip


def conv_arrays(case, rng):
    """Random float64 x, weight and bias (None when the case has none) for a ``conv_cases`` case, and the
    keyword arguments of ``conv2d``: (x, weight, bias, kwargs)."""
    x = rng.standard_normal((case["n"], case["c_in"], *case["hw"]))
    weight = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"], *case["kernel"]))
    bias = rng.standard_normal(case["c_out"]) if case["bias"] else None
    kwargs = {"stride": case["stride"], "padding": case["padding"], "groups": case["groups"], "act": case["act"]}
    return x, weight, bias, kwargs
