"""How fast ``ghostnp.evaluate`` scores a folder of full-size JPEGs, against the bounds and against PyTorch.

::

    python benchmarks/pipeline.py                   # 512 images of 500 x 375, batch 32, numba (~3 min)
    python benchmarks/pipeline.py --images 256 --threads   # also decoding threads instead of processes

It writes a synthetic ImageNet-style folder (class folders named by WordNet id; crops, flips and resizes of
scikit-image's photographs, JPEG quality 90, ``tests/synthetic_imagenet.py``) and measures, each in a fresh
process with the same thread settings:

- ``decode``: timm's evaluation transform alone (``ghostnp.preprocess``) on one core: CPU seconds per image d;
- ``forward``: the network alone on preprocessed batches: images/s and CPU seconds per image f (all threads);
- ``evaluate, workers=W``: ``ghostnp.evaluate`` end to end (reading the folder, decoding, forward, scoring);
- ``PyTorch DataLoader``: timm's own pipeline: a ``torch.utils.data.DataLoader`` with 2 worker processes
  running the same transform (torchvision is not installed here, so the dataset calls ``ghostnp.preprocess``,
  which equals torchvision's arithmetic to the bit) into the PyTorch reference model (``tests/torch_reference.py``)
  in eager mode on all cores; skipped when torch is not importable;
- ``model over a process pool``: the pickled ghostnp model mapped over the cores by the caller, each process
  decoding and running its share: what the picklable model allows.

For each it prints images/s, the CPU seconds of all processes of the run (the workers included) over the
wall seconds, and the fraction of the bound ``cores / (f + d)``: the rate at which the machine's cores would
run if every one of them were busy with forward passes and decoding and nothing else.
"""

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def peak_memory_mb():
    """Peak resident memory of this process and of its largest finished child, in MB (Linux reports KB)."""
    import resource

    return [resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]


def cpu_seconds():
    """User + system CPU seconds of this process and of its finished (waited-for) children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def measure_decode(spec):
    import ghostnp

    paths = sorted(Path(spec["root"]).rglob("*.JPEG"))
    ghostnp.preprocess(paths[0])
    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    for path in paths:
        ghostnp.preprocess(path)
    return {"images": len(paths), "wall": time.perf_counter() - start_wall, "cpu": cpu_seconds() - start_cpu}


def measure_forward(spec):
    import numpy as np

    import ghostnp

    paths = sorted(Path(spec["root"]).rglob("*.JPEG"))[: spec["batch"]]
    x = np.concatenate([ghostnp.preprocess(path) for path in paths])  # (B, 3, 224, 224)
    model = ghostnp.create_model(spec["model"], backend=spec["backend"])
    model(x)  # compile or load the cached kernels
    rounds = max(1, spec["images"] // len(paths))
    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    for _ in range(rounds):
        model(x)
    return {"images": rounds * len(paths), "wall": time.perf_counter() - start_wall, "cpu": cpu_seconds() - start_cpu}


def measure_evaluate(spec):
    import ghostnp
    from ghostnp.images import pipeline

    weights = Path(spec["root"]).parent / f"{spec['model']}.npz"
    ghostnp.evaluate(spec["root"], spec["model"], weights=weights, backend=spec["backend"], limit=2, workers=0)
    if spec.get("threads"):  # decoding threads instead of processes: a measurement, not an option of evaluate
        from ghostnp.inference import evaluation

        evaluation.preprocessed_batches = functools.partial(pipeline.preprocessed_batches, threads=True)
    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    result = ghostnp.evaluate(
        spec["root"],
        spec["model"],
        weights=weights,
        backend=spec["backend"],
        batch_size=spec["batch"],
        workers=spec["workers"],
        progress=False,
    )
    wall, cpu = time.perf_counter() - start_wall, cpu_seconds() - start_cpu
    return {"images": result.count, "wall": wall, "cpu": cpu, "memory": peak_memory_mb()}


def _torch_dataset(paths):
    import torch

    import ghostnp

    class Folder(torch.utils.data.Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            return torch.from_numpy(ghostnp.preprocess(paths[i])[0]), 0  # (3, 224, 224)

    return Folder()


def measure_torch(spec):
    import numpy as np
    import torch
    from torch_reference import build_torch_model

    import ghostnp

    torch.set_num_threads(spec["cores"])
    paths = sorted(Path(spec["root"]).rglob("*.JPEG"))
    model = build_torch_model(spec["model"]).eval()
    weights = ghostnp.load_weights(Path(spec["root"]).parent / f"{spec['model']}.npz")
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}, strict=False)
    with torch.no_grad():
        model(torch.zeros(2, 3, 224, 224))
        start_wall, start_cpu = time.perf_counter(), cpu_seconds()
        loader = torch.utils.data.DataLoader(
            _torch_dataset(paths), batch_size=spec["batch"], num_workers=spec["workers"], shuffle=False
        )
        count = 0
        for x, _ in loader:
            model(x).argmax(1)
            count += len(x)
        del loader  # joins the worker processes, so that their CPU time is counted
    return {"images": count, "wall": time.perf_counter() - start_wall, "cpu": cpu_seconds() - start_cpu}


def _score_shard(model, paths, batch):
    """One process's share: decode and run ``paths`` in batches; the number of images scored."""
    import numpy as np

    import ghostnp

    for start in range(0, len(paths), batch):
        model(np.concatenate([ghostnp.preprocess(p) for p in paths[start : start + batch]]))  # (B, 1000)
    return len(paths)


def measure_model_pool(spec):
    from concurrent.futures import ProcessPoolExecutor

    import ghostnp

    paths = sorted(Path(spec["root"]).rglob("*.JPEG"))
    weights = Path(spec["root"]).parent / f"{spec['model']}.npz"
    model = ghostnp.create_model(spec["model"], weights=weights, backend=spec["backend"])
    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    shards = [paths[i :: spec["cores"]] for i in range(spec["cores"])]
    with ProcessPoolExecutor(spec["cores"]) as pool:
        count = sum(pool.map(_score_shard, [model] * len(shards), shards, [spec["batch"]] * len(shards)))
    return {"images": count, "wall": time.perf_counter() - start_wall, "cpu": cpu_seconds() - start_cpu}


MEASURES = {
    "decode": measure_decode,
    "forward": measure_forward,
    "evaluate": measure_evaluate,
    "torch": measure_torch,
    "model_pool": measure_model_pool,
}


def run(kind, spec, env):
    """One measurement in a fresh interpreter; its dict of images, wall and cpu seconds."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(REPO / 'benchmarks')!r}); import pipeline; "
        f"print(json.dumps(pipeline.MEASURES[{kind!r}](json.loads({json.dumps(spec)!r}))))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        print(f"{kind} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_folder(root, images, model):
    """The synthetic folder (8 classes) and the model's seeded random weights beside it."""
    import numpy as np
    from synthetic_imagenet import write_images, write_layout

    import ghostnp

    files = write_images(root / "staging", images)
    write_layout(root / "val", "wnid folders", files, [i % 8 for i in range(len(files))])
    np.savez(root / f"{model}.npz", **ghostnp.create_model(model).state_dict())
    return root / "val"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512, help="images in the synthetic folder (default 512)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--model", default="ghostnetv2_100")
    parser.add_argument("--backend", default="numba", choices=("numpy", "numba"))
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="evaluate's workers (default 0 2)")
    parser.add_argument("--threads", action="store_true", help="also measure decoding threads instead of processes")
    parser.add_argument(
        "--blas-threads", default="1", help="OPENBLAS_NUM_THREADS for ghostnp (default 1, as on any shared machine)"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch DataLoader pipeline")
    parser.add_argument("--rounds", type=int, default=1, help="rounds over all runs, alternating (median; default 1)")
    args = parser.parse_args(argv)
    import statistics

    from ghostnp.cores import usable_cores

    cores = usable_cores()
    env = dict(os.environ, GHOSTNP_BACKEND=args.backend, OPENBLAS_NUM_THREADS=args.blas_threads)
    spec = {"model": args.model, "backend": args.backend, "batch": args.batch, "images": args.images, "cores": cores}
    runs = [("decode (1 process)", "decode", spec), ("forward only", "forward", spec)]
    for workers in args.workers:
        runs.append((f"evaluate, workers={workers}", "evaluate", dict(spec, workers=workers)))
        if args.threads and workers:
            runs.append((f"evaluate, {workers} decoding threads", "evaluate", dict(spec, workers=workers, threads=1)))
    runs.append((f"model over a {cores}-process pool", "model_pool", spec))
    if not args.no_torch:
        runs.append(("PyTorch DataLoader, 2 workers", "torch", dict(spec, workers=2)))
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    measured = {name: [] for name, _, _ in runs}
    with tempfile.TemporaryDirectory(prefix="ghostnp-pipeline-") as tmp:
        root = str(make_folder(Path(tmp), args.images, args.model))
        for _ in range(args.rounds):
            for name, kind, run_spec in runs:
                row = run(kind, dict(run_spec, root=root), env)
                if row:
                    measured[name].append(row)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    def median(name, key):
        rows = measured[name]
        return statistics.median(key(row) for row in rows) if rows else None

    d = median("decode (1 process)", lambda row: row["cpu"] / row["images"])
    f = median("forward only", lambda row: row["cpu"] / row["images"])
    bound = cores / (f + d) if d and f else None
    print(
        f"{args.images} images of 500 x 375, {args.model}, {args.backend}, batch {args.batch}, {cores} cores, "
        f"OPENBLAS_NUM_THREADS={args.blas_threads}, median of {args.rounds} round(s); "
        f"load average {load_before:.2f} before, {load_after:.2f} after"
    )
    if bound:
        print(f"decode d = {1e3 * d:.1f} ms CPU per image, forward f = {1e3 * f:.1f} ms CPU per image (all threads)")
        print(f"bound = cores / (f + d) = {cores} / {1e3 * (f + d):.1f} ms = {bound:.1f} images/s")
    print("| run | images/s | CPU s / wall s | of the bound | peak memory: main, largest worker |")
    print("|---|---|---|---|---|")
    for name, _, _ in runs:
        rate = median(name, lambda row: row["images"] / row["wall"])
        busy = median(name, lambda row: row["cpu"] / row["wall"])
        if rate is None:
            print(f"| {name} | - | - | - | - |")
            continue
        share = f"{rate / bound:.0%}" if bound else "-"
        memory = measured[name][-1].get("memory")
        memory = f"{memory[0]:.0f} MB, {memory[1]:.0f} MB" if memory else "-"
        print(f"| {name} | {rate:.1f} | {busy:.2f} of {cores} | {share} | {memory} |")


if __name__ == "__main__":
    main()
