"""The 2017 Batch AI tutorial's steps ("Run a CNTK training job using the Azure Python SDK", 2017-10) with its
own SDKs: azure-mgmt-batchai 0.2.0, azure-mgmt-resource 1.2.2, azure-storage-file 2.1.0 and azure-common's
ServicePrincipalCredentials (msrestazure 0.4.34). Run by tests/test_tutorial_2017.py with the "2017" legacy
venv (tests/legacy_sdks.py) and nothing but ``HTTPS_PROXY`` and ``REQUESTS_CA_BUNDLE`` pointing it at the
emulator: no base URL, no endpoint, no ``verify``; every client talks to Azure's own hostnames.

The same SDK calls and arguments as the tutorial, in this project's words. The settings the tutorial asks the
reader to fill in come from the environment here (the emulator's JSON line). ``EXTRA_ARGS`` is appended to the
job's command line (the test trains one epoch). Prints what the tutorial prints, then one JSON line of what the
test checks.
"""
import json
import os
import sys
import time

import requests

import azure.mgmt.batchai as batchai
import azure.mgmt.batchai.models as models
from azure.common.credentials import ServicePrincipalCredentials
from azure.mgmt.resource import ResourceManagementClient
from azure.storage.file import FileService

# ---- the tutorial's settings, filled in from the emulator's JSON line ----
client_id = os.environ["CLIENT_ID"]
secret = os.environ["CLIENT_SECRET"]
token_uri = "https://login.microsoftonline.com/{0}/oauth2/token".format(os.environ["TENANT_ID"])
subscription_id = os.environ["SUBSCRIPTION_ID"]
storage_account_name = os.environ["STORAGE_ACCOUNT_NAME"]
storage_account_key = os.environ["STORAGE_ACCOUNT_KEY"]
admin_user_name = "tutorialadmin"
admin_user_password = "Tutorial-Pa55word"

group = "batchaitutorialrg"
share = "batchaisample"
sample_folder = "mnistcntksample"
cluster_name = "tutorialcluster"
job_name = "tutorialjob"
sample_dir = os.environ["SAMPLE_DIR"]  # Train-/Test-28x28_cntk_text.txt and ConvNet_MNIST.py
extra_args = os.environ.get("EXTRA_ARGS", "")
deadline = time.monotonic() + float(os.environ.get("WAIT_SECONDS", "900"))
seen = {}


def wait(what):
    if time.monotonic() > deadline:
        sys.exit("gave up waiting for " + what)
    time.sleep(0.5)


# ---- sign in; the Batch AI and Resource Manager clients ----
creds = ServicePrincipalCredentials(client_id=client_id, secret=secret, token_uri=token_uri)
batchai_client = batchai.BatchAIManagementClient(credentials=creds, subscription_id=subscription_id)
resources = ResourceManagementClient(credentials=creds, subscription_id=subscription_id)
# The tutorial's prerequisite `az provider register -n Microsoft.BatchAI`, as its SDK call.
seen["provider"] = resources.providers.register("Microsoft.BatchAI").registration_state
resources.resource_groups.create_or_update(group, {"location": "eastus"})

# ---- the share with the data and the script ----
file_service = FileService(storage_account_name, storage_account_key)
file_service.create_share(share, fail_on_exist=False)
file_service.create_directory(share, sample_folder, fail_on_exist=False)
for name in ("Train-28x28_cntk_text.txt", "Test-28x28_cntk_text.txt", "ConvNet_MNIST.py"):
    file_service.create_file_from_path(share, sample_folder, name, os.path.join(sample_dir, name))

# ---- the cluster ----
share_url = "https://{0}.file.core.windows.net/{1}".format(storage_account_name, share)
cluster_parameters = models.ClusterCreateParameters(
    location="eastus",
    vm_size="STANDARD_NC6",
    user_account_settings=models.UserAccountSettings(admin_user_name=admin_user_name,
                                                     admin_user_password=admin_user_password),
    scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=1)),
    node_setup=models.NodeSetup(mount_volumes=models.MountVolumes(azure_file_shares=[
        models.AzureFileShareReference(
            account_name=storage_account_name,
            credentials=models.AzureStorageCredentialsInfo(account_key=storage_account_key),
            azure_file_url=share_url,
            relative_mount_path="azurefileshare")])))
batchai_client.clusters.create(group, cluster_name, cluster_parameters).result()

cluster = batchai_client.clusters.get(group, cluster_name)
while not (cluster.allocation_state.name == "steady" and cluster.node_state_counts.idle_node_count == 1):
    wait("the cluster's node")
    cluster = batchai_client.clusters.get(group, cluster_name)
counts = cluster.node_state_counts
print("Cluster state: {0} Target: {1}; Allocated: {2}; Idle: {3}; Unusable: {4}; Running: {5}; Preparing: {6}".format(
    cluster.allocation_state.name, cluster.scale_settings.manual.target_node_count, cluster.current_node_count,
    counts.idle_node_count, counts.unusable_node_count, counts.running_node_count, counts.preparing_node_count))

# ---- the job ----
mount = "$AZ_BATCHAI_MOUNT_ROOT/azurefileshare"
job_parameters = models.job_create_parameters.JobCreateParameters(
    location="eastus",
    cluster=models.ResourceId(cluster.id),
    node_count=1,
    std_out_err_path_prefix=mount,
    input_directories=[models.InputDirectory(id="SAMPLE", path=mount + "/" + sample_folder)],
    output_directories=[models.OutputDirectory(id="MODEL", path_prefix=mount, path_suffix="Models")],
    container_settings=models.ContainerSettings(
        models.ImageSourceRegistry(image="microsoft/cntk:2.1-gpu-python3.5-cuda8.0-cudnn6.0")),
    cntk_settings=models.CNTKsettings(
        python_script_file_path="$AZ_BATCHAI_INPUT_SAMPLE/ConvNet_MNIST.py",
        command_line_args=("$AZ_BATCHAI_INPUT_SAMPLE $AZ_BATCHAI_OUTPUT_MODEL " + extra_args).strip()))
batchai_client.jobs.create(group, job_name, job_parameters).result()

state = batchai_client.jobs.get(group, job_name).execution_state.name
while state not in ("succeeded", "failed"):
    wait("the job")
    state = batchai_client.jobs.get(group, job_name).execution_state.name
print("Job state: " + state)
seen["state"] = state

# ---- its output files, and their download URLs ----
seen["downloads"] = {}
for directory in ("stdouterr", "MODEL"):
    for output in batchai_client.jobs.list_output_files(group, job_name, models.JobsListOutputFilesOptions(directory)):
        if directory == "stdouterr":  # what the tutorial prints
            print(output.name, output.download_url)
        got = requests.get(output.download_url, timeout=60)  # a SAS URL, fetched through the proxy
        seen["downloads"][output.name] = {"url": output.download_url, "status": got.status_code,
                                          "bytes": len(got.content),
                                          "text": got.text[-2000:] if output.name.endswith(".txt") else ""}

# ---- clean up ----
batchai_client.jobs.delete(group, job_name)
batchai_client.clusters.delete(group, cluster_name)
while list(batchai_client.jobs.list()) or list(batchai_client.clusters.list()):
    wait("the deletions")
file_service.delete_share(share)
resources.resource_groups.delete(group).result()
seen["left"] = {"groups": [g.name for g in resources.resource_groups.list()],
                "shares": [s.name for s in file_service.list_shares()]}
print(json.dumps(seen))
