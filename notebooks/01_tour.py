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
# # 1. A tour of GhostNetV2
#
# One photograph goes through GhostNetV2 1.0x stage by stage: what each stage makes of it, the shape of
# every map, the parameter and multiply-add table (`ghostnp.summary`), and where the network's
# 167 million multiply-adds are spent.
#
# The first cell loads the official ImageNet weights **if they are already in the cache**
# (`ghostnp cache` lists it; nothing is downloaded here), otherwise it says so and uses random weights:
# shapes and costs are the same, only the pictures and the predictions lose their meaning.

# %%

import matplotlib.pyplot as plt
import numpy as np

import ghostnp

FAST = ghostnp.notebook.setup()  # offline from here on; slide-sized figures; fast mode under the test suite

MODEL = "ghostnetv2_100"
model, PRETRAINED = ghostnp.notebook.pretrained_or_random(
    MODEL, note="Shapes and costs are exact; pictures and predictions are those of an untrained network."
)
print(model)

# %% [markdown]
# ## The input
#
# `ghostnp.preprocess` applies the evaluation transform the weights were measured with: shorter side to
# 256 (bicubic), centre crop 224 x 224, ImageNet mean and std. The result is one NCHW float32 array.

# %%
image_path = ghostnp.sample_image_path()  # Chelsea the cat (CC0), shipped with ghostnp
x = ghostnp.preprocess(image_path, MODEL)  # (1, 3, 224, 224)
print("input:", x.shape, x.dtype)

mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
shown = np.clip(x[0].transpose(1, 2, 0) * std + mean, 0, 1)  # undo the normalisation to display it
fig, ax = plt.subplots(figsize=(5, 5))
ax.imshow(shown)
ax.set_title("The network's input: 3 x 224 x 224")
ax.axis("off")
plt.show()

# %% [markdown]
# ## Stage by stage
#
# `model.forward_intermediates(x)` returns the logits and a dict of every named intermediate result,
# keyed like the PyTorch state_dict. The output of a bottleneck is under its prefix (`"blocks.3.0"`).
# The stem halves the resolution; then five stride-2 stages bring 224 down to 7, while the channels grow
# from 16 to 160, and a final 1 x 1 conv widens them to 960.

# %%
logits, inter = model.forward_intermediates(x)
stage_outputs = ["conv_stem"] + [f"blocks.{s}.{b}" for s in range(9) for b in range(9) if f"blocks.{s}.{b}" in inter]
stage_outputs.append("blocks.9.0.conv")
print(f"{'result':<18} {'shape (C, H, W)':>18}  {'stride':>6}")
for name in stage_outputs:
    c, h, w = inter[name].shape[1:]
    print(f"{name:<18} {f'{c} x {h} x {w}':>18}  {224 // h:>6}")
print(f"{'conv_head':<18} {str(inter['conv_head'].shape[1]):>18}")
print(f"{'classifier':<18} {str(logits.shape[1]):>18}")

# %% [markdown]
# What each stage "sees": the mean absolute activation over channels of the last block of every stage,
# at the stage's own resolution. Early maps follow edges and fur; the 7 x 7 maps at the end say where the
# object is.

# %%
last_of_stage = ["conv_stem"] + [[n for n in stage_outputs if n.startswith(f"blocks.{s}.")][-1] for s in range(9)]
fig, axes = plt.subplots(2, 5, figsize=(20, 8.5))
for ax, name in zip(axes.flat, last_of_stage):
    energy = np.abs(inter[name][0]).mean(axis=0)  # (H, W)
    im = ax.imshow(energy)
    c, h, w = inter[name].shape[1:]
    ax.set_title(f"{name}\n{c} x {h} x {w}")
    ax.axis("off")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
fig.suptitle("Mean |activation| over channels, at the end of each stage", fontsize=20)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What the network says
#
# The top five classes (meaningful only with the official weights).

# %%
probabilities = np.exp(logits[0] - logits[0].max())
probabilities /= probabilities.sum()
classes = ghostnp.images.labels.imagenet_classes()
for index in np.argsort(-probabilities)[:5]:
    print(f"{probabilities[index]:7.2%}  {classes[index].name}")
if not PRETRAINED:
    print("(random weights: these classes mean nothing)")

# %% [markdown]
# ## The summary table
#
# `ghostnp.summary` lists every convolution (and the classifier) with its output shape, parameters
# (BatchNorm included) and multiply-adds per image. Multiply-adds are counted as in the paper: convolutions
# and the classifier, BatchNorm folded, activations and gating free. That count is the "167M FLOPs" of
# GhostNetV2 1.0x.

# %%
table = ghostnp.summary(MODEL, input_size=224)
lines, shown_rows = str(table).splitlines(), 30
print("\n".join(lines[: 3 + shown_rows]))
print(f"... {len(table.rows) - shown_rows} more rows ...")
print("\n".join(lines[-3:]))

# %% [markdown]
# ## Where the 167 M multiply-adds go
#
# Every row of the summary belongs to a stage and to one kind of operation. Grouping them shows the shape of
# the budget: the 1 x 1 "intrinsic" convolutions of the Ghost modules dominate, the cheap depthwise ghost
# operations cost little, and the DFC attention branch, added in V2, costs about a sixth of the total.

# %%
KINDS = {  # substring of the layer name -> kind of operation, first match wins
    "short_conv": "DFC attention",
    "cheap_operation": "Ghost cheap op (3x3 dw)",
    "primary_conv": "Ghost 1x1 (intrinsic)",
    "conv_dw": "stride-2 depthwise",
    ".se.": "squeeze-excite",
    "shortcut": "shortcut",
}
KIND_ORDER = ["stem / final / head", *KINDS.values()]
COLOURS = dict(zip(KIND_ORDER, plt.get_cmap("tab10").colors))


def kind_of(layer):
    return next((kind for key, kind in KINDS.items() if key in layer), "stem / final / head")


def stage_of(layer):
    if layer.startswith("blocks.9."):
        return "final 1x1"
    if layer.startswith("blocks."):
        return "stage " + layer.split(".")[1]
    return {"conv_stem": "stem"}.get(layer, "head")


stages = list(dict.fromkeys(stage_of(row.name) for row in table.rows))
macs = {(s, k): 0 for s in stages for k in KIND_ORDER}
for row in table.rows:
    macs[stage_of(row.name), kind_of(row.name)] += row.macs

fig, ax = plt.subplots(figsize=(15, 7))
bottom = np.zeros(len(stages))
for kind in KIND_ORDER:
    heights = np.array([macs[s, kind] for s in stages]) / 1e6
    ax.bar(stages, heights, bottom=bottom, label=kind, color=COLOURS[kind])
    bottom += heights
for i, total in enumerate(bottom):
    ax.text(i, total + 0.4, f"{total:.1f}", ha="center", fontsize=13)
ax.set_ylabel("million multiply-adds per image")
ax.set_title(f"{MODEL} at 224 x 224: {table.total_macs / 1e6:.1f} M multiply-adds, by stage and operation")
ax.legend(fontsize=13)
plt.xticks(rotation=30)
plt.tight_layout()
plt.show()

by_kind = {kind: sum(macs[s, kind] for s in stages) for kind in KIND_ORDER}
for kind, value in sorted(by_kind.items(), key=lambda kv: -kv[1]):
    print(f"{kind:<26} {value / 1e6:7.1f} M  {value / table.total_macs:6.1%}")

# %% [markdown]
# Parameters tell a different story. A weight is reused at every position of its map, so the cheap 7 x 7
# maps of stage 8 hold over a third of the weights, and the head (the 1280-wide 1 x 1 conv and the
# classifier) holds 2.5 M parameters for 2.5 M multiply-adds: each of its weights is used once per image.

# %%
params = dict.fromkeys(stages, 0)
for row in table.rows:
    params[stage_of(row.name)] += row.params
share_of_params = np.array([params[s] for s in stages]) / table.total_params
share_of_macs = np.array([sum(macs[s, k] for k in KIND_ORDER) for s in stages]) / table.total_macs
positions = np.arange(len(stages))
fig, ax = plt.subplots(figsize=(15, 6))
ax.bar(positions - 0.2, 100 * share_of_params, width=0.4, color="tab:purple", label="share of the parameters")
ax.bar(positions + 0.2, 100 * share_of_macs, width=0.4, color="tab:red", label="share of the multiply-adds")
ax.set_xticks(positions, stages, rotation=30)
ax.set_ylabel("% of the whole network")
ax.set_title(f"{table.total_params / 1e6:.2f} M parameters and {table.total_macs / 1e6:.0f} M multiply-adds, by stage")
ax.legend()
plt.tight_layout()
plt.show()
