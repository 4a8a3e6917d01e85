"""A local emulator of the Azure services the Batch AI quickstart uses.

Resource Manager resource groups, Batch AI (API 2018-05-01) and Azure Files, served on
127.0.0.1 to the unmodified Azure SDKs, with Batch AI jobs that really run on this machine.
Use ``start()`` from Python or ``python -m emulator`` from a shell.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Union

from .core.arm import ArmApplication, Operations
from .core.bearer import EmulatorCredential
from .core.context import Context
from .core.controls import PreemptionRefused, check_rate
from .core.datadir import DataDirInUse, create_private_file, lock, make_private
from .core.routing import Router
from .core.secrets import load_identity
from .core.serving import Server
from .core.store import Store
from .core.tls import DEFAULT_HOSTS, ensure_certificate

__all__ = ["DataDirInUse", "Emulator", "PreemptionRefused", "start"]
log = logging.getLogger("emulator")


class Emulator:
    """A running emulator.

    Attributes: ``arm_url`` (https, Resource Manager and Batch AI), ``files_url`` (http, Azure
    Files, path-style ``http://127.0.0.1:PORT/ACCOUNT``), ``blob_url`` (https, Azure Blob,
    path-style ``https://127.0.0.1:PORT/ACCOUNT``; host-style ``https://ACCOUNT.blob.core.localhost:PORT``
    works too where that name resolves to 127.0.0.1), ``account_name``, ``account_key``,
    ``subscription_id``, ``ca_cert`` (the PEM clients pass as ``connection_verify``),
    ``files_connection_string``, ``blob_connection_string`` and ``credential()``.

    Long-running operations: the emulator sends no ``Retry-After``, so clients poll at their
    ``polling_interval``. Pass ``polling_interval=0.05`` (to the client or to each ``begin_*``
    call) and ``begin_*().result()`` returns in well under a second; the SDK default is 30 s.
    """

    def __init__(self, context: Context, servers: list, temporary: bool, data_dir_lock) -> None:
        self._context = context
        self._data_dir_lock = data_dir_lock
        self._servers = servers
        self._temporary = temporary
        identity = context.identity
        self.data_dir = context.data_dir
        self.arm_url = context.arm_url
        self.files_url = context.files_url
        self.blob_url = context.blob_url
        self.account_name = identity.account_name
        self.account_key = identity.account_key
        self.subscription_id = identity.subscription_id
        self.token = identity.token
        self.ca_cert = str(context.data_dir / "tls" / "cert.pem")
        self._stopped = False

    @property
    def files_connection_string(self) -> str:
        return "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};FileEndpoint={}".format(
            self.account_name, self.account_key, self.files_url)

    @property
    def blob_connection_string(self) -> str:
        """For ``BlobServiceClient.from_connection_string(..., connection_verify=ca_cert)``."""
        return "DefaultEndpointsProtocol=https;AccountName={};AccountKey={};BlobEndpoint={}".format(
            self.account_name, self.account_key, self.blob_url)

    def set_batchai_quota(self, name: str, limit: int, location: Optional[str] = None) -> None:
        """Change a Batch AI quota, named as ``usages.list`` names it (e.g. "Standard NC Family
        Cluster Dedicated vCPUs", "Clusters"), in one location or (None) all; kept in the data dir."""
        self._context.services["batchai"].backend.quotas.set_limit(name, limit, location)

    def preempt_node(self, resource_group: str, workspace: str, cluster: str, node_id: Optional[str] = None) -> str:
        """Preempt one node of a ``vmPriority: lowpriority`` cluster as the service did: the node leaves,
        the job on it (on all its nodes) stops at once and is queued again (executionState ``queued``,
        no executionInfo; what it wrote to shares stays), the cluster resizes to a replacement node and
        the job runs again when enough nodes are idle. ``node_id`` None: the first node running a job,
        else the first idle one. Blocks until the job is back in the queue; returns the node's id.
        Raises PreemptionRefused (a ValueError, one line) for an unknown cluster or node, a dedicated
        cluster, or a cluster with no idle or running node."""
        return self._context.services["batchai"].backend.preemptions.preempt(resource_group, workspace, cluster,
                                                                            node_id)

    def set_preemption_rate(self, rate: float, seed: Optional[int] = None) -> None:
        """Preempt idle and running low-priority nodes at random, ``rate`` times per node-hour on average
        (0 stops it); ``seed`` makes the draws repeatable."""
        self._context.services["batchai"].backend.preemptions.set_rate(rate, seed)

    @property
    def blob_suffix(self) -> str:
        """The storage suffix azure-ai-ml puts after ``<account>.blob.``: ``core.localhost:PORT``."""
        return self._context.services["azureml"].backend.storage.suffix

    def credential(self) -> EmulatorCredential:
        """A TokenCredential whose token the emulator accepts."""
        return EmulatorCredential(self.token)

    @property
    def services(self) -> dict:
        return self._context.services

    def describe(self) -> dict:
        """What clients need, as ``python -m emulator`` prints it."""
        return {"arm_url": self.arm_url, "files_url": self.files_url, "blob_url": self.blob_url,
                "account_name": self.account_name, "account_key": self.account_key,
                "subscription_id": self.subscription_id, "ca_cert": self.ca_cert,
                "files_connection_string": self.files_connection_string,
                "blob_connection_string": self.blob_connection_string,
                "token": self.token, "data_dir": str(self.data_dir)}

    def stop(self) -> None:
        """Stop serving; jobs still running are stopped and reported failed. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for server in self._servers:
            server.stop()
        for service in reversed(list(self._context.services.values())):
            if service.close:
                service.close()
        self._context.store.close()
        self._data_dir_lock.release()
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return "Emulator(arm_url={!r}, files_url={!r})".format(self.arm_url, self.files_url)


def start(data_dir: Union[str, Path, None] = None, arm_port: int = 0, files_port: int = 0,
          account_name: Optional[str] = None, account_key: Optional[str] = None,
          token: Optional[str] = None, subscription_id: Optional[str] = None, blob_port: int = 0,
          preemption_rate: float = 0.0, preemption_seed: Optional[int] = None) -> Emulator:
    """Start the emulator and return it once it accepts requests.

    ``data_dir`` holds all state (database, share contents, nodes, certificate); None means a
    temporary directory removed by ``stop()``. It is made private to its owner (0700) and locked:
    a second emulator on it gets DataDirInUse. Ports 0 pick free ones. Identity values left
    None are read from ``data_dir`` or made at random the first time. ``preemption_rate``: random
    preemptions of low-priority nodes per node-hour (see ``Emulator.set_preemption_rate``).
    """
    preemption_rate = check_rate(preemption_rate)
    temporary = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="batchai-emulator-")) if temporary else Path(data_dir).resolve()
    make_private(root)
    data_dir_lock = lock(root)
    try:
        return _start(root, temporary, data_dir_lock, arm_port, files_port, account_name, account_key, token,
                      subscription_id, blob_port, preemption_rate, preemption_seed)
    except BaseException:
        data_dir_lock.release()
        raise


def _start(root: Path, temporary: bool, data_dir_lock, arm_port: int, files_port: int, account_name, account_key,
           token, subscription_id, blob_port: int, preemption_rate: float, preemption_seed) -> Emulator:
    # Imported here so that `import emulator` stays light for clients that only read settings.
    from . import azureml, batchai, blob, files, resourcemanager
    from .runner import sandbox

    create_private_file(root / "emulator.db")
    store = Store(root / "emulator.db")
    identity = load_identity(store, account_name, account_key, token, subscription_id)
    # <account>.blob.core.localhost: the host-style Blob address azure-ai-ml builds (suffix core.localhost)
    certificate = ensure_certificate(root / "tls", DEFAULT_HOSTS + ("*.blob.core.localhost",))
    arm_server = Server(arm_port, certificate=certificate)
    files_server = Server(files_port)
    blob_server = Server(blob_port, certificate=certificate)  # https: azure-ai-ml builds https blob URLs
    context = Context(data_dir=root, store=store, identity=identity, arm_url=arm_server.url,
                      files_url="{}/{}".format(files_server.url, identity.account_name),
                      operations=Operations(store, arm_server.url, identity.subscription_id),
                      blob_url="{}/{}".format(blob_server.url, identity.account_name),
                      preemption_rate=preemption_rate, preemption_seed=preemption_seed)
    # Order matters: Batch AI mounts Files shares, Resource Manager deletes Batch AI resources.
    for name, package in (("files", files), ("blob", blob), ("batchai", batchai),
                          ("resourcemanager", resourcemanager)):
        context.services[name] = package.create_service(context)
    context.services["azureml"] = azureml.create_service(context, context.services["blob"].backend)
    (root / "nodes").mkdir(mode=0o700, exist_ok=True)  # made later by the runner: private from the start
    make_private(root)  # the directories the services made at its top level too
    router = Router()
    for name in ("resourcemanager", "batchai", "azureml"):
        service = context.services[name]
        router.add_service(service.url_paths, service.responses)
    # The Azure ML workspace data plane (/azureml-api) sits in front of Resource Manager on the same port.
    arm_server.serve(azureml.DataPlaneApplication(context.services["azureml"], ArmApplication(router, identity.token),
                                                  identity.token))
    files_server.serve(files.create_app(context.services["files"]))
    blob_server.serve(blob.create_app(context.services["blob"]))
    log.info("emulator serving %s, %s and %s (data in %s)", arm_server.url, context.files_url, context.blob_url, root)
    log.log(logging.INFO if all(sandbox.capabilities()) else logging.WARNING, "%s", sandbox.describe())
    return Emulator(context, [arm_server, files_server, blob_server], temporary, data_dir_lock)
