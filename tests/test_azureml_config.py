"""The [azureml] configuration: the example works as is locally, and each mistake is one clear line."""
from __future__ import annotations

import configparser

import pytest

from batchai_quickstart.azureml_config import ConfigError, load_azureml_config

from test_config import EXAMPLE, write_config


def test_example_config_loads_on_the_local_target():
    config = load_azureml_config(EXAMPLE)
    assert config.target == "local"
    assert (config.resource_group, config.location, config.workspace, config.compute) == (
        "batchaiquickstartrg", "eastus", "myamlworkspace", "gpu-cluster")
    assert (config.vm_size, config.max_nodes, config.idle_seconds) == ("Standard_NC4as_T4_v3", 2, 120)
    assert config.environment == "AzureML-acpt-pytorch-2.8-cuda12.6@latest"
    assert (config.experiment, config.data_asset, config.epochs, config.nodes) == ("mnist-quickstart", "mnist-cntk",
                                                                                   2, 1)


def test_command_line_overrides_target_epochs_and_nodes(tmp_path):
    config = load_azureml_config(write_config(tmp_path, azure__subscription_id="sub"), target="azure", epochs=5,
                                 nodes=2)
    assert (config.target, config.epochs, config.nodes, config.subscription_id) == ("azure", 5, 2, "sub")
    assert not config.uses_service_principal


def test_service_principal_is_read_with_its_tenant(tmp_path):
    path = write_config(tmp_path, azure__subscription_id="sub", azure__client_id="app", azure__secret="s3cret",
                        azure__token_uri="https://login.microsoftonline.com/my-tenant/oauth2/token")
    config = load_azureml_config(path, target="azure")
    assert (config.client_id, config.tenant_id, config.secret) == ("app", "my-tenant", "s3cret")
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize("changes,target,expected", [
    ({}, "azure", "[azure] subscription_id is still FILL-IN-HERE"),
    ({"azureml__workspace": "FILL-IN-HERE"}, None, "[azureml] workspace is still FILL-IN-HERE"),
    ({"azureml__compute": None}, None, "[azureml] compute is missing"),
    ({"azureml__compute": "gpu-1"}, None, "[azureml] compute = 'gpu-1' is not a valid name"),
    ({"azureml__workspace": "a"}, None, "[azureml] workspace = 'a' is not a valid name"),
    ({"azureml__max_nodes": "0"}, None, "[azureml] max_nodes = '0' must be a whole number from 1 to 100"),
    ({"azureml__environment": "pytorch"}, None, "[azureml] environment = 'pytorch' is not a valid name"),
    ({"azureml__environment": "azureml:pt-env@latest"}, None, "[azureml] environment = 'azureml:pt-env@latest'"),
    ({"azureml__vm_size": "NC 6"}, None, "[azureml] vm_size = 'NC 6' is not a valid name"),
    ({"azure__subscription_id": "sub", "azure__client_id": "app"}, "azure", "[azure] secret is empty"),
])
def test_mistakes_are_one_line(tmp_path, changes, target, expected):
    with pytest.raises(ConfigError) as info:
        load_azureml_config(write_config(tmp_path, **changes), target=target)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_nodes_beyond_max_nodes_are_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_azureml_config(EXAMPLE, nodes=3)
    assert str(info.value) == "--nodes 3 must be from 1 to [azureml] max_nodes = 2 of {}".format(EXAMPLE)


def test_missing_section_says_where_to_look(tmp_path):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(EXAMPLE)
    parser.remove_section("azureml")
    path = tmp_path / "config.ini"
    with open(path, "w") as f:
        parser.write(f)
    with pytest.raises(ConfigError) as info:
        load_azureml_config(path)
    assert "section [azureml] is missing (see config.example.ini)" in str(info.value)
