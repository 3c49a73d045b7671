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
# # 7. Training GhostNetV2 in NumPy
#
# The other notebooks run the network; this one trains it. ghostnp computes the loss in PyTorch's training
# mode (BatchNorm on the batch's statistics, dropout before the classifier), every parameter gradient by
# walking the forward pass back with one vector-Jacobian product per op, and the update of SGD or AdamW,
# each equal to PyTorch's to about 1e-12 in float64 (`tests/test_train_pytorch.py`).
#
# Part 1 trains a small GhostNetV2 from scratch on shapes drawn here, and looks at what it learned: its
# first-layer filters and its DFC attention maps. Part 2 fine-tunes only the classifier of the pretrained
# ghostnetv2_100 on three textures ImageNet has no class for, if the official weights are in the cache.

# %%

import matplotlib.pyplot as plt
import numpy as np

import ghostnp
from ghostnp.train import AdamW, cosine_lr, fit, loss_and_grads

FAST = ghostnp.notebook.setup()  # offline from here on; slide-sized figures; fast mode under the test suite

pretrained_model, PRETRAINED = ghostnp.notebook.pretrained_or_random(
    "ghostnetv2_100", note="Part 1 trains a network from scratch and needs no weights; part 2 (fine-tuning) is skipped."
)

# %% [markdown]
# ## One training step, in ghostnp's code
#
# `ghostnp.train.loss_and_grads` runs the unchanged model code on a *recording* op table
# (`ghostnp/autodiff/record.py`, `TrainingTape`) and walks the records back:
#
# ```python
# tape = TrainingTape(x, model.params, trainable, rng)   # batch_norm -> batch statistics, dropout -> a mask
# logits = model code on the tape                         # (N, num_classes); running statistics updated
# loss, grad_logits = cross_entropy(logits, targets)     # as F.cross_entropy; grad = (softmax - onehot) / N
# _, grads = tape.backward(logits, grad_logits)           # one VJP per op, in reverse (ghostnp/autodiff/vjp.py)
# optimizer.step(model.params, grads)                     # SGD / AdamW, as torch.optim
# ```
#
# A convolution's weight gradient is the input correlated with the output gradient (`vjp_conv2d_params`);
# training BatchNorm's input gradient subtracts the share of the batch mean and variance
# (`vjp_batch_norm_training`).

# %% [markdown]
# ## A small labelled data set, made here
#
# Circles, rectangles and triangles of random colour, size and place on a noisy grey background
# (`skimage.draw.random_shapes`), 64 x 64 pixels. The class is the shape: colour, size and place tell nothing.

# %%
from skimage.draw import random_shapes

CLASSES = ("circle", "rectangle", "triangle")
SIZE = 64


def shapes(count, seed):
    """``count`` images (count, 3, 64, 64) normalised to mean 0, their labels (count,), and the object masks."""
    rng = np.random.default_rng(seed)
    images, labels, masks = [], [], []
    for i in range(count):
        label = i % len(CLASSES)
        drawn, _ = random_shapes((SIZE, SIZE), max_shapes=1, shape=CLASSES[label], min_size=18, max_size=36,
                                 intensity_range=((0, 200),), rng=int(rng.integers(2**31)))  # fmt: skip
        mask = (drawn != 255).any(axis=2)  # (64, 64): where the shape is
        background = rng.uniform(150, 255) + rng.normal(0, 20, (SIZE, SIZE, 1))  # noisy grey
        images.append(np.where(mask[..., None], drawn, background))
        labels.append(label)
        masks.append(mask)
    x = (np.stack(images).transpose(0, 3, 1, 2) / 255 - 0.5) / 0.25  # (count, 3, 64, 64)
    return x.astype(np.float32), np.array(labels), np.stack(masks)


train_x, train_y, _ = shapes(60 if FAST else 480, seed=0)
val_x, val_y, val_masks = shapes(30 if FAST else 150, seed=1)
shown = np.clip(val_x.transpose(0, 2, 3, 1) * 0.25 + 0.5, 0, 1)  # (count, 64, 64, 3), for display
print(f"{len(train_x)} training and {len(val_x)} validation images of {SIZE} x {SIZE}, classes {CLASSES}")

fig, axes = plt.subplots(2, 8, figsize=(16, 4.6))
for ax, image, label in zip(axes.flat, shown, val_y):
    ax.imshow(image)
    ax.set_title(CLASSES[label], fontsize=13)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## One step by hand
#
# `ghostnetv2_tiny` (5 Ghost bottlenecks, three with DFC attention, 18 k parameters) with a 3-class head.
# One call gives the loss and a gradient for every weight and bias, keyed like the state_dict; the running
# statistics are buffers, updated by the forward pass as in PyTorch.

# %%
model = ghostnp.create_model("ghostnetv2_tiny", num_classes=len(CLASSES), seed=0)
random_model = ghostnp.create_model("ghostnetv2_tiny", num_classes=len(CLASSES), seed=0)  # kept untrained
initial_filters = model.params["conv_stem.weight"].copy()

loss, grads = loss_and_grads(model, train_x[:32], train_y[:32], rng=0)
print(f"loss {loss:.4f} (chance: ln 3 = {np.log(3):.4f}); {len(grads)} gradients, e.g.")
for key in ("conv_stem.weight", "blocks.2.0.ghost1.short_conv.2.weight", "blocks.3.0.ghost1.primary_conv.1.bias"):
    print(f"  {key:<42} {str(grads[key].shape):<16} |g| max {np.abs(grads[key]).max():.2e}")
print("bn1 has seen", model.num_batches_tracked["bn1"], "training batch")

# %% [markdown]
# ## Training
#
# `fit` shuffles the images each epoch (seeded), runs mini-batches of 32 through `loss_and_grads` and
# AdamW, anneals the learning rate on a cosine, and scores the validation images in inference mode (with
# the running statistics) after each epoch.

# %%
EPOCHS = 2 if FAST else 8
history = fit(
    model,
    train_x,
    train_y,
    epochs=EPOCHS,
    batch_size=32,
    optimizer=AdamW(3e-3, weight_decay=0.05),
    lr_schedule=lambda epoch: cosine_lr(epoch, epochs=EPOCHS, base_lr=3e-3),
    validation=(val_x, val_y),
)
fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5))
left.plot(history["epoch"], history["loss"], "o-")
left.set(xlabel="epoch", ylabel="mean training loss", title="loss")
right.plot(history["epoch"], history["accuracy"], "o-", label="training batches (training mode)")
right.plot(history["epoch"], history["val_accuracy"], "s-", label="validation (inference)")
right.axhline(1 / len(CLASSES), color="gray", linestyle=":", label="chance")
right.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1), title="accuracy")
right.legend()
plt.tight_layout()
plt.show()
print(f"validation accuracy after {EPOCHS} epochs: {history['val_accuracy'][-1]:.0%}")

# %% [markdown]
# ## What the first layer learned
#
# The sixteen 3 x 3 RGB filters of `conv_stem`, before and after training, each scaled to its own range,
# and the change training made (scaled to the largest change). A few epochs move the stem only a little:
# most of the learning happens deeper, where the features are about shapes rather than pixels.

# %%
trained_filters = model.params["conv_stem.weight"]
change = trained_filters - initial_filters
moved = np.linalg.norm(change) / np.linalg.norm(initial_filters)
rows = {"initial": initial_filters, "trained": trained_filters, "change": change}
fig, axes = plt.subplots(3, 16, figsize=(20, 4.8))
for row, (label, filters) in enumerate(rows.items()):
    for col, kernel in enumerate(filters):  # kernel (3, 3, 3): RGB x 3 x 3
        rgb = kernel.transpose(1, 2, 0)
        shown_rgb = 0.5 + rgb / (2 * np.abs(change).max()) if label == "change" else (rgb - rgb.min()) / np.ptp(rgb)
        axes[row, col].imshow(np.clip(shown_rgb, 0, 1), interpolation="nearest")
        axes[row, col].axis("off")
    axes[row, 0].set_title(label, fontsize=13, loc="left")
plt.tight_layout()
plt.show()
print(f"training changed the stem filters by {moved:.0%} of their norm")

# %% [markdown]
# ## DFC attention after training
#
# Each DFC branch computes a gate in (0, 1) on the half-resolution map. How much does it follow the object?
# For every validation image, the correlation between the gate (averaged over channels) and the object
# mask at the gate's resolution, averaged over the images: trained network against the same network
# with its random initial weights.

# %%
_, trained_parts = model.forward_intermediates(val_x)
_, random_parts = random_model.forward_intermediates(val_x)
gate_keys = [key for key in trained_parts if key.endswith(".short_conv.gate")]


def correlation_with_masks(gates, masks):
    """Per image, the correlation of a gate map (count, h, w) with the masks pooled to (h, w); the mean."""
    count, h, w = gates.shape
    pooled = masks.reshape(count, h, SIZE // h, w, SIZE // w).mean(axis=(2, 4))  # (count, h, w)
    a = gates - gates.mean(axis=(1, 2), keepdims=True)
    b = pooled - pooled.mean(axis=(1, 2), keepdims=True)
    return float(np.mean((a * b).sum((1, 2)) / np.sqrt((a * a).sum((1, 2)) * (b * b).sum((1, 2)) + 1e-12)))


print(f"{'DFC gate':<36} {'map':>6} {'trained':>8} {'random':>8}")
for key in gate_keys:
    h, w = trained_parts[key].shape[2:]
    trained_c = correlation_with_masks(trained_parts[key].mean(axis=1), val_masks)
    random_c = correlation_with_masks(random_parts[key].mean(axis=1), val_masks)
    print(f"{key:<36} {f'{h}x{w}':>6} {trained_c:>+8.2f} {random_c:>+8.2f}")

# %% [markdown]
# With random weights the first DFC gate (`blocks.2.0`) already responds to contrast: the shapes are darker
# than the background, and random filters see that too. The next one, `blocks.2.1`, is where training shows:
# with random weights its gate is unrelated to the object (a correlation near 0, and a fixed pattern
# brighter at the bottom), after training it is brighter on and around the shape. The effect is clear on
# average and modest on single images (a small network, eight epochs). Its 8 x 8 gate on six images:

# %%
KEY = "blocks.2.1.ghost1.short_conv.gate"
fig, axes = plt.subplots(3, 6, figsize=(16, 8.4))
for col in range(6):
    axes[0, col].imshow(shown[col])
    axes[0, col].set_title(CLASSES[val_y[col]], fontsize=13)
    for row, (label, parts) in enumerate((("trained", trained_parts), ("random", random_parts)), start=1):
        axes[row, col].imshow(shown[col].mean(axis=2), cmap="gray", extent=(0, SIZE, SIZE, 0))
        gate = parts[KEY][col].mean(axis=0)  # (8, 8)
        axes[row, col].imshow(gate, cmap="inferno", alpha=0.7, extent=(0, SIZE, SIZE, 0), interpolation="nearest")
        axes[row, col].set_title(f"{label} gate", fontsize=13)
for ax in axes.flat:
    ax.axis("off")
fig.suptitle(f"{KEY} (mean over channels): trained against random weights", fontsize=17)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Saving the trained weights
#
# `model.state_dict()` has PyTorch's keys, `num_batches_tracked` included: `np.savez` writes a file that
# `ghostnp.create_model(weights=...)` reads, and the same dict loads into PyTorch's `load_state_dict`. The
# numba backend folds BatchNorm once at construction; a model refreshes its folded weights whenever
# training replaced an array (`fit` refreshes at the end of every epoch).

# %%
import tempfile
from pathlib import Path

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "shapes_tiny.npz"
    np.savez(path, **model.state_dict())
    reloaded = ghostnp.create_model("ghostnetv2_tiny", weights=path, num_classes=len(CLASSES))
same = np.array_equal(reloaded(val_x).argmax(axis=1), model(val_x).argmax(axis=1))
print(f"saved {path.name}; the reloaded model predicts the same classes: {same}")

# %% [markdown]
# ## Part 2: fine-tuning the classifier of the pretrained ghostnetv2_100
#
# Three textures from scikit-image (brick, grass, gravel) are new classes for an ImageNet network. A new
# 3-class classifier (`ghostnp.train.with_new_head`) is trained on 224 x 224 crops of the top half of each
# photograph and tested on crops of the bottom half; `trainable="classifier"` keeps every other parameter
# and BatchNorm statistic bit-identical, so only the last linear layer learns, on the pretrained features.

# %%
from skimage import data


def texture_crops(count, half, seed):
    """``count`` random 224 x 224 crops (flipped at random) per texture from one half of each photograph."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, name in enumerate(("brick", "grass", "gravel")):
        photo = getattr(data, name)()  # (512, 512) grey
        rows = photo[:256] if half == "top" else photo[256:]
        for _ in range(count):
            i, j = rng.integers(0, rows.shape[0] - 224 + 1), rng.integers(0, photo.shape[1] - 224 + 1)
            crop = rows[i : i + 224, j : j + 224]
            crop = crop[:, ::-1] if rng.random() < 0.5 else crop
            images.append(np.repeat(crop[..., None], 3, axis=2))  # (224, 224, 3) grey as RGB
            labels.append(label)
    x = np.concatenate([ghostnp.preprocess(image, "ghostnetv2_100") for image in images])  # (3 count, 3, 224, 224)
    return x, np.array(labels)


if not PRETRAINED:
    print("Skipped: the official ghostnetv2_100 weights are not in the cache (see the first cell).")
else:
    tune_x, tune_y = texture_crops(2 if FAST else 6, "top", seed=0)
    test_x, test_y = texture_crops(2 if FAST else 4, "bottom", seed=1)
    textures = ghostnp.train.with_new_head(pretrained_model, num_classes=3)
    before = ghostnp.train.accuracy(textures, test_x, test_y)
    tuned = fit(textures, tune_x, tune_y, epochs=1 if FAST else 3, batch_size=6, optimizer=AdamW(3e-3),
                trainable="classifier")  # fmt: skip
    after = ghostnp.train.accuracy(textures, test_x, test_y)
    print(f"training loss per epoch: {', '.join(f'{loss:.3f}' for loss in tuned['loss'])}")
    print(f"test accuracy on the bottom halves: {before:.0%} with the new random head, {after:.0%} after "
          "fine-tuning the classifier")  # fmt: skip
