"""``ghostnp.viz``: every figure renders to a non-empty PNG with the Agg backend and has the axes it promises;
matplotlib stays out of ``import ghostnp`` and its absence gives one actionable sentence."""

import io
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import ghostnp  # noqa: E402
from ghostnp.teaching import viz  # noqa: E402
from ghostnp.teaching.receptive_field import effective_receptive_field, theoretical_receptive_fields  # noqa: E402


def render(fig):
    """The figure as PNG bytes (Agg), checked to be a real, non-blank picture."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    png = buffer.getvalue()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    return png


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def colour_bars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


@pytest.fixture(scope="module")
def tiny_run():
    model = ghostnp.create_model("ghostnetv2_tiny", seed=0)
    x = np.random.default_rng(0).normal(size=(1, 3, 64, 48)).astype(np.float32)
    return model, model.forward_intermediates(x)[1]


def test_show_attention_overlays_a_gate_on_an_image(tiny_run):
    _, inter = tiny_run
    gate = inter["blocks.2.0.ghost1.short_conv.gate"][0]  # (C, 8, 6)
    image = np.random.default_rng(1).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    fig = viz.show_attention(image, gate.mean(axis=0), title="DFC gate")
    render(fig)
    assert len(image_axes(fig)) == 2 and len(colour_bars(fig)) == 1
    assert fig._suptitle.get_text() == "DFC gate"
    assert image_axes(fig)[0].images[1].get_array().shape == (8, 6)  # blocks, not smoothed to 64 x 48


def test_feature_grid_has_one_panel_per_map_and_a_shared_colour_bar(tiny_run):
    _, inter = tiny_run
    maps = inter["blocks.2.0.ghost1.primary_conv.0"][0, :10]  # 12 intrinsic maps, 16 x 12
    fig = viz.feature_grid(maps, ncols=4)
    render(fig)
    assert len(image_axes(fig)) == 10 and len(colour_bars(fig)) == 1
    assert {ax.images[0].get_clim() for ax in image_axes(fig)} == {(float(maps.min()), float(maps.max()))}
    assert image_axes(fig)[3].get_title() == "channel 3"


def test_receptive_field_heatmap_compares_fields_with_their_boxes():
    model = ghostnp.create_model("ghostnetv2_tiny", seed=0)
    layer, size = "blocks.2.0.ghost1", 48
    erf = effective_receptive_field(model, layer, size, num_inputs=2)
    box = theoretical_receptive_fields(model, size)[layer].box()
    fig = viz.receptive_field_heatmap({"V2 tiny": erf, "V2 tiny again": erf}, {"V2 tiny": box})
    render(fig)
    assert len(image_axes(fig)) == 2 and len(colour_bars(fig)) == 1
    assert image_axes(fig)[0].get_legend().get_texts()[0].get_text() == "theoretical field"
    assert image_axes(fig)[1].get_legend() is None
    assert len(image_axes(viz.receptive_field_heatmap(erf, box))) == 1


def test_layer_bar_chart_colours_layers_by_kind_with_shares():
    rows = ghostnp.summary("ghostnetv2_tiny", 64).rows
    fig = viz.layer_bar_chart([r.name for r in rows], [r.macs for r in rows], title="MACs per layer")
    render(fig)
    (ax,) = fig.axes
    assert len(ax.patches) == len(rows)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("DFC attention: ") for t in legend)
    assert ax.get_legend().get_title().get_text() == f"total {sum(r.macs for r in rows):,}"
    assert ax.get_xticklabels()[0].get_text() == "conv_stem"


def test_layer_kinds():
    assert viz.layer_kind("blocks.3.0.ghost1.short_conv.2") == "DFC attention"
    assert viz.layer_kind("blocks.3.0.ghost1.cheap_operation.0") == "cheap depthwise (ghost)"
    assert viz.layer_kind("blocks.3.0.se.conv_reduce") == "squeeze-excite"
    assert viz.layer_kind("blocks.1.0.conv_dw") == "stride-2 depthwise"
    assert viz.layer_kind("conv_head") == viz.OTHER_KIND


def test_wrong_shapes_say_what_to_pass():
    with pytest.raises(ValueError, match=r"x.transpose\(1, 2, 0\)"):
        viz.show_attention(np.zeros((3, 8, 8)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="average channels first"):
        viz.show_attention(np.zeros((8, 8, 3)), np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match=r"intermediates\[key\]\[0\]"):
        viz.feature_grid(np.zeros((1, 4, 8, 8)))


def test_import_ghostnp_does_not_import_matplotlib_and_a_missing_one_is_one_sentence():
    code = (
        "import sys, ghostnp, ghostnp.teaching.viz, ghostnp.teaching.receptive_field, ghostnp.autodiff.record\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
        "sys.modules['matplotlib'] = None\n"
        "try:\n"
        "    ghostnp.viz.feature_grid([[[0.0]]])\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (
        result.stdout.strip()
        == "ghostnp.viz needs matplotlib, which is not installed: pip install 'ghostnp[notebooks]'"
    )
