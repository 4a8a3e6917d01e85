#!/usr/bin/env python3
"""Delete what a ``quickstart.py --keep`` run left behind, by the names in the configuration.

Usage: python scripts/cleanup.py [--config PATH] [--target local|azure]
On the local target it starts the emulator on the configured data directory, so the kept
resources (and any job still queued there) are found and deleted.
"""
from __future__ import annotations

import sys
from pathlib import Path

from batchai_quickstart import steps
from batchai_quickstart.azure_errors import describe_azure_error
from batchai_quickstart.cleanup_cli import run_cleanup
from batchai_quickstart.clients import create_clients
from batchai_quickstart.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    return run_cleanup(argv, __doc__.splitlines()[0], ROOT, load_config, create_clients,
                       lambda clients, config: steps.delete_quickstart_resources(clients, config, report=print),
                       describe_azure_error, "the quickstart")


if __name__ == "__main__":
    sys.exit(main())
