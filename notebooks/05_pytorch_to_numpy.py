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
# # 5. From PyTorch to NumPy
#
# GhostNetV2's weights are published as PyTorch checkpoints. ghostnp keeps its parameters in one flat dict
# keyed **exactly** like the PyTorch `state_dict`, so loading them is reading a file key by key, and
# checking the port is running both implementations on the same input. This notebook does both:
#
# 1. write a checkpoint in the format of the official release (with PyTorch, if it is installed),
# 2. read it with `ghostnp.load_weights` (no PyTorch needed, nothing in the file is executed),
# 3. compare keys and shapes with what the architecture expects,
# 4. check that a PyTorch forward pass and ghostnp's give the same logits.
#
# The first cell loads the official weights if they are in the cache, otherwise random ones (it says which).

# %%
import importlib.util
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import ghostnp

FAST = ghostnp.notebook.setup()  # offline from here on; slide-sized figures; fast mode under the test suite

MODEL = "ghostnetv2_100"
model, PRETRAINED = ghostnp.notebook.pretrained_or_random(
    MODEL, note="(seeded, with non-trivial BatchNorm statistics). The agreement check means as much with them."
)

TORCH = importlib.util.find_spec("torch") is not None
print(
    "PyTorch is installed: the checkpoint is written with torch.save and checked against a PyTorch forward pass."
    if TORCH
    else "PyTorch is not installed (pip install torch): the torch steps below are skipped, and the checkpoint is\n"
    "written as a ghostnp .npz instead. Reading it needs no PyTorch either way."
)

# %% [markdown]
# ## The keys
#
# `ghostnp.expected_shapes(name)` lists every key of the architecture and its shape, in PyTorch's order.
# Names fall out of the structure: `blocks.<stage>.<block>.ghost1.primary_conv.0.weight` is the 1 x 1
# convolution of the first Ghost module of a bottleneck, `.1.` the BatchNorm after it.

# %%
expected = ghostnp.expected_shapes(MODEL)
print(
    f"{len(expected)} keys, {sum(int(np.prod(s)) for s in expected.values()):,} numbers "
    "(BatchNorm running statistics included, num_batches_tracked left out)\n"
)
for key in list(expected)[:14]:
    print(f"  {key:<48} {expected[key]}")
print("  ...")
for key in [k for k in expected if k.startswith("blocks.2.0.ghost1.short_conv")][:6]:
    print(f"  {key:<48} {expected[key]}")
print("  ...")

# %% [markdown]
# ## Writing a checkpoint as the authors did
#
# The official `ck_ghostnetv2_10.pth.tar` is a bare state_dict written by `torch.save` (zip format), with two
# leftovers of a FLOP counter per module (`total_ops`, `total_params`, float64) beside the real tensors.
# Here the model's own state_dict (its `num_batches_tracked` counters included) is turned into torch tensors
# and saved the same way.

# %%
workdir = Path(tempfile.mkdtemp())
state_dict = model.state_dict()  # {key: ndarray}, PyTorch's keys and order
if TORCH:
    import torch

    torch.set_num_threads(1)  # one image is too small to gain from threads; spinning threads stall a busy machine
    torch_state = {key: torch.from_numpy(np.array(value)) for key, value in state_dict.items()}
    for key in [k for k in torch_state if k.endswith(".weight")]:  # the profiler's leftovers, as in the release
        module = key.removesuffix(".weight")
        torch_state[f"{module}.total_ops"] = torch.zeros(1, dtype=torch.float64)
        torch_state[f"{module}.total_params"] = torch.zeros(1, dtype=torch.float64)
    checkpoint = workdir / "ck_ghostnetv2_10.pth.tar"
    torch.save(torch_state, checkpoint)
    print(f"wrote {checkpoint.name}: {len(torch_state)} tensors, {checkpoint.stat().st_size / 1e6:.1f} MB")
else:
    checkpoint = workdir / "ghostnetv2_100.npz"
    np.savez(checkpoint, **state_dict)
    print(f"wrote {checkpoint.name}: {len(state_dict)} arrays, {checkpoint.stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# ## Reading it, key by key
#
# `ghostnp.load_weights` recognises the format by its content, reads the zip's pickle with a restricted
# interpreter that only builds dicts and tensor references (no `pickle.load`, no code from the file), maps
# each tensor onto its bytes in the zip, drops the bookkeeping keys and returns float32 arrays.

# %%
loaded = ghostnp.load_weights(checkpoint)
written = torch_state if TORCH else state_dict
dropped = sorted({key.rsplit(".", 1)[1] for key in written} - {key.rsplit(".", 1)[1] for key in loaded})
print(f"read {len(loaded)} arrays; dropped the bookkeeping keys ending in: {', '.join(dropped)}")
missing = sorted(set(expected) - set(loaded))
unexpected = sorted(set(loaded) - set(expected))
wrong_shape = [k for k in expected if k in loaded and loaded[k].shape != tuple(expected[k])]
print(f"missing keys: {len(missing)}, unexpected keys: {len(unexpected)}, wrong shapes: {len(wrong_shape)}")
print(f"same key order as PyTorch's: {list(loaded) == list(expected)}")
identical = all(np.array_equal(loaded[k], state_dict[k]) for k in expected)
print(f"every array identical to the one written: {identical}")

print(f"\n{'key':<46} {'in the file':>18} {'expected':>18}")
for key in list(loaded)[:: max(1, len(loaded) // 12)]:
    print(f"{key:<46} {str(loaded[key].shape):>18} {str(tuple(expected[key])):>18}")

# %% [markdown]
# A model from the file (`create_model(name, weights=path)` reads it the same way) computes exactly what the
# model that wrote it computes:

# %%
x = ghostnp.preprocess(ghostnp.sample_image_path(), MODEL)  # (1, 3, 224, 224)
reloaded = ghostnp.create_model(MODEL, weights=checkpoint)
logits = model(x)
print("logits bit-identical after the round trip:", np.array_equal(reloaded(x), logits))

# %% [markdown]
# ## The agreement check against PyTorch
#
# The same network in `torch.nn.functional`, reading the same keys: the architecture's block list
# (`ghostnp.get_architecture(name).blocks`) says, for each bottleneck, its channels, kernel, stride,
# squeeze-excite width and whether it has a DFC branch. Forty lines, no ghostnp op involved.

# %%
if TORCH:
    import torch.nn.functional as F

    def conv_bn(sd, conv, bn, x, stride=1, padding=0, groups=1, relu=False):
        x = F.conv2d(x, sd[f"{conv}.weight"], None, stride, padding, 1, groups)
        x = F.batch_norm(
            x,
            sd[f"{bn}.running_mean"],
            sd[f"{bn}.running_var"],
            sd[f"{bn}.weight"],
            sd[f"{bn}.bias"],
            training=False,
            eps=1e-5,
        )
        return F.relu(x) if relu else x

    def ghost_module(sd, p, x, out_chs, relu, attn):
        x1 = conv_bn(sd, f"{p}.primary_conv.0", f"{p}.primary_conv.1", x, relu=relu)
        x2 = conv_bn(
            sd, f"{p}.cheap_operation.0", f"{p}.cheap_operation.1", x1, padding=1, groups=x1.shape[1], relu=relu
        )
        out = torch.cat([x1, x2], dim=1)[:, :out_chs]
        if attn:  # DFC attention
            r = conv_bn(sd, f"{p}.short_conv.0", f"{p}.short_conv.1", F.avg_pool2d(x, 2, 2))
            r = conv_bn(sd, f"{p}.short_conv.2", f"{p}.short_conv.3", r, padding=(0, 2), groups=out_chs)
            r = conv_bn(sd, f"{p}.short_conv.4", f"{p}.short_conv.5", r, padding=(2, 0), groups=out_chs)
            out = out * F.interpolate(torch.sigmoid(r), size=out.shape[-2:], mode="nearest")
        return out

    def bottleneck(sd, spec, x):
        p, pad = spec.name, (spec.dw_kernel_size - 1) // 2
        y = ghost_module(sd, f"{p}.ghost1", x, spec.mid_chs, relu=True, attn=spec.mode == "attn")
        if spec.stride > 1:
            y = conv_bn(sd, f"{p}.conv_dw", f"{p}.bn_dw", y, spec.stride, pad, spec.mid_chs)
        if spec.se_chs:
            s = F.relu(
                F.conv2d(y.mean((2, 3), keepdim=True), sd[f"{p}.se.conv_reduce.weight"], sd[f"{p}.se.conv_reduce.bias"])
            )
            y = y * F.hardsigmoid(F.conv2d(s, sd[f"{p}.se.conv_expand.weight"], sd[f"{p}.se.conv_expand.bias"]))
        y = ghost_module(sd, f"{p}.ghost2", y, spec.out_chs, relu=False, attn=False)
        if spec.has_conv_shortcut:
            x = conv_bn(sd, f"{p}.shortcut.0", f"{p}.shortcut.1", x, spec.stride, pad, spec.in_chs)
            x = conv_bn(sd, f"{p}.shortcut.2", f"{p}.shortcut.3", x)
        return y + x

    def torch_ghostnet(sd, arch, x):
        x = conv_bn(sd, "conv_stem", "bn1", x, stride=2, padding=1, relu=True)
        for spec in arch.blocks:
            x = bottleneck(sd, spec, x)
        x = conv_bn(sd, f"{arch.final_conv}.conv", f"{arch.final_conv}.bn1", x, relu=True)
        x = F.relu(F.conv2d(x.mean((2, 3), keepdim=True), sd["conv_head.weight"], sd["conv_head.bias"])).flatten(1)
        return F.linear(x, sd["classifier.weight"], sd["classifier.bias"])

    with torch.no_grad():
        torch_logits = torch_ghostnet(torch_state, ghostnp.get_architecture(MODEL), torch.from_numpy(x)).numpy()
    difference = np.abs(torch_logits - logits)
    print(
        f"max |PyTorch - ghostnp| over the {logits.size} logits: {difference.max():.2e} "
        f"(logits span {logits.min():.2f} .. {logits.max():.2f}; float32 rounding is about 1e-6 relative)"
    )
    print(
        "same top-5 classes, same order:", np.array_equal(np.argsort(-torch_logits[0])[:5], np.argsort(-logits[0])[:5])
    )
else:
    print("PyTorch is not installed, so there is nothing to compare with here. ghostnp's own test suite runs this")
    print("check for every op, every block and four whole networks (tests/test_torch_reference.py).")

# %%
if TORCH:
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 6.5))
    left.scatter(torch_logits[0], logits[0], s=12, color="tab:blue")
    left.plot([logits.min(), logits.max()], [logits.min(), logits.max()], "--", color="gray", label="y = x")
    left.set_xlabel("PyTorch logit")
    left.set_ylabel("ghostnp logit")
    left.set_title("1000 logits, one image")
    left.legend()
    right.hist((logits - torch_logits)[0], bins=40, color="tab:orange")
    right.set_xlabel("ghostnp - PyTorch")
    right.set_ylabel("logits")
    right.set_title(f"differences: max {difference.max():.1e}")
    fig.suptitle("The agreement check: the same weights, the same image, two implementations", fontsize=19)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# The differences are float32 rounding: the two libraries add the same products in different orders. The
# test suite holds ghostnp to the same check at every op and block, on random weights with randomised
# BatchNorm statistics (a fresh BatchNorm is the identity and would hide mistakes).
