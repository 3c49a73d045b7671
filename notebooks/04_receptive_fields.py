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
# # 4. Receptive fields: GhostNet V1 against GhostNetV2
#
# The **theoretical** receptive field of a unit is the set of input pixels that can change it at all; the
# **effective** receptive field is where it actually looks, measured by the magnitude of its input gradient
# (Luo et al., NeurIPS 2016). GhostNetV2's DFC branch exists to widen the field of a cheap network: this
# notebook measures by how much, with `ghostnp.teaching.receptive_field`.
#
# The first cell loads the official weights of both networks if they are in the cache, otherwise random
# ones (it says which). Theoretical fields do not depend on the weights; effective ones do.

# %%

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib.patches import Rectangle

import ghostnp

FAST = ghostnp.notebook.setup()  # offline from here on; slide-sized figures; fast mode under the test suite

MODELS = {"GhostNet V1": "ghostnet_100", "GhostNetV2": "ghostnetv2_100"}
models = {label: ghostnp.notebook.pretrained_or_random(name)[0] for label, name in MODELS.items()}
print("Theoretical fields are exact either way; effective fields of random networks are not those of trained ones.")

# %% [markdown]
# ## Theoretical fields, block by block
#
# `ghostnp.theoretical_receptive_fields(name, input_size)` runs the network's own layer code on "field maps" that
# carry, for every row and column, the first and last input row and column that can reach it. On a large
# input (here 4096 x 4096) nothing is clipped by the image border. `through_se=False` treats the
# squeeze-and-excite gates as constants: an SE gate is computed from the mean of the whole map, so strictly
# every unit after the first SE block sees the whole image, in V1 and V2 alike.

# %%
LARGE = 4096
fields = {label: ghostnp.theoretical_receptive_fields(name, LARGE, through_se=False) for label, name in MODELS.items()}
blocks = ["conv_stem"] + [spec.name for spec in models["GhostNetV2"].arch.blocks] + ["blocks.9.0.conv"]
print(f"{'output of':<16} {'stride':>6} {'V1 field':>10} {'V2 field':>10}   (rows of the centre unit, unclipped)")
for block in blocks:
    v1, v2 = fields["GhostNet V1"][block], fields["GhostNetV2"][block]
    print(f"{block:<16} {int(v2.stride[0]):>6} {v1.size[0]:>10} {v2.size[0]:>10}")

# %%
positions = np.arange(len(blocks))
fig, ax = plt.subplots(figsize=(16, 7))
for label, colour in (("GhostNet V1", "tab:gray"), ("GhostNetV2", "tab:orange")):
    ax.plot(
        positions,
        [fields[label][b].size[0] for b in blocks],
        "o-",
        color=colour,
        markersize=9,
        linewidth=3,
        label=label,
    )
ax.axhline(224, color="black", linestyle="--", label="a 224 x 224 image")
ax.set_yscale("log", base=2)
ax.set_xticks(positions, [b.removeprefix("blocks.") for b in blocks], rotation=60)
ax.set_ylabel("theoretical field (pixels per side)")
ax.set_xlabel("output of")
ax.set_title("Theoretical receptive field of the centre unit, SE gates held constant")
ax.legend()
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# From the first DFC block (`blocks.2.0`) on, V2's field is 1.7 to 2.6 times as wide as V1's at the same
# depth: each DFC gate aggregates 5 positions along rows and 5 along columns on a half-resolution map, i.e.
# up to 10 map positions each way, and the blocks stack these widenings. V2's centre unit can see a whole
# 224 x 224 image from `blocks.4.0` on; V1's from `blocks.6.0`.
#
# ## The fields on a photograph
#
# The same fields at 224 x 224, on the image, for the centre unit of three blocks (clipped to the image).

# %%
x = ghostnp.preprocess(ghostnp.sample_image_path(), "ghostnetv2_100")  # (1, 3, 224, 224)
mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
photo = np.clip(x[0].transpose(1, 2, 0) * std + mean, 0, 1)  # (224, 224, 3)
at_224 = {label: ghostnp.theoretical_receptive_fields(name, 224, through_se=False) for label, name in MODELS.items()}

shown_blocks = ["blocks.2.0", "blocks.3.0", "blocks.5.0"]
fig, axes = plt.subplots(1, len(shown_blocks), figsize=(6 * len(shown_blocks), 6.6))
for ax, block in zip(axes, shown_blocks):
    ax.imshow(photo)
    for label, colour, style in (("GhostNet V1", "white", "--"), ("GhostNetV2", "orange", "-")):
        top, bottom, left, right = at_224[label][block].box()
        size = at_224[label][block].size
        ax.add_patch(
            Rectangle(
                (left - 0.5, top - 0.5),
                right - left + 1,
                bottom - top + 1,
                fill=False,
                edgecolor=colour,
                linestyle=style,
                linewidth=3.5,
                label=f"{label}: {size[0]} x {size[1]}",
            )
        )
    ax.set_title(f"centre unit of {block}")
    ax.legend(loc="lower center", fontsize=13, framealpha=0.85)
    ax.axis("off")
fig.suptitle("Which pixels can reach one unit (theoretical field, 224 x 224 input)", fontsize=20)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## A detail: the field depends on the parity of the row
#
# The gate is computed on a half-resolution map and copied to 2 x 2 blocks by the nearest upsample, so rows
# `2q` and `2q + 1` share one gate value, whose field cannot be centred on both. Rows of the output of the
# first DFC Ghost module (`blocks.2.0.ghost1`, stride 4 at 224 x 224): in V2 each pair of rows shares one
# field, so an even row's field reaches further down and an odd row's further up; V1's are symmetric.

# %%
module = at_224["GhostNetV2"]["blocks.2.0.ghost1"]
module_v1 = at_224["GhostNet V1"]["blocks.2.0.ghost1"]
print(
    f"{'row':>4} {'centre':>7}  {'V2 field rows':>14} {'up':>4} {'down':>5}  {'V1 field rows':>14} {'up':>4} {'down':>5}"  # noqa: E501  (one table row)
)
for row in range(24, 32):
    (top, bottom), (top1, bottom1) = module.rows[row], module_v1.rows[row]
    centre = (top1 + bottom1) // 2  # the input row under the unit: V1's field is symmetric around it
    print(
        f"{row:>4} {centre:>7}  {f'{top}..{bottom}':>14} {centre - top:>4} {bottom - centre:>5}  "
        f"{f'{top1}..{bottom1}':>14} {centre - top1:>4} {bottom1 - centre:>5}"
    )

# %% [markdown]
# ## Effective fields
#
# `effective_receptive_field(model, layer)` averages the input-gradient magnitude of the centre unit of a
# layer over random inputs (summed over the layer's channels at that position). The dashed frame is the
# theoretical field. The effective field is concentrated in the middle of the theoretical one; the question is
# how much wider V2's gets.

# %%
ERF_SIZE = 128 if FAST else 224  # input size; the fast mode of the test suite uses smaller inputs
NUM_INPUTS = 2 if FAST else 16  # random inputs averaged
erf_blocks = ["blocks.3.0"] if FAST else ["blocks.3.0", "blocks.6.0"]
theory = {
    label: ghostnp.theoretical_receptive_fields(name, ERF_SIZE, through_se=False) for label, name in MODELS.items()
}
erfs = {}
for block in erf_blocks:
    maps = {
        f"{label}, {block}": ghostnp.effective_receptive_field(models[label], block, ERF_SIZE, num_inputs=NUM_INPUTS)
        for label in MODELS
    }
    boxes = {f"{label}, {block}": theory[label][block].box() for label in MODELS}
    erfs[block] = maps
    display(
        ghostnp.viz.receptive_field_heatmap(
            maps, boxes, title=f"Effective receptive field of the centre unit of {block}, {NUM_INPUTS} random inputs"
        )
    )

# %% [markdown]
# One number per field: the radius that holds half of the gradient mass around the unit.


# %%
def radius_of_mass(erf, fraction=0.5):
    """The radius (pixels) of the smallest disc around the map centre holding `fraction` of the map's sum."""
    h, w = erf.shape
    rows, cols = np.mgrid[:h, :w]
    distance = np.hypot(rows - h // 2, cols - w // 2).ravel()
    order = np.argsort(distance)
    cumulative = np.cumsum(erf.ravel()[order]) / erf.sum()
    return float(distance[order][np.searchsorted(cumulative, fraction)])


for maps in erfs.values():
    for label, erf in maps.items():
        print(f"{label:<28} half of the gradient within {radius_of_mass(erf):5.1f} pixels of the unit")
