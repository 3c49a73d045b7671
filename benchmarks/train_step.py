"""Time one training step (forward + backward + SGD update) of ghostnp against PyTorch eager.

Usage::

    python benchmarks/train_step.py [--threads 2] [--repeats 5] [--quick]

Cases (the issue's): ``ghostnetv2_tiny`` at 64 x 64, batch 32, and ``ghostnetv2_100`` at 224 x 224, batch 8,
float32. Each engine runs in its own subprocess with every thread pool set to ``--threads`` before any
import (``thread_env`` of ``bench.py``): ghostnp's step is ``loss_and_grads`` + ``SGD.step`` on
``model.params``; PyTorch's is ``model.train()`` forward, ``F.cross_entropy``, ``backward`` and
``torch.optim.SGD.step`` on the reference network (``tests/torch_reference.py``) with the same weights.
Both use momentum 0.9, weight decay 1e-4, dropout 0.2. The table gives the median step time of
``--repeats`` steps after one warm-up step, and the ratio to PyTorch.

Where the time goes: ghostnp's step is timed in three parts (the training forward on the recording table,
the walk back with the VJPs, the optimizer), and the walk back per op (``--profile``, the VJPs wrapped
with timers), so the slowest VJPs are named.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import run_python, thread_env  # the benchmark's subprocess helpers

CASES = (("ghostnetv2_tiny", 64, 32), ("ghostnetv2_100", 224, 8))

WORKER = r"""
import json, statistics, sys, time
from collections import defaultdict
import numpy as np
engine, name, size, batch, threads, repeats, profile = {args}
rng = np.random.default_rng(0)
x = rng.normal(size=(batch, 3, size, size)).astype(np.float32)
targets = rng.integers(0, 1000, batch)
import ghostnp
model = ghostnp.create_model(name, seed=0)
result = {{"engine": engine}}
if engine == "ghostnp":
    from ghostnp.autodiff import vjp
    from ghostnp.autodiff.record import record_training
    from ghostnp.train import SGD, cross_entropy
    from ghostnp.train.gradients import trainable_keys
    per_op = defaultdict(float)
    if profile:
        for table in (vjp.VJPS, vjp.PARAM_VJPS):
            for op, (fn, arity) in list(table.items()):
                def timed(*a, _fn=fn, _op=op + (" (params)" if table is vjp.PARAM_VJPS else ""), **k):
                    start = time.perf_counter()
                    out = _fn(*a, **k)
                    per_op[_op] += time.perf_counter() - start
                    return out
                table[op] = (timed, arity)
    optimizer = SGD(0.01, momentum=0.9, weight_decay=1e-4)
    keys = trainable_keys(model.params)
    parts = defaultdict(list)
    for step in range(repeats + 1):
        per_op.clear()
        t0 = time.perf_counter()
        tape, logits = record_training(model, x, trainable=keys, rng=np.random.default_rng(step))
        t1 = time.perf_counter()
        loss, grad_logits = cross_entropy(logits, targets)
        _, grads = tape.backward(logits, grad_logits)
        t2 = time.perf_counter()
        optimizer.step(model.params, grads)
        t3 = time.perf_counter()
        if step:
            parts["step"].append(t3 - t0); parts["forward"].append(t1 - t0)
            parts["backward"].append(t2 - t1); parts["optimizer"].append(t3 - t2)
            for op, seconds in per_op.items():
                parts["vjp " + op].append(seconds)
    result.update({{k: statistics.median(v) for k, v in parts.items()}})
else:
    import torch, torch.nn.functional as F
    torch.set_num_threads(threads)
    sys.path.insert(0, "{tests}")
    from torch_reference import build_torch_model, TorchFromArchitecture
    net = TorchFromArchitecture(model.arch, dropout=0.2) if name == "ghostnetv2_tiny" else build_torch_model(name)
    net.load_state_dict({{k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}})
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), 0.01, momentum=0.9, weight_decay=1e-4)
    xt, tt = torch.from_numpy(x), torch.from_numpy(targets)
    times = []
    for step in range(repeats + 1):
        t0 = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(net(xt), tt).backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - t0)
    result["step"] = statistics.median(times)
print(json.dumps(result))
"""


def measure(engine, name, size, batch, threads, repeats, profile):
    args = (engine, name, size, batch, threads, repeats, profile)
    code = WORKER.format(args=repr(args), tests=str(Path(__file__).resolve().parents[1] / "tests"))
    return run_python(code, thread_env(threads), timeout=3600)[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="time every VJP of ghostnp's backward pass")
    parser.add_argument("--quick", action="store_true", help="the tiny case only, 3 repeats")
    options = parser.parse_args(argv)
    cases = CASES[:1] if options.quick else CASES
    repeats = 3 if options.quick else options.repeats
    print(f"one training step (forward + backward + SGD), float32, {options.threads} threads, median of {repeats}")
    print(f"{'model':<16} {'input':>9} {'batch':>5} {'PyTorch':>9} {'ghostnp':>9} {'ratio':>6}   ghostnp's step")
    for name, size, batch in cases:
        torch_result = measure("torch", name, size, batch, options.threads, repeats, False)
        ours = measure("ghostnp", name, size, batch, options.threads, repeats, options.profile)
        split = ", ".join(f"{part} {ours[part] * 1e3:.0f} ms" for part in ("forward", "backward", "optimizer"))
        print(
            f"{name:<16} {f'{size} x {size}':>9} {batch:>5} {torch_result['step'] * 1e3:>7.0f}ms "
            f"{ours['step'] * 1e3:>7.0f}ms {ours['step'] / torch_result['step']:>5.1f}x   {split}"
        )
        if options.profile:
            vjps = sorted(((k, v) for k, v in ours.items() if k.startswith("vjp ")), key=lambda kv: -kv[1])
            print("    backward by op: " + ", ".join(f"{k[4:]} {v * 1e3:.0f} ms" for k, v in vjps[:8]))
    print(json.dumps({"threads": options.threads, "repeats": repeats}))


if __name__ == "__main__":
    main()
