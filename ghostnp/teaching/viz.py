"""Pictures for teaching: attention overlays, feature-map grids, receptive-field heat maps, per-layer bars.

Every function returns a :class:`matplotlib.figure.Figure` with a title, colour bars and legends, with fonts
sized for a slide. Figures are closed in pyplot before they are returned, so a notebook shows each one once
(as the cell's value) and scripts save them with ``fig.savefig("name.png")``. matplotlib is imported
here, inside the functions, never by ``import ghostnp``: install it with ``pip install 'ghostnp[notebooks]'``.

>>> import ghostnp                                  # ghostnp.viz is loaded on first use
>>> image = ghostnp.load_image(ghostnp.sample_image_path())
>>> model = ghostnp.create_model("ghostnetv2_100")
>>> _, inter = model.forward_intermediates(ghostnp.preprocess(image))  # (1, 3, 224, 224) in
>>> gate = inter["blocks.6.0.ghost1.short_conv.gate"][0]               # (C, 7, 7)
>>> fig = ghostnp.viz.show_attention(image, gate.mean(axis=0), title="DFC gate, blocks.6.0")
>>> fig = ghostnp.viz.feature_grid(inter["blocks.2.0.ghost1.primary_conv.0"][0, :16])
>>> s = ghostnp.summary("ghostnetv2_100")
>>> fig = ghostnp.viz.layer_bar_chart([r.name for r in s.rows], [r.macs for r in s.rows])
>>> fig.savefig("macs.png")                                            # doctest: +SKIP
"""

import math

import numpy as np

SLIDE_STYLE = {"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 16, "legend.fontsize": 11}

# Layer kinds for colouring per-layer charts, in the order of the legend: (label, substring of the key).
LAYER_KINDS = (
    ("DFC attention", ".short_conv."),
    ("squeeze-excite", ".se."),
    ("cheap depthwise (ghost)", ".cheap_operation."),
    ("primary 1x1 (intrinsic)", ".primary_conv."),
    ("stride-2 depthwise", ".conv_dw"),
    ("shortcut", ".shortcut."),
)
OTHER_KIND = "stem, final conv, head"


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "ghostnp.viz needs matplotlib, which is not installed: pip install 'ghostnp[notebooks]'"
        ) from None
    return plt


def _figure(plt, **kwargs):
    """A new figure with the slide style; text created inside ``with plt.rc_context(SLIDE_STYLE)``."""
    return plt.figure(layout="constrained", **kwargs)


def _done(plt, fig):
    plt.close(fig)  # shown once in a notebook, as the returned value
    return fig


def _as_image(image):
    """(H, W, 3) or (H, W) uint8 / float array -> a float array in [0, 1] for imshow."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(
            f"image must have shape (H, W, 3) or (H, W), got {image.shape}; for a network input (3, H, W) "
            "pass x.transpose(1, 2, 0) (and undo the normalisation)"
        )
    if image.dtype == np.uint8:
        return image / 255.0
    return np.clip(image, 0.0, 1.0)


def layer_kind(name):
    """The kind of a layer key, for colouring: ``"blocks.3.0.ghost1.short_conv.2"`` -> ``"DFC attention"``."""
    for label, part in LAYER_KINDS:
        if part in name + ".":
            return label
    return OTHER_KIND


def show_attention(image, attention, *, title="attention", alpha=0.55, cmap="inferno", label="gate value"):
    """An image with an attention map laid over it, and the map alone beside it.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3) uint8 or float in [0, 1] (or (H, W) grey).
    attention : ndarray, shape (h, w): e.g. a DFC gate averaged over channels. Drawn over the whole image
        as blocks (no smoothing: each block is one gate value, as the nearest upsample uses it).
    title : the figure's title; alpha : opacity of the overlay; cmap : colour map; label : colour-bar label.

    Returns
    -------
    matplotlib.figure.Figure with 2 image axes (overlay, map) and 1 colour bar.
    """
    plt = _pyplot()
    image, attention = _as_image(image), np.asarray(attention, dtype=float)
    if attention.ndim != 2:
        raise ValueError(f"attention must be a 2-D map (h, w), got shape {attention.shape}; average channels first")
    h, w = image.shape[:2]
    with plt.rc_context(SLIDE_STYLE):
        fig = _figure(plt, figsize=(11, 5))
        overlay, alone = fig.subplots(1, 2)
        overlay.imshow(image, cmap="gray", extent=(0, w, h, 0))
        overlay.imshow(attention, cmap=cmap, alpha=alpha, extent=(0, w, h, 0), interpolation="nearest")
        overlay.set_title(f"image with {attention.shape[0]} x {attention.shape[1]} map")
        opaque = alone.imshow(attention, cmap=cmap, interpolation="nearest")
        alone.set_title("map alone")
        for ax in (overlay, alone):
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(opaque, ax=[overlay, alone], label=label, shrink=0.9)
        fig.suptitle(title)
    return _done(plt, fig)


def feature_grid(maps, *, ncols=8, titles=None, title="feature maps", cmap="viridis", label="activation"):
    """A grid of feature maps on one shared colour scale.

    Parameters
    ----------
    maps : ndarray, shape (C, H, W): e.g. ``intermediates[key][0, :16]``.
    ncols : panels per row; titles : one string per map (default ``"channel i"``).
    title, cmap, label : figure title, colour map, colour-bar label.

    Returns
    -------
    matplotlib.figure.Figure with C image axes and 1 colour bar.
    """
    plt = _pyplot()
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (C, H, W), got {maps.shape}; select one image: intermediates[key][0]")
    titles = [f"channel {i}" for i in range(len(maps))] if titles is None else list(titles)
    ncols = min(ncols, len(maps))
    nrows = math.ceil(len(maps) / ncols)
    low, high = float(maps.min()), float(maps.max())
    with plt.rc_context(SLIDE_STYLE):
        fig = _figure(plt, figsize=(2.2 * ncols + 1.2, 2.3 * nrows + 0.8))
        axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
        for ax in axes[len(maps) :]:
            ax.remove()
        for ax, feature, name in zip(axes, maps, titles):
            shown = ax.imshow(feature, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            ax.set_title(name, fontsize=11)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(shown, ax=list(axes[: len(maps)]), label=label, shrink=0.9)
        fig.suptitle(f"{title} ({maps.shape[1]} x {maps.shape[2]})")
    return _done(plt, fig)


def receptive_field_heatmap(fields, boxes=None, *, title="effective receptive field", cmap="magma"):
    """Effective receptive fields side by side, each scaled to its maximum, with the theoretical boxes.

    Parameters
    ----------
    fields : dict mapping a label (e.g. ``"GhostNet V1"``) to an (H, W) array, or a single (H, W) array:
        the output of :func:`ghostnp.effective_receptive_field`.
    boxes : dict with the same labels (or a single tuple): (top, bottom, left, right), inclusive, of the
        theoretical field, e.g. ``theoretical_receptive_fields(...)[layer].box()``; drawn as a dashed frame.

    Returns
    -------
    matplotlib.figure.Figure with one image axes per field and 1 colour bar.
    """
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    if not isinstance(fields, dict):
        fields, boxes = {"": fields}, None if boxes is None else {"": boxes}
    boxes = boxes or {}
    with plt.rc_context(SLIDE_STYLE):
        fig = _figure(plt, figsize=(5.2 * len(fields) + 1.2, 5.4))
        axes = np.atleast_1d(fig.subplots(1, len(fields))).ravel()
        for ax, (label, erf) in zip(axes, fields.items()):
            erf = np.asarray(erf, dtype=float)
            shown = ax.imshow(erf / max(erf.max(), np.finfo(float).tiny), cmap=cmap, vmin=0, vmax=1)
            if label in boxes:
                top, bottom, left, right = boxes[label]
                corner, width, height = (left - 0.5, top - 0.5), right - left + 1, bottom - top + 1
                outline = {"edgecolor": "cyan", "linestyle": "--", "linewidth": 2, "label": "theoretical field"}
                ax.add_patch(Rectangle(corner, width, height, fill=False, **outline))
                ax.legend(loc="lower right")
            ax.set_title(
                f"{label} ({erf.shape[0]} x {erf.shape[1]} input)"
                if label
                else f"{erf.shape[0]} x {erf.shape[1]} input"
            )
        fig.colorbar(shown, ax=list(axes), label="mean |gradient| / max", shrink=0.9)
        fig.suptitle(title)
    return _done(plt, fig)


def layer_bar_chart(names, values, *, ylabel="multiply-adds", title="per layer", log=False, kind=layer_kind):
    """One bar per layer, in network order, coloured by the layer's kind, with a legend and the totals.

    Parameters
    ----------
    names : sequence of layer keys (e.g. ``[row.name for row in ghostnp.summary(name).rows]``).
    values : sequence of numbers, one per layer (MACs, parameters, milliseconds, ...).
    ylabel, title : axis label and title; log : a logarithmic value axis.
    kind : function from a layer key to a group label (default :func:`layer_kind`); the legend shows each
        group's share of the total.

    Returns
    -------
    matplotlib.figure.Figure with 1 axes.
    """
    plt = _pyplot()
    from matplotlib.ticker import EngFormatter

    names, values = list(names), np.asarray(values, dtype=float)
    if len(names) != len(values):
        raise ValueError(f"names and values must have the same length, got {len(names)} and {len(values)}")
    kinds = [kind(name) for name in names]
    labels = list(dict.fromkeys(kinds))
    colours = dict(zip(labels, plt.get_cmap("tab10").colors))
    total = values.sum()
    with plt.rc_context(SLIDE_STYLE):
        fig = _figure(plt, figsize=(14, 5.5))
        ax = fig.subplots()
        positions = np.arange(len(names))
        for label in labels:
            mine = np.array([k == label for k in kinds])
            share = values[mine].sum() / total if total else 0.0
            ax.bar(positions[mine], values[mine], color=colours[label], label=f"{label}: {share:.0%}")
        ticks = _block_ticks(names)
        ax.set_xticks(ticks, [_block(names[i]) for i in ticks], rotation=60, ha="right", fontsize=10)
        ax.set_xlim(-1, len(names))
        ax.set_ylabel(ylabel)
        ax.set_yscale("log" if log else "linear")
        ax.yaxis.set_major_formatter(EngFormatter())  # 2M, 500k: no "1e6" offset to decode
        ax.legend(title=f"total {total:,.0f}", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title(title)
    return _done(plt, fig)


def _block_ticks(names, labels_per_chart=40):
    """Positions of the first layer of each block, thinned so that rotated labels do not overlap."""
    min_gap, ticks = max(1, round(len(names) / labels_per_chart)), []
    for i, name in enumerate(names):
        if (i == 0 or _block(name) != _block(names[i - 1])) and (not ticks or i - ticks[-1] >= min_gap):
            ticks.append(i)
    return ticks


def _block(name):
    """``"blocks.3.0.ghost1.primary_conv.0"`` -> ``"blocks.3.0"``; other keys unchanged up to the first dot."""
    parts = name.split(".")
    return ".".join(parts[:3]) if parts[0] == "blocks" else parts[0]
