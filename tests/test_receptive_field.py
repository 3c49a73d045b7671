"""Receptive fields: small stacks and Ghost modules computed by hand; the whole networks checked against
the effective field, whose support (exact zeros of the input gradient elsewhere) must fill the theoretical
box exactly, touching all four sides, for every layer the check reaches."""

import numpy as np
import pytest

import ghostnp
from ghostnp.network import layers
from ghostnp.teaching.receptive_field import (
    FieldMap,
    FieldOps,
    effective_receptive_field,
    theoretical_receptive_fields,
)


def pixels(h, w=None, channels=1):
    """A map whose unit (i, j) sees exactly input pixel (i, j)."""
    w = h if w is None else w
    return FieldMap(channels, np.repeat(np.arange(h), 2).reshape(h, 2), np.repeat(np.arange(w), 2).reshape(w, 2))


def kernel(channels_out, channels_in, kh, kw):
    return np.broadcast_to(np.float32(0), (channels_out, channels_in, kh, kw))


def shape_only(shapes):
    return {key: np.broadcast_to(np.float32(0), shape) for key, shape in shapes.items()}


def test_two_3x3_convs_see_5_pixels_and_less_at_the_border():
    ops = FieldOps()
    y = ops.conv2d(ops.conv2d(pixels(9), kernel(1, 1, 3, 3), padding=1), kernel(1, 1, 3, 3), padding=1)
    assert y.rows[4].tolist() == [2, 6]  # 1 + 2 + 2 = 5 rows
    assert y.rows[0].tolist() == [0, 2]  # padding is not pixels
    assert y.shape == (1, 1, 9, 9)


def test_a_stride_2_conv_doubles_what_the_next_kernel_adds():
    ops = FieldOps()
    y = ops.conv2d(pixels(16), kernel(1, 1, 3, 3), stride=2, padding=1)  # unit i: rows 2i-1 .. 2i+1
    z = ops.conv2d(y, kernel(1, 1, 3, 3), padding=1)  # + 2 units of stride 2
    assert y.rows[4].tolist() == [7, 9] and z.rows[4].tolist() == [5, 11]  # 3 + 2 * 2 = 7
    assert z.cols.shape == (8, 2)


def test_rectangular_kernels_widen_one_axis_and_pooling_drops_the_odd_row():
    ops = FieldOps()
    y = ops.conv2d(pixels(6, 6), kernel(1, 1, 1, 5), padding=(0, 2))
    assert y.rows[3].tolist() == [3, 3] and y.cols[3].tolist() == [1, 5]
    pooled = ops.avg_pool_2x2(pixels(7))
    assert pooled.rows.tolist() == [[0, 1], [2, 3], [4, 5]]  # row 6 reaches nothing


def ghost_module_fields(size, mode, through_se=True):
    params = shape_only(layers.ghost_module_shapes("g", 4, 4, mode))
    return layers.ghost_module(
        FieldOps(through_se), params, "g", pixels(size, channels=4), out_chs=4, use_act=True, mode=mode
    )


def test_ghost_module_v1_sees_3_pixels():
    out = ghost_module_fields(16, "original")
    assert out.rows[8].tolist() == [7, 9] and out.shape == (1, 4, 16, 16)


def test_dfc_attention_sees_10_rows_alternating_with_parity():
    # pool: half-row q sees rows 2q, 2q+1; (5, 1) conv: half-rows q-2 .. q+2 -> rows 2q-4 .. 2q+5;
    # upsample: row y takes half-row y // 2. Even y: y-4 .. y+5; odd y: y-5 .. y+4.
    out = ghost_module_fields(16, "attn")
    assert out.rows[8].tolist() == [4, 13] and out.rows[7].tolist() == [2, 11]
    assert out.cols[8].tolist() == [4, 13] and out.cols[7].tolist() == [2, 11]  # the (1, 5) conv, likewise


def test_dfc_attention_on_a_7_row_map_uses_the_legacy_index_map():
    # 7 rows pool to 3 (row 6 dropped); the (5, 1) conv on 3 half-rows sees all of them: rows 0 .. 5;
    # every output row copies one of them. Row 6 is seen only through the main path (rows 5 .. 6).
    out = ghost_module_fields(7, "attn")
    assert out.rows.tolist() == [[0, 5]] * 5 + [[0, 6], [0, 6]]


def test_squeeze_excite_makes_the_field_global_unless_treated_as_constant():
    params = shape_only(layers.squeeze_excite_shapes("se", 4, 4))
    x = FieldOps().conv2d(pixels(9, channels=4), kernel(4, 4, 3, 3), padding=1)
    assert layers.squeeze_excite(FieldOps(), params, "se", x).rows[4].tolist() == [0, 8]
    assert layers.squeeze_excite(FieldOps(through_se=False), params, "se", x).rows[4].tolist() == [3, 5]


def test_v1_and_v2_fields_at_the_first_dfc_block_by_hand():
    # blocks.1.0 sees 27 pixels at stride 4 (stem 3; blocks.0.0 + 2 + 2 at stride 2; blocks.1.0 + 2 at
    # stride 2, its 3 x 3 stride-2 depthwise + 2 * 2, then + 2 at stride 4). blocks.2.0 adds, at stride 4:
    # V1 two cheap 3 x 3 convs (+ 2 + 2 units); V2 the DFC field (+ 9 units, see above) and the second cheap 3 x 3.
    v1 = theoretical_receptive_fields("ghostnet_100", 512)
    v2 = theoretical_receptive_fields("ghostnetv2_100", 512)
    assert v1["blocks.1.0"].size == v2["blocks.1.0"].size == (27, 27)
    assert v1["blocks.2.0"].size == (27 + 4 * 4,) * 2
    assert v2["blocks.2.0"].size == (27 + 4 * (9 + 2),) * 2
    assert v2["blocks.2.0"].stride == (4.0, 4.0)


def test_dfc_widens_the_whole_network_field():
    v1 = theoretical_receptive_fields("ghostnet_100", 2048, through_se=False)
    v2 = theoretical_receptive_fields("ghostnetv2_100", 2048, through_se=False)
    assert list(v1) == [k for k in v2 if ".short_conv." not in k]  # same layers, V2 has the DFC branches
    for name in ("blocks.3.0", "blocks.6.0", "blocks.8.0"):
        assert v2[name].size[0] > v1[name].size[0]
    assert v1["blocks.9.0.conv"].size == (1171, 1171)  # inside the image: 1171 / 2 < 1024


def support_box(erf):
    rows, cols = np.nonzero(erf.sum(axis=1))[0], np.nonzero(erf.sum(axis=0))[0]
    return rows[0], rows[-1], cols[0], cols[-1]


@pytest.mark.parametrize(
    "layer",
    ["conv_stem", "blocks.1.0", "blocks.2.0.ghost1.short_conv.gate", "blocks.2.0.ghost1", "blocks.2.0", "blocks.3.0"],
)
def test_effective_field_fills_the_theoretical_box_of_the_tiny_model(layer):
    model = ghostnp.create_model("ghostnetv2_tiny", seed=4)
    size = (45, 38)
    field = theoretical_receptive_fields(model, size)[layer]
    erf = effective_receptive_field(model, layer, size, num_inputs=4)
    assert erf.shape == size and erf.dtype == np.float32
    assert support_box(erf) == field.box()


@pytest.mark.parametrize("name", ["ghostnet_100", "ghostnetv2_100"])
def test_effective_field_fills_the_theoretical_box_of_the_real_models(name):
    model = ghostnp.create_model(name, seed=5)
    layer, size = "blocks.2.0", (96, 80)  # the first DFC block in V2, before the first SE
    field = theoretical_receptive_fields(model, size)[layer]
    assert support_box(effective_receptive_field(model, layer, size, num_inputs=2)) == field.box()


def test_squeeze_excite_spreads_the_effective_field_beyond_the_convolutions():
    model = ghostnp.create_model("ghostnetv2_tiny", seed=4)
    layer = "blocks.2.0"  # its SE gate comes after the DFC Ghost module
    local = theoretical_receptive_fields(model, 96, through_se=False)[layer].box()
    assert local == (11, 81, 11, 81)
    assert support_box(effective_receptive_field(model, layer, 96, num_inputs=2)) == (0, 95, 0, 95)


def test_errors_name_the_layer():
    model = ghostnp.create_model("ghostnetv2_tiny")
    with pytest.raises(ValueError, match="spatial output.*'classifier'"):
        effective_receptive_field(model, "classifier", 40)
