"""Blob endpoint benchmark: the emulator beside Azurite and a page-cache copy, in one run.

A file of random bytes goes up through azure-storage-blob as one Put Blob
(``max_single_put_size`` above its size) and as 4 MiB blocks on 4 threads (Put Block + Put Block
List, the path azure-ai-ml takes for big files), and comes down as 4 MiB ranged GETs on 4
threads (``download_blob(max_concurrency=4)``). The same client code runs against

* the emulator's Blob endpoint (https), ``python -m emulator`` in its own process, as users run it;
* Azurite's Blob service (http, the npm package ``azurite``), also in its own process, when
  ``azurite-blob`` is on PATH (otherwise the comparison is skipped, and the output says so);
* ``shutil.copyfile`` of the same bytes on the same disk (the page cache): the machine's pace;
* a null server (``servers.py``: it drops what it receives and sends zeros, in Python like the
  emulator), over https and http: for uploads, the client's own ceiling on this machine, which no
  server can be measured above; for downloads, the cost of just moving the bytes.

Each round measures the copy, the emulator and Azurite one after the other, so that a busy
machine slows all three alike; figures are medians over the rounds, in MB/s, with the ratios the
goals are about: emulator / copy (goal >= 0.3) and emulator / Azurite (goal >= 2).

Usage: ``.venv/bin/python bench/blob_bench.py [--size-mib 64] [--rounds 3] [--no-azurite] [--smoke]``
(``--smoke``: 2 MiB in 512 KiB blocks, one round; it checks that the benchmark still runs).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import azurite_command, azurite_process, emulator_process, null_blob_process  # noqa: E402

MiB = 2 ** 20
COPY_GOAL, AZURITE_GOAL = 0.3, 2.0
OPERATIONS = ("Put Blob (one request)", "Put Block + Put Block List, 4 threads", "ranged download_blob, 4 threads")


class Target:
    """One server, driven by azure-storage-blob."""

    def __init__(self, name: str, connection_string: str, verify, source: Path, work: Path, block: int) -> None:
        self.name, self.source, self.work, self.block = name, source, work, block
        self.size = source.stat().st_size

        def client(**kwargs) -> BlobServiceClient:
            return BlobServiceClient.from_connection_string(connection_string, connection_verify=verify, **kwargs)

        client().create_container("bench")
        self.single = client(max_single_put_size=self.size + 1).get_blob_client("bench", "single.bin")
        self.blocks = client(max_single_put_size=block, max_block_size=block).get_blob_client("bench", "blocks.bin")
        self.reader = client(max_single_get_size=block, max_chunk_get_size=block).get_blob_client("bench",
                                                                                                 "blocks.bin")

    def run(self, operation: str) -> float:
        start = time.perf_counter()
        if operation == OPERATIONS[0]:
            with open(self.source, "rb") as data:
                self.single.upload_blob(data, overwrite=True)
        elif operation == OPERATIONS[1]:
            with open(self.source, "rb") as data:
                self.blocks.upload_blob(data, overwrite=True, max_concurrency=4)
        else:
            with open(self.work / "down-{}.bin".format(self.name), "wb") as out:
                self.reader.download_blob(max_concurrency=4).readinto(out)
        return time.perf_counter() - start

    def check(self) -> None:
        """The bytes that went up are the bytes that came down, and both uploads are whole."""
        if self.name.startswith("null"):
            return
        assert self.single.get_blob_properties().size == self.blocks.get_blob_properties().size == self.size
        if digest(self.work / "down-{}.bin".format(self.name)) != digest(self.source):
            raise AssertionError("{}: the downloaded bytes differ from the uploaded ones".format(self.name))


def digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(MiB), b""):
            hasher.update(piece)
    return hasher.hexdigest()


def rate(size: int, seconds: float) -> float:
    return size / MiB / seconds


def verdict(value: float, goal: float) -> str:
    return "{:.2f}x ({} >= {})".format(value, "meets" if value >= goal else "MISSES", goal)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=64, help="size of the file moved (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; figures are medians (default 3)")
    parser.add_argument("--no-azurite", action="store_true", help="skip the comparison with Azurite")
    parser.add_argument("--smoke", action="store_true", help="2 MiB in 512 KiB blocks, one round: does it run?")
    args = parser.parse_args(argv)
    size = 2 * MiB if args.smoke else args.size_mib * MiB
    block = 512 * 1024 if args.smoke else 4 * MiB
    rounds = 1 if args.smoke else args.rounds
    use_azurite = not args.no_azurite and azurite_command() is not None
    with tempfile.TemporaryDirectory(prefix="blob-bench-") as tmp:
        work = Path(tmp)
        source = work / "random.bin"
        with open(source, "wb") as f:
            for _ in range(size // MiB):
                f.write(os.urandom(MiB))
        from emulator.core.tls import ensure_certificate
        certificate = ensure_certificate(work / "null-tls")
        with emulator_process(work / "emulator") as emu, \
                null_blob_process(size, certificate) as null_https, null_blob_process(size) as null_http, \
                (azurite_process() if use_azurite else contextlib.nullcontext()) as az:
            targets = [Target("emulator", emu.blob_connection_string, emu.ca_cert, source, work, block),
                       Target("null https", null_https.blob_connection_string, str(certificate[0]), source, work,
                              block),
                       Target("null http", null_http.blob_connection_string, True, source, work, block)]
            if az is not None:
                targets.append(Target("Azurite", az.blob_connection_string, True, source, work, block))
            times = {(t.name, op): [] for t in targets for op in OPERATIONS}
            copies = []
            for _ in range(rounds):
                start = time.perf_counter()
                shutil.copyfile(source, work / "copy.bin")
                copies.append(time.perf_counter() - start)
                (work / "copy.bin").unlink()
                for operation in OPERATIONS:
                    for target in targets:
                        times[(target.name, operation)].append(target.run(operation))
            for target in targets:
                target.check()
            azurite_version = az.version if az is not None else None
    copy_rate = rate(size, statistics.median(copies))
    rates = {key: rate(size, statistics.median(values)) for key, values in times.items()}
    print("Blob endpoint, {} MiB of random bytes, {} round{} (medians), azure-storage-blob client".format(
        size // MiB, rounds, "s" if rounds > 1 else ""))
    print("  emulator: https, `python -m emulator` in its own process")
    if use_azurite:
        print("  Azurite {}: http, `azurite-blob` in its own process".format(azurite_version))
    else:
        print("  Azurite comparison skipped: {}".format(
            "--no-azurite" if args.no_azurite else "azurite-blob is not on PATH (npm install -g azurite)"))
    print("  null server: the same client against a server that only moves the bytes (https, http)")
    print("  {:40s} {:>9.1f} MB/s".format("shutil.copyfile, page cache (baseline)", copy_rate))
    for operation in OPERATIONS:
        emulator_rate = rates[("emulator", operation)]
        https, http = rates[("null https", operation)], rates[("null http", operation)]
        print("  {:40s} {:>9.1f} MB/s  emulator/copy {}".format(operation, emulator_rate,
                                                               verdict(emulator_rate / copy_rate, COPY_GOAL)))
        line = "  {:40s} null server https {:.1f} MB/s (emulator at {:.2f}x of it), http {:.1f} MB/s".format(
            "", https, emulator_rate / https, http)
        if use_azurite:
            azurite_rate = rates[("Azurite", operation)]
            line += "\n  {:40s} Azurite {:.1f} MB/s (at {:.2f}x of null http)  emulator/Azurite {}".format(
                "", azurite_rate, azurite_rate / http, verdict(emulator_rate / azurite_rate, AZURITE_GOAL))
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
