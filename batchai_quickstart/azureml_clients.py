"""Step 2 of quickstart_azureml.py: the Resource Manager client and the Azure ML ``MLClient``.

The same SDK clients serve both targets. On the local target the emulator is described to
azure-ai-ml as a cloud of its own (``cloud=`` and ``cloud_metadata=``: Resource Manager, token
scope and storage suffix), so nothing else of the process's environment decides where it goes.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Optional

from azure.ai.ml import MLClient
from azure.mgmt.resource.resources import ResourceManagementClient

from .azureml_config import AzureMLConfig

LOCAL_POLLING_INTERVAL = 0.05  # the emulator's long-running operations end in milliseconds
# Where Azure sends no Retry-After on a long-running operation: as quickstart.py (see clients.py).
AZURE_POLLING_INTERVAL = 0.5


@dataclass
class AzureMLClients:
    resource: ResourceManagementClient
    ml: MLClient
    emulator: Optional[Any] = None  # the running local emulator, stopped by close()

    def close(self) -> None:
        """Stop the local emulator (and with it any job still running). Idempotent."""
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None


def create_azureml_clients(config: AzureMLConfig) -> AzureMLClients:
    if config.target == "local":
        return create_local_azureml_clients(config)
    return create_azure_azureml_clients(config)


def emulator_cloud(emu) -> dict:
    """The emulator as an azure-ai-ml cloud: everything at its https endpoint, blobs at
    ``<account>.blob.core.localhost:<port>`` (azure-storage-blob reads the account name from the text
    before ``.blob.core.``)."""
    arm = emu.arm_url + "/"
    return {"azure_portal": arm, "resource_manager": arm, "active_directory": arm, "aml_resource_id": arm,
            "registry_discovery_endpoint": arm, "storage_endpoint": emu.blob_suffix}


def emulator_cloud_name(metadata: dict, prefix: str = "AzureMLEmulator") -> str:
    """A name for ``metadata`` as an azure-ai-ml cloud. azure-ai-ml keeps clouds by name for the life of the
    process and never replaces one, so the name is made from the metadata itself: an emulator that got a
    port another one used before is a new cloud, not the stale one."""
    digest = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return "{}-{}".format(prefix, digest)


def create_local_azureml_clients(config: AzureMLConfig) -> AzureMLClients:
    """Start the embedded emulator and point the unmodified SDK clients at it."""
    import emulator

    from .localhost_names import resolve_localhost_names

    emu = emulator.start(config.data_dir)
    try:
        resolve_localhost_names()
        # azure-ai-ml passes connection_verify to its own clients only; the workspace's ARM deployment
        # client and the blob clients use requests' default, which this points at the emulator's CA.
        os.environ["REQUESTS_CA_BUNDLE"] = emu.ca_cert
        credential = emu.credential()
        common = dict(connection_verify=emu.ca_cert, polling_interval=LOCAL_POLLING_INTERVAL)
        cloud = emulator_cloud(emu)
        ml = MLClient(credential, emu.subscription_id, config.resource_group, config.workspace,
                      cloud=emulator_cloud_name(cloud), cloud_metadata=cloud, enable_telemetry=False, **common)
        resource = ResourceManagementClient(credential, emu.subscription_id, base_url=emu.arm_url, **common)
        return AzureMLClients(resource=resource, ml=ml, emulator=emu)
    except BaseException:
        emu.stop()
        raise


def create_azure_azureml_clients(config: AzureMLConfig) -> AzureMLClients:
    """Clients for Azure: the service principal of the config, else DefaultAzureCredential (az login)."""
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    if config.uses_service_principal:
        credential = ClientSecretCredential(config.tenant_id, config.client_id, config.secret)
    else:
        credential = DefaultAzureCredential()
    return AzureMLClients(
        resource=ResourceManagementClient(credential, config.subscription_id, polling_interval=AZURE_POLLING_INTERVAL),
        ml=MLClient(credential, config.subscription_id, config.resource_group, config.workspace,
                    polling_interval=AZURE_POLLING_INTERVAL),
    )
