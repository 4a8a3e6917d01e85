#!/usr/bin/env python3
"""Delete what a ``quickstart_azureml.py --keep`` run left behind, by the names in the configuration.

Usage: python scripts/cleanup_azureml.py [--config PATH] [--target local|azure]
On the local target it starts the emulator on the configured data directory, so the kept
resources are found and deleted.
"""
from __future__ import annotations

import sys
from pathlib import Path

from batchai_quickstart import azureml_steps as steps
from batchai_quickstart.azureml_clients import create_azureml_clients
from batchai_quickstart.azureml_config import load_azureml_config
from batchai_quickstart.azureml_errors import describe_azureml_error
from batchai_quickstart.cleanup_cli import run_cleanup

ROOT = Path(__file__).resolve().parents[1]


def _delete(clients, config) -> None:
    steps.delete_azureml_resources(clients.ml, clients.resource, config.resource_group, config.workspace,
                                   config.compute, report=print)


def main(argv=None) -> int:
    # describe_azureml_error also covers azure-ai-ml's MlException, an AzureError too.
    return run_cleanup(argv, __doc__.splitlines()[0], ROOT, load_azureml_config, create_azureml_clients, _delete,
                       describe_azureml_error, "the Azure ML quickstart")


if __name__ == "__main__":
    sys.exit(main())
