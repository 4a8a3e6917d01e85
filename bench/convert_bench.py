#!/usr/bin/env python3
"""Benchmark the MNIST -> CNTK text converters: the installer's per-row loop vs the vectorised one.

The reference (CNTK's ``mnist_utils.savetxt`` loop, numpy ``astype(str)`` per row), a leaner ``str(int(x))`` loop
and the fast converter run on the same slice of the training set (10000 rows by default: the loops are slow); the
outputs are compared byte for byte, then the fast converter also converts the full train and test sets.
Exits 1 if the outputs differ or the fast converter is under 10x faster than either loop.

    python bench/convert_bench.py [--mnist-dir ../shared/data/mnist] [--rows 10000] [--smoke]

--smoke converts 200 rows of the small MNIST subset in tests/data: it checks that the benchmark runs and that
the outputs agree, not the speed goal.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]

from batchai_quickstart import mnist

SPEEDUP_GOAL = 10.0


def timed(action) -> float:
    """Run ``action()`` once and return its wall-clock seconds."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def report(label: str, rows: int, seconds: float, out_path: Path) -> None:
    """Print one result line: seconds, rows/s and output size."""
    size_mb = out_path.stat().st_size / 1e6
    print(f"  {label:<34} {rows:>6} rows  {seconds:8.3f} s  {rows / seconds:>10,.0f} rows/s  {size_mb:7.1f} MB")


def str_int_loop_savetxt(path: Path, images, labels) -> None:
    """A leaner per-row loop (``str(int(x))`` per pixel instead of numpy ``astype(str)``): a second, faster baseline."""
    one_hot_rows = [" ".join(str(int(v)) for v in row) for row in np.eye(mnist.NUM_CLASSES, dtype=int)]
    with open(path, "w", newline="\n") as f:
        for pixels, label in zip(images, labels):
            f.write("|labels {} |features {}\n".format(one_hot_rows[label], " ".join(str(int(x)) for x in pixels)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "mnist",
                        help="folder with the four MNIST files (default: ../shared/data/mnist)")
    parser.add_argument("--rows", type=int, default=10000, help="rows of the training set for the head-to-head")
    parser.add_argument("--smoke", action="store_true", help="200 rows of the small subset; the goal is not judged")
    args = parser.parse_args(argv)
    if args.smoke:
        args.mnist_dir, args.rows = REPO_ROOT / "tests" / "data" / "mnist-small", 200

    files, missing = mnist.find_local_mnist_files(args.mnist_dir)
    if missing:
        print(f"error: {args.mnist_dir} lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    train_images, train_labels = mnist.load_split(files[mnist.TRAIN_IMAGES], files[mnist.TRAIN_LABELS])
    test_images, test_labels = mnist.load_split(files[mnist.TEST_IMAGES], files[mnist.TEST_LABELS])
    rows = min(args.rows, len(train_images))
    images, labels = train_images[:rows], train_labels[:rows]

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print(f"Same slice: first {rows} training images from {args.mnist_dir}")
        ref_s = timed(lambda: mnist.reference_savetxt(tmp / "ref.txt", images, labels))
        report("reference (installer per-row loop)", rows, ref_s, tmp / "ref.txt")
        lean_s = timed(lambda: str_int_loop_savetxt(tmp / "lean.txt", images, labels))
        report("per-row loop, str(int(x)) variant", rows, lean_s, tmp / "lean.txt")
        fast_s = timed(lambda: mnist.write_ctf(tmp / "fast.txt", images, labels))
        report("fast (vectorised)", rows, fast_s, tmp / "fast.txt")
        expected = (tmp / "ref.txt").read_bytes()
        identical = (tmp / "fast.txt").read_bytes() == expected and (tmp / "lean.txt").read_bytes() == expected
        speedup, lean_speedup = ref_s / fast_s, lean_s / fast_s

        print("Full sets, fast converter:")
        for label, split_images, split_labels, name in (
                ("train", train_images, train_labels, mnist.TRAIN_CTF_NAME),
                ("test", test_images, test_labels, mnist.TEST_CTF_NAME)):
            seconds = timed(lambda: mnist.write_ctf(tmp / name, split_images, split_labels))
            report(f"fast {name}", len(split_images), seconds, tmp / name)

    print(f"Outputs byte-identical on the slice (all three): {'yes' if identical else 'NO'}")
    for name, ratio in (("installer loop", speedup), ("str(int(x)) loop", lean_speedup)):
        verdict = "meets" if ratio >= SPEEDUP_GOAL else "MISSES"
        print(f"Speedup vs {name}: {ratio:.1f}x ({verdict} the >= {SPEEDUP_GOAL:.0f}x goal)")
    return 0 if identical and (args.smoke or min(speedup, lean_speedup) >= SPEEDUP_GOAL) else 1


if __name__ == "__main__":
    sys.exit(main())
