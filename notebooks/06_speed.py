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
# # 6. Speed: NumPy, Numba, PyTorch, and multiply-adds against time
#
# Multiply-adds are the paper's measure of cost; time is what a user waits. This notebook times the whole
# network with ghostnp's two op tables (NumPy, and Numba when installed) and with PyTorch when installed, then
# times every layer and sets its time against its multiply-adds: which layers are slow for their size?
#
# Timings on a shared machine move by 20-30 % from run to run: compare numbers from one run only. Here all
# engines share this one process, which is fine for a picture but not fair: a thread pool that spins after
# its call slows whichever engine runs next. The fair figures (each engine in its own process, alternating
# rounds, ONNX Runtime and OpenVINO beside PyTorch, 1 and 2 threads, batch 1 and 32, the FLOP floor) come
# from `benchmarks/bench.py`; `benchmarks/README.md` quotes its latest full run.
#
# The per-layer timings below go through `forward_features(x, trace=...)`, which runs the step-by-step ops so
# that every intermediate result has its name; an untraced call of the Numba model runs each Ghost module as
# one fused op (`ghost_module`, `dfc_gate`) instead, so the whole-network time is the faster one.
#
# The first cell loads the official weights if they are in the cache, otherwise random ones (it says which);
# speed does not depend on the values.

# %%
import importlib.util
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

import ghostnp

FAST = ghostnp.notebook.setup()  # offline from here on; slide-sized figures; fast mode under the test suite

MODEL = "ghostnetv2_100"
model, _ = ghostnp.notebook.pretrained_or_random(
    MODEL, note="(the timings are the same with the real ones).", backend="numpy"
)

INPUT_SIZE = 128 if FAST else 224  # the fast mode of the test suite uses a smaller image and fewer repetitions
REPEATS = 2 if FAST else 10
x = np.random.default_rng(0).standard_normal((1, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
print(f"input 1 x 3 x {INPUT_SIZE} x {INPUT_SIZE}, median of {REPEATS} runs after one warm-up run")

# %% [markdown]
# ## The fair benchmark's latest run
#
# `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py --profile` on the 2-core project machine
# (load average 0.49 before, 1.55 after; the machine moves 20-30 % between runs: compare ratios): each engine in its
# own process, alternating rounds, median ms per call, its ratios to the other engines, whether its top-5 classes
# are PyTorch's. Its whole output (the FLOP floor, batch 1 beside a busy process, whole-process costs, the per-op
# profile) is in `benchmarks/README.md`.
#
# | threads | batch | engine | median ms | x PyTorch | x ORT | x OpenVINO | top-5 = PyTorch |
# | --- | --- | --- | --- | --- | --- | --- | --- |
# | 1 | 1 | ghostnp numpy | 55.0 | 1.00 | 3.52 | 4.01 | yes |
# | 1 | 1 | ghostnp numba | 18.2 | 0.33 | 1.17 | 1.33 | yes |
# | 1 | 1 | PyTorch eager | 55.1 | 1.00 | 3.53 | 4.02 | yes |
# | 1 | 1 | ONNX Runtime | 15.6 | 0.28 | 1.00 | 1.14 | yes |
# | 1 | 1 | OpenVINO f32 | 13.7 | 0.25 | 0.88 | 1.00 | yes |
# | 1 | 32 | ghostnp numpy | 2080.0 | 0.96 | 3.59 | 4.68 | yes |
# | 1 | 32 | ghostnp numba | 568.3 | 0.26 | 0.98 | 1.28 | yes |
# | 1 | 32 | PyTorch eager | 2175.1 | 1.00 | 3.76 | 4.89 | yes |
# | 1 | 32 | ONNX Runtime | 579.1 | 0.27 | 1.00 | 1.30 | yes |
# | 1 | 32 | OpenVINO f32 | 444.8 | 0.20 | 0.77 | 1.00 | yes |
# | 2 | 1 | ghostnp numpy | 56.7 | 0.87 | 3.15 | 4.02 | yes |
# | 2 | 1 | ghostnp numba | 19.5 | 0.30 | 1.08 | 1.38 | yes |
# | 2 | 1 | PyTorch eager | 64.9 | 1.00 | 3.61 | 4.60 | yes |
# | 2 | 1 | ONNX Runtime | 18.0 | 0.28 | 1.00 | 1.27 | yes |
# | 2 | 1 | OpenVINO f32 | 14.1 | 0.22 | 0.78 | 1.00 | yes |
# | 2 | 32 | ghostnp numpy | 2084.1 | 1.41 | 4.98 | 7.09 | yes |
# | 2 | 32 | ghostnp numba | 277.4 | 0.19 | 0.66 | 0.94 | yes |
# | 2 | 32 | PyTorch eager | 1476.2 | 1.00 | 3.53 | 5.02 | yes |
# | 2 | 32 | ONNX Runtime | 418.3 | 0.28 | 1.00 | 1.42 | yes |
# | 2 | 32 | OpenVINO f32 | 293.8 | 0.20 | 0.70 | 1.00 | yes |

# %% [markdown]
# ## The engines
#
# - **NumPy**: the reference op table, one vectorised NumPy expression per op, BatchNorm kept as published.
# - **Numba** (`backend="numba"`, `pip install 'ghostnp[fast]'`): the same model code on jitted loops, with
#   BatchNorm folded into the convolutions. The first call compiles the kernels (cached on disk afterwards).
# - **PyTorch** (when installed): the PyTorch reference model of ghostnp's test suite, with the same weights,
#   on one thread (`torch.set_num_threads(1)`).

# %%
engines = {"NumPy": model}
if ghostnp.ops.numba_available():
    engines["Numba"] = ghostnp.create_model(MODEL, weights=model.params, backend="numba")
    started = time.perf_counter()
    engines["Numba"](x)  # compiles, or loads the compiled kernels from the cache
    print(f"Numba: first call (compile or load the cache) {time.perf_counter() - started:.1f} s")
else:
    print("Numba is not installed (pip install 'ghostnp[fast]'): only NumPy is timed for ghostnp")

reference = Path(ghostnp.__file__).resolve().parents[1] / "tests" / "torch_reference.py"
if importlib.util.find_spec("torch") is not None and reference.exists():
    import torch

    sys.path.insert(0, str(reference.parent))
    from torch_reference import build_torch_model

    torch.set_num_threads(1)
    torch_model = build_torch_model(MODEL).eval()
    torch_model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.state_dict().items()})

    def run_torch(x):
        with torch.inference_mode():
            return torch_model(torch.from_numpy(x)).numpy()

    engines["PyTorch"] = run_torch
else:
    print("PyTorch (or ghostnp's tests/torch_reference.py, in a source checkout) is not available: not timed")

reference_logits = model(x)
for name, run in engines.items():
    print(f"{name:<8} max |logits - NumPy's| = {np.abs(run(x) - reference_logits).max():.1e}")

# %% [markdown]
# ## The whole network
#
# Each engine runs in turn within every round, so that a busy moment of the machine hits them alike.

# %%
times = {name: [] for name in engines}
for _ in range(REPEATS):
    for name, run in engines.items():
        started = time.perf_counter()
        run(x)
        times[name].append(time.perf_counter() - started)
median_ms = {name: 1000 * float(np.median(t)) for name, t in times.items()}
macs = ghostnp.summary(MODEL, input_size=INPUT_SIZE).total_macs
for name, ms in median_ms.items():
    print(
        f"{name:<8} {ms:8.1f} ms per image   {macs / ms / 1e6:6.2f} G multiply-adds/s   "
        f"(spread {1000 * min(times[name]):.1f} .. {1000 * max(times[name]):.1f} ms)"
    )

fig, ax = plt.subplots(figsize=(11, 5.5))
bars = ax.barh(list(median_ms), list(median_ms.values()), color=["tab:blue", "tab:green", "tab:red"][: len(median_ms)])
ax.bar_label(bars, [f"{ms:.0f} ms" for ms in median_ms.values()], padding=6, fontsize=15)
ax.invert_yaxis()
ax.set_xlabel("milliseconds per image (median)")
ax.set_xlim(0, 1.25 * max(median_ms.values()))
ax.set_title(f"{MODEL}, one {INPUT_SIZE} x {INPUT_SIZE} image, {macs / 1e6:.0f} M multiply-adds")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Every layer: multiply-adds against time
#
# `forward_features(x, trace=d)` stores each named result in `d` as soon as it is computed. A dict that also
# notes the clock at each store times every step of the network without touching its code: the time of a
# conv key is its convolution with BatchNorm and activation; the time of a Ghost module key is the
# concatenation and the DFC gating; of a block key, the residual addition.


# %%
class Stopwatch(dict):
    """A trace dict that records, for each key, the seconds since the previous key was stored."""

    def __init__(self):
        super().__init__()
        self.seconds, self._last = {}, time.perf_counter()

    def __setitem__(self, key, value):
        now = time.perf_counter()
        self.seconds[key], self._last = now - self._last, now
        super().__setitem__(key, value)


def layer_seconds(net, x, repeats):
    """Median seconds of every traced step of ``net.forward_features`` over ``repeats`` runs."""
    runs = []
    for _ in range(repeats):
        stopwatch = Stopwatch()
        net.forward_features(x, trace=stopwatch)
        runs.append(stopwatch.seconds)
    return {key: float(np.median([run[key] for run in runs])) for key in runs[0]}


table = ghostnp.summary(MODEL, input_size=INPUT_SIZE)
conv_rows = [row for row in table.rows if row.name not in ("conv_head", "classifier")]  # the head is not traced here
layer_times = {name: layer_seconds(net, x, REPEATS) for name, net in engines.items() if name != "PyTorch"}
for name, seconds in layer_times.items():
    in_convs = sum(seconds[row.name] for row in conv_rows)
    print(
        f"{name}: {1000 * sum(seconds.values()):.1f} ms in forward_features, {1000 * in_convs:.1f} ms of it in the "
        f"{len(conv_rows)} convolutions (with their BatchNorm and activation)"
    )

# %%
for name, seconds in layer_times.items():
    fig = ghostnp.viz.layer_bar_chart(
        [row.name for row in conv_rows],
        [1000 * seconds[row.name] for row in conv_rows],
        ylabel="milliseconds",
        title=f"{name}: time per layer, {INPUT_SIZE} x {INPUT_SIZE}",
    )
    display(fig)

# %% [markdown]
# Multiply-adds against time, one dot per convolution. Dots on a diagonal would mean "time follows
# multiply-adds". The 1 x 1 convolutions, which run as matrix products, tend to sit lowest for their size;
# depthwise convolutions (the cheap operations, the DFC (1, 5) and (5, 1) filters, the stride-2 depthwise) do
# few multiply-adds per byte moved and sit higher: a network's multiply-add count understates the cost of
# depthwise-heavy designs on a CPU. Single dots far above the cloud are moments when the machine was busy;
# more repetitions (the full mode takes the median of 10) remove them. The table after the plot gives each
# kind's throughput.

# %%
kinds = [ghostnp.viz.layer_kind(row.name) for row in conv_rows]
colours = dict(zip(dict.fromkeys(kinds), plt.get_cmap("tab10").colors))
fig, axes = plt.subplots(1, len(layer_times), figsize=(9 * len(layer_times), 7.5), squeeze=False)
for ax, (name, seconds) in zip(axes[0], layer_times.items()):
    for kind in colours:
        chosen = [row for row, k in zip(conv_rows, kinds) if k == kind]
        ax.scatter(
            [row.macs for row in chosen],
            [1000 * seconds[row.name] for row in chosen],
            s=70,
            color=colours[kind],
            label=kind,
            alpha=0.85,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("multiply-adds of the layer")
    ax.set_ylabel("milliseconds")
    ax.set_title(f"{name}: every convolution, {INPUT_SIZE} x {INPUT_SIZE} input")
    ax.grid(alpha=0.3, which="both")
axes[0, 0].legend(fontsize=12)
plt.tight_layout()
plt.show()

# %%
print(f"{'kind of layer':<26}" + "".join(f"{name + ' G MAC/s':>16}" for name in layer_times))
for kind in colours:
    chosen = [row for row, k in zip(conv_rows, kinds) if k == kind]
    kind_macs = sum(row.macs for row in chosen)
    throughputs = [kind_macs / sum(seconds[row.name] for row in chosen) / 1e9 for seconds in layer_times.values()]
    print(f"{kind:<26}" + "".join(f"{value:>16.2f}" for value in throughputs))
