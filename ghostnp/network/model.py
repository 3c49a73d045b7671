"""The GhostNet model: an architecture, its parameters and an op table, with timm's method names."""

import contextlib
import functools
import operator
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..cores import usable_cores
from ..ops import get_ops, resolve_backend
from . import layers
from .architecture import DROPOUT_RATE, MIN_INPUT_SIZE
from .params import fold_batchnorm, is_trainable, validate_params

# A batch on several threads is cut into chunks of this many images, which the threads take from a queue
# (a thread whose core is busy with another process takes fewer). A chunk runs as one batch through each op,
# so an op's weights are read once per chunk and its 1 x 1 products are larger. Measured (batch 32, 2 threads,
# 2 cores): chunks of 1 image 223-246 ms, of 4 239-246, of 8 193-240, of 16 181-269; one thread, the whole
# batch at once, 333-447. (A chunk once split itself again on nested pools, which made every chunk larger
# than one image look slow.)
CHUNK_IMAGES = 8


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, made once (a limit through it costs 8 us, not 200)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def check_input(x, in_chs=3):
    """Reject what would give a silent wrong answer or a NumPy error from deep inside; return ``x``."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"input must be a numpy array of shape (N, {in_chs}, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        hint = " (add a batch axis: x[None])" if x.ndim == 3 else ""
        raise ValueError(f"input must have shape (N, {in_chs}, H, W), got shape {x.shape}{hint}")
    if x.shape[1] != in_chs:
        hint = " (channels last? use x.transpose(0, 3, 1, 2))" if x.shape[3] == in_chs else ""
        raise ValueError(f"input must have {in_chs} channels on axis 1 (NCHW), got shape {x.shape}{hint}")
    if min(x.shape[2:]) < MIN_INPUT_SIZE:
        raise ValueError(
            f"input height and width must be at least {MIN_INPUT_SIZE} (the last stage must stay >= 2 x 2 "
            f"for the DFC average pool), got {x.shape[2]} x {x.shape[3]}; resize the image first"
        )
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"input dtype must be float32 or float64, got {x.dtype}; preprocess images first "
            "(ghostnp.preprocess) or convert with x.astype(np.float32)"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("input contains NaN or Inf values")
    return x


def default_threads(backend):
    """Threads for a batch: 1 for numpy; for numba the usable CPUs, capped by NUMBA_ / OMP_NUM_THREADS."""
    if backend == "numpy":
        return 1
    cpus = usable_cores()
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return max(1, min(cpus, int(os.environ[var])))
    return cpus


class GhostNet:
    """GhostNet / GhostNetV2 inference.

    Parameters
    ----------
    arch : ghostnp.network.architecture.Architecture
    params : dict[str, ndarray], keyed like the PyTorch state_dict (validated here). Its
        ``num_batches_tracked`` entries, when present, start the model's BatchNorm step counters.
    backend : "numpy", "numba", "auto" or None (environment variable ``GHOSTNP_BACKEND``, else numpy).
    fold_bn : fold BatchNorm into the convolutions once (default: True for numba, False for numpy, so the
        NumPy path computes exactly the published layers).
    threads : how many threads run a batch (default: for numba, the CPUs this process may use, at most
        ``NUMBA_NUM_THREADS`` / ``OMP_NUM_THREADS`` when set; for numpy, 1). A batch of N > 1 images is
        split into chunks of ``CHUNK_IMAGES`` images, which the threads take from a queue, each running the
        serial Numba kernels (which release the GIL) with BLAS pinned to one thread, so the threads never
        compete with BLAS's own. One image runs on one thread. With numba, BLAS is pinned to one thread for
        the whole call, the head included (see ``_one_blas_thread``).
    drop_rate : dropout before the classifier in training (timm's default 0.2); inference ignores it.

    ``model(x)`` maps x : (N, 3, H, W) float32 or float64, H, W >= 33, to logits (N, num_classes) in x's dtype.

    Attributes
    ----------
    params : the parameters and running statistics. Training replaces arrays of this dict (it never edits
        one in place), and the next call sees the new ones on every backend: a folded model re-folds.
        After editing an array in place yourself, call :meth:`refresh`.
    num_batches_tracked : {BatchNorm prefix: int}, PyTorch's per-BatchNorm count of training batches.
    """

    def __init__(
        self, arch, params, *, backend=None, fold_bn=None, threads=None, source="weights", drop_rate=DROPOUT_RATE
    ):
        self.arch = arch
        self.params = validate_params(params, arch, source)
        self.backend = resolve_backend(backend)
        self.ops = get_ops(self.backend)
        self.fold_bn = self.backend != "numpy" if fold_bn is None else fold_bn
        self.threads = default_threads(self.backend) if threads is None else int(threads)
        self.drop_rate = drop_rate
        self.num_batches_tracked = {
            bn: int(np.asarray(params.get(f"{bn}.num_batches_tracked", 0)))
            for bn in (key.removesuffix(".running_var") for key in self.params if key.endswith(".running_var"))
        }
        self.refresh()

    def refresh(self):
        """Make the next call use ``self.params`` as it is now (folded again and laid out again for the table)."""
        self._made_from = tuple(self.params.values())  # the arrays the run parameters were made from
        params = fold_batchnorm(self.params) if self.fold_bn else self.params
        prepare = getattr(self.ops, "prepare_params", None)  # the table's memory layout (a recording table has none)
        self._run_params = params if prepare is None else prepare(params)

    def run_params(self):
        """The parameters the ops run with: ``self.params``, or the copy made from it (folded, laid out for the
        table), made anew if an array was replaced."""
        derived = self._run_params is not self.params
        values = self.params.values()  # compared by identity in one C loop: a Python loop took 0.25 ms a call
        if derived and (len(values) != len(self._made_from) or not all(map(operator.is_, values, self._made_from))):
            self.refresh()
        return self._run_params

    def __repr__(self):
        return f"GhostNet({self.arch.name!r}, backend={self.backend!r}, params={self.num_params:,})"

    def __getstate__(self):
        """What ``pickle`` sends (to a process pool, a cluster worker): the architecture, the parameters, the
        backend's name and the settings. The op table (a module) and anything derived from the parameters (the
        folded copy) are rebuilt on arrival, so a pickle holds each weight once."""
        settings = {
            "backend": self.backend,
            "fold_bn": self.fold_bn,
            "threads": self.threads,
            "drop_rate": self.drop_rate,
        }
        return {"arch": self.arch, "params": self.params, "num_batches_tracked": self.num_batches_tracked, **settings}

    def __setstate__(self, state):
        settings = {key: state[key] for key in ("backend", "fold_bn", "threads", "drop_rate") if key in state}
        self.__init__(state["arch"], state["params"], **settings)
        self.num_batches_tracked.update(state.get("num_batches_tracked", {}))

    @property
    def num_params(self):
        return sum(v.size for k, v in self.params.items() if is_trainable(k))

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """Logits: (N, 3, H, W) -> (N, num_classes)."""
        with self._one_blas_thread():  # around both: BLAS's thread count is not restored in between
            return self.forward_head(self.forward_features(x))

    def _one_blas_thread(self):
        """With numba, BLAS on one thread for the block. Its threads bought nothing at batch 1, beside a busy
        process they made it 2.5 x slower, and after any call that used them they spin for about 0.1 s: a
        classifier product run on two threads kept a core busy through the next image's whole forward pass
        (30 % slower on the 2-core machine). The NumPy backend leaves BLAS as the user set it."""
        if self.backend != "numba":
            return contextlib.nullcontext()
        return _blas_controller().limit(limits=1, user_api="blas")

    def forward_features(self, x, *, trace=None):
        """Stem, the 16 Ghost bottlenecks and the final 1x1 conv: (N, 3, H, W) -> (N, final_chs, H/32, W/32)."""
        check_input(x)
        params = self.run_params()  # re-folded here, once, if training replaced an array
        threads = min(self.threads, len(x)) if trace is None else 1
        if threads > 1:  # chunks of the batch from a queue, BLAS on one thread inside
            chunks = np.array_split(x, max(threads, -(-len(x) // CHUNK_IMAGES)))  # a busy core takes fewer
            with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
                return np.concatenate(list(pool.map(lambda chunk: self._features(params, chunk, None), chunks)))
        with self._one_blas_thread():
            return self._features(params, x, trace)

    def _features(self, params, x, trace):
        """forward_features on this thread: (N, 3, H, W) -> (N, final_chs, H/32, W/32)."""
        ops = self.ops
        x = layers.stem(ops, params, x, trace=trace)  # (N, stem_chs, H/2, W/2)
        for spec in self.arch.blocks:
            x = layers.ghost_bottleneck(ops, params, spec, x, trace=trace)
        return layers.final_conv(ops, params, self.arch.final_conv, x, trace=trace)  # (N, final_chs, H/32, W/32)

    def forward_head(self, features, pre_logits=False, *, trace=None):
        """(N, final_chs, h, w) -> logits (N, num_classes), or the pooled 1280-wide features with ``pre_logits``."""
        params = self.run_params()
        with self._one_blas_thread():
            return layers.head(self.ops, params, features, pre_logits=pre_logits, drop_rate=self.drop_rate, trace=trace)

    def forward_intermediates(self, x):
        """Logits and a dict of every named intermediate result, in the order computed.

        Keys are state_dict prefixes: each conv's output after its BatchNorm (and ReLU) under the conv's
        key (``"blocks.3.0.ghost1.primary_conv.0"``), each Ghost module's output (``"blocks.3.0.ghost1"``),
        each bottleneck's output (``"blocks.3.0"``), the DFC gate before and after upsampling
        (``"blocks.3.0.ghost1.short_conv.gate"``, ``"...gate_upsampled"``), ``"conv_head"`` (N, 1280) and
        ``"classifier"`` (the logits).
        """
        trace = {}
        logits = self.forward_head(self.forward_features(x, trace=trace), trace=trace)
        return logits, trace

    def state_dict(self):
        """The parameters as a flat dict in PyTorch's key order, with ``num_batches_tracked`` (int64, shape ())
        after each BatchNorm as in a PyTorch state_dict, so the keys equal PyTorch's one for one: save it with
        ``np.savez`` for ``create_model(weights=...)``, or load it into PyTorch with ``load_state_dict``."""
        out = {}
        for key, value in self.params.items():
            out[key] = value
            if key.endswith(".running_var"):
                bn = key.removesuffix(".running_var")
                out[f"{bn}.num_batches_tracked"] = np.array(self.num_batches_tracked[bn], dtype=np.int64)
        return out
