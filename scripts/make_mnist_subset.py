#!/usr/bin/env python3
"""Write the first N train and test images/labels of MNIST as gzipped IDX files with the standard names.

Used to make the small committed test set:

    python scripts/make_mnist_subset.py --mnist-dir ../shared/data/mnist --out tests/data/mnist-small \\
        --train 2000 --test 500

Output is reproducible: the gzip header carries no file name and mtime 0.
"""
from __future__ import annotations

import argparse
import gzip
import struct
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

from batchai_quickstart import mnist


def write_gzipped(path: Path, payload: bytes) -> None:
    """Write ``payload`` gzipped, with a fixed header (no name, mtime 0) so reruns give identical bytes."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(payload)


def idx_images_bytes(images) -> bytes:
    """Serialise ``(n, 784)`` uint8 images as an IDX3 file."""
    header = struct.pack(">IIII", mnist.IMAGE_MAGIC, len(images), mnist.IMAGE_SIDE, mnist.IMAGE_SIDE)
    return header + images.tobytes()


def idx_labels_bytes(labels) -> bytes:
    """Serialise ``(n,)`` uint8 labels as an IDX1 file."""
    return struct.pack(">II", mnist.LABEL_MAGIC, len(labels)) + labels.tobytes()


def write_subset(mnist_dir: Path, out_dir: Path, counts: dict) -> None:
    """Write the first ``counts[split]`` items of each split from ``mnist_dir`` into ``out_dir``."""
    files, missing = mnist.find_local_mnist_files(mnist_dir)
    if missing:
        raise mnist.MnistDataError(f"{mnist_dir}: lacks {', '.join(missing)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, images_name, labels_name in (("train", mnist.TRAIN_IMAGES, mnist.TRAIN_LABELS),
                                            ("test", mnist.TEST_IMAGES, mnist.TEST_LABELS)):
        images, labels = mnist.load_split(files[images_name], files[labels_name])
        count = counts[split]
        if count > len(images):
            raise ValueError(f"--{split} {count} exceeds the {len(images)} {split} images available")
        write_gzipped(out_dir / images_name, idx_images_bytes(images[:count]))
        write_gzipped(out_dir / labels_name, idx_labels_bytes(labels[:count]))
        print(f"{split}: wrote {count} images and labels to {out_dir}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", type=Path, required=True, help="folder with the four original MNIST files")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the subset to")
    parser.add_argument("--train", type=int, default=2000, help="number of training images (default 2000)")
    parser.add_argument("--test", type=int, default=500, help="number of test images (default 500)")
    args = parser.parse_args(argv)
    if args.train < 1 or args.test < 1:
        parser.error("--train and --test must be at least 1")
    try:
        write_subset(args.mnist_dir, args.out, {"train": args.train, "test": args.test})
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
