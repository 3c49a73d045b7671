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
# # 3. DFC attention: where GhostNetV2 looks
#
# A Ghost module sees a 3 x 3 neighbourhood at most. GhostNetV2 (Tang et al. 2022, Sec. 3.2) adds a
# **decoupled fully-connected (DFC) attention** branch: from the module's input it computes a gate in (0, 1)
# for every output unit, which multiplies the Ghost module's output. The gate is cheap because it is
# computed on a half-resolution map and because its "fully connected" layers are decoupled: one aggregates
# along rows (a (1, 5) depthwise convolution), the next along columns (a (5, 1) one).
#
# This notebook shows the gates of every stage on real photographs, the horizontal and vertical steps
# separately, and what DFC costs compared with self-attention on the same maps.

# %%

import matplotlib.pyplot as plt
import numpy as np

import ghostnp

FAST = ghostnp.notebook.setup()  # offline from here on; slide-sized figures; fast mode under the test suite

MODEL = "ghostnetv2_100"
model, PRETRAINED = ghostnp.notebook.pretrained_or_random(
    MODEL, note="Costs are exact; the gate maps are those of an untrained network (no object-shaped attention)."
)

# %% [markdown]
# ## The branch, in ghostnp's code
#
# `ghostnp/network/layers.py`, `dfc_attention` (`x`: the Ghost module's input, (N, C_in, H, W)):
#
# ```python
# p = avg_pool_2x2(x)                                         # (N, C_in, H/2, W/2)
# r = conv_bn(..., "short_conv.0", p)                          # 1x1 conv to C_out channels
# r = conv_bn(..., "short_conv.2", r, padding=(0, 2), groups=C_out)   # (1, 5): along each row    (Eq. 4)
# r = conv_bn(..., "short_conv.4", r, padding=(2, 0), groups=C_out)   # (5, 1): along each column (Eq. 5)
# gate = sigmoid(r)                                            # (N, C_out, H/2, W/2)
# gate = upsample_nearest(gate, (H, W))                        # multiplies the Ghost module's output (Eq. 6)
# ```
#
# Every step is recorded by `forward_intermediates` under its key.


# %%
def photographs():
    """Photographs as (H, W, 3) uint8 arrays: scikit-image's sample photos if installed, else ghostnp's cat."""
    try:
        from skimage import data
    except ImportError:
        print("scikit-image is not installed (pip install scikit-image): using ghostnp's sample image only")
        return {"chelsea": np.asarray(ghostnp.load_image(ghostnp.sample_image_path()))}
    photos = {"chelsea": data.chelsea(), "astronaut": data.astronaut(), "coffee": data.coffee()}
    return dict(list(photos.items())[:1]) if FAST else photos


photos = photographs()
x = np.concatenate([ghostnp.preprocess(photo, MODEL) for photo in photos.values()])  # (P, 3, 224, 224)
logits, inter = model.forward_intermediates(x)
mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
shown = np.clip(x.transpose(0, 2, 3, 1) * std + mean, 0, 1)  # (P, 224, 224, 3): the crops the network sees

dfc_blocks = [k.removesuffix(".ghost1.short_conv.gate") for k in inter if k.endswith(".ghost1.short_conv.gate")]
print(f"{len(dfc_blocks)} Ghost bottlenecks have a DFC branch (all but the first two):")
for block in dfc_blocks:
    gate = inter[f"{block}.ghost1.short_conv.gate"]
    module = inter[f"{block}.ghost1"]
    print(
        f"  {block:<10} gate {gate.shape[1]:>4} x {gate.shape[2]:>2} x {gate.shape[3]:<2} -> upsampled to "
        f"{module.shape[2]} x {module.shape[3]}, gating the {module.shape[1]}-channel Ghost module output"
    )

# %% [markdown]
# ## One gate, up close
#
# The gate of `blocks.6.0` (the first block of stage 6), averaged over its channels, laid over the photograph:
# each square is one value of the 7 x 7 gate, applied to a 2 x 2 patch of the 14 x 14 map (32 x 32 pixels of the input).

# %%
first_photo = next(iter(photos))
ghostnp.viz.show_attention(
    shown[0],
    inter["blocks.6.0.ghost1.short_conv.gate"][0].mean(axis=0),
    title=f"DFC gate of blocks.6.0 on '{first_photo}', mean over channels",
)

# %% [markdown]
# ## The gates of every stage
#
# One column per stage (its first DFC block), one row per photograph: the gate averaged over channels, on
# the half-resolution grid where it is computed. Stage 2's gates are 28 x 28, stage 8's are 3 x 3.

# %%
stage_blocks = [f"blocks.{s}.0" for s in range(2, 9)]
fig, axes = plt.subplots(
    len(photos), len(stage_blocks) + 1, figsize=(3.1 * (len(stage_blocks) + 1), 3.5 * len(photos)), squeeze=False
)
for row, name in enumerate(photos):
    axes[row, 0].imshow(shown[row])
    axes[row, 0].set_title(name)
    for col, block in enumerate(stage_blocks, start=1):
        gate = inter[f"{block}.ghost1.short_conv.gate"][row].mean(axis=0)  # (h, w)
        axes[row, col].imshow(shown[row].mean(axis=2), cmap="gray", extent=(0, 224, 224, 0))
        im = axes[row, col].imshow(gate, cmap="inferno", alpha=0.65, extent=(0, 224, 224, 0), interpolation="nearest")
        fig.colorbar(im, ax=axes[row, col], fraction=0.046, pad=0.03)
        if row == 0:
            axes[row, col].set_title(f"{block}\n{gate.shape[0]} x {gate.shape[1]} gate")
for ax in axes.flat:
    ax.axis("off")
fig.suptitle("DFC gates (mean over channels) of every stage", fontsize=20)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Horizontal, then vertical
#
# The two decoupled steps of one channel of `blocks.3.0`, on the first photograph: the pooled and projected
# map (`short_conv.0`), after the (1, 5) convolution along rows (`short_conv.2`), after the (5, 1)
# convolution along columns (`short_conv.4`), and the gate (its sigmoid). The kernels are drawn beside
# the titles' steps.

# %%
BLOCK, CHANNEL = "blocks.3.0", 5
prefix = f"{BLOCK}.ghost1.short_conv"
steps = {
    "pooled + 1x1 (short_conv.0)": inter[f"{prefix}.0"][0, CHANNEL],
    "after (1, 5), along rows (short_conv.2)": inter[f"{prefix}.2"][0, CHANNEL],
    "after (5, 1), along columns (short_conv.4)": inter[f"{prefix}.4"][0, CHANNEL],
    "gate = sigmoid": inter[f"{prefix}.gate"][0, CHANNEL],
}
weights = model.state_dict()
horizontal_kernel = weights[f"{prefix}.2.weight"][CHANNEL, 0]  # (1, 5)
vertical_kernel = weights[f"{prefix}.4.weight"][CHANNEL, 0]  # (5, 1)

fig, axes = plt.subplots(1, 4, figsize=(22, 6.5))
for ax, (label, step) in zip(axes, steps.items()):
    im = ax.imshow(step, cmap="inferno" if "gate" in label else "RdBu_r")
    ax.set_title(label.replace(" (", "\n("), fontsize=15)
    ax.axis("off")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
axes[1].set_xlabel("")
axes[1].text(
    0.5,
    -0.08,
    "kernel " + " ".join(f"{v:+.2f}" for v in horizontal_kernel.ravel()),
    transform=axes[1].transAxes,
    ha="center",
    va="top",
    fontsize=13,
)
axes[2].text(
    0.5,
    -0.08,
    "kernel " + " ".join(f"{v:+.2f}" for v in vertical_kernel.ravel()) + " (top to bottom)",
    transform=axes[2].transAxes,
    ha="center",
    va="top",
    fontsize=13,
)
side = steps["gate = sigmoid"].shape[0]
fig.suptitle(f"{prefix}, channel {CHANNEL}: the {side} x {side} maps of the DFC branch, step by step", fontsize=19)
plt.tight_layout()
plt.show()

# %% [markdown]
# Where each step looks: the input gradient of one unit in the middle of the map (`ghostnp.input_gradient`,
# a NumPy backward pass). After the 1 x 1 projection the unit sees the square field of the layers below;
# the (1, 5) step widens it along the row only, the (5, 1) step then along the column: two cheap 1-D
# aggregations give a 2-D field, which is the point of decoupling.

# %%
centre = inter[f"{prefix}.0"].shape[2] // 2
low, high = 112 - 48, 112 + 48  # the 96 x 96 pixels around the image centre
fig, axes = plt.subplots(1, 3, figsize=(19, 6.5))
steps = (
    (f"{prefix}.0", "pooled + 1x1 (short_conv.0)"),
    (f"{prefix}.2", "+ (1, 5) along rows"),
    (f"{prefix}.4", "+ (5, 1) along columns"),
)
for ax, (key, label) in zip(axes, steps):
    gradient = ghostnp.input_gradient(model, x[:1], (key, (CHANNEL, centre, centre)))  # (1, 3, 224, 224)
    magnitude = np.abs(gradient[0]).sum(axis=0)[low:high, low:high]  # (96, 96)
    im = ax.imshow(magnitude / magnitude.max(), cmap="magma", extent=(low, high, high, low), vmin=0, vmax=1)
    ax.set_title(label)
    ax.set_xlabel("input column")
fig.colorbar(im, ax=list(axes), label="|input gradient| / max", shrink=0.9)
axes[0].set_ylabel("input row")
fig.suptitle(f"Which input pixels reach the centre unit of {prefix}, channel {CHANNEL}", fontsize=19)
plt.show()

# %% [markdown]
# ## What DFC costs, against self-attention on the same maps
#
# Self-attention would give every unit a global field, at a price that grows with the square of the number
# of positions. For each DFC branch of the network, its multiply-adds as `ghostnp.summary` counts them,
# against one-head self-attention from the same `C_in` input channels to the same `C_out` channels
# (query, key and value projections `3 C_in C_out N`, scores `N^2 C_out`, weighted sum `N^2 C_out`, no
# output projection), on the same half-resolution map (`N = H/2 x W/2`) and on the full map (`N = H x W`).

# %%
table = ghostnp.summary(MODEL, input_size=224)
macs = {row.name: row.macs for row in table.rows}


def self_attention_macs(c_in, c_out, positions):
    """One-head self-attention from c_in to c_out channels over `positions` tokens (no output projection)."""
    return 3 * c_in * c_out * positions + 2 * positions**2 * c_out


rows = []
for block in dfc_blocks:
    prefix = f"{block}.ghost1.short_conv"
    c_in = weights[f"{prefix}.0.weight"].shape[1]  # the 1x1 projection's (C_out, C_in, 1, 1)
    c_out, h, w = inter[f"{prefix}.gate_upsampled"].shape[1:]
    dfc = sum(macs[f"{prefix}.{i}"] for i in (0, 2, 4))
    sa_half = self_attention_macs(c_in, c_out, (h // 2) * (w // 2))  # on the map DFC works on
    sa_full = self_attention_macs(c_in, c_out, h * w)  # on the Ghost module's own map
    rows.append((block, h, c_in, c_out, dfc, sa_half, sa_full))

print(f"{'block':<10} {'map':>8} {'C_in':>5} {'C_out':>5} {'DFC':>10} {'SA, H/2 map':>12} {'SA, full map':>13}")
for block, h, c_in, c_out, dfc, sa_half, sa_full in rows:
    print(
        f"{block:<10} {f'{h} x {h}':>8} {c_in:>5} {c_out:>5} "
        f"{dfc / 1e6:>9.2f}M {sa_half / 1e6:>11.2f}M {sa_full / 1e6:>12.2f}M"
    )
total_dfc, total_half, total_full = (sum(r[i] for r in rows) for i in (4, 5, 6))
print(
    f"{'total':<10} {'':>8} {'':>5} {'':>5} {total_dfc / 1e6:>9.1f}M {total_half / 1e6:>11.1f}M {total_full / 1e6:>12.1f}M"  # noqa: E501  (one table row)
)
print(
    f"\nThe whole network costs {table.total_macs / 1e6:.0f} M multiply-adds, {total_dfc / 1e6:.1f} M of them in DFC. "
    f"Self-attention in the same places would add {total_half / 1e6:.0f} M (half-resolution maps) "
    f"or {total_full / 1e6:.0f} M (full maps)."
)

# %%
positions = np.arange(len(rows))
fig, ax = plt.subplots(figsize=(17, 7))
series = (
    (-0.27, 4, "DFC attention", "tab:orange"),
    (0, 5, "self-attention, H/2 x W/2 map", "tab:blue"),
    (0.27, 6, "self-attention, H x W map", "tab:gray"),
)
for offset, index, label, colour in series:
    ax.bar(positions + offset, [r[index] for r in rows], width=0.27, label=label, color=colour)
ax.set_yscale("log")
ax.set_xticks(positions, [f"{r[0].removeprefix('blocks.')}\n{r[1]}x{r[1]}" for r in rows], fontsize=13)
ax.set_xlabel("block and map size")
ax.set_ylabel("multiply-adds per image (log)")
ax.set_title("The attention branch of every V2 block: DFC against self-attention on the same maps")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# DFC grows with the number of positions `N`, self-attention with `N^2`. On the 56 x 56 maps of stage 2,
# DFC costs 48 times less than self-attention on the same half-resolution map and 750 times less than on
# the full map; on the 7 x 7 maps of stage 8, 3 and 18 times less. That is why GhostNetV2 can afford an
# attention branch in every block, the high-resolution early ones included, for about a sixth of its
# multiply-adds. The price is a field that is large but not global, and a gate on a grid twice coarser.
