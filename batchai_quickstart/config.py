"""Reading and checking the quickstart's configuration file.

Every problem is one ``ConfigError`` line naming the file, the section and key, and what to do.
"""
from __future__ import annotations

import configparser
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

PLACEHOLDER = "FILL-IN-HERE"
TARGETS = ("local", "azure")
VM_PRIORITIES = ("dedicated", "lowpriority")

# Name rules of the services (Batch AI 2018-05-01 spec, Resource Manager, Azure Files).
_BATCHAI_NAME = re.compile(r"^[-\w_]{1,64}$")
_RESOURCE_GROUP_NAME = re.compile(r"^[-\w\._\(\)]{1,90}$")
_SHARE_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_DIRECTORY_NAME = re.compile(r'^[^"\\/:|<>*?]{1,255}$')
_STORAGE_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")


class ConfigError(ValueError):
    """A problem in the configuration file, as one line that says what to fix."""


class ServicePrincipalSettings:
    """What a configuration with ``client_id`` and ``token_uri`` (the [azure] section) derives from them."""

    client_id: str
    token_uri: str

    @property
    def tenant_id(self) -> str:
        """The tenant, from the original's ``token_uri`` (``https://login.microsoftonline.com/<tenant>/oauth2/token``)."""
        parts = [p for p in self.token_uri.split("/") if p]
        return parts[2] if len(parts) >= 3 else ""

    @property
    def uses_service_principal(self) -> bool:
        return bool(self.client_id)


@dataclass
class QuickstartConfig(ServicePrincipalSettings):
    """The settings of one quickstart run (see config.example.ini for what each means)."""

    path: Path
    target: str
    # [resources]
    resource_group: str
    location: str
    workspace: str
    share: str
    directory: str
    cluster: str
    vm_size: str
    node_count: int
    admin_user_name: str
    vm_priority: str
    # [job]
    experiment: str
    job: str
    image: str
    epochs: int
    # [local]
    data_dir: Path
    # [azure]
    subscription_id: str = ""
    client_id: str = ""
    token_uri: str = ""
    storage_account_name: str = ""
    admin_user_password: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    storage_account_key: str = field(default="", repr=False)


def find_config(explicit: Optional[str], here: Path) -> Path:
    """``--config PATH``, else ``config.ini``, else ``config.example.ini`` (next to the quickstart)."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError("{}: no such configuration file".format(path))
        return path
    for name in ("config.ini", "config.example.ini"):
        if (here / name).is_file():
            return here / name
    raise ConfigError("no configuration file: copy config.example.ini to config.ini or pass --config PATH")


def load_config(path: Path, target: Optional[str] = None, epochs: Optional[int] = None,
                nodes: Optional[int] = None, vm_priority: Optional[str] = None) -> QuickstartConfig:
    """Read ``path`` and check every value; ``target``, ``epochs``, ``nodes`` and ``vm_priority`` override the file's."""
    reader, chosen_target = open_config(path, target)
    on_azure = chosen_target == "azure"
    config = QuickstartConfig(
        path=path,
        target=chosen_target,
        resource_group=reader.resource_group(),
        location=reader.location(),
        workspace=reader.name("resources", "workspace", _BATCHAI_NAME, "1-64 letters, digits, '-' or '_'"),
        share=reader.name("resources", "share", _SHARE_NAME,
                          "3-63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit"),
        directory=reader.name("resources", "directory", _DIRECTORY_NAME, "1-255 characters without \" \\ / : | < > * ?"),
        cluster=reader.name("resources", "cluster", _BATCHAI_NAME, "1-64 letters, digits, '-' or '_'"),
        vm_size=reader.get("resources", "vm_size"),
        node_count=nodes if nodes is not None else reader.integer("resources", "node_count", 1, 100),
        admin_user_name=reader.name("resources", "admin_user_name", re.compile(r"^[a-zA-Z][-\w.]{0,31}$"),
                                    "a user name of 1-32 letters, digits, '-', '_' or '.'"),
        vm_priority=vm_priority or reader.choice("resources", "vm_priority", VM_PRIORITIES, default="dedicated"),
        admin_user_password=reader.get("resources", "admin_user_password", required=on_azure),
        experiment=reader.name("job", "experiment", _BATCHAI_NAME, "1-64 letters, digits, '-' or '_'"),
        job=reader.name("job", "job", _BATCHAI_NAME, "1-64 letters, digits, '-' or '_'"),
        image=reader.get("job", "image"),
        epochs=epochs if epochs is not None else reader.integer("job", "epochs", 1, 1000),
        data_dir=reader.directory("local", "data_dir"),
    )
    if epochs is not None and epochs < 1:
        raise ConfigError("--epochs must be at least 1")
    if nodes is not None and not 1 <= nodes <= 100:
        raise ConfigError("--nodes must be from 1 to 100 (a Batch AI cluster has at most 100 nodes)")
    if config.vm_priority not in VM_PRIORITIES:
        raise ConfigError("the VM priority must be 'dedicated' or 'lowpriority', not {!r}".format(config.vm_priority))
    if on_azure:
        _read_azure_section(reader, config)
    return config


def open_config(path: Path, target: Optional[str] = None) -> tuple["_Reader", str]:
    """A reader of ``path`` and the target it runs on (``target``, the command line's, wins)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except (OSError, configparser.Error) as exc:
        raise ConfigError("{}: cannot read: {}".format(path, str(exc).splitlines()[0])) from None
    reader = _Reader(parser, path)
    chosen_target = target or reader.get("quickstart", "target")
    if chosen_target not in TARGETS:
        raise ConfigError("{}: [quickstart] target must be 'local' or 'azure', not {!r}".format(path, chosen_target))
    return reader, chosen_target


def _read_azure_section(reader: "_Reader", config: QuickstartConfig) -> None:
    config.subscription_id = reader.get("azure", "subscription_id")
    config.storage_account_name = reader.name("azure", "storage_account_name", _STORAGE_ACCOUNT_NAME,
                                              "3-24 lower-case letters and digits")
    config.storage_account_key = reader.get("azure", "storage_account_key")
    read_service_principal(reader, config)


def read_service_principal(reader: "_Reader", config) -> None:
    """[azure] client_id, secret and token_uri into ``config`` (shared with azureml_config.py)."""
    # The service principal is optional: all three empty means DefaultAzureCredential.
    principal = {key: reader.get("azure", key, required=False) for key in ("client_id", "secret", "token_uri")}
    if any(principal.values()):
        for key, value in principal.items():
            if not value:
                raise ConfigError("{}: [azure] {} is empty: set client_id, secret and token_uri together, "
                                  "or leave all three empty to use DefaultAzureCredential".format(config.path, key))
    config.client_id, config.secret, config.token_uri = principal["client_id"], principal["secret"], principal["token_uri"]
    if config.client_id and not config.tenant_id:
        raise ConfigError("{}: [azure] token_uri must look like https://login.microsoftonline.com/<tenant>/oauth2/token"
                          .format(config.path))


class _Reader:
    """Typed access to the parsed file, with errors that name the file, section and key."""

    def __init__(self, parser: configparser.ConfigParser, path: Path) -> None:
        self.parser, self.path = parser, path

    def get(self, section: str, key: str, required: bool = True) -> str:
        if not self.parser.has_section(section):
            raise ConfigError("{}: section [{}] is missing (see config.example.ini)".format(self.path, section))
        if not self.parser.has_option(section, key):
            raise ConfigError("{}: [{}] {} is missing (see config.example.ini)".format(self.path, section, key))
        value = self.parser.get(section, key).strip()
        if PLACEHOLDER in value:
            if required:
                raise ConfigError("{}: [{}] {} is still {}: put your value there".format(
                    self.path, section, key, PLACEHOLDER))
            return ""
        if required and not value:
            raise ConfigError("{}: [{}] {} is empty".format(self.path, section, key))
        return value

    def name(self, section: str, key: str, pattern: re.Pattern, rule: str) -> str:
        value = self.get(section, key)
        if not pattern.match(value):
            raise ConfigError("{}: [{}] {} = {!r} is not a valid name: use {}".format(
                self.path, section, key, value, rule))
        return value

    def resource_group(self) -> str:
        """[resources] resource_group, as Resource Manager names groups."""
        return self.name("resources", "resource_group", _RESOURCE_GROUP_NAME,
                         "1-90 letters, digits, '-', '_', '.', '(' or ')'")

    def location(self) -> str:
        """[resources] location, an Azure region."""
        return self.name("resources", "location", re.compile(r"^[a-z0-9]{2,40}$"),
                         "an Azure region in lower case, such as eastus")

    def choice(self, section: str, key: str, choices: tuple, default: str) -> str:
        """One of ``choices``; ``default`` when the key is absent (config files older than the key)."""
        if self.parser.has_section(section) and not self.parser.has_option(section, key):
            return default
        value = self.get(section, key)
        if value not in choices:
            raise ConfigError("{}: [{}] {} must be {}, not {!r}".format(
                self.path, section, key, " or ".join(repr(c) for c in choices), value))
        return value

    def integer(self, section: str, key: str, low: int, high: int) -> int:
        value = self.get(section, key)
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise ConfigError("{}: [{}] {} = {!r} must be a whole number from {} to {}".format(
                self.path, section, key, value, low, high))
        return number

    def directory(self, section: str, key: str) -> Path:
        value = Path(os.path.expanduser(self.get(section, key)))
        return value if value.is_absolute() else (self.path.parent / value)


def warn_if_readable_by_others(path: Path) -> None:
    """config.ini holds secrets on the azure target: say so when other users can read it."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if path.name != "config.example.ini" and mode & (stat.S_IRGRP | stat.S_IROTH):
        print("warning: {} is readable by other users; it may hold secrets: chmod 600 {}".format(path, path),
              file=sys.stderr)
