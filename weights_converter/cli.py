"""``python -m weights_converter SRC [-o OUT.npz] [--arch NAME]``: the converter on the command line."""

from __future__ import annotations

import argparse
import sys

from ghostnp.errors import GhostnpError

from .convert import convert
from .reader import read_checkpoint

DESCRIPTION = """\
Convert GhostNet / GhostNetV2 weights to ghostnp's .npz, with numpy alone (PyTorch is not needed).

SRC may be a PyTorch checkpoint (.pth, .pth.tar, .bin, .pt; zip or legacy format), a safetensors file
or a ghostnp .npz; the format is recognised from the file's bytes, not its name. Nothing in the file
is executed: pickles are read by an allowlist interpreter, and every declared size is checked.

The weights are found inside training wrappers ('state_dict_ema', 'model_ema', 'state_dict',
'model'), 'module.' / '_orig_mod.' prefixes are stripped, num_batches_tracked / total_ops /
total_params are dropped, values become float32 and are checked to be finite, and the architecture
is recognised from the keys and shapes."""

EPILOG = """\
example:
  python -m weights_converter ck_ghostnetv2_10.pth.tar        # writes ck_ghostnetv2_10.npz
  python -m weights_converter model.safetensors -o v2_100.npz --arch ghostnetv2_100

exit status: 0 on success, 1 when the file cannot be converted (the reason is printed)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m weights_converter",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src", metavar="SRC", help="the weights file to convert")
    parser.add_argument("-o", "--output", metavar="OUT.npz", help="where to write (default: SRC's name with .npz)")
    parser.add_argument(
        "--arch", metavar="NAME", help="expected architecture, e.g. ghostnetv2_100 (default: recognised from the keys)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the converter; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        out = convert(args.src, args.output, args.arch)
        _, info = read_checkpoint(out)
    except GhostnpError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    metadata = info["metadata"]
    print(f"read {args.src} ({metadata['source_format']}, weights from {metadata['picked']}, "
          f"{metadata['dropped']} ignorable keys dropped, sha256 {metadata['source_sha256']})")  # fmt: skip
    print(f"architecture {metadata['architecture']}")
    print(f"wrote {out}")
    return 0
