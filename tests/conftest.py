"""Shared fixtures: a real emulator and real Azure SDK clients pointed at it."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Small LRO polling interval: the emulator's Retry-After is 0, which azure-core reads as absent (see emulator.Emulator).
POLL = 0.05


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
