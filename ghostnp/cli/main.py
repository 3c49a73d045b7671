"""The ``ghostnp`` command (also ``python -m ghostnp``): classify images, inspect models, manage weights."""

import argparse
import glob
import json
import os
import platform
import sys
from contextlib import closing
from pathlib import Path

import numpy as np

from ..errors import DownloadError, GhostnpError
from ..progress import progress_bar

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
EXIT_FAILED_FILES = 1  # some inputs could not be classified
EXIT_USAGE = 2  # bad arguments, an unreadable folder layout or weights file
EXIT_NO_WEIGHTS = 3  # the weights are not in the cache and could not be downloaded
EXIT_WORKER_DIED = 4  # a worker process decoding images died: the run stopped before the end

EXAMPLES = {
    "classify": """examples:
  ghostnp classify --sample                      the sample image shipped with ghostnp
  ghostnp classify cat.jpg dog.png --topk 3
  ghostnp classify photos/ --json > labels.json  every image in a folder, JSON for scripts
  ghostnp classify 'shots/*.jpg' --weights ck_ghostnetv2_10.pth.tar""",
    "evaluate": """examples:
  ghostnp evaluate imagenet/val --weights ck_ghostnetv2_10.pth.tar --backend numba
                                                 class folders named by WordNet id (ImageFolder layout)
  ghostnp evaluate imagenetv2-matched-frequency/ class folders named 0..999 (ImageNetV2)
  ghostnp evaluate val_images/ --labels val.txt  a flat folder and 'file_name class' lines
  ghostnp evaluate CLS-LOC/val --labels LOC_val_solution.csv --limit 500 --json

exit status: 0 success, 1 some images could not be read (they are listed, the rest is scored),
2 usage error or unknown layout, 3 weights not available, 4 a worker process died""",
    "models": "example:\n  ghostnp models",
    "summary": "examples:\n  ghostnp summary ghostnetv2_100\n  ghostnp summary ghostnetv2_160 --input-size 256",
    "convert": "example:\n  ghostnp convert ck_ghostnetv2_10.pth.tar -o ghostnetv2_100.npz",
    "download": "example:\n  ghostnp download ghostnetv2_100",
    "cache": "examples:\n  ghostnp cache            list the cached weights\n  ghostnp cache --clear    delete them",
    "info": "example:\n  ghostnp info",
    "bench": "examples:\n  ghostnp bench --quick                 batch 1, 1 thread, 5 rounds\n"
    "  ghostnp bench --batch 1 32 --threads 1 2 --profile",
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ghostnp",
        description="GhostNetV2 in pure NumPy: classify images with ImageNet-1k models, inspect them, manage weights.",
        epilog="Run 'ghostnp COMMAND --help' for a command's options and examples.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, help_text):
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    classify = command("classify", "Classify images (files, folders or glob patterns) and print the top classes.")
    classify.add_argument(
        "images", nargs="*", metavar="IMG|DIR|GLOB", help="image files, folders of images, or patterns"
    )
    classify.add_argument("--sample", action="store_true", help="also classify the sample image shipped with ghostnp")
    classify.add_argument(
        "--model", default="ghostnetv2_100", help="model name (see 'ghostnp models'; default %(default)s)"
    )
    classify.add_argument("--topk", type=int, default=5, help="classes to show per image (default %(default)s)")
    classify.add_argument(
        "--weights",
        metavar="PATH",
        help="weights file (.pth, .pth.tar, .safetensors, .npz); default: the pretrained weights from the cache",
    )
    classify.add_argument(
        "--backend",
        choices=("numpy", "numba", "auto"),
        help="op implementation (default: $GHOSTNP_BACKEND, else numpy)",
    )
    classify.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default %(default)s)")
    add_workers_option(classify)
    classify.add_argument("--json", action="store_true", help="print JSON (one object per image) instead of a table")

    evaluate = command(
        "evaluate", "Score a model on a labelled image set (ImageNet's validation set): top-1, top-5, per class."
    )
    evaluate.add_argument("root", metavar="ROOT", help="class folders (WordNet ids or 0..999), or a flat folder")
    evaluate.add_argument(
        "--model", default="ghostnetv2_100", help="model name (see 'ghostnp models'; default %(default)s)"
    )
    evaluate.add_argument("--weights", metavar="PATH", help="weights file; default: the pretrained weights")
    evaluate.add_argument(
        "--backend",
        choices=("numpy", "numba", "auto"),
        help="op implementation (default: $GHOSTNP_BACKEND, else numpy)",
    )
    evaluate.add_argument(
        "--labels",
        metavar="FILE",
        help="labels of a flat folder: 'file_name class' lines (val.txt), a WordNet id per line, or Kaggle's csv",
    )
    evaluate.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default %(default)s)")
    add_workers_option(evaluate)
    evaluate.add_argument("--limit", type=int, metavar="N", help="score only the first N images in sorted order")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (with per-class figures)")

    command("models", "List the model names and their published weights.")

    summary = command("summary", "Print a model's per-layer table: output shapes, parameters, multiply-adds.")
    summary.add_argument("model", help="model name (see 'ghostnp models')")
    summary.add_argument("--input-size", type=int, default=224, help="square input size (default %(default)s)")

    convert = command("convert", "Convert a checkpoint (PyTorch, safetensors) to a ghostnp .npz, without PyTorch.")
    convert.add_argument("src", metavar="SRC", help="the checkpoint file")
    convert.add_argument("-o", "--output", metavar="OUT.npz", help="where to write (default: beside SRC)")
    convert.add_argument("--arch", help="model name (default: recognised from the keys and shapes)")

    download = command("download", "Download and convert a model's pretrained weights into the cache.")
    download.add_argument("model", help="model name or pretrained tag, e.g. ghostnetv2_100 or ghostnetv2_100.in1k")

    cache = command("cache", "List (or clear) the weights cache.")
    cache.add_argument("--clear", action="store_true", help="delete the cached weights")

    command("info", "Print versions, the backend, and the cache folder.")

    command(
        "bench",
        "Time ghostnp (NumPy, Numba) against PyTorch and ONNX Runtime, from a source checkout; "
        "other options go to benchmarks/bench.py (see 'python benchmarks/bench.py --help').",
    )
    return parser


def add_workers_option(parser):
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes decoding images beside the network; 0 decodes in this process (default: one per core)",
    )


def expand_inputs(patterns):
    """Files named, files in named folders (sorted, images only), and glob matches; a missing file or a
    pattern that matches nothing is kept as given, so that it is reported."""
    files = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        elif glob.has_magic(pattern) and glob.glob(pattern):
            files.extend(sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file()))
        else:
            files.append(path)
    return files


def run_classify(args, out):
    from ..images.decode import sample_image_path
    from ..images.pipeline import PipelineError, preprocessed_batches
    from ..inference.classification import eval_config, load_model, top_predictions

    files = expand_inputs(args.images) + ([sample_image_path()] if args.sample else [])
    if not files:
        print("ghostnp classify: no images given; name files, folders or patterns, or use --sample", file=sys.stderr)
        return EXIT_USAGE
    try:
        model = load_model(args.model, args.weights, args.backend)
    except DownloadError as error:
        print(f"ghostnp classify: the weights for {args.model} are not available.\n\n{error}", file=sys.stderr)
        return EXIT_NO_WEIGHTS
    results, failures = [], 0
    progress = progress_bar(len(files), desc="classify", unit="img", enabled=len(files) > 1 and not args.json)
    batches = preprocessed_batches(files, eval_config(args.model), batch_size=args.batch_size, workers=args.workers)
    try:
        with closing(batches), progress:
            for batch in batches:
                for position, reason in batch.failures:
                    print(f"ghostnp classify: skipped {files[position]}: {reason}", file=sys.stderr)
                failures += len(batch.failures)
                if batch.positions:
                    logits = model(batch.inputs)  # (B, 1000)
                    results.extend(zip([files[p] for p in batch.positions], top_predictions(logits, args.topk)))
                progress.update(len(batch.positions) + len(batch.failures))
    except PipelineError as error:
        print(f"ghostnp classify: {error}", file=sys.stderr)
        return EXIT_WORKER_DIED
    if args.json:
        for path, predictions in results:
            record = {"file": str(path), "predictions": [p._asdict() for p in predictions]}
            print(json.dumps(record), file=out)
    else:
        for path, predictions in results:
            print(f"{path}", file=out)
            for p in predictions:
                print(f"  {p.probability:7.2%}  {p.index:4d}  {p.label}", file=out)
    return EXIT_FAILED_FILES if failures else 0


def run_evaluate(args, out):
    from ..images.pipeline import PipelineError
    from ..inference.evaluation import evaluate

    try:
        result = evaluate(
            args.root,
            args.model,
            weights=args.weights,
            backend=args.backend,
            labels=args.labels,
            batch_size=args.batch_size,
            workers=args.workers,
            limit=args.limit,
            progress=not args.json,
        )
    except DownloadError as error:
        print(f"ghostnp evaluate: the weights for {args.model} are not available.\n\n{error}", file=sys.stderr)
        return EXIT_NO_WEIGHTS
    except PipelineError as error:
        print(f"ghostnp evaluate: {error}", file=sys.stderr)
        return EXIT_WORKER_DIED
    for path, reason in result.failed:
        print(f"ghostnp evaluate: skipped {path}: {reason}", file=sys.stderr)
    if args.json:
        record = {
            "model": result.model,
            "backend": result.backend,
            "layout": result.layout,
            "top1": result.top1,
            "top5": result.top5,
            "count": result.count,
            "failed": [{"file": path, "reason": reason} for path, reason in result.failed],
            "seconds": result.seconds,
            "images_per_second": result.images_per_second,
            "per_class": [vars(accuracy) for accuracy in result.per_class.values()],
        }
        print(json.dumps(record), file=out)
    else:
        rows = [
            ("model", f"{result.model} ({result.backend} backend)"),
            ("layout", f"{result.layout}, {len(result.per_class)} classes"),
            ("top-1", f"{result.top1:.3f} %"),
            ("top-5", f"{result.top5:.3f} %"),
            ("count", f"{result.count:,}"),
            ("failed", f"{len(result.failed):,}"),
            ("time", f"{result.seconds:.1f} s ({result.images_per_second:.1f} images/s)"),
        ]
        for name, value in rows:
            print(f"{name:<8} {value}", file=out)
    return EXIT_FAILED_FILES if result.failed else 0


def run_models(args, out):
    from ..network.registry import list_models
    from ..weights.pretrained import list_pretrained

    tags = list_pretrained()
    for name in list_models():
        weights = ", ".join(t for t in tags if t.split(".")[0] == name) or "(no published weights)"
        print(f"{name:<18} {weights}", file=out)
    return 0


def run_summary(args, out):
    from ..network.summary import summary

    print(summary(args.model, args.input_size), file=out)
    return 0


def run_convert(args, out):
    from ..weights.files import convert_weights

    print(convert_weights(args.src, args.output, args.arch), file=out)
    return 0


def run_download(args, out):
    from ..weights.hub import fetch_pretrained

    try:
        print(fetch_pretrained(args.model), file=out)
    except DownloadError as error:
        print(f"ghostnp download: {error}", file=sys.stderr)
        return EXIT_NO_WEIGHTS
    return 0


def run_cache(args, out):
    from ..weights.hub import cache_dir, cache_entries, clear_cache

    if args.clear:
        for path in clear_cache():
            print(f"removed {path}", file=out)
        return 0
    print(f"cache folder: {cache_dir()}  (set GHOSTNP_HOME to move it)", file=out)
    entries = cache_entries()
    for entry in entries:
        print(f"  {entry.name:<48} {entry.size / 1e6:8.1f} MB  sha256 {entry.sha256}", file=out)
    if not entries:
        print("  (empty: 'ghostnp download MODEL' fills it)", file=out)
    return 0


def run_info(args, out):
    from .. import __version__
    from ..ops import numba_available, resolve_backend
    from ..weights.hub import cache_dir

    numba_version = "not installed (pip install 'ghostnp[fast]')"
    if numba_available():
        import numba

        numba_version = numba.__version__
    import PIL

    print(f"ghostnp   {__version__}", file=out)
    print(f"python    {platform.python_version()} ({sys.executable})", file=out)
    print(f"numpy     {np.__version__}", file=out)
    print(f"pillow    {PIL.__version__}", file=out)
    print(f"numba     {numba_version}", file=out)
    print(f"backend   {resolve_backend(None)} (GHOSTNP_BACKEND={os.environ.get('GHOSTNP_BACKEND', '')!r})", file=out)
    print(f"cache     {cache_dir()}", file=out)
    print(f"offline   {os.environ.get('GHOSTNP_OFFLINE', '') not in ('', '0')}", file=out)
    return 0


def run_bench(args, out, options=()):
    import runpy

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench.py"  # ghostnp/cli/main.py -> the checkout
    if not script.is_file():
        print(
            "ghostnp bench: the benchmark is part of the source tree (benchmarks/bench.py), not of the installed "
            "package; in a checkout of ghostnp run: python benchmarks/bench.py --quick",
            file=sys.stderr,
        )
        return 2
    return runpy.run_path(str(script))["main"](list(options)) or 0


COMMANDS = {
    "classify": run_classify,
    "evaluate": run_evaluate,
    "models": run_models,
    "summary": run_summary,
    "convert": run_convert,
    "download": run_download,
    "cache": run_cache,
    "info": run_info,
}


def main(argv=None, out=None):
    """Run the command line; returns the exit status (0 success, 1 some files failed, 2 usage, 3 no weights,
    4 a worker process died)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "bench":
            return run_bench(args, out or sys.stdout, extra)
        return COMMANDS[args.command](args, out or sys.stdout)
    except (GhostnpError, ValueError) as error:
        print(f"ghostnp {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
