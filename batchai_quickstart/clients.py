"""Step 2 of the quickstart: the Azure SDK clients, for the local emulator or for Azure.

The same three SDK clients serve both targets; only the endpoints and credentials differ.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Optional

from azure.mgmt.batchai import BatchAI
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.storage.fileshare import ShareServiceClient

from .config import QuickstartConfig

# The emulator answers long-running operations at once and sends no Retry-After, so a short
# polling interval makes every begin_*().result() return in milliseconds (the SDK default is 30 s).
LOCAL_POLLING_INTERVAL = 0.05
LOCAL_MONITOR_INTERVAL = 0.5
# On Azure: the cluster and the job are polled every second (one Resource Manager read each, 3,600 an hour,
# well inside its read limits), so that the training log follows closely. Long-running operations wait
# the Retry-After that Azure sends; only where a service sends none (the emulator through its proxy sends 0,
# which azure-core reads as absent) do they poll every 0.5 s, rather than azure-core's default of 30 s.
AZURE_MONITOR_INTERVAL = 1.0
AZURE_POLLING_INTERVAL = 0.5


@dataclass
class Clients:
    """What the steps need to reach the services."""

    resource: ResourceManagementClient
    batchai: BatchAI
    files: ShareServiceClient
    storage_account_name: str
    storage_account_key: str = field(repr=False)
    file_endpoint: str  # the share URL is file_endpoint + "/" + share
    monitor_interval: float
    admin_user_password: str = field(repr=False)
    emulator: Optional[Any] = None  # the running local emulator, stopped by close()

    def azure_file_url(self, share: str) -> str:
        return "{}/{}".format(self.file_endpoint.rstrip("/"), share)

    def close(self) -> None:
        """Stop the local emulator (and with it any job still running). Idempotent."""
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None


def create_clients(config: QuickstartConfig) -> Clients:
    """Create the Resource Manager, Batch AI and Azure Files clients for ``config.target``."""
    if config.target == "local":
        return create_local_clients(config)
    return create_azure_clients(config)


def create_local_clients(config: QuickstartConfig) -> Clients:
    """Start the embedded emulator and point the unmodified SDK clients at it.

    Resource Manager and Batch AI are served over https with a certificate the emulator makes
    (clients trust it through ``connection_verify``); Azure Files over http with Shared Key.
    """
    import emulator

    emu = emulator.start(config.data_dir)
    try:
        common = dict(base_url=emu.arm_url, connection_verify=emu.ca_cert, polling_interval=LOCAL_POLLING_INTERVAL)
        return Clients(
            resource=ResourceManagementClient(emu.credential(), emu.subscription_id, **common),
            batchai=BatchAI(emu.credential(), emu.subscription_id, **common),
            files=ShareServiceClient.from_connection_string(emu.files_connection_string),
            storage_account_name=emu.account_name,
            storage_account_key=emu.account_key,
            file_endpoint=emu.files_url,
            monitor_interval=LOCAL_MONITOR_INTERVAL,
            # A placeholder password on the local target becomes a random one, never shown.
            admin_user_password=config.admin_user_password or secrets.token_urlsafe(16),
            emulator=emu,
        )
    except BaseException:
        emu.stop()
        raise


def create_azure_clients(config: QuickstartConfig) -> Clients:
    """Clients for the public Azure endpoints, authenticated with azure-identity.

    A service principal from the config file (the original quickstart's client_id, secret and
    token_uri), or DefaultAzureCredential (az login, environment, managed identity) when those
    are left empty. The endpoints are Azure's own hostnames: with the emulator's proxy in HTTPS_PROXY
    (docs/azure-target.md) the same code runs offline.
    """
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    if config.uses_service_principal:
        credential = ClientSecretCredential(config.tenant_id, config.client_id, config.secret)
    else:
        credential = DefaultAzureCredential()
    account_url = "https://{}.file.core.windows.net".format(config.storage_account_name)
    return Clients(
        resource=ResourceManagementClient(credential, config.subscription_id, polling_interval=AZURE_POLLING_INTERVAL),
        batchai=BatchAI(credential, config.subscription_id, polling_interval=AZURE_POLLING_INTERVAL),
        files=ShareServiceClient(account_url, credential={"account_name": config.storage_account_name,
                                                          "account_key": config.storage_account_key}),
        storage_account_name=config.storage_account_name,
        storage_account_key=config.storage_account_key,
        file_endpoint=account_url,
        monitor_interval=AZURE_MONITOR_INTERVAL,
        admin_user_password=config.admin_user_password,
    )
