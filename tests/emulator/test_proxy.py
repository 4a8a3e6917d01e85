"""The HTTPS proxy (``start(proxy=True)``): unmodified SDKs on Azure's own hostnames reach the emulator through
``HTTPS_PROXY`` and the CA bundle, every URL handed out names the host the client used, other hosts are
refused and nothing connects out, the CA's name constraints hold in Python's ssl, and a silent client stalls
no one."""
from __future__ import annotations

import http.client
import ipaddress
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading

import pytest
import requests
from azure.mgmt.batchai import models
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import POLL, ROOT
from doc_blocks import code_block, run_shell_block
from test_jobs import EXP, RG, SHARE, WS, wait_for, wait_for_state

import emulator as emulator_package
from emulator.core.proxy_ca import PERMITTED_NAMES, ProxyCA

ARM = "https://management.azure.com"


@pytest.fixture
def proxied(tmp_path, monkeypatch):
    """An emulator with its proxy, and this process's clients pointed at it as the shell helper does."""
    emu = emulator_package.start(tmp_path / "data", proxy=True)
    try:
        for name in ("CURL_CA_BUNDLE", "NO_PROXY", "no_proxy", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", emu.https_proxy)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.proxy_ca_bundle)
        yield emu
    finally:
        emu.stop()


def connection_string(emu) -> str:
    """What the Azure portal shows for a storage account: no endpoint, only the suffix."""
    return "DefaultEndpointsProtocol=https;AccountName={};AccountKey={};EndpointSuffix=core.windows.net".format(
        emu.account_name, emu.account_key)


def auth(emu) -> dict:
    return {"Authorization": "Bearer " + emu.token}


def connect(emu, target: str) -> bytes:
    """A bare CONNECT to the proxy; the first line of its answer."""
    with socket.create_connection(("127.0.0.1", int(emu.https_proxy.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n".format(target).encode())
        return sock.recv(4096).split(b"\r\n", 1)[0]


# ---- real clients through the proxy ------------------------------------------------------------------

def test_resource_groups_on_management_azure_com(proxied):
    from azure.mgmt.resource.resources import ResourceManagementClient

    client = ResourceManagementClient(proxied.credential(), proxied.subscription_id, polling_interval=POLL)
    group = client.resource_groups.create_or_update(RG, {"location": "eastus"})
    assert group.id == "/subscriptions/{}/resourceGroups/{}".format(proxied.subscription_id, RG)
    assert client.resource_groups.check_existence(RG)
    client.resource_groups.create_or_update("other", {"location": "eastus"})
    response = requests.delete("{}/subscriptions/{}/resourcegroups/other?api-version=2021-04-01".format(
        ARM, proxied.subscription_id), headers=auth(proxied), timeout=10)
    assert response.status_code == 202 and response.headers["Retry-After"] == "0"
    assert response.headers["Location"].startswith(ARM + "/subscriptions/")  # the host the client used
    client.resource_groups.begin_delete(RG).result()  # follows that Location back through the proxy
    assert not client.resource_groups.check_existence(RG)


def test_share_and_blob_on_core_windows_net(proxied):
    from azure.storage.blob import BlobServiceClient
    from azure.storage.fileshare import ShareServiceClient

    shares = ShareServiceClient.from_connection_string(connection_string(proxied))
    assert shares.url.startswith("https://{}.file.core.windows.net".format(proxied.account_name))
    share = shares.create_share("data")
    share.create_directory("d")
    share.get_file_client("d/hello.txt").upload_file(b"hello through the proxy")
    assert share.get_file_client("d/hello.txt").download_file().readall() == b"hello through the proxy"
    bodies = []
    listed = shares.list_shares(raw_response_hook=lambda r: bodies.append(r.http_response.text()))
    assert [s.name for s in listed] == ["data"]
    assert 'ServiceEndpoint="https://{}.file.core.windows.net/"'.format(proxied.account_name) in bodies[0]

    blobs = BlobServiceClient.from_connection_string(connection_string(proxied))
    container = blobs.create_container("box")
    container.upload_blob("x.txt", b"blob through the proxy")
    assert container.download_blob("x.txt").readall() == b"blob through the proxy"
    assert proxied.services["blob"].backend.get_container("box")  # the same backend as loopback


def test_batchai_job_output_urls_name_the_azure_file_host(proxied):
    from azure.mgmt.batchai import BatchAI
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.storage.fileshare import ShareServiceClient

    credential = proxied.credential()
    ResourceManagementClient(credential, proxied.subscription_id).resource_groups.create_or_update(
        RG, {"location": "eastus"})
    ShareServiceClient.from_connection_string(connection_string(proxied)).create_share(SHARE)
    batchai = BatchAI(credential, proxied.subscription_id, polling_interval=POLL)
    batchai.workspaces.begin_create(RG, WS, models.WorkspaceCreateParameters(location="eastus")).result()
    batchai.experiments.begin_create(RG, WS, EXP).result()
    share_url = "https://{}.file.core.windows.net/{}".format(proxied.account_name, SHARE)
    cluster = batchai.clusters.begin_create(RG, WS, "cluster", models.ClusterCreateParameters(
        vm_size="STANDARD_NC6", scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(
            target_node_count=1)),
        user_account_settings=models.UserAccountSettings(admin_user_name="demo", admin_user_password="Pa55word!x"),
        node_setup=models.NodeSetup(mount_volumes=models.MountVolumes(azure_file_shares=[
            models.AzureFileShareReference(account_name=proxied.account_name, azure_file_url=share_url,
                                           relative_mount_path="afs",
                                           credentials=models.AzureStorageCredentialsInfo(
                                               account_key=proxied.account_key))])))).result()
    batchai.jobs.begin_create(RG, WS, EXP, "hello", models.JobCreateParameters(
        cluster=models.ResourceId(id=cluster.id), node_count=1, std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/afs",
        custom_toolkit_settings=models.CustomToolkitSettings(command_line="echo hello from the job"))).result()
    assert wait_for_state(batchai, "hello", timeout=60).execution_state == "succeeded"

    files = {f.name: f for f in batchai.jobs.list_output_files(
        RG, WS, EXP, "hello", models.JobsListOutputFilesOptions(outputdirectoryid="stdouterr"))}
    url = files["stdout.txt"].download_url
    assert url.startswith(share_url + "/") and "sig=" in url
    download = requests.get(url, timeout=10)  # a SAS URL: no credentials, through the proxy
    assert download.status_code == 200 and download.text == "hello from the job\n"

    path = "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.BatchAI/workspaces/{}/experiments/{}/jobs/{}".format(
        proxied.subscription_id, RG, WS, EXP, "hello")
    deleted = requests.delete(ARM + path + "?api-version=2018-05-01", headers=auth(proxied), timeout=10)
    assert deleted.status_code == 202 and deleted.headers["Retry-After"] == "0"
    for header in ("Azure-AsyncOperation", "Location"):
        assert deleted.headers[header].startswith(ARM + "/subscriptions/")
    status = requests.get(deleted.headers["Azure-AsyncOperation"], headers=auth(proxied), timeout=10).json()
    assert status["id"].startswith(ARM + "/")


def test_azure_ml_hosts_and_urls(proxied, monkeypatch, tmp_path, caplog):
    from azure.ai.ml import MLClient, command
    from azure.ai.ml.entities import AmlCompute, Workspace
    from azure.mgmt.resource.resources import ResourceManagementClient

    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")  # MLClient sets it; restored afterwards
    caplog.set_level("DEBUG", logger="emulator.proxy")
    ResourceManagementClient(proxied.credential(), proxied.subscription_id).resource_groups.create_or_update(
        RG, {"location": "westeurope"})
    ml = MLClient(proxied.credential(), proxied.subscription_id, RG, "mlws", enable_telemetry=False,
                  show_progress=False, polling_interval=POLL)  # Azure's own cloud: no endpoints given
    ml.workspaces.begin_create(Workspace(name="mlws", location="westeurope")).result()
    workspace = ml.workspaces.get("mlws")
    assert workspace.discovery_url == "https://westeurope.api.azureml.ms/discovery"
    assert workspace.mlflow_tracking_uri.startswith("azureml://westeurope.api.azureml.ms/mlflow/v1.0/")
    discovery = requests.get(workspace.discovery_url, timeout=10).json()
    assert discovery["history"] == "https://westeurope.api.azureml.ms"
    default = ml.datastores.get_default()
    assert default.endpoint == "core.windows.net" and default.account_name == proxied.account_name

    # A job: its code goes up to <account>.blob.core.windows.net, its outputs come back through the run
    # history on <region>.api.azureml.ms and the blob host again.
    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1)).result()
    code = tmp_path / "code"
    code.mkdir()
    (code / "job.py").write_text("import os\nos.makedirs('outputs', exist_ok=True)\n"
                                 "open('outputs/hello.txt', 'w').write('hello')\n")
    job = ml.jobs.create_or_update(command(code=str(code), command="python job.py", compute="cpu",
                                           environment="AzureML-acpt-pytorch-2.8-cuda12.6@latest"))
    wait_for(lambda: ml.jobs.get(job.name).status in ("Completed", "Failed"), timeout=120)
    assert ml.jobs.get(job.name).status == "Completed"
    ml.jobs.download(job.name, download_path=str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "artifacts" / "outputs" / "hello.txt").read_text() == "hello"
    tunnels = {r.args[0] for r in caplog.records if r.getMessage().startswith("proxy tunnel to ")}
    assert tunnels == {"management.azure.com", "westeurope.api.azureml.ms",
                       "{}.blob.core.windows.net".format(proxied.account_name)}


def test_loopback_endpoints_through_the_proxy_keep_their_urls(proxied):
    """A process with HTTPS_PROXY sends https://127.0.0.1 through the proxy too; the bundle trusts it."""
    groups = requests.get("{}/subscriptions/{}/resourcegroups?api-version=2021-04-01".format(
        proxied.arm_url, proxied.subscription_id), headers=auth(proxied), timeout=10)
    assert groups.status_code == 200 and groups.json() == {"value": []}
    requests.put("{}/subscriptions/{}/resourcegroups/{}?api-version=2021-04-01".format(
        proxied.arm_url, proxied.subscription_id, RG), json={"location": "eastus"}, headers=auth(proxied), timeout=10)
    deleted = requests.delete("{}/subscriptions/{}/resourcegroups/{}?api-version=2021-04-01".format(
        proxied.arm_url, proxied.subscription_id, RG), headers=auth(proxied), timeout=10)
    assert deleted.headers["Location"].startswith(proxied.arm_url + "/")  # direct: loopback URLs, as before


def test_a_tunnel_is_kept_alive_across_requests(proxied):
    context = ssl.create_default_context(cafile=proxied.proxy_ca_bundle)
    conn = http.client.HTTPSConnection("127.0.0.1", int(proxied.https_proxy.rsplit(":", 1)[1]), context=context,
                                       timeout=10)
    conn.set_tunnel("management.azure.com", 443)
    path = "/subscriptions/{}/resourcegroups?api-version=2021-04-01".format(proxied.subscription_id)
    sockets = []
    for body in (b"", b"{}" * 1000):  # the second body is left unread by a 401: drained before the next request
        conn.request("GET", path, body=body, headers=auth(proxied) if not body else {})
        response = conn.getresponse()
        response.read()
        sockets.append(conn.sock)
    conn.request("GET", path, headers=auth(proxied))
    assert conn.getresponse().status == 200 and conn.sock is sockets[0] is sockets[1]
    conn.close()


# ---- refusals and certificates ------------------------------------------------------------------------

def test_other_hosts_are_refused_and_nothing_connects_out(proxied, caplog):
    connected, recording = [], [True]

    def audit(event, args):
        if recording and event == "socket.connect" and isinstance(args[1], tuple):
            connected.append(args[1][0])

    sys.addaudithook(audit)  # hooks stay for the process; this one records during this test only
    with caplog.at_level("WARNING", logger="emulator.proxy"):
        for target in ("www.example.com:443", "example.blob.core.windows.net.evil.com:443", "management.azure.com:8443",
                       "10.0.0.1:443", "127.0.0.1:1", "dc.services.visualstudio.com:443"):
            assert connect(proxied, target) == b"HTTP/1.1 403 Forbidden", target
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 6 and "www.example.com:443" in refusals[0].getMessage()
    assert connected and all(ipaddress.ip_address(host).is_loopback for host in connected)
    with pytest.raises(requests.exceptions.ProxyError):
        requests.get("https://www.example.com/", timeout=10)
    recording.clear()


def test_the_ca_is_name_constrained_and_its_key_private(proxied):
    directory = proxied.data_dir / "tls" / "proxy"
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    assert {n.value for n in constraints.permitted_subtrees} == set(PERMITTED_NAMES)
    assert {str(n.value) for n in constraints.excluded_subtrees} == {"0.0.0.0/0", "::/0"}
    assert stat.S_IMODE(os.stat(directory / "ca-key.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700

    leaf = x509.load_pem_x509_certificate(_served_leaf(proxied, "acct.blob.core.windows.net"))
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["*.blob.core.windows.net"]
    assert leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def _served_leaf(emu, host: str) -> bytes:
    """The certificate the proxy presents for ``host`` (verified against the bundle on the way)."""
    context = ssl.create_default_context(cafile=emu.proxy_ca_bundle)
    context.verify_flags |= ssl.VERIFY_X509_STRICT  # as Python 3.13 and urllib3 2 verify
    with socket.create_connection(("127.0.0.1", int(emu.https_proxy.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall("CONNECT {}:443 HTTP/1.1\r\n\r\n".format(host).encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        with context.wrap_socket(sock, server_hostname=host) as tls:
            return ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True)).encode()


@pytest.mark.parametrize("name, accepted", [("management.azure.com", True), ("acct.file.core.windows.net", True),
                                            ("www.example.com", False), ("fakecore.windows.net", False),
                                            ("management.azure.com.evil.com", False), ("127.0.0.1", False)])
def test_python_ssl_enforces_the_name_constraints(tmp_path, name, accepted):
    """A leaf signed with the CA's own key for a name outside its constraints is refused by the client."""
    ca = ProxyCA(tmp_path / "ca")
    cert, key = ca.sign_leaf([name])
    pem = tmp_path / "leaf.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(pem))
    client_context = ssl.create_default_context(cafile=str(ca.cert_path))
    client_context.verify_flags |= ssl.VERIFY_X509_STRICT  # as Python 3.13 and urllib3 2 verify
    left, right = socket.socketpair()
    left.settimeout(10)
    right.settimeout(10)
    server = threading.Thread(target=_handshake_quietly, args=(server_context, right))
    server.start()
    try:
        if accepted:
            client_context.wrap_socket(left, server_hostname=name).close()
        else:
            with pytest.raises(ssl.SSLCertVerificationError, match="subtree violation|certificate verify failed"):
                client_context.wrap_socket(left, server_hostname=name)
    finally:
        left.close()
        server.join(10)
        right.close()


def _handshake_quietly(context: ssl.SSLContext, sock: socket.socket) -> None:
    try:
        context.wrap_socket(sock, server_side=True).close()
    except (OSError, ssl.SSLError):
        pass


def test_a_silent_client_does_not_stall_others(proxied):
    port = int(proxied.https_proxy.rsplit(":", 1)[1])
    silent = [socket.create_connection(("127.0.0.1", port), timeout=10)]  # says nothing at all
    tunnel = socket.create_connection(("127.0.0.1", port), timeout=10)  # CONNECTs, then no TLS handshake
    tunnel.sendall(b"CONNECT management.azure.com:443 HTTP/1.1\r\n\r\n")
    assert tunnel.recv(4096).startswith(b"HTTP/1.1 200")
    silent.append(tunnel)
    try:
        response = requests.get("{}/subscriptions/{}/resourcegroups?api-version=2021-04-01".format(
            ARM, proxied.subscription_id), headers=auth(proxied), timeout=10)
        assert response.status_code == 200
    finally:
        for sock in silent:
            sock.close()


# ---- the shell helper -----------------------------------------------------------------------------------

def test_shellenv_prints_exports_that_override_and_unset(proxied):
    printed = subprocess.run([sys.executable, "-m", "emulator.shellenv", "--data-dir", str(proxied.data_dir)],
                             cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    env = {"PATH": os.environ["PATH"], "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
           "CURL_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt", "NO_PROXY": "*"}
    shown = subprocess.run(["bash", "-c", printed.stdout + "env"], env=env, capture_output=True, text=True,
                           timeout=60).stdout.splitlines()
    assert "HTTPS_PROXY=" + proxied.https_proxy in shown and "https_proxy=" + proxied.https_proxy in shown
    assert "REQUESTS_CA_BUNDLE=" + proxied.proxy_ca_bundle in shown
    assert "SSL_CERT_FILE=" + proxied.proxy_ca_bundle in shown
    assert not [line for line in shown if line.startswith(("CURL_CA_BUNDLE=", "NO_PROXY=", "no_proxy="))]

    from_json = subprocess.run([sys.executable, "-m", "emulator.shellenv", "--json", "-"], cwd=str(ROOT), text=True,
                               input=json.dumps(proxied.describe()) + "\n", capture_output=True, timeout=60)
    assert from_json.stdout == printed.stdout
    missing = subprocess.run([sys.executable, "-m", "emulator.shellenv", "--data-dir", str(proxied.data_dir / "x")],
                             cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "--proxy" in missing.stderr


# ---- docs/any-azure-client.md, run as written ---------------------------------------------------------

def test_the_documented_round_trip(tmp_path):
    """The shell block (start with --proxy, the shell helper's exports, a script's settings) and the unchanged
    script, with the variables this machine presets in the environment they must override."""
    shell = code_block("docs/any-azure-client.md", "Point one shell at it", "sh")
    script = code_block("docs/any-azure-client.md", "Point one shell at it", "python")
    (tmp_path / ".venv").symlink_to(os.path.dirname(os.path.dirname(sys.executable)))  # the repository's venv
    (tmp_path / "azure_script.py").write_text(script)
    run = run_shell_block(shell, tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    info = json.loads((tmp_path / ".azure-emulator.json").read_text().splitlines()[0])
    assert run.stdout.splitlines() == [
        "/subscriptions/{}/resourceGroups/demo-rg".format(info["subscription_id"]),
        "hello from Azure's own hostnames", "https://{}.file.core.windows.net/demo".format(info["account_name"])]


# ---- the 2017 tutorial's clients: azure-mgmt-resource 1.2.2 on msrestazure's poller, azure-storage-file 2.1.0 ----

SDK_2017 = ("azure-mgmt-resource==1.2.2", "msrestazure==0.4.34", "adal==1.2.7", "azure-storage-file==2.1.0",
            "azure-storage-common==2.1.0")


@pytest.fixture(scope="module")
def sdk_2017() -> str:
    """A directory with the 2017 stack (pip --target, once per machine; the rest comes from this venv).
    Module-scoped, so it is made before ``proxied`` points this process's environment at the proxy."""
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                         "batchai-emulator-tests", "sdk-2017")
    if not os.path.isdir(cache):
        partial = "{}.{}".format(cache, os.getpid())
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", partial,
                               *SDK_2017], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.skip("cannot install {}: {}".format(" ".join(SDK_2017), done.stderr.strip()[-300:]))
        os.replace(partial, cache)
    return cache


def test_2017_clients_on_azure_hostnames(sdk_2017, proxied):
    """The tutorial's FileService (no endpoint to give: <account>.file.core.windows.net), and a resource group
    deleted with msrestazure's poller, which sleeps Retry-After (else long_running_operation_timeout, 30 s by
    default) before every poll: set to 600 s here, a missing or non-zero Retry-After outlasts the timeout."""
    code = """
import sys
from msrest.authentication import BasicTokenAuthentication
from azure.mgmt.resource import ResourceManagementClient
from azure.storage.file import FileService
client = ResourceManagementClient(BasicTokenAuthentication({"access_token": sys.argv[1]}), sys.argv[2])
client.config.long_running_operation_timeout = 600
print(client.resource_groups.create_or_update("oldrg", {"location": "eastus"}).id)
client.resource_groups.delete("oldrg").result()
print(client.resource_groups.check_existence("oldrg"))
files = FileService(sys.argv[3], sys.argv[4])
files.create_share("tutorial")
files.create_directory("tutorial", "mnistcntksample")
files.create_file_from_bytes("tutorial", "mnistcntksample", "a.txt", b"hello 2017")
print([share.name for share in files.list_shares()])
print(files.get_file_to_bytes("tutorial", "mnistcntksample", "a.txt").content.decode())
"""
    env = dict(os.environ, PYTHONPATH=sdk_2017)
    done = subprocess.run([sys.executable, "-c", code, proxied.token, proxied.subscription_id, proxied.account_name,
                           proxied.account_key], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["/subscriptions/{}/resourceGroups/oldrg".format(proxied.subscription_id),
                                        "False", "['tutorial']", "hello 2017"]


@pytest.mark.skipif(not (shutil.which("java") and shutil.which("keytool")), reason="no JDK (java, keytool) here")
def test_docs_java_commands_reach_management_azure_com(proxied, tmp_path):
    """docs/any-azure-client.md's Java commands as written, with a small program in place of app.jar."""
    commands = code_block("docs/any-azure-client.md", "Java", "sh")
    assert commands.rstrip().endswith("-jar app.jar"), commands
    program = ROOT / "tests" / "data" / "java" / "ListGroups.java"
    env = dict(os.environ, PROXY_CA_BUNDLE=proxied.proxy_ca_bundle,
               PROXY_PORT=proxied.https_proxy.rsplit(":", 1)[1], SUBSCRIPTION_ID=proxied.subscription_id,
               TOKEN=proxied.token)
    for name in ("HTTPS_PROXY", "https_proxy", "JAVA_TOOL_OPTIONS"):  # the JVM reads none of these: only the flags
        env.pop(name, None)
    result = subprocess.run(["bash", "-e", "-c", commands.rstrip().replace("-jar app.jar", str(program))],
                            cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0] == "200" and '"value"' in result.stdout, result.stdout
