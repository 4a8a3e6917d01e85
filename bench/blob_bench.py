"""Blob endpoint benchmark: upload and download throughput through azure-storage-blob over https.

A 64 MiB random file goes up as one Put Blob (``max_single_put_size`` above its size), as 4 MiB
blocks with ``max_concurrency=4`` (Put Block + Put Block List, the path azure-ai-ml takes for big
files), and comes down with ``download_blob(max_concurrency=4)`` (ranged GETs). Each is compared
with ``shutil.copyfile`` of the same bytes on the same disk, measured in the same run: MB/s (median
of 3 runs) and the ratio to the copy.

Usage: ``.venv/bin/python bench/blob_bench.py [--size-mib 64]``
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

import emulator

REPEATS = 3
MiB = 2 ** 20


def timed(action, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=64)
    args = parser.parse_args(argv)
    size = args.size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="blob-bench-") as tmp:
        work = Path(tmp)
        source = work / "random.bin"
        with open(source, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(MiB))
        copy_seconds = timed(lambda: shutil.copyfile(source, work / "copy.bin"))
        (work / "copy.bin").unlink()
        with emulator.start(work / "emu") as emu:
            def client(**kwargs) -> BlobServiceClient:
                return BlobServiceClient.from_connection_string(emu.blob_connection_string,
                                                                connection_verify=emu.ca_cert, **kwargs)

            client().create_container("bench")
            single = client(max_single_put_size=size + 1).get_blob_client("bench", "single.bin")
            blocks = client(max_single_put_size=4 * MiB, max_block_size=4 * MiB).get_blob_client("bench", "blocks.bin")

            def upload(blob, **kwargs):
                def once():
                    with open(source, "rb") as data:
                        blob.upload_blob(data, overwrite=True, **kwargs)
                return once

            results = [("Put Blob (one request)", timed(upload(single))),
                       ("Put Block x{} + Put Block List, 4 threads".format(size // (4 * MiB)),
                        timed(upload(blocks, max_concurrency=4)))]
            assert single.get_blob_properties().size == blocks.get_blob_properties().size == size
            target = work / "down.bin"

            def download():
                with open(target, "wb") as out:
                    client().get_blob_client("bench", "blocks.bin").download_blob(max_concurrency=4).readinto(out)

            results.append(("download_blob, 4 threads", timed(download)))
            assert target.stat().st_size == size
    copy_rate = size / MiB / copy_seconds
    print("Blob endpoint over https, {} MiB of random bytes (median of {} runs each)".format(args.size_mib, REPEATS))
    print("  {:42s} {:8.1f} MB/s ({:.2f} s)".format("shutil.copyfile on disk (baseline)", copy_rate, copy_seconds))
    for label, seconds in results:
        rate = size / MiB / seconds
        print("  {:42s} {:8.1f} MB/s ({:.2f} s)  ratio {:.2f}".format(label, rate, seconds, rate / copy_rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
