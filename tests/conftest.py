"""Shared fixtures: a real emulator and real Azure SDK clients pointed at it."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tests press Ctrl-C on the quickstarts they start. A shell starts its background commands with SIGINT
# ignored, and children inherit an ignored signal (a Python child then never raises KeyboardInterrupt);
# a handled one is reset at exec. So the quickstarts get Ctrl-C as a terminal gives it, however the
# suite was started.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# A wait in a test ends as soon as its condition holds, so only a failing test waits longer: timeouts are
# written for a quiet machine, and CI's two busy cores get PATIENCE times as long.
PATIENCE = 6

# Small LRO polling interval: the emulator's Retry-After is 0, which azure-core reads as absent (see emulator.Emulator).
POLL = 0.05


def processes_mentioning(text: str) -> list:
    """Live processes (not this one) whose command line or working directory mentions ``text``, as
    (pid, command line): leftover quickstarts and jobs."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path("/proc", pid, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink("/proc/{}/cwd".format(pid))
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if int(pid) != os.getpid() and (text in cmdline or text in cwd):
            found.append((pid, cmdline))
    return found


@pytest.fixture(autouse=True)
def no_run_left_behind(request):
    """After each test, end what it started in its tmp_path and left running (a quickstart or a job of a test
    that failed half-way), so that one failure cannot slow, and so fail, the tests after it. Tests that
    promise to leave nothing behind check that themselves, before this runs."""
    yield
    tmp_path = request.node.funcargs.get("tmp_path") if hasattr(request.node, "funcargs") else None
    if tmp_path is not None:
        for pid, _ in processes_mentioning(str(tmp_path)):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def emulator(tmp_path):
    import emulator as emulator_package

    emu = emulator_package.start(tmp_path / "emulator-data")
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def batchai_client(emulator):
    from azure.mgmt.batchai import BatchAI

    return BatchAI(emulator.credential(), emulator.subscription_id, base_url=emulator.arm_url,
                   connection_verify=emulator.ca_cert, polling_interval=POLL)


@pytest.fixture
def resource_client(emulator):
    from azure.mgmt.resource.resources import ResourceManagementClient

    return ResourceManagementClient(emulator.credential(), emulator.subscription_id, base_url=emulator.arm_url,
                                    connection_verify=emulator.ca_cert, polling_interval=POLL)


@pytest.fixture
def share_service(emulator):
    from azure.storage.fileshare import ShareServiceClient

    return ShareServiceClient.from_connection_string(emulator.files_connection_string)


@pytest.fixture
def blob_service(emulator):
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(emulator.blob_connection_string,
                                                    connection_verify=emulator.ca_cert)


@pytest.fixture
def container(blob_service):
    """A blob container named ``data``."""
    return blob_service.create_container("data")
