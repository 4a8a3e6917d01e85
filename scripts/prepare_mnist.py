#!/usr/bin/env python3
"""Prepare MNIST for the ConvNet_MNIST sample: write Train-/Test-28x28_cntk_text.txt (CNTK text format) in --out.

Sources, in order: --mnist-dir (the four IDX files, gzipped or not), the cache of verified downloads
(--cache-dir, $MNIST_CACHE_DIR, ~/.cache/batchai-quickstart/mnist), then the mirrors (--mirror, $MNIST_MIRROR,
or the usual public ones).  Does nothing if both output files already exist.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

from batchai_quickstart.mnist import MnistError, prepare_mnist


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the two CTF files to")
    parser.add_argument("--mnist-dir", type=Path, help="folder holding the four MNIST IDX files (no download)")
    parser.add_argument("--mirror", action="append", metavar="URL",
                        help="base URL of an MNIST mirror; repeat for several (default: $MNIST_MIRROR or public ones)")
    parser.add_argument("--cache-dir", type=Path, help="where verified downloads are kept "
                                                       "(default: $MNIST_CACHE_DIR or ~/.cache/batchai-quickstart/mnist)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run the preparation; report failures as one ``error:`` line on stderr and exit status 2."""
    args = parse_args(argv)
    try:
        prepare_mnist(args.out, mnist_dir=args.mnist_dir, cache_dir=args.cache_dir, mirrors=args.mirror)
    except (MnistError, OSError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
