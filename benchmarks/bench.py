"""Time ghostnp (NumPy and Numba tables) against PyTorch eager and ONNX Runtime on the same weights.

Usage::

    python benchmarks/bench.py [--model ghostnetv2_100] [--batch 1 8 32] [--threads 1 2] [--quick]

One run measures everything side by side, because timings on a shared machine move 20-30 % between runs
and only ratios from one run mean anything:

- Latency: one worker subprocess per thread count (``OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS`` set before any
  import, ``torch.set_num_threads``, ORT ``intra_op_num_threads``) builds the model once (ghostnp random
  weights with non-trivial BatchNorm statistics, loaded into the PyTorch reference by ``state_dict`` and
  exported to ONNX from it), then for each batch size times the engines in interleaved rounds, so a noisy
  moment hits all of them alike. It reports the median, the min-max spread, images/s, the ratios to
  PyTorch and ONNX Runtime, and each engine's largest logit difference from PyTorch.
- Under load: batch 1 again with one other busy process on the machine, to show which engines collapse
  (a spinning thread pool stalls whenever it competes for the cores).
- Whole-process costs, each in a fresh subprocess: ``import ghostnp`` time; model creation + the first
  batch-1 call with the Numba backend on an empty and on a warm ``NUMBA_CACHE_DIR``; wall time and peak
  RSS of a process that makes a model and classifies one image, per engine.

PyTorch comes from ``tests/torch_reference.py`` (found next to this file); ONNX Runtime and PyTorch are
skipped when not importable. Before measuring, the benchmark waits (up to ``--wait`` seconds) for the
1-minute load average to drop below 0.5 and prints it, so a busy machine is visible in the output.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINES = ("numpy", "numba", "torch", "onnxruntime")


def thread_env(threads, **extra):
    """The environment of a subprocess whose every thread pool has ``threads`` threads."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **extra)
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


# --- the worker: builds every engine once and times them side by side -----------------------------------


def build_engines(model_name, threads, wanted):
    """``{engine: callable(x) -> logits ndarray}`` for the engines in ``wanted`` that are importable."""
    import numpy as np

    import ghostnp

    reference = ghostnp.create_model(model_name, seed=0, backend="numpy")
    engines = {}
    if "numpy" in wanted:
        engines["numpy"] = reference
    if "numba" in wanted and ghostnp.ops.numba_available():
        engines["numba"] = ghostnp.create_model(model_name, reference.params, backend="numba")
    torch_model = None
    try:
        import torch

        sys.path.insert(0, str(REPO / "tests"))
        from torch_reference import build_torch_model

        torch.set_num_threads(threads)
        torch_model = build_torch_model(model_name)
        state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in reference.state_dict().items()}
        torch_model.load_state_dict(state, strict=True)
    except ImportError:
        pass
    if torch_model is not None and "torch" in wanted:

        def run_torch(x):
            with torch.inference_mode():
                return torch_model(torch.from_numpy(x)).numpy()

        engines["torch"] = run_torch
    if torch_model is not None and "onnxruntime" in wanted:
        engines.update(build_onnxruntime(torch_model, threads))
    return engines


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


def build_onnxruntime(torch_model, threads):
    """``{"onnxruntime": run}`` with the PyTorch model exported to ONNX, or {} without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(export_onnx(torch_model), options, providers=["CPUExecutionProvider"])
    return {"onnxruntime": lambda x: session.run(None, {"x": x})[0]}


def time_engines(engines, x, repeats):
    """Interleaved rounds: each round calls every engine once. Returns ``{engine: [seconds, ...]}``."""
    for run in engines.values():
        run(x)  # warm-up (Numba compile or cache load, ORT's first-run allocations)
    times = {name: [] for name in engines}
    for _ in range(repeats):
        for name, run in engines.items():
            start = time.perf_counter()
            run(x)
            times[name].append(time.perf_counter() - start)
    return times


def worker(args):
    """Time every engine for each batch size at ``args.threads[0]`` threads; print JSON results."""
    import numpy as np

    engines = build_engines(args.model, args.threads[0], args.engines)
    results = []
    for batch in args.batch:
        x = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)
        outputs = {name: np.asarray(run(x)) for name, run in engines.items()}
        anchor = outputs.get("torch", outputs.get("numpy"))
        repeats = max(3, args.repeats // batch) if batch > 1 else args.repeats
        times = time_engines(engines, x, repeats)
        for name, ts in times.items():
            diff = float(np.abs(outputs[name] - anchor).max() / np.abs(anchor).max())
            results.append({"batch": batch, "engine": name, "times": ts, "rel_diff": diff})
    under_load = time_under_load(engines, args.repeats) if args.under_load else {}
    print(json.dumps({"threads": args.threads[0], "results": results, "under_load": under_load}))


def time_under_load(engines, repeats):
    """Batch-1 medians with one other busy process on the machine: ``{engine: seconds}``."""
    import statistics

    import numpy as np

    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        times = time_engines(engines, x, repeats)
    finally:
        busy.kill()
        busy.wait()
    return {name: statistics.median(ts) for name, ts in times.items()}


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
    """A profile bucket: the op's name, and for conv2d its kind, kernel and stride ("conv dw 5x5 s2")."""
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
    from ghostnp.ops import OP_NAMES

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
    model.ops = types.SimpleNamespace(**{name: timed(name, getattr(table, name)) for name in OP_NAMES})
    start = time.perf_counter()
    for _ in range(rounds):
        model(x)
    total = (time.perf_counter() - start) / rounds
    rows = [(k, v / rounds * 1e3, calls[k] // rounds) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])]
    return rows, total * 1e3


# --- the report -------------------------------------------------------------------------------------------


def wait_for_quiet(max_wait):
    """Wait until the 1-minute load average is below 0.5 (at most ``max_wait`` s); returns the last load."""
    deadline = time.monotonic() + max_wait
    load = os.getloadavg()[0]
    while load >= 0.5 and time.monotonic() < deadline:
        time.sleep(5)
        load = os.getloadavg()[0]
    return load


def latency_table(runs):
    """Markdown table: one row per (threads, batch, engine)."""
    import statistics

    lines = [
        "| threads | batch | engine | median ms | spread ms (min-max) | img/s | x PyTorch | x ORT | max rel. diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        medians = {(r["batch"], r["engine"]): statistics.median(r["times"]) for r in run["results"]}
        for r in run["results"]:
            med = medians[(r["batch"], r["engine"])]
            ratio = {  # "-" where that engine did not run
                e: f"{med / medians[(r['batch'], e)]:.2f}" if (r["batch"], e) in medians else "-"
                for e in ("torch", "onnxruntime")
            }
            lines.append(
                f"| {run['threads']} | {r['batch']} | {r['engine']} | {med * 1e3:.1f} | "
                f"{min(r['times']) * 1e3:.1f}-{max(r['times']) * 1e3:.1f} | {r['batch'] / med:.1f} | "
                f"{ratio['torch']} | {ratio['onnxruntime']} | "
                f"{r['rel_diff']:.1e} |"
            )
    return "\n".join(lines)


def load_table(runs):
    """Markdown table: batch-1 median alone and with a busy process beside, per thread count and engine."""
    import statistics

    lines = ["| threads | engine | alone ms | with a busy process ms | slowdown |", "|---|---|---|---|---|"]
    for run in runs:
        alone = {r["engine"]: statistics.median(r["times"]) for r in run["results"] if r["batch"] == 1}
        for engine, loaded in run["under_load"].items():
            lines.append(
                f"| {run['threads']} | {engine} | {alone[engine] * 1e3:.1f} | {loaded * 1e3:.1f} | "
                f"x{loaded / alone[engine]:.2f} |"
            )
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
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--repeats", type=int, default=21, help="timed rounds at batch 1 (fewer for larger)")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for a quiet machine")
    parser.add_argument("--quick", action="store_true", help="batch 1, 1 thread, 5 rounds, no process costs")
    parser.add_argument("--profile", action="store_true", help="also print a per-op profile at batch 1, 1 thread")
    parser.add_argument(
        "--under-load",
        action="store_true",
        help="also time batch 1 with one busy process beside (always on without --quick)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.threads, args.repeats = [1], [1], 5
    else:
        args.under_load = True
    return args


def main(argv=None):
    """Run the benchmark and print its tables (Markdown)."""
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    if args.profile_worker:
        return print_profile(args.model)
    load = wait_for_quiet(args.wait)
    print(f"# ghostnp benchmark: {args.model}, 224 x 224, {os.cpu_count()} CPUs")
    print(f"load average before: {load:.2f}" + ("  (machine BUSY: timings are noisy)" if load >= 0.5 else ""))
    runs = []
    for threads in args.threads:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--model", args.model,
                   "--threads", str(threads), "--repeats", str(args.repeats),
                   "--batch", *map(str, args.batch), "--engines", *args.engines,
                   *(["--under-load"] if args.under_load else [])]  # fmt: skip
        done = subprocess.run(command, env=thread_env(threads), capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"benchmark worker ({threads} threads) failed:\n{done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print("\n## Latency (interleaved rounds, one process per thread count)\n")
    print(latency_table(runs))
    if args.under_load:
        print("\n## Batch 1 with one other busy process on the machine\n")
        print(load_table(runs))
    if not args.quick:
        print("\n## Whole process, one image (fresh subprocess each, 1 thread)\n")
        print("| what | wall s | in-process s | peak RSS MiB |\n|---|---|---|---|")
        for what, wall, inside, rss in process_costs(args.model, threads=1):
            print(f"| {what} | {wall:.2f} | {inside:.2f} | {rss:.0f} |")
    if args.profile:
        command = [sys.executable, str(Path(__file__).resolve()), "--profile-worker", "--model", args.model]
        print(subprocess.run(command, env=thread_env(1), capture_output=True, text=True, check=True).stdout)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
