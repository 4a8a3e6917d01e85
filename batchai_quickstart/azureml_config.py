"""The settings of quickstart_azureml.py: the [azureml] section plus what it shares with quickstart.py.

Read with the same checks as config.py (placeholders, names, numbers), each problem one ConfigError line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .config import (ConfigError, ServicePrincipalSettings,  # noqa: F401 (ConfigError re-exported)
                     open_config, read_service_principal)

# Azure Machine Learning name rules: workspaces 3-33 letters, digits, '-' or '_' starting with a letter or
# digit; compute 3-24 letters, digits or '-' starting with a letter, not ending in '-<digits>'; asset and
# experiment names 1-255 letters, digits, '-', '_' or '.', starting with a letter or digit.
_WORKSPACE_NAME = re.compile(r"^[a-zA-Z0-9][-\w]{2,32}$")
_COMPUTE_NAME = re.compile(r"^[a-zA-Z](?!.*-\d+$)[a-zA-Z0-9-]{2,23}$")
_ASSET_NAME = re.compile(r"^[a-zA-Z0-9][-\w.]{0,254}$")
_VM_SIZE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{2,63}$")
# NAME@latest or NAME:VERSION; azure-ai-ml 1.35.2 does not strip "azureml:" before "@latest" (a 404).
_ENVIRONMENT = re.compile(r"^(?:azureml:[a-zA-Z0-9][-\w.]{0,254}:[-\w.]+"
                          r"|[a-zA-Z0-9][-\w.]{0,254}(?:@latest|:[-\w.]+))$")


@dataclass
class AzureMLConfig(ServicePrincipalSettings):
    """The settings of one Azure ML quickstart run (see config.example.ini for what each means)."""

    path: Path
    target: str
    resource_group: str
    location: str
    workspace: str
    compute: str
    vm_size: str
    max_nodes: int
    idle_seconds: int
    environment: str
    experiment: str
    data_asset: str
    epochs: int
    nodes: int
    data_dir: Path
    subscription_id: str = ""
    client_id: str = ""
    token_uri: str = ""
    secret: str = field(default="", repr=False)


def load_azureml_config(path: Path, target: Optional[str] = None, epochs: Optional[int] = None,
                        nodes: Optional[int] = None) -> AzureMLConfig:
    """Read ``path``; ``target``, ``epochs`` and ``nodes`` (the command line) override the file."""
    reader, chosen_target = open_config(path, target)
    if epochs is not None and epochs < 1:
        raise ConfigError("--epochs must be at least 1")
    max_nodes = reader.integer("azureml", "max_nodes", 1, 100)
    if nodes is not None and not 1 <= nodes <= max_nodes:
        raise ConfigError("--nodes {} must be from 1 to [azureml] max_nodes = {} of {}".format(nodes, max_nodes, path))
    config = AzureMLConfig(
        path=path,
        target=chosen_target,
        resource_group=reader.resource_group(),
        location=reader.location(),
        workspace=reader.name("azureml", "workspace", _WORKSPACE_NAME,
                              "3-33 letters, digits, '-' or '_', starting with a letter or digit"),
        compute=reader.name("azureml", "compute", _COMPUTE_NAME,
                            "3-24 letters, digits or '-', starting with a letter, not ending in '-' and digits"),
        vm_size=reader.name("azureml", "vm_size", _VM_SIZE, "a VM size such as Standard_NC4as_T4_v3"),
        max_nodes=max_nodes,
        idle_seconds=reader.integer("azureml", "idle_seconds", 0, 7 * 86400),
        environment=reader.name("azureml", "environment", _ENVIRONMENT,
                                "NAME@latest or NAME:VERSION, such as AzureML-acpt-pytorch-2.8-cuda12.6@latest"),
        experiment=reader.name("azureml", "experiment", _ASSET_NAME,
                               "1-255 letters, digits, '-', '_' or '.', starting with a letter or digit"),
        data_asset=reader.name("azureml", "data_asset", _ASSET_NAME,
                               "1-255 letters, digits, '-', '_' or '.', starting with a letter or digit"),
        epochs=epochs if epochs is not None else reader.integer("job", "epochs", 1, 1000),
        nodes=nodes if nodes is not None else 1,
        data_dir=reader.directory("local", "data_dir"),
    )
    if chosen_target == "azure":
        config.subscription_id = reader.get("azure", "subscription_id")
        read_service_principal(reader, config)
    return config
