"""The servers the storage benchmarks measure, each in its own process as a user runs it.

``emulator_process`` runs ``python -m emulator`` (so that the benchmark's SDK client and the
emulator do not share one interpreter lock); ``azurite_process`` runs Azurite's Blob service
(``azurite-blob``, npm package ``azurite``) when it is on PATH. Both stop when the block ends.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import types
from pathlib import Path
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parents[1]
#: Azurite's documented development account (a well-known, public key).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT if os.name == "posix" else signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def emulator_process(data_dir: Path) -> Iterator[types.SimpleNamespace]:
    """The emulator serving ``data_dir``; yields what it prints (``blob_url``, ``ca_cert``, ...)
    plus ``credential()``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen([sys.executable, "-m", "emulator", "--data-dir", str(data_dir)], cwd=str(ROOT),
                               env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the emulator did not start (exit status {})".format(process.wait()))
        info = types.SimpleNamespace(**json.loads(line))
        from emulator.core.bearer import EmulatorCredential
        info.credential = lambda: EmulatorCredential(info.token)
        yield info
    finally:
        _stop(process)


def azurite_command() -> Optional[str]:
    return shutil.which("azurite-blob")


@contextlib.contextmanager
def azurite_process() -> Iterator[types.SimpleNamespace]:
    """Azurite's Blob service over http on a free port, data in a temporary directory; yields
    ``blob_connection_string`` and ``version``."""
    command = azurite_command()
    if command is None:
        raise FileNotFoundError("azurite-blob is not on PATH (npm install -g azurite)")
    version = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="azurite-bench-") as location:
        # --skipApiVersionCheck: the SDK may speak a newer x-ms-version than this Azurite knows.
        process = subprocess.Popen([command, "--location", location, "--blobHost", "127.0.0.1", "--blobPort", "0",
                                    "--silent", "--skipApiVersionCheck", "--disableTelemetry", "--loose"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            port = None
            for line in process.stdout:
                found = re.search(r"listens on https?://127\.0\.0\.1:(\d+)", line)
                if found:
                    port = int(found.group(1))
                    break
            if port is None:
                raise RuntimeError("Azurite did not start (exit status {})".format(process.wait()))
            _drain_output(process)
            url = "http://127.0.0.1:{}/{}".format(port, AZURITE_ACCOUNT)
            yield types.SimpleNamespace(
                version=version, blob_url=url,
                blob_connection_string="DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={}"
                .format(AZURITE_ACCOUNT, AZURITE_KEY, url))
        finally:
            _stop(process)


def _drain_output(process: subprocess.Popen) -> None:
    """Keep reading the server's output so that it never blocks on a full pipe."""
    def drain() -> None:
        for _ in process.stdout:
            pass

    threading.Thread(target=drain, daemon=True).start()
