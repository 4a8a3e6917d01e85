"""Azure ML through the HTTPS proxy, signed in as on Azure (issue 18's "Code download" and "Tokens").

azure-ai-ml 1.35.2 with azure-identity's ``ClientSecretCredential`` and no endpoint given: its tokens come from
the emulator's Azure AD on ``login.microsoftonline.com`` and are JWTs (the SDK decodes the ``https://ml.azure.com``
one for jobs with a user identity, and reads ``tid`` from the Resource Manager one for the studio URL); code
assets live at ``<account>.blob.core.windows.net``, the only form ``CodeOperations.download`` accepts (azure-ai-ml
1.35.2 keeps it as ``ml_client._code``).
"""
from __future__ import annotations

import jwt
import pytest

from conftest import POLL
from test_jobs import RG, wait_for
from test_proxy import proxied  # noqa: F401 (the fixture)

WORKSPACE = "mlws"


@pytest.fixture
def signed_in(proxied, monkeypatch):  # noqa: F811
    """A service principal's credential, as a script for Azure makes it: tenant, client id, secret; nothing else."""
    from azure.identity import ClientSecretCredential

    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")  # MLClient sets it; restored afterwards
    return ClientSecretCredential(proxied.tenant_id, proxied.client_id, proxied.client_secret)


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_tokens_are_jwts_with_the_tenant(proxied, signed_in):  # noqa: F811
    arm = claims(signed_in.get_token("https://management.azure.com/.default").token)
    assert (arm["tid"], arm["appid"], arm["aud"]) == (proxied.tenant_id, proxied.client_id,
                                                      "https://management.azure.com")
    assert arm["iss"] == "https://sts.windows.net/{}/".format(proxied.tenant_id)
    ml = claims(signed_in.get_token("https://ml.azure.com/.default").token)
    assert (ml["aud"], ml["tid"]) == ("https://ml.azure.com", proxied.tenant_id)  # what azure-ai-ml checks


def test_code_download_and_the_studio_url_through_the_proxy(proxied, signed_in, tmp_path):  # noqa: F811
    from azure.ai.ml import MLClient, command
    from azure.ai.ml.entities import AmlCompute, UserIdentityConfiguration, Workspace
    from azure.ai.ml.entities._assets import Code  # not re-exported by azure.ai.ml.entities in 1.35.2
    from azure.mgmt.resource.resources import ResourceManagementClient

    ResourceManagementClient(signed_in, proxied.subscription_id).resource_groups.create_or_update(
        RG, {"location": "eastus"})
    ml = MLClient(signed_in, proxied.subscription_id, RG, WORKSPACE, enable_telemetry=False, show_progress=False,
                  polling_interval=POLL)
    ml.workspaces.begin_create(Workspace(name=WORKSPACE, location="eastus")).result()

    # A code asset: uploaded to the workspace's blob store on Azure's hostname, and downloaded again.
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "train.py").write_text("import os\nos.makedirs('outputs', exist_ok=True)\n"
                                     "open('outputs/done.txt', 'w').write('done')\n")
    (source / "pkg" / "helper.py").write_text("VALUE = 42\n")
    code = ml._code.create_or_update(Code(name="trainer", version="1", path=str(source)))
    assert code.path.startswith("https://{}.blob.core.windows.net/".format(proxied.account_name)), code.path
    ml._code.download("trainer", "1", download_path=str(tmp_path / "code-download"))
    assert (tmp_path / "code-download" / "train.py").read_text() == (source / "train.py").read_text()
    assert (tmp_path / "code-download" / "pkg" / "helper.py").read_text() == "VALUE = 42\n"

    # A job with a user identity (its submission needs the ml.azure.com JWT); its studio URL names the tenant.
    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1)).result()
    job = ml.jobs.create_or_update(command(code=str(source), command="python train.py", compute="cpu",
                                           environment="AzureML-acpt-pytorch-2.8-cuda12.6@latest",
                                           identity=UserIdentityConfiguration()))
    assert "&tid={}".format(proxied.tenant_id) in job.studio_url, job.studio_url
    wait_for(lambda: ml.jobs.get(job.name).status in ("Completed", "Failed"), timeout=120)
    done = ml.jobs.get(job.name)
    assert done.status == "Completed" and done.studio_url.endswith("&tid=" + proxied.tenant_id)

    # The job's code snapshot, downloaded by its asset id, as the studio's "download code" does.
    name, version = done.code.rstrip("/").split("/codes/")[1].split("/versions/")
    ml._code.download(name, version, download_path=str(tmp_path / "job-code"))
    assert (tmp_path / "job-code" / "pkg" / "helper.py").read_text() == "VALUE = 42\n"
