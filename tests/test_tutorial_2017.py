"""The 2017 tutorial as printed, through the emulator's HTTPS proxy (README "Run the 2017 tutorial as printed").

Its own SDK stack (tests/legacy_sdks.py's "2017" venv) runs tests/tutorial_2017_client.py, a subprocess whose
environment points it at the emulator with nothing but ``HTTPS_PROXY`` and ``REQUESTS_CA_BUNDLE`` from the
JSON line (the presets a machine may have, ``CURL_CA_BUNDLE``, ``NO_PROXY``, ``SSL_CERT_FILE``, are left out),
and the tutorial's settings (client id, secret, tenant, subscription, storage account) from the same line.
Also a 2018-03-01 client (azure-mgmt-batchai 1.0.1) signing in with ``ServicePrincipalCredentials(tenant=...)``,
and a wrong secret, which both credential classes of that era turn into their usual one-line exception.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from doc_blocks import code_block, run_shell_block
from legacy_sdks import STACKS, legacy_python

import emulator as emulator_package
from batchai_quickstart.mnist import prepare_mnist

SUBSET = ROOT / "tests" / "data" / "mnist-small"
CLIENT = ROOT / "tests" / "tutorial_2017_client.py"
#: The tutorial's command line has no --epochs, so ConvNet_MNIST.py trains its default 40 epochs: 7 minutes
#: measured on the 2,000-image subset (2.2% test error) on 2 busy cores, where one epoch checks the same path.
EXTRA_ARGS = "--epochs 1"
README_OUTPUT = re.compile(r"A run \(`tests/test_tutorial_2017.py`.*?\n```\n(.*?)```", re.S)


@pytest.fixture
def proxied(tmp_path):
    emu = emulator_package.start(tmp_path / "data", proxy=True)
    try:
        yield emu
    finally:
        emu.stop()


def proxy_env(info: dict, home, **values: str) -> dict:
    """Only what the tutorial's reader has: the two variables from the JSON line, and the settings."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
           "HTTPS_PROXY": info["https_proxy"], "REQUESTS_CA_BUNDLE": info["proxy_ca_bundle"]}
    env.update(values)
    return env


def tutorial_settings(info: dict, **changes: str) -> dict:
    settings = {"CLIENT_ID": info["client_id"], "CLIENT_SECRET": info["client_secret"], "TENANT_ID": info["tenant_id"],
                "SUBSCRIPTION_ID": info["subscription_id"], "STORAGE_ACCOUNT_NAME": info["account_name"],
                "STORAGE_ACCOUNT_KEY": info["account_key"]}
    settings.update(changes)
    return settings


def run(python: str, args: list, env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([python, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))


@pytest.fixture
def sample_dir(tmp_path):
    """The tutorial's three files: the MNIST text files (the committed subset) and ConvNet_MNIST.py."""
    folder = tmp_path / "sample"
    prepare_mnist(folder, mnist_dir=SUBSET, log=lambda *_: None)
    shutil.copy(ROOT / "samples" / "ConvNet_MNIST.py", folder / "ConvNet_MNIST.py")
    return folder


def test_the_2017_tutorial_through_the_proxy(proxied, sample_dir, tmp_path):
    python = legacy_python("2017")
    info = proxied.describe()
    env = proxy_env(info, tmp_path, SAMPLE_DIR=str(sample_dir), EXTRA_ARGS=EXTRA_ARGS, **tutorial_settings(info))
    done = run(python, [str(CLIENT)], env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    seen = json.loads(lines[-1])
    print("\n".join(lines[:-1]))  # shown with -s: the README's "real run" output

    assert seen["provider"] == "Registered"
    assert lines[0] == ("Cluster state: steady Target: 1; Allocated: 1; Idle: 1; Unusable: 0; Running: 0; "
                        "Preparing: 0")
    assert lines[1] == "Job state: succeeded" and seen["state"] == "succeeded"
    downloads = seen["downloads"]
    share_url = "https://{}.file.core.windows.net/batchaisample/".format(info["account_name"])
    assert {"stdout.txt", "stderr.txt", "ConvNet_MNIST.onnx"} <= set(downloads)
    for name, got in downloads.items():
        assert got["url"].startswith(share_url) and "sig=" in got["url"], got["url"]
        assert got["status"] == 200 and (got["bytes"] > 0 or name == "stdout.txt"), (name, got)  # stdout: empty
        assert ("{} {}".format(name, got["url"]) in lines) == ("/stdouterr/" in got["url"])
    assert "Finished Epoch[1 of 1]" in downloads["stderr.txt"]["text"]
    assert "Final Results" in downloads["stderr.txt"]["text"]
    assert seen["left"] == {"groups": [], "shares": []}


def test_the_readme_section_runs(sample_dir, tmp_path):
    """README "Run the 2017 tutorial as printed": its pip line is exactly the 2017 stack these tests install (in
    ``tests/legacy_sdks.py``'s venv, the one ``tutorial-2017`` stands for here); the second block runs as
    written, with the tutorial's credentials filled in from the JSON line as the README says, over the variables
    this machine presets; and the output the README shows is this run's, but for ids and signatures."""
    install = code_block("README.md", "Run the 2017 tutorial as printed", "sh", 0).split()
    assert install[:7] == ["python3", "-m", "venv", "tutorial-2017", "&&", "tutorial-2017/bin/pip", "install"]
    assert sorted(install[7:]) == sorted(STACKS["2017"])
    shell = code_block("README.md", "Run the 2017 tutorial as printed", "sh", 1)

    home = tmp_path / "home"
    home.mkdir()
    (home / ".venv").symlink_to(os.path.dirname(os.path.dirname(sys.executable)))  # the repository's venv
    (home / "tutorial-2017").symlink_to(os.path.dirname(os.path.dirname(legacy_python("2017"))))
    with emulator_package.start(home / ".azure-emulator") as first:  # the values the data directory keeps
        info = first.describe()
    script = CLIENT.read_text()
    for variable, value in tutorial_settings(info).items():  # the reader's copy: plain values
        script = script.replace('os.environ["{}"]'.format(variable), repr(value))
    assert "os.environ[\"CLIENT_ID\"]" not in script and repr(info["client_secret"]) in script
    (home / "tutorial.py").write_text(script)

    run = run_shell_block(shell, home, {"SAMPLE_DIR": str(sample_dir), "EXTRA_ARGS": EXTRA_ARGS})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    seen = json.loads(lines[-1])
    assert seen["state"] == "succeeded" and seen["left"] == {"groups": [], "shares": []}
    print("\n".join(lines[:-1]))  # shown with -s: the README's output

    shown = [line for line in README_OUTPUT.findall((ROOT / "README.md").read_text())[0].splitlines() if line]
    assert [line.split()[0] for line in shown] == [line.split()[0] for line in lines[:-1]]
    assert shown[:2] == lines[:2]


def test_a_wrong_secret_is_one_line(proxied, tmp_path):
    """msrestazure 0.4.34 (requests-oauthlib) and 0.6.4 (adal) both raise msrest's AuthenticationError from Azure
    AD's AADSTS7000215 answer, as they do against Azure: its first line says what is wrong, the lines after it are
    Azure AD's trace, correlation id and timestamp (msrestazure 0.4.34 passes the description on as it is; adal
quotes the whole answer on one line)."""
    info = proxied.describe()
    script = textwrap.dedent('''
        import os
        from azure.common.credentials import ServicePrincipalCredentials
        from msrest.exceptions import AuthenticationError
        try:
            if os.environ.get("TOKEN_URI"):
                ServicePrincipalCredentials(client_id=os.environ["CLIENT_ID"], secret=os.environ["CLIENT_SECRET"],
                                            token_uri=os.environ["TOKEN_URI"])
            else:
                ServicePrincipalCredentials(client_id=os.environ["CLIENT_ID"], secret=os.environ["CLIENT_SECRET"],
                                            tenant=os.environ["TENANT_ID"])
        except AuthenticationError as error:  # Azure AD's description: the AADSTS line, then trace lines
            print("error: could not sign in: {}".format(str(error).splitlines()[0]))
        else:
            print("signed in")
    ''')
    settings = tutorial_settings(info, CLIENT_SECRET="not-the-secret")
    for stack, extra in (("2017", {"TOKEN_URI": "https://login.microsoftonline.com/{}/oauth2/token".format(
            info["tenant_id"])}), ("2018-03", {})):
        done = run(legacy_python(stack), ["-c", script], proxy_env(info, tmp_path, **settings, **extra), timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        [line] = done.stdout.splitlines()
        assert line.startswith("error: could not sign in: ") and "AADSTS7000215: Invalid client secret" in line, \
            (stack, line)
        assert "not-the-secret" not in line


#: A 2018 script: azure-mgmt-batchai 1.0.1 (API 2018-03-01) signing in with the tenant, through the proxy.
FLOW_2018_03 = textwrap.dedent('''
    import json, os, time
    import requests
    from azure.common.credentials import ServicePrincipalCredentials
    from azure.mgmt.batchai import BatchAIManagementClient
    import azure.mgmt.batchai.models as models
    from azure.mgmt.resource import ResourceManagementClient

    credentials = ServicePrincipalCredentials(client_id=os.environ["CLIENT_ID"], secret=os.environ["CLIENT_SECRET"],
                                              tenant=os.environ["TENANT_ID"])
    subscription, group = os.environ["SUBSCRIPTION_ID"], "recipes2018rg"
    ResourceManagementClient(credentials, subscription).resource_groups.create_or_update(group, {"location": "eastus"})
    client = BatchAIManagementClient(credentials, subscription)
    share_url = "https://{}.file.core.windows.net/recipes".format(os.environ["STORAGE_ACCOUNT_NAME"])
    cluster = client.clusters.create(group, "nc6", models.ClusterCreateParameters(
        location="eastus", vm_size="STANDARD_NC6",
        user_account_settings=models.UserAccountSettings(admin_user_name="recipes", admin_user_password="Rec1pes-Pa55"),
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=1)),
        node_setup=models.NodeSetup(mount_volumes=models.MountVolumes(azure_file_shares=[
            models.AzureFileShareReference(account_name=os.environ["STORAGE_ACCOUNT_NAME"], azure_file_url=share_url,
                credentials=models.AzureStorageCredentialsInfo(account_key=os.environ["STORAGE_ACCOUNT_KEY"]),
                relative_mount_path="afs")])))).result()
    client.jobs.create(group, "hello", models.JobCreateParameters(
        location="eastus", cluster=models.ResourceId(id=cluster.id), node_count=1,
        std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/afs",
        custom_toolkit_settings=models.CustomToolkitSettings(command_line="echo hello from 2018"))).result()
    for _ in range(1800):
        state = client.jobs.get(group, "hello").execution_state.value
        if state in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    outputs = {f.name: f.download_url for f in client.jobs.list_output_files(
        group, "hello", models.JobsListOutputFilesOptions(outputdirectoryid="stdouterr"))}
    client.jobs.delete(group, "hello").result()
    client.clusters.delete(group, "nc6").result()
    print(json.dumps({"api": client.api_version, "state": state, "url": outputs["stdout.txt"],
                      "stdout": requests.get(outputs["stdout.txt"], timeout=60).text,
                      "left": [c.name for c in client.clusters.list()] + [j.name for j in client.jobs.list()]}))
''')


def test_a_2018_03_01_client_through_the_proxy(proxied, tmp_path):
    from azure.storage.fileshare import ShareServiceClient

    ShareServiceClient.from_connection_string(proxied.files_connection_string).create_share("recipes")
    info = proxied.describe()
    done = run(legacy_python("2018-03"), ["-c", FLOW_2018_03], proxy_env(info, tmp_path, **tutorial_settings(info)),
               timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert (seen["api"], seen["state"], seen["stdout"], seen["left"]) == ("2018-03-01", "succeeded",
                                                                         "hello from 2018\n", [])
    assert re.match(r"https://{}\.file\.core\.windows\.net/recipes/.+sig=".format(info["account_name"]), seen["url"])
