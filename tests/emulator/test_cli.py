"""``python -m emulator --data-dir D``: the JSON line it prints, the SDKs working against it with
that token and certificate, a clean stop on SIGTERM, and a second start keeping key and token."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import types

import pytest
from azure.mgmt.batchai import models

from conftest import ROOT
from doc_blocks import code_block
from test_jobs import RG, WS, make_share, sdk_clients

DOCUMENTED_KEYS = {"arm_url", "files_url", "blob_url", "account_name", "account_key", "subscription_id", "ca_cert",
                   "files_connection_string", "blob_connection_string", "token", "data_dir",
                   "aad_url", "tenant_id", "client_id", "client_secret", "https_proxy", "proxy_ca_bundle"}


def launch(data_dir, log_path) -> tuple:
    """Start the emulator as docs/emulator.md says (its data directory in ``data_dir``); returns (process, the
    first stdout line as JSON)."""
    documented = code_block("docs/emulator.md", "Running it on its own", "sh").split()
    assert documented == [".venv/bin/python", "-m", "emulator", "--data-dir", "/tmp/emu"], documented
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable] + documented[1:-1] + [str(data_dir)], cwd=str(ROOT),
                                   stdout=subprocess.PIPE, stderr=log, text=True)
    line = process.stdout.readline()
    if not line:
        process.kill()
        pytest.fail("the emulator printed nothing; its log:\n" + open(log_path).read())
    return process, json.loads(line)


def stop(process) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_cli_serves_stops_cleanly_and_keeps_its_identity(tmp_path):
    data_dir, log_path = tmp_path / "data", tmp_path / "emulator.log"
    process, info = launch(data_dir, log_path)
    try:
        assert set(info) == DOCUMENTED_KEYS
        assert info["arm_url"].startswith("https://127.0.0.1:") and info["files_url"].startswith("http://127.0.0.1:")
        assert info["data_dir"] == str(data_dir.resolve())
        batchai_client, resource_client, share_service = sdk_clients(types.SimpleNamespace(**info))
        resource_client.resource_groups.create_or_update(RG, {"location": "eastus"})
        batchai_client.workspaces.begin_create(RG, WS, models.WorkspaceCreateParameters(location="eastus")).result()
        make_share(share_service).get_file_client("hello.txt").upload_file(b"hello")
    finally:
        code = stop(process)
    assert code == 0

    process, again = launch(data_dir, log_path)
    try:
        for key in ("account_name", "account_key", "token", "subscription_id", "ca_cert", "tenant_id", "client_id",
                    "client_secret"):
            assert again[key] == info[key], key
        batchai_client, resource_client, share_service = sdk_clients(types.SimpleNamespace(**again))
        assert batchai_client.workspaces.get(RG, WS).provisioning_state == "succeeded"
        share = share_service.get_share_client("batchaiquickstart")
        assert share.get_file_client("hello.txt").download_file().readall() == b"hello"
    finally:
        assert stop(process) == 0
