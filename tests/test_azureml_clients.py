"""The local target's client setup: the emulator as an azure-ai-ml cloud, and names under .localhost."""
from __future__ import annotations

import socket
from types import SimpleNamespace

from batchai_quickstart import localhost_names
from batchai_quickstart.azureml_clients import emulator_cloud


def test_emulator_cloud_has_every_key_azure_ai_ml_needs():
    emu = SimpleNamespace(arm_url="https://127.0.0.1:8443", blob_suffix="core.localhost:9443")
    cloud = emulator_cloud(emu)
    assert set(cloud) == {"azure_portal", "resource_manager", "active_directory", "aml_resource_id",
                          "storage_endpoint", "registry_discovery_endpoint"}
    assert cloud["resource_manager"] == "https://127.0.0.1:8443/"
    assert cloud["storage_endpoint"] == "core.localhost:9443"


def test_names_under_localhost_resolve_to_loopback_and_others_are_untouched(monkeypatch):
    asked = []

    def system_resolver(host, port, *args):
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (host, port))]

    monkeypatch.setattr(localhost_names, "_original_getaddrinfo", system_resolver)
    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)  # restored after the test
    localhost_names.resolve_localhost_names()
    socket.getaddrinfo("acct.blob.core.localhost", 443)
    socket.getaddrinfo(b"ACCT.BLOB.CORE.LOCALHOST.", 443)
    socket.getaddrinfo("example.com", 443)
    socket.getaddrinfo("localhost.example.com", 443)
    assert asked == ["127.0.0.1", "127.0.0.1", "example.com", "localhost.example.com"]


def test_a_cloud_name_stands_for_its_metadata_alone():
    """azure-ai-ml never replaces a cloud it has by name: an emulator started later on the same ARM port but
    another blob port must get a name of its own, or the SDK keeps the old blob endpoint (connection refused)."""
    from batchai_quickstart.azureml_clients import emulator_cloud_name

    first = {"resource_manager": "https://127.0.0.1:4000/", "storage_endpoint": "core.localhost:5000"}
    later = dict(first, storage_endpoint="core.localhost:5001")
    assert emulator_cloud_name(first) == emulator_cloud_name(dict(first))
    assert emulator_cloud_name(first) != emulator_cloud_name(later)
    assert emulator_cloud_name(first, "AzureMLEmulatorTest").startswith("AzureMLEmulatorTest-")
