"""``python -m weights_converter SRC [-o OUT.npz]``: the converter on the command line."""

from __future__ import annotations

import argparse
import sys

from .convert import convert
from .errors import CheckpointError
from .reader import read_checkpoint

DESCRIPTION = """\
Convert GhostNet / GhostNetV2 weights to ghostnp's .npz, with numpy alone (PyTorch is not needed).

SRC may be a PyTorch checkpoint (.pth, .pth.tar, .bin, .pt; zip or legacy format), a safetensors file
or a ghostnp .npz; the format is recognised from the file's bytes, not its name. Nothing in the file
is executed: pickles are read by an allowlist interpreter, and every declared size is checked.

The weights are found inside training wrappers ('state_dict_ema', 'model_ema', 'state_dict',
'model'), 'module.' / '_orig_mod.' prefixes are stripped, num_batches_tracked / total_ops /
total_params are dropped, and values become float32 and are checked to be finite. Which network the weights belong to is
not checked here: 'ghostnp convert SRC' also recognises the architecture from the keys and shapes."""

EPILOG = """\
example:
  python -m weights_converter ck_ghostnetv2_10.pth.tar        # writes ck_ghostnetv2_10.npz
  python -m weights_converter model.safetensors -o v2_100.npz

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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the converter; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        out = convert(args.src, args.output)
        weights, info = read_checkpoint(out)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    metadata = info["metadata"]
    print(f"read {args.src} ({metadata['source_format']}, weights from {metadata['picked']}, "
          f"{metadata['dropped']} ignorable keys dropped, sha256 {metadata['source_sha256']})")  # fmt: skip
    print(f"{len(weights)} arrays")
    print(f"wrote {out}")
    return 0
