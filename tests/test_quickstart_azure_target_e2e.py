"""Both quickstarts with ``--target azure``, offline: the emulator with its proxy serves Azure's hostnames, and
the quickstarts' azure clients (azure-identity's ClientSecretCredential with the emulator's service principal,
stock endpoints) reach it through HTTPS_PROXY alone. Real training on the MNIST subset, one epoch."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doc_blocks import code_block, run_shell_block
from test_quickstart_e2e import ROOT, SUBSET

import emulator as emulator_package
from batchai_quickstart.emulator_config import write_config
from emulator.shellenv import EXPORTED, UNSET



def run_documented_block(tmp_path: Path) -> str:
    """The document's shell block, as written but for the MNIST subset and one epoch; returns its output."""
    block = code_block("docs/azure-target.md", "Offline, through the emulator's proxy", "sh")
    training = " --target azure --mnist-dir {} --epochs 1".format(SUBSET)
    assert block.count(" --target azure") == 2
    block = block.replace(" --target azure", training)
    (tmp_path / ".venv").symlink_to(os.path.dirname(os.path.dirname(sys.executable)))  # the repository's venv
    for name in ("quickstart.py", "quickstart_azureml.py"):
        (tmp_path / name).symlink_to(ROOT / name)
    run = run_shell_block(block, tmp_path, merged_output=True)
    assert run.returncode == 0, run.stdout[-5000:]
    return run.stdout


def start_when_free(data_dir: Path, timeout: float = 60):
    """The emulator on ``data_dir`` once the block's emulator, stopped by its ``kill``, has let it go."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return emulator_package.start(data_dir)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def assert_nothing_left(data_dir: Path) -> None:
    """No job process is alive, and the emulator holds no resource group, share or Azure ML workspace."""
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.storage.fileshare import ShareServiceClient

    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink("/proc/{}/cwd".format(pid))
        except OSError:
            continue
        assert not cwd.startswith(str(data_dir)), "a job process is left: {}".format(pid)
    with start_when_free(data_dir) as emu:
        resources = ResourceManagementClient(emu.credential(), emu.subscription_id, base_url=emu.arm_url,
                                             connection_verify=emu.ca_cert)
        assert [g.name for g in resources.resource_groups.list()] == []
        shares = ShareServiceClient.from_connection_string(emu.files_connection_string)
        assert [s.name for s in shares.list_shares()] == []
        assert emu.services["azureml"].backend.list_workspaces() == []


def test_the_documented_offline_run_of_both_quickstarts(tmp_path):
    output = run_documented_block(tmp_path)
    described = json.loads((tmp_path / ".azure-emulator.json").read_text().splitlines()[0])
    assert "Traceback" not in output and described["account_key"] not in output
    assert described["client_secret"] not in output
    batchai, azureml = output.split("Configuration: azure-offline.ini (target: azure)")[1:]
    # quickstart.py: the job ran and its files are listed on Azure Files' own hostname.
    lines = batchai.splitlines()
    assert "Job myjob succeeded with exit code 0" in lines, batchai
    assert re.search(r"^Finished Epoch\[1 of 1\]: \[Training\] loss = ", batchai, re.M)
    host = re.escape("https://{}.file.core.windows.net/batchaiquickstart/".format(described["account_name"]))
    for directory, name in (("stdouterr", "stderr.txt"), ("outputs/Models", "ConvNet_MNIST.onnx")):
        assert re.search(r"^  {} \(\d+ bytes\) {}[^ ]+/{}/{}\?[^ ]*sig=\.\.\.$".format(
            re.escape(name), host, re.escape(directory), re.escape(name)), batchai, re.M), batchai
    for deleted in ("job myjob", "cluster mycluster", "workspace myworkspace", "file share batchaiquickstart",
                    "resource group batchaiquickstartrg"):
        assert "Deleted " + deleted in lines
    # quickstart_azureml.py: the job completed, its files were downloaded, everything was deleted.
    lines = azureml.splitlines()
    assert re.search(r"^Job \w+ completed \(https://ml\.azure\.com/runs/", azureml, re.M), azureml
    assert re.search(r"^  named-outputs/model/ConvNet_MNIST\.onnx \(\d+ bytes\)$", azureml, re.M), azureml
    assert "Downloaded outputs/ConvNet_MNIST.onnx" in lines
    assert "Deleted workspace myamlworkspace" in lines and "Deleted resource group batchaiquickstartrg" in lines
    import onnx

    onnx.checker.check_model(onnx.load(str(tmp_path / "outputs" / "ConvNet_MNIST.onnx")))
    assert_nothing_left(tmp_path / ".azure-emulator")


@pytest.fixture(scope="module")
def proxied_emulator(tmp_path_factory):
    emu = emulator_package.start(tmp_path_factory.mktemp("proxied") / "data", proxy=True)
    try:
        yield emu
    finally:
        emu.stop()


def proxy_env(emu) -> dict:
    """This process's environment with the shell helper's settings, as `eval "$(... shellenv ...)"` leaves it."""
    env = {name: value for name, value in os.environ.items() if name not in UNSET + EXPORTED}
    env.update(HTTPS_PROXY=emu.https_proxy, https_proxy=emu.https_proxy, REQUESTS_CA_BUNDLE=emu.proxy_ca_bundle,
               SSL_CERT_FILE=emu.proxy_ca_bundle, PYTHONPATH=str(ROOT))
    return env


@pytest.mark.parametrize("script", ["quickstart.py", "quickstart_azureml.py"])
@pytest.mark.parametrize("key, value, names", [
    ("secret", "not-the-secret", "[azure] secret"),
    ("client_id", "00000000-0000-0000-0000-000000000000", "[azure] client_id"),
    ("token_uri", "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/oauth2/token",
     "[azure] token_uri"),
])
def test_a_refused_sign_in_is_one_line_naming_the_setting(proxied_emulator, tmp_path, script, key, value, names):
    config = write_config(proxied_emulator.describe(), tmp_path / "config.ini",
                          {("quickstart", "target"): "azure", ("azure", key): value,
                           ("resources", "admin_user_password"): "Not-a-real-one-1",
                           ("local", "data_dir"): str(tmp_path / "unused")})
    result = subprocess.run([sys.executable, str(ROOT / script), "--config", str(config), "--mnist-dir", str(SUBSET)],
                            cwd=str(tmp_path), env=proxy_env(proxied_emulator), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: could not sign in to Azure: "), result.stderr
    assert names in errors[0]
    assert "Traceback" not in result.stderr and "Created" not in result.stdout
    assert value not in errors[0] or key != "secret"
