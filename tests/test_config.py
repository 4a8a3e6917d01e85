"""Configuration loading: the example works as is locally, and each mistake is one clear line."""
from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest

from batchai_quickstart.config import ConfigError, find_config, load_config, warn_if_readable_by_others

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.ini"


def write_config(tmp_path, **changes) -> Path:
    """config.example.ini with ``section__key=value`` changes (None removes the key)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(EXAMPLE)
    for name, value in changes.items():
        section, key = name.split("__")
        if value is None:
            parser.remove_option(section, key)
        else:
            parser.set(section, key, value)
    path = tmp_path / "config.ini"
    with open(path, "w") as f:
        parser.write(f)
    return path


AZURE_VALUES = dict(azure__subscription_id="00000000-0000-0000-0000-000000000000",
                    azure__storage_account_name="mystorage", azure__storage_account_key="a2V5",
                    resources__admin_user_password="Pa55word!")


def test_example_config_loads_on_the_local_target():
    config = load_config(EXAMPLE)
    assert config.target == "local"
    assert (config.resource_group, config.workspace, config.cluster) == ("batchaiquickstartrg", "myworkspace", "mycluster")
    assert (config.share, config.directory) == ("batchaiquickstart", "mnistcntksample")
    assert (config.vm_size, config.node_count) == ("STANDARD_NC6", 1)
    assert config.image == "microsoft/cntk:2.1-gpu-python3.5-cuda8.0-cudnn6.0"
    assert config.admin_user_password == ""  # the placeholder: the local target makes a random one
    assert config.data_dir == ROOT / ".emulator-data"


def test_overrides_win():
    config = load_config(EXAMPLE, epochs=7, nodes=3, vm_priority="lowpriority")
    assert (config.epochs, config.node_count, config.vm_priority) == (7, 3, "lowpriority")


def test_vm_priority_is_dedicated_by_default_and_read_from_resources(tmp_path):
    assert load_config(EXAMPLE).vm_priority == "dedicated"
    assert load_config(write_config(tmp_path, resources__vm_priority="lowpriority")).vm_priority == "lowpriority"
    # A config.ini written before the key existed keeps the original's dedicated nodes.
    assert load_config(write_config(tmp_path, resources__vm_priority=None)).vm_priority == "dedicated"


@pytest.mark.parametrize("value", ["spot", "LowPriority", ""])
def test_vm_priority_other_than_dedicated_or_lowpriority_is_a_one_line_error(tmp_path, value):
    with pytest.raises(ConfigError, match=r"\[resources\] vm_priority") as info:
        load_config(write_config(tmp_path, resources__vm_priority=value))
    assert "\n" not in str(info.value)
    if value:
        assert "must be 'dedicated' or 'lowpriority', not {!r}".format(value) in str(info.value)


@pytest.mark.parametrize("nodes", [0, 101])
def test_nodes_out_of_range_is_a_one_line_error(nodes):
    with pytest.raises(ConfigError, match=r"^--nodes must be from 1 to 100 "):
        load_config(EXAMPLE, nodes=nodes)


def test_placeholder_on_the_azure_target_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"\[resources\] admin_user_password is still FILL-IN-HERE") as info:
        load_config(EXAMPLE, target="azure")
    assert "\n" not in str(info.value)
    path = write_config(tmp_path, resources__admin_user_password="Pa55word!")
    with pytest.raises(ConfigError, match=r"\[azure\] subscription_id is still FILL-IN-HERE: put your value there"):
        load_config(path, target="azure")


def test_azure_target_with_values_uses_default_credential_when_principal_empty(tmp_path):
    config = load_config(write_config(tmp_path, **AZURE_VALUES), target="azure")
    assert not config.uses_service_principal
    assert config.storage_account_name == "mystorage"


def test_service_principal_needs_all_three_values(tmp_path):
    path = write_config(tmp_path, azure__client_id="abc", **AZURE_VALUES)
    with pytest.raises(ConfigError, match=r"\[azure\] secret is empty"):
        load_config(path, target="azure")


def test_service_principal_tenant_comes_from_token_uri(tmp_path):
    path = write_config(tmp_path, azure__client_id="abc", azure__secret="s3cret",
                        azure__token_uri="https://login.microsoftonline.com/my-tenant/oauth2/token", **AZURE_VALUES)
    config = load_config(path, target="azure")
    assert config.tenant_id == "my-tenant"
    assert "s3cret" not in repr(config) and "Pa55word" not in repr(config)


def test_missing_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"\[resources\] cluster is missing"):
        load_config(write_config(tmp_path, resources__cluster=None))


@pytest.mark.parametrize("key,value,fragment", [
    ("resources__cluster", "my cluster!", r"\[resources\] cluster = 'my cluster!' is not a valid name"),
    ("resources__workspace", "x" * 65, r"\[resources\] workspace"),
    ("resources__resource_group", "bad/group", r"\[resources\] resource_group"),
    ("resources__share", "Upper_Case", r"\[resources\] share"),
    ("job__job", "job.1", r"\[job\] job"),
    ("resources__node_count", "zero", r"\[resources\] node_count = 'zero' must be a whole number"),
    ("job__epochs", "0", r"\[job\] epochs"),
    ("quickstart__target", "cloud", r"target must be 'local' or 'azure'"),
])
def test_invalid_values_are_named(tmp_path, key, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(write_config(tmp_path, **{key: value}))


def test_find_config_prefers_explicit_then_config_ini(tmp_path):
    assert find_config(None, ROOT) in (ROOT / "config.ini", EXAMPLE)
    with pytest.raises(ConfigError, match="no such configuration file"):
        find_config(str(tmp_path / "nope.ini"), ROOT)
    (tmp_path / "config.example.ini").write_text("")
    assert find_config(None, tmp_path) == tmp_path / "config.example.ini"
    (tmp_path / "config.ini").write_text("")
    assert find_config(None, tmp_path) == tmp_path / "config.ini"


def test_warns_when_config_is_readable_by_others(tmp_path, capsys):
    path = write_config(tmp_path)
    os.chmod(path, 0o644)
    warn_if_readable_by_others(path)
    assert "readable by other users" in capsys.readouterr().err
    os.chmod(path, 0o600)
    warn_if_readable_by_others(path)
    assert capsys.readouterr().err == ""
