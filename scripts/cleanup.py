#!/usr/bin/env python3
"""Delete what a ``quickstart.py --keep`` run left behind, by the names in the configuration.

Usage: python scripts/cleanup.py [--config PATH] [--target local|azure]
On the local target it starts the emulator on the configured data directory, so the kept
resources (and any job still queued there) are found and deleted.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from azure.core.exceptions import AzureError

from batchai_quickstart import steps
from batchai_quickstart.azure_errors import describe_azure_error
from batchai_quickstart.clients import create_clients
from batchai_quickstart.config import ConfigError, find_config, load_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="configuration file (default: config.ini, else config.example.ini)")
    parser.add_argument("--target", choices=("local", "azure"), help="override [quickstart] target")
    args = parser.parse_args(argv)
    logging.getLogger("azure").setLevel(logging.ERROR)  # keep failures to the one line below
    try:
        config = load_config(find_config(args.config, ROOT), target=args.target)
        clients = create_clients(config)
        try:
            steps.delete_quickstart_resources(clients, config, report=print)
        finally:
            clients.close()
    except (ConfigError, OSError, ValueError) as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    except AzureError as exc:
        print("error: {}".format(describe_azure_error(exc)), file=sys.stderr)
        return 2
    print("Nothing of the quickstart is left in {} ({}).".format(config.resource_group, config.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
