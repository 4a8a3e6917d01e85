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

from .core.access_tokens import (ARM_AUDIENCES, AZUREML_AUDIENCES, STORAGE_AUDIENCES, TokenVerifier,
                                 endpoint_audiences)
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
    ``files_connection_string``, ``blob_connection_string`` and ``credential()``; ``aad_url`` (https,
    the Azure AD token service, an authority for adal, MSAL and azure-identity) and the service
    principal it signs in: ``tenant_id``, ``client_id``, ``client_secret`` (see docs/azure-ad.md).

    With ``start(proxy=True)``: ``https_proxy`` (``http://127.0.0.1:PORT``) and ``proxy_ca_bundle`` (the PEM
    to trust through it), for clients that use Azure's own hostnames (docs/any-azure-client.md); else None.

    Long-running operations: the emulator sends ``Retry-After: 0``, which azure-core reads as absent, so
    clients poll at their ``polling_interval``. Pass ``polling_interval=0.05`` (to the client or to each
    ``begin_*`` call) and ``begin_*().result()`` returns in well under a second; the SDK default is 30 s.
    Older msrestazure clients poll at once; a poll of an unfinished operation is held up to half a second.
    """

    def __init__(self, context: Context, servers: list, temporary: bool, data_dir_lock, proxy=None) -> None:
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
        self.aad_url = context.aad_url
        principal = context.services["aad"].backend.principal
        self.tenant_id, self.client_id, self.client_secret = (principal.tenant_id, principal.client_id,
                                                              principal.client_secret)
        self.https_proxy = proxy.url if proxy else None
        self.proxy_ca_bundle = str(proxy.ca_bundle) if proxy else None
        if proxy:  # for `python -m emulator.shellenv --data-dir` (imported here: it runs as __main__ too)
            from .shellenv import write_settings
            write_settings(self.data_dir, self.https_proxy, self.proxy_ca_bundle)
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
                "token": self.token, "data_dir": str(self.data_dir), "aad_url": self.aad_url,
                "tenant_id": self.tenant_id, "client_id": self.client_id, "client_secret": self.client_secret,
                "https_proxy": self.https_proxy, "proxy_ca_bundle": self.proxy_ca_bundle}

    def stop(self) -> None:
        """Stop serving; jobs still running are stopped and reported failed. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for server in self._servers:
            server.stop()
        if self.https_proxy:
            from .shellenv import SETTINGS_FILE
            (self.data_dir / SETTINGS_FILE).unlink(missing_ok=True)
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
          preemption_rate: float = 0.0, preemption_seed: Optional[int] = None, aad_port: int = 0,
          proxy: bool = False, proxy_port: int = 0) -> Emulator:
    """Start the emulator and return it once it accepts requests.

    ``data_dir`` holds all state (database, share contents, nodes, certificate); None means a
    temporary directory removed by ``stop()``. It is made private to its owner (0700) and locked:
    a second emulator on it gets DataDirInUse. Ports 0 pick free ones. Identity values left
    None are read from ``data_dir`` or made at random the first time. ``preemption_rate``: random
    preemptions of low-priority nodes per node-hour (see ``Emulator.set_preemption_rate``).
    ``aad_port``: the https port of the Azure AD token service. ``proxy``: also serve the HTTPS proxy for
    Azure's hostnames on ``proxy_port`` (docs/any-azure-client.md).
    """
    preemption_rate = check_rate(preemption_rate)
    temporary = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="batchai-emulator-")) if temporary else Path(data_dir).resolve()
    make_private(root)
    data_dir_lock = lock(root)
    try:
        return _start(root, temporary, data_dir_lock, arm_port, files_port, account_name, account_key, token,
                      subscription_id, blob_port, preemption_rate, preemption_seed, aad_port, proxy, proxy_port)
    except BaseException:
        data_dir_lock.release()
        raise


def _start(root: Path, temporary: bool, data_dir_lock, arm_port: int, files_port: int, account_name, account_key,
           token, subscription_id, blob_port: int, preemption_rate: float, preemption_seed,
           aad_port: int = 0, proxy: bool = False, proxy_port: int = 0) -> Emulator:
    # Imported here so that `import emulator` stays light for clients that only read settings.
    from . import aad, azureml, batchai, blob, files, resourcemanager
    from .runner import sandbox

    create_private_file(root / "emulator.db")
    store = Store(root / "emulator.db")
    identity = load_identity(store, account_name, account_key, token, subscription_id)
    # <account>.blob.core.localhost: the host-style Blob address azure-ai-ml builds (suffix core.localhost)
    certificate = ensure_certificate(root / "tls", DEFAULT_HOSTS + ("*.blob.core.localhost",))
    arm_server = Server(arm_port, certificate=certificate)
    files_server = Server(files_port)
    blob_server = Server(blob_port, certificate=certificate)  # https: azure-ai-ml builds https blob URLs
    aad_server = Server(aad_port, certificate=certificate)
    context = Context(data_dir=root, store=store, identity=identity, arm_url=arm_server.url,
                      files_url="{}/{}".format(files_server.url, identity.account_name),
                      operations=Operations(store, arm_server.url, identity.subscription_id),
                      blob_url="{}/{}".format(blob_server.url, identity.account_name),
                      preemption_rate=preemption_rate, preemption_seed=preemption_seed, aad_url=aad_server.url)
    context.services["aad"] = aad.create_service(context)
    tokens = _token_verifier(context, identity.token)
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
    own = endpoint_audiences(arm_server.url)  # clients whose cloud names the emulator's endpoint ask for it
    arm_app = azureml.DataPlaneApplication(
        context.services["azureml"], ArmApplication(router, tokens.accepting(ARM_AUDIENCES + own)),
        tokens.accepting(AZUREML_AUDIENCES + own))
    for name in ("files", "blob"):  # OAuth to storage: Azure AD tokens for https://storage.azure.com
        context.services[name].backend.auth.bearer_check = tokens.accepting(STORAGE_AUDIENCES)
    files_app, blob_app = files.create_app(context.services["files"]), blob.create_app(context.services["blob"])
    aad_app = aad.create_app(context.services["aad"])
    arm_server.serve(arm_app)
    files_server.serve(files_app)
    blob_server.serve(blob_app)
    aad_server.serve(aad_app)
    servers, proxy_server = [arm_server, files_server, blob_server, aad_server], None
    if proxy:
        from .azureml.urls import DATAPLANE_PREFIX
        from .proxy import mounted_at

        # The Azure hostnames the proxy serves, each by the app that serves it on loopback.
        azure_hosts = {"management.azure.com": arm_app, "login.microsoftonline.com": aad_app,
                       "*.file.core.windows.net": files_app, "*.blob.core.windows.net": blob_app,
                       "*.api.azureml.ms": mounted_at(arm_app, DATAPLANE_PREFIX)}  # <region>.api.azureml.ms
        loopback = {arm_server.port: (arm_app, certificate), files_server.port: (files_app, None),
                    blob_server.port: (blob_app, certificate), aad_server.port: (aad_app, certificate)}
        try:
            proxy_server = _start_proxy(root, certificate, proxy_port, azure_hosts, loopback)
        except BaseException:  # a busy --proxy-port: stop what is already serving
            for server in servers:
                server.stop()
            raise
        servers.append(proxy_server)
    log.info("emulator serving %s, %s, %s and %s (data in %s)", arm_server.url, context.files_url, context.blob_url,
             context.aad_url, root)
    log.log(logging.INFO if all(sandbox.capabilities()) else logging.WARNING, "%s", sandbox.describe())
    return Emulator(context, servers, temporary, data_dir_lock, proxy_server)


def _start_proxy(root: Path, certificate: tuple, port: int, azure_hosts: dict, loopback: dict):
    """The HTTPS proxy serving ``azure_hosts`` ({host pattern: WSGI app}) and the ``loopback`` endpoints
    ({port: (app, certificate or None)}), with the data directory's CA and the bundle clients trust."""
    from .core.proxy_ca import ProxyCA
    from .proxy import ProxyServer, Routes

    routes = Routes()
    for pattern, app in azure_hosts.items():
        routes.add_azure(pattern, app)
    for loopback_port, (app, loopback_certificate) in loopback.items():
        routes.add_loopback(loopback_port, app, loopback_certificate)
    ca = ProxyCA(root / "tls" / "proxy")
    # The bundle holds the loopback certificate too: a process with HTTPS_PROXY sends https://127.0.0.1 here.
    bundle = ca.write_bundle(root / "tls" / "proxy" / "ca-bundle.pem", certificate[0])
    server = ProxyServer(routes, ca, bundle, port)
    server.serve()
    return server


def _token_verifier(context: Context, opaque_token: str) -> TokenVerifier:
    """One check for every service: the emulator's own token, or a JWT of its Azure AD."""
    aad_backend = context.services["aad"].backend
    return TokenVerifier(opaque_token, aad_backend.signing_key.public_key, aad_backend.tenant_id)
