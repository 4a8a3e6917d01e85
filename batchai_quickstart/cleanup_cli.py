"""The command line both cleanup scripts share: read the configuration, connect, delete what a
``--keep`` run left behind, and report a failure as one ``error:`` line (exit status 2)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Optional

from azure.core.exceptions import AzureError

from .config import ConfigError, find_config


def run_cleanup(argv: Optional[list], description: str, root: Path, load_config: Callable, create_clients: Callable,
                delete: Callable, describe_error: Callable[[Exception], str], what: str) -> int:
    """``delete(clients, config)`` with the clients ``create_clients(config)`` makes for the
    configuration ``load_config`` reads (``--config``, else the one in ``root``; ``--target``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", help="configuration file (default: config.ini, else config.example.ini)")
    parser.add_argument("--target", choices=("local", "azure"), help="override [quickstart] target")
    args = parser.parse_args(argv)
    logging.getLogger("azure").setLevel(logging.ERROR)  # keep failures to the one line below
    try:
        config = load_config(find_config(args.config, root), target=args.target)
        clients = create_clients(config)
        try:
            delete(clients, config)
        finally:
            clients.close()
    except (ConfigError, OSError, ValueError) as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    except AzureError as exc:
        print("error: {}".format(describe_error(exc)), file=sys.stderr)
        return 2
    print("Nothing of the {} is left in {} ({}).".format(what, config.resource_group, config.target))
    return 0
