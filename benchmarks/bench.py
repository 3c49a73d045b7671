"""Time ghostnp (NumPy and Numba tables) against PyTorch eager, ONNX Runtime and OpenVINO on the same weights.

Usage::

    python benchmarks/bench.py [--model ghostnetv2_100] [--batch 1 32] [--threads 1 2] [--quick] [--profile]

Fair to every engine, because timings on a shared machine move 20-30 % between runs:

- **Each engine in its own process.** Per thread count, one worker process per engine, its thread pools
  sized before any import (``OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS``, ``torch.set_num_threads``, ORT
  ``intra_op_num_threads``, OpenVINO ``INFERENCE_NUM_THREADS``). Engines never share a process: ONNX
  Runtime's and OpenBLAS's idle threads spin after each call and would slow whichever engine ran next.
- **Alternating rounds.** Every round asks each worker in turn (the order rotates) for a few calls and
  keeps their median; a noisy moment hits all engines alike. The report gives the median over rounds
  and the spread (min-max of the round medians), images/s, the ratios to PyTorch, ONNX Runtime and
  OpenVINO, and each engine's largest logit difference from PyTorch (relative to the largest logit)
  and whether its top-5 classes are PyTorch's, for every image.
- **The floor.** The network's FLOPs (2 x its multiply-adds, ``ghostnp.summary``) at the sgemm peak
  measured here (NumPy's BLAS, large square matrices, 1 and N threads): no engine can beat it; each
  engine's fraction of it says how much of the machine it uses.
- **Under load**: batch 1 again with one busy process beside, to show which engines collapse.
- **Memory**: the peak RSS of each worker process (its largest batch), and whole-process costs in fresh
  interpreters: ``import ghostnp``, one image with Numba on an empty and a warm cache, NumPy, PyTorch,
  ONNX Runtime.

All engines run the same weights: ghostnp's seeded random ones with non-trivial BatchNorm statistics,
loaded into the PyTorch reference (``tests/torch_reference.py``) by ``state_dict`` and exported from it to
ONNX, which ONNX Runtime and OpenVINO (f32 precision) read. Engines that are not importable are skipped.
``--ghostnp PATH`` times another checkout's ghostnp (e.g. the main branch) with this script.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINES = ("numpy", "numba", "torch", "onnxruntime", "openvino")
LABELS = {"numpy": "ghostnp numpy", "numba": "ghostnp numba", "torch": "PyTorch eager",
          "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO f32"}  # fmt: skip


def thread_env(threads, ghostnp_path=REPO, **extra):
    """The environment of a subprocess whose every thread pool has ``threads`` threads."""
    path = os.pathsep.join([str(ghostnp_path), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, **extra)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    return env


def run_python(code, env, timeout=900):
    """Run ``code`` in a fresh interpreter; returns (wall seconds, the JSON it printed last)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"benchmark subprocess failed:\n{code}\n{done.stderr[-3000:]}")
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def image_batch(batch):
    """The input of every engine at this batch size: seeded normal noise, (batch, 3, 224, 224) float32."""
    import numpy as np

    return np.random.default_rng(batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)


# --- one engine in one process ------------------------------------------------------------------------------


def reference_weights(model_name):
    """ghostnp's seeded random weights as a PyTorch-style state_dict (the same in every worker)."""
    import ghostnp

    return ghostnp.create_model(model_name, seed=0, backend="numpy")


def torch_model_with(model_name, threads):
    """The PyTorch reference model with ghostnp's weights, on ``threads`` threads."""
    import numpy as np
    import torch

    sys.path.insert(0, str(REPO / "tests"))
    from torch_reference import build_torch_model

    torch.set_num_threads(threads)
    model = build_torch_model(model_name)
    weights = reference_weights(model_name).state_dict()
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def build_engine(engine, model_name, threads, onnx_path):
    """``run(x) -> logits`` for one engine; raises ImportError when the engine is not installed."""
    if engine in ("numpy", "numba"):
        import ghostnp

        params = reference_weights(model_name).params
        model = ghostnp.create_model(model_name, params, backend=engine)
        model.threads = threads if engine == "numba" else 1
        return model
    if engine == "torch":
        import torch

        model = torch_model_with(model_name, threads)

        def run_torch(x):
            with torch.inference_mode():
                return model(torch.from_numpy(x)).numpy()

        return run_torch
    if engine == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"x": x})[0]
    if engine == "openvino":
        import openvino as ov

        core, compiled = ov.Core(), {}
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": 1,
                  "PERFORMANCE_HINT": "LATENCY"}  # fmt: skip

        def run_openvino(x):
            if x.shape not in compiled:  # one static-shape compilation per batch size, as OpenVINO advises
                network = core.read_model(onnx_path)
                network.reshape({"x": list(x.shape)})
                compiled[x.shape] = core.compile_model(network, "CPU", config).create_infer_request()
            request = compiled[x.shape]
            request.infer({"x": x})
            return request.get_output_tensor(0).data.copy()

        return run_openvino
    raise ValueError(f"unknown engine {engine!r}")


def engine_worker(args):
    """Serve timing requests for one engine: one JSON request per stdin line, one JSON reply per line.

    Request ``{"batch": B, "calls": k}``: the first request of a batch size warms up (compile, first-run
    allocations) and saves the logits to ``<outdir>/<engine>_<B>.npy``; then ``k`` timed calls. Reply
    ``{"times": [...], "peak_rss_mib": ...}``; ``{"error": ...}`` when the engine cannot be built.
    """
    import resource

    import numpy as np

    try:
        run = build_engine(args.engine_worker, args.model, args.threads[0], args.onnx)
    except ImportError as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
        return
    print(json.dumps({"ready": True}), flush=True)
    inputs = {}
    for line in sys.stdin:
        request = json.loads(line)
        batch = request["batch"]
        if batch not in inputs:
            inputs[batch] = image_batch(batch)
            np.save(Path(args.outdir) / f"{args.engine_worker}_{batch}.npy", np.asarray(run(inputs[batch])))
        times = []
        for _ in range(request["calls"]):
            start = time.perf_counter()
            run(inputs[batch])
            times.append(time.perf_counter() - start)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"times": times, "peak_rss_mib": rss}), flush=True)


class Worker:
    """The parent's handle on one engine's worker process."""

    def __init__(self, engine, args, threads, outdir, onnx_path):
        command = [sys.executable, str(Path(__file__).resolve()), "--engine-worker", engine, "--model", args.model,
                   "--threads", str(threads), "--outdir", outdir, "--onnx", onnx_path or ""]  # fmt: skip
        env = thread_env(threads, args.ghostnp if engine in ("numpy", "numba") else REPO)
        self.engine = engine
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.status = self._reply()

    def _reply(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.engine} worker exited (exit status {self.process.wait()})")
        return json.loads(line)

    def time(self, batch, calls):
        self.process.stdin.write(json.dumps({"batch": batch, "calls": calls}) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def measure(args, threads, outdir, onnx_path, batches, under_load=False):
    """Alternating rounds over one worker per engine: ``{(batch, engine): {"rounds": [...], ...}}``."""
    workers = [Worker(engine, args, threads, outdir, onnx_path) for engine in args.engines]
    skipped = {w.engine: w.status["error"] for w in workers if "error" in w.status}
    workers = [w for w in workers if "error" not in w.status]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if under_load else None
    results = {}
    try:
        for batch in batches:
            calls, rounds = (args.calls, args.rounds) if batch == 1 else (1, max(3, args.rounds // 2))
            for w in workers:
                w.time(batch, 1)  # warm-up: compile, caches, first-run allocations
            for r in range(rounds):
                for w in workers[r % len(workers) :] + workers[: r % len(workers)]:  # the order rotates
                    reply = w.time(batch, calls)
                    entry = results.setdefault((batch, w.engine), {"rounds": []})
                    entry["rounds"].append(statistics.median(reply["times"]))
                    entry["peak_rss_mib"] = reply["peak_rss_mib"]
                    time.sleep(args.pause)  # let spinning pools of the engine just timed go idle
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
        for w in workers:
            w.close()
    return results, skipped


# --- the floor -------------------------------------------------------------------------------------------------

SGEMM_PEAK = """
import json, time, numpy as np
a, b = (np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32) for _ in range(2))
a @ b
best = float("inf")
for _ in range(7):
    start = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - start)
print(json.dumps({"gflops": 2 * 2048**3 / best / 1e9}))
"""


def sgemm_peak_gflops(threads):
    """NumPy's BLAS sgemm throughput on 2048 x 2048 matrices at ``threads`` threads, GFLOP/s (best of 7)."""
    return run_python(SGEMM_PEAK, thread_env(threads))[1]["gflops"]


def network_gflop(model_name):
    """The network's FLOPs for one 224 x 224 image, GFLOP (2 x its multiply-adds)."""
    code = f"import json, ghostnp; print(json.dumps({{'macs': ghostnp.summary({model_name!r}).total_macs}}))"
    return 2 * run_python(code, thread_env(1))[1]["macs"] / 1e9


def export_for_engines(model_name):
    """Export the PyTorch reference with ghostnp's weights to ONNX in a subprocess; its path, or None."""
    here = str(Path(__file__).resolve().parent)
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import bench; "
        f"print(json.dumps({{'path': bench.export_onnx(bench.torch_model_with({model_name!r}, 1))}}))"
    )
    try:
        return run_python(code, thread_env(1))[1]["path"]
    except RuntimeError as error:
        print(f"(no ONNX export, ONNX Runtime and OpenVINO skipped: {str(error).splitlines()[-1]})")
        return None


def export_onnx(torch_model):
    """Export a PyTorch model (input N x 3 x 224 x 224, N dynamic) to a temporary .onnx file; its path."""
    import warnings

    import torch

    path = str(Path(tempfile.mkdtemp(prefix="ghostnp-bench-")) / "model.onnx")
    with warnings.catch_warnings():  # dynamo=False: the TorchScript exporter (deprecated), no onnxscript needed
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            torch_model, (torch.zeros(1, 3, 224, 224),), path, input_names=["x"], output_names=["logits"],
            dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False,
        )  # fmt: skip
    return path


# --- whole-process costs ----------------------------------------------------------------------------------

ONE_IMAGE = """
import json, resource, time
start = time.perf_counter()
{body}
print(json.dumps({{"seconds": time.perf_counter() - start,
                   "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
GHOSTNP_ONE_IMAGE = """
import numpy as np, ghostnp
model = ghostnp.create_model({model!r}, backend={backend!r})
model(np.zeros((1, 3, 224, 224), np.float32))
"""
TORCH_ONE_IMAGE = """
import sys, torch; sys.path.insert(0, {tests!r})
from torch_reference import build_torch_model
with torch.inference_mode(): build_torch_model({model!r})(torch.zeros(1, 3, 224, 224))
"""
ORT_ONE_IMAGE = """
import numpy as np, onnxruntime as ort
session = ort.InferenceSession({path!r}, providers=["CPUExecutionProvider"])
session.run(None, {{"x": np.zeros((1, 3, 224, 224), np.float32)}})
"""


def process_costs(model, threads):
    """Rows (what, wall seconds, in-process seconds, peak RSS MiB) measured in fresh subprocesses."""
    rows = []
    env = thread_env(threads)
    wall, out = run_python(ONE_IMAGE.format(body="import ghostnp"), env)
    rows.append(("import ghostnp", wall, out["seconds"], out["peak_rss_mib"]))
    with tempfile.TemporaryDirectory(prefix="ghostnp-numba-cache-") as cache:
        body = GHOSTNP_ONE_IMAGE.format(model=model, backend="numba")
        for label in ("numba, empty cache", "numba, warm cache"):
            wall, out = run_python(ONE_IMAGE.format(body=body), thread_env(threads, NUMBA_CACHE_DIR=cache))
            rows.append((f"one image, {label}", wall, out["seconds"], out["peak_rss_mib"]))
    body = GHOSTNP_ONE_IMAGE.format(model=model, backend="numpy")
    wall, out = run_python(ONE_IMAGE.format(body=body), env)
    rows.append(("one image, numpy", wall, out["seconds"], out["peak_rss_mib"]))
    try:
        import onnxruntime  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return rows
    wall, out = run_python(ONE_IMAGE.format(body=TORCH_ONE_IMAGE.format(tests=str(REPO / "tests"), model=model)), env)
    rows.append(("one image, torch", wall, out["seconds"], out["peak_rss_mib"]))
    sys.path.insert(0, str(REPO / "tests"))
    from torch_reference import build_torch_model

    path = export_onnx(build_torch_model(model))
    wall, out = run_python(ONE_IMAGE.format(body=ORT_ONE_IMAGE.format(path=path)), env)
    rows.append(("one image, onnxruntime", wall, out["seconds"], out["peak_rss_mib"]))
    return rows


# --- where the time goes ----------------------------------------------------------------------------------


def op_class(name, args, kwargs):
    """A profile bucket: the op's name, for conv2d its kind, kernel and stride ("conv dw 5x5 s2"), for the
    fused ops the map size ("ghost_module 14x14")."""
    if name in ("ghost_module", "dfc_gate"):
        return f"{name} {args[0].shape[2]}x{args[0].shape[3]}"
    if name != "conv2d":
        return name
    weight = args[1]
    stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
    groups = args[5] if len(args) > 5 else kwargs.get("groups", 1)
    kind = "pointwise" if weight.shape[2:] == (1, 1) else "depthwise" if groups == weight.shape[0] > 1 else "dense"
    stride = stride if isinstance(stride, int) else stride[0]
    return f"conv {kind} {weight.shape[2]}x{weight.shape[3]} s{stride}"


def profile_ops(model_name, backend, batch, rounds=5):
    """Rows (op class, ms per forward, calls per forward), slowest first, and the whole forward's ms."""
    import collections
    import types

    import numpy as np

    import ghostnp
    from ghostnp import ops

    op_names = ops.OP_NAMES + getattr(ops, "FUSED_OP_NAMES", ())

    model = ghostnp.create_model(model_name, seed=0, backend=backend)
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    model(x)  # warm-up
    seconds, calls = collections.defaultdict(float), collections.Counter()

    def timed(name, op):
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = op(*args, **kwargs)
            bucket = op_class(name, args, kwargs)
            seconds[bucket] += time.perf_counter() - start
            calls[bucket] += 1
            return result

        return run

    table = model.ops
    model.ops = types.SimpleNamespace(**{name: timed(name, getattr(table, name)) for name in op_names})
    start = time.perf_counter()
    for _ in range(rounds):
        model(x)
    total = (time.perf_counter() - start) / rounds
    rows = [(k, v / rounds * 1e3, calls[k] // rounds) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])]
    return rows, total * 1e3


def wait_for_quiet(max_wait):
    """Wait until the 1-minute load average is below 0.5 (at most ``max_wait`` s); returns the last load."""
    deadline = time.monotonic() + max_wait
    load = os.getloadavg()[0]
    while load >= 0.5 and time.monotonic() < deadline:
        time.sleep(5)
        load = os.getloadavg()[0]
    return load


# --- the report -------------------------------------------------------------------------------------------------


def accuracy(outdir, engine, batch):
    """(max |logits - PyTorch's| / max |PyTorch's|, top-5 identical for every image) or None without PyTorch."""
    import numpy as np

    reference_file, file = Path(outdir) / f"torch_{batch}.npy", Path(outdir) / f"{engine}_{batch}.npy"
    if not reference_file.exists() or not file.exists():
        return None
    reference, logits = np.load(reference_file), np.load(file)
    top5 = np.array_equal(np.argsort(-reference, axis=1)[:, :5], np.argsort(-logits, axis=1)[:, :5])
    return float(np.abs(logits - reference).max() / np.abs(reference).max()), top5


def latency_table(runs, floor_ms, outdir):
    """Markdown table: one row per (threads, batch, engine), with ratios, floor fraction and accuracy."""
    lines = [
        "| threads | batch | engine | median ms | spread ms | img/s | x PyTorch | x ORT | x OpenVINO "
        "| % of floor | peak RSS MiB | max rel. diff | top-5 = PyTorch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for threads, (results, _) in runs.items():
        medians = {key: statistics.median(entry["rounds"]) for key, entry in results.items()}
        for (batch, engine), entry in results.items():
            med = medians[(batch, engine)]
            ratios = [
                f"{med / medians[(batch, other)]:.2f}" if (batch, other) in medians else "-"
                for other in ("torch", "onnxruntime", "openvino")
            ]
            floor = floor_ms[threads] * batch / med
            acc = accuracy(outdir, engine, batch)
            diff, top5 = (f"{acc[0]:.1e}", "yes" if acc[1] else "NO") if acc else ("-", "-")
            lines.append(
                f"| {threads} | {batch} | {LABELS[engine]} | {med * 1e3:.1f} | {min(entry['rounds']) * 1e3:.1f}-"
                f"{max(entry['rounds']) * 1e3:.1f} | {batch / med:.1f} | {' | '.join(ratios)} | {floor:.0%} | "
                f"{entry['peak_rss_mib']:.0f} | {diff} | {top5} |"
            )
    return "\n".join(lines)


def load_table(runs, loaded_runs):
    """Markdown table: batch-1 median alone and with a busy process beside, per thread count and engine."""
    lines = ["| threads | engine | alone ms | with a busy process ms | slowdown |", "|---|---|---|---|---|"]
    for threads, (loaded, _) in loaded_runs.items():
        alone = runs[threads][0]
        for (batch, engine), entry in loaded.items():
            a, b = statistics.median(alone[(batch, engine)]["rounds"]), statistics.median(entry["rounds"])
            lines.append(f"| {threads} | {LABELS[engine]} | {a * 1e3:.1f} | {b * 1e3:.1f} | x{b / a:.2f} |")
    return "\n".join(lines)


def print_profile(model_name):
    """Print the per-op profile of both ghostnp backends, batch 1 (run in a 1-thread subprocess)."""
    import ghostnp

    backends = ["numpy"] + (["numba"] if ghostnp.ops.numba_available() else [])
    for backend in backends:
        rows, total = profile_ops(model_name, backend, batch=1)
        in_ops = sum(ms for _, ms, _ in rows)
        print(f"\n## Per-op profile, {backend}, batch 1, 1 thread: {total:.1f} ms per forward, {in_ops:.1f} in ops\n")
        print("| op | ms | calls | share |\n|---|---|---|---|")
        for bucket, ms, n in rows:
            print(f"| {bucket} | {ms:.2f} | {n} | {ms / in_ops:.0%} |")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ghostnetv2_100")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--rounds", type=int, default=11, help="alternating rounds at batch 1 (half for larger)")
    parser.add_argument("--calls", type=int, default=5, help="timed calls per round at batch 1 (1 for larger)")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between two engines' turns")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for a quiet machine")
    parser.add_argument("--ghostnp", type=Path, default=REPO, help="the checkout whose ghostnp is timed")
    parser.add_argument("--quick", action="store_true", help="batch 1, 1 thread, 5 rounds, no load or process costs")
    parser.add_argument(
        "--under-load",
        action="store_true",
        help="also time batch 1 with one busy process beside (always on without --quick)",
    )
    parser.add_argument("--profile", action="store_true", help="also print a per-op profile at batch 1, 1 thread")
    parser.add_argument("--engine-worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--outdir", help=argparse.SUPPRESS)
    parser.add_argument("--onnx", help=argparse.SUPPRESS)
    parser.add_argument("--profile-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.threads, args.rounds = [1], [1], 5
    else:
        args.under_load = True
    return args


def main(argv=None):
    """Run the benchmark and print its tables (Markdown)."""
    args = parse_args(argv)
    if args.engine_worker:
        return engine_worker(args)
    if args.profile_worker:
        return print_profile(args.model)
    load = wait_for_quiet(args.wait)
    print(f"# ghostnp benchmark: {args.model}, 224 x 224, {os.cpu_count()} CPUs, ghostnp from {args.ghostnp}")
    print(f"load average before: {load:.2f}" + ("  (machine BUSY: timings are noisy)" if load >= 0.5 else ""))
    gflop = network_gflop(args.model)
    peaks = {threads: sgemm_peak_gflops(threads) for threads in args.threads}
    floor_ms = {threads: gflop / peaks[threads] for threads in args.threads}  # seconds per image
    print(f"\n## The floor: {gflop * 1e3:.0f} MFLOP per image at the measured sgemm peak\n")
    print("| threads | sgemm GFLOP/s (2048 x 2048, NumPy's BLAS) | floor ms per image |\n|---|---|---|")
    for threads in args.threads:
        print(f"| {threads} | {peaks[threads]:.0f} | {floor_ms[threads] * 1e3:.2f} |")
    onnx_path = export_for_engines(args.model) if {"onnxruntime", "openvino"} & set(args.engines) else None
    with tempfile.TemporaryDirectory(prefix="ghostnp-bench-out-") as outdir:
        runs = {threads: measure(args, threads, outdir, onnx_path, args.batch) for threads in args.threads}
        rounds = f"{args.rounds} rounds of {args.calls} calls at batch 1, {max(3, args.rounds // 2)} of 1 call above"
        print(f"\n## Latency (one process per engine, alternating rounds: {rounds}; median over rounds)\n")
        print(latency_table(runs, floor_ms, outdir))
        for threads, (_, skipped) in runs.items():
            for engine, why in skipped.items():
                print(f"\n({LABELS[engine]} skipped at {threads} threads: {why})")
        if args.under_load:
            loaded = {t: measure(args, t, outdir, onnx_path, [1], under_load=True) for t in args.threads}
            print("\n## Batch 1 with one other busy process on the machine\n")
            print(load_table(runs, loaded))
    if not args.quick:
        print("\n## Whole process, one image (fresh subprocess each, 1 thread)\n")
        print("| what | wall s | in-process s | peak RSS MiB |\n|---|---|---|---|")
        for what, wall, inside, rss in process_costs(args.model, threads=1):
            print(f"| {what} | {wall:.2f} | {inside:.2f} | {rss:.0f} |")
    if args.profile:
        command = [sys.executable, str(Path(__file__).resolve()), "--profile-worker", "--model", args.model]
        env = thread_env(1, args.ghostnp)
        print(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
