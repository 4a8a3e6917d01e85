#!/usr/bin/env python3
"""The quickstart's overhead: the local end-to-end run against running the sample directly.

Both train ConvNet_MNIST.py on the same data for the same epochs, in this run. The end-to-end
run adds the emulator, the upload, the cluster, the job and the monitoring; the goal is an
overhead of at most 15 s or 1.15x, whichever is larger.

Usage: python bench/quickstart_bench.py [--mnist-dir DIR] [--epochs N]
"""
from __future__ import annotations

import argparse
import configparser
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command, cwd) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    default_mnist = ROOT.parent / "shared" / "data" / "mnist"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", type=Path,
                        default=default_mnist if default_mnist.is_dir() else ROOT / "tests" / "data" / "mnist-small")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    from batchai_quickstart.mnist import prepare_mnist

    with tempfile.TemporaryDirectory(prefix="quickstart-bench-") as tmp:
        work = Path(tmp)
        # The data conversion is done once, before both runs: the quickstart finds it prepared.
        data = work / "data" / "mnist-cntk"
        prepare_mnist(data, mnist_dir=args.mnist_dir, log=lambda *a, **k: None)
        config = configparser.ConfigParser(interpolation=None)
        config.read(ROOT / "config.example.ini")
        config.set("local", "data_dir", str(work / "emulator-data"))
        with open(work / "config.ini", "w") as f:
            config.write(f)

        direct = timed([sys.executable, str(ROOT / "samples" / "ConvNet_MNIST.py"), str(data), str(work / "models"),
                        "--epochs", str(args.epochs)], work)
        end_to_end = timed([sys.executable, str(ROOT / "quickstart.py"), "--config", str(work / "config.ini"),
                            "--mnist-dir", str(args.mnist_dir), "--epochs", str(args.epochs)], work)
    overhead = end_to_end - direct
    allowed = max(15.0, 0.15 * direct)
    print("data: {}  epochs: {}".format(args.mnist_dir, args.epochs))
    print("sample run directly:     {:8.2f} s".format(direct))
    print("quickstart end to end:   {:8.2f} s".format(end_to_end))
    print("overhead:                {:8.2f} s  ratio {:.3f}x  (goal: <= {:.1f} s)  {}".format(
        overhead, end_to_end / direct, allowed, "OK" if overhead <= allowed else "OVER"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
