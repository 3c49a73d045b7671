# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. The Ghost module: intrinsic and ghost feature maps
#
# A convolution layer's output maps are often near-copies of each other. The Ghost module (GhostNet,
# Han et al. 2020, Sec. 3.1) makes only half of them with an ordinary 1 x 1 convolution, the
# **intrinsic** maps, and derives the other half, the **ghost** maps, with a cheap depthwise 3 x 3
# convolution of the intrinsic ones. This notebook looks at both halves on a photograph and counts what
# the cheap operation saves.
#
# The first cell loads the official weights if they are in the cache, otherwise random ones (it says which).

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

import ghostnp

FAST = ghostnp.notebook.setup()  # offline from here on; slide-sized figures; fast mode under the test suite

MODEL = "ghostnetv2_100"
model, PRETRAINED = ghostnp.notebook.pretrained_or_random(
    MODEL, note="Costs are exact; the feature maps are those of an untrained network."
)

# %% [markdown]
# ## The module, in ghostnp's code
#
# `ghostnp/network/layers.py`, `ghost_module` (`x` is the module's input, `init_chs = ceil(out_chs / 2)`):
#
# ```python
# x1 = conv_bn(..., "primary_conv", x, act=act)                            # 1x1 conv: the intrinsic maps
# x2 = conv_bn(..., "cheap_operation", x1, padding=1, groups=init_chs)      # depthwise 3x3: the ghost maps
# out = concat_channels(x1, x2)[:, :out_chs]
# ```
#
# Ghost map `i` is computed from intrinsic map `i` alone, by one 3 x 3 filter (plus BatchNorm and ReLU).
# `forward_intermediates` records both halves under their conv keys, and the module output under its prefix.

# %%
x = ghostnp.preprocess(ghostnp.sample_image_path(), MODEL)  # (1, 3, 224, 224)
logits, inter = model.forward_intermediates(x)

MODULE = "blocks.0.0.ghost1"  # the first Ghost module: 16 -> 16 channels at 112 x 112
intrinsic = inter[f"{MODULE}.primary_conv.0"][0]  # (8, 112, 112)
ghost = inter[f"{MODULE}.cheap_operation.0"][0]  # (8, 112, 112)
output = inter[MODULE][0]  # (16, 112, 112)
print("module input :", inter["conv_stem"].shape[1:])
print("intrinsic    :", intrinsic.shape, " <- 1 x 1 conv of the input")
print("ghost        :", ghost.shape, " <- depthwise 3 x 3 of the intrinsic maps")
print("output       :", output.shape, " = concat(intrinsic, ghost)")
print(
    "output is exactly the concatenation:",
    np.array_equal(output, np.concatenate([intrinsic, ghost])[: output.shape[0]]),
)

# %% [markdown]
# ## Intrinsic maps (top) and their ghosts (bottom)
#
# Each column is one channel pair: the ghost below is the intrinsic map above filtered by the 3 x 3 kernel
# shown in the middle row. With trained weights the ghosts are shifted, sharpened or blurred versions of the
# intrinsic maps: extra views for almost no cost.

# %%
weights = model.state_dict()
cheap_kernels = weights[f"{MODULE}.cheap_operation.0.weight"][:, 0]  # (8, 3, 3), one per intrinsic map
pairs = 4 if FAST else 8
fig, axes = plt.subplots(3, pairs, figsize=(2.6 * pairs, 8.4), gridspec_kw={"height_ratios": [3, 1.2, 3]})
for i in range(pairs):
    axes[0, i].imshow(intrinsic[i])
    axes[0, i].set_title(f"intrinsic {i}")
    limit = np.abs(cheap_kernels[i]).max()
    axes[1, i].imshow(cheap_kernels[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[1, i].set_title("3x3 kernel", fontsize=13)
    axes[2, i].imshow(ghost[i])
    correlation = np.corrcoef(intrinsic[i].ravel(), ghost[i].ravel())[0, 1]
    axes[2, i].set_title(f"ghost {i}\nr = {correlation:.2f}")
for ax in axes.flat:
    ax.axis("off")
fig.suptitle(f"{MODULE}: intrinsic maps, the cheap operation's kernels, and the ghost maps", fontsize=19)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What the cheap operation saves
#
# A plain 1 x 1 convolution from `c_in` to `m` channels on an `h x w` map costs `c_in * m * h * w`
# multiply-adds and `c_in * m` weights. The Ghost module makes `m / 2` channels that way and the other `m / 2`
# with a 3 x 3 depthwise filter each: `(c_in * m / 2 + 9 * m / 2) * h * w`. The saving is
#
# $$ r = \frac{c_{in}\, m}{c_{in}\, m/2 + 9\, m/2} = \frac{2\, c_{in}}{c_{in} + 9} \;\to\; 2 \quad (c_{in} \gg 9), $$
#
# the paper's speed-up ratio with `s = 2` ghosts per intrinsic map and `d = 3`. Below, every Ghost module of
# the network against a plain 1 x 1 convolution of the same input and output width (conv weights only:
# BatchNorm adds the same 2 numbers per channel to both once it is folded; the DFC branch of V2 is left out
# here, see notebook 3).

# %%
shapes = ghostnp.expected_shapes(MODEL)
modules = [k for k in inter if k.endswith((".ghost1", ".ghost2"))]
rows = []
for name in modules:
    c_in = shapes[f"{name}.primary_conv.0.weight"][1]
    m, h, w = inter[name].shape[1:]
    init_chs = math.ceil(m / 2)
    ghost_params = c_in * init_chs + 9 * init_chs
    plain_params = c_in * m
    rows.append((name, c_in, m, h, ghost_params * h * w, plain_params * h * w, ghost_params, plain_params))

print(
    f"{'Ghost module':<18} {'c_in':>5} {'m':>5} {'map':>9} {'Ghost MACs':>12} {'1x1 MACs':>12} {'saving':>7} {'2c/(c+9)':>9}"  # noqa: E501  (one table row)
)
for name, c_in, m, h, ghost_macs, plain_macs, _, _ in rows:
    print(
        f"{name:<18} {c_in:>5} {m:>5} {f'{h} x {h}':>9} {ghost_macs:>12,} {plain_macs:>12,} "
        f"{plain_macs / ghost_macs:>6.2f}x {2 * c_in / (c_in + 9):>8.2f}x"
    )
total_ghost, total_plain = sum(r[4] for r in rows), sum(r[5] for r in rows)
params_ghost, params_plain = sum(r[6] for r in rows), sum(r[7] for r in rows)
print(
    f"\nall {len(rows)} Ghost modules: {total_ghost / 1e6:.1f} M multiply-adds instead of {total_plain / 1e6:.1f} M "
    f"({total_plain / total_ghost:.2f}x), {params_ghost / 1e6:.2f} M weights instead of {params_plain / 1e6:.2f} M"
)
summary_macs = {row.name: row.macs for row in ghostnp.summary(MODEL).rows}
print(
    "the Ghost-module counts agree with ghostnp.summary:",
    all(summary_macs[f"{r[0]}.primary_conv.0"] + summary_macs[f"{r[0]}.cheap_operation.0"] == r[4] for r in rows),
)

# %%
names = [r[0].removeprefix("blocks.") for r in rows]
positions = np.arange(len(rows))
fig, (top, bottom) = plt.subplots(2, 1, figsize=(18, 10), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
top.bar(positions - 0.2, [r[5] / 1e6 for r in rows], width=0.4, color="tab:gray", label="plain 1x1 conv, same width")
top.bar(
    positions + 0.2, [r[4] / 1e6 for r in rows], width=0.4, color="tab:green", label="Ghost module (1x1 + cheap 3x3)"
)
top.set_ylabel("M multiply-adds")
top.set_title("Every Ghost module of GhostNetV2 1.0x against a plain 1 x 1 convolution (224 x 224 input)")
top.legend()
bottom.plot(positions, [r[5] / r[4] for r in rows], "o", color="tab:green", markersize=10, label="counted saving")
bottom.plot(
    positions, [2 * r[1] / (r[1] + 9) for r in rows], "x", color="black", markersize=10, label="2 c_in / (c_in + 9)"
)
bottom.axhline(2, color="tab:gray", linestyle="--", label="the limit, 2")
bottom.set_ylabel("saving (x)")
bottom.set_ylim(0.8, 2.2)
bottom.legend(loc="lower right", fontsize=13, ncol=3)
bottom.set_xticks(positions, names, rotation=90, fontsize=12)
plt.tight_layout()
plt.show()

# %% [markdown]
# The first Ghost modules gain least: with 16 input channels a 3 x 3 depthwise filter (9 multiply-adds per
# output) is not much cheaper than a 1 x 1 convolution (16). From 80 input channels on it is above 1.8, close
# to the limit 2.
# The module's output is still 16 to 960 channels wide, so the following layers see the full width; only the
# way half of it is produced got cheaper.
