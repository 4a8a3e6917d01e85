"""``python -m emulator --data-dir DIR``: serve until SIGINT or SIGTERM.

The first line of stdout is one JSON object with the endpoints and credentials
(``arm_url``, ``files_url``, ``blob_url``, ``account_name``, ``account_key``, ``subscription_id``,
``ca_cert``, ``files_connection_string``, ``blob_connection_string``, ``token``, ``data_dir``,
``aad_url``, ``tenant_id``, ``client_id``, ``client_secret``, and with ``--proxy`` ``https_proxy`` and
``proxy_ca_bundle``, else null; see docs/any-azure-client.md).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

from . import start
from .runner.processes import become_subreaper, reap_orphans


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, help="directory holding all state (kept across restarts)")
    parser.add_argument("--arm-port", type=int, default=0, help="https port for Resource Manager and Batch AI")
    parser.add_argument("--files-port", type=int, default=0, help="http port for Azure Files")
    parser.add_argument("--blob-port", type=int, default=0, help="https port for Azure Blob storage")
    parser.add_argument("--aad-port", type=int, default=0, help="https port for the Azure AD token service")
    parser.add_argument("--account-name", help="storage account name (default: kept in the data dir)")
    parser.add_argument("--account-key", default=os.environ.get("EMULATOR_ACCOUNT_KEY"),
                        help="base64 storage account key (or env EMULATOR_ACCOUNT_KEY)")
    parser.add_argument("--token", default=os.environ.get("EMULATOR_TOKEN"),
                        help="bearer token to accept (or env EMULATOR_TOKEN)")
    parser.add_argument("--subscription-id", help="subscription id (default: kept in the data dir)")
    parser.add_argument("--quota", action="append", default=[], metavar="NAME=LIMIT",
                        help="set a Batch AI quota as usages names it, e.g. 'Standard NC Family Cluster "
                             "Dedicated vCPUs=48' (repeatable; kept in the data dir)")
    parser.add_argument("--preemption-rate", type=float, default=0.0, metavar="PER_NODE_HOUR",
                        help="preempt low-priority nodes at random, this many times per node-hour on average "
                             "(their jobs are requeued; default 0: never)")
    parser.add_argument("--preemption-seed", type=int, help="seed of the random preemptions (repeatable runs)")
    parser.add_argument("--proxy", action="store_true",
                        help="also serve an HTTPS proxy for Azure's own hostnames (management.azure.com, "
                             "<account>.file.core.windows.net, ...): see `python -m emulator.shellenv`")
    parser.add_argument("--proxy-port", type=int, default=0, help="port of the HTTPS proxy (default: a free one)")
    parser.add_argument("--log-level", default="WARNING", help="logging level (DEBUG shows each request)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Orphans of jobs (``setsid cmd &``) are re-parented to this process, which reaps them.
    become_subreaper()
    try:
        emulator = start(args.data_dir, args.arm_port, args.files_port, args.account_name,
                         args.account_key, args.token, args.subscription_id, args.blob_port,
                         args.preemption_rate, args.preemption_seed, aad_port=args.aad_port, proxy=args.proxy,
                         proxy_port=args.proxy_port)
    except (OSError, ValueError) as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    try:
        for setting in args.quota:
            name, sep, limit = setting.rpartition("=")
            if not sep or not limit.strip().isdigit():
                raise ValueError("--quota takes NAME=LIMIT with a whole number, not {!r}".format(setting))
            emulator.set_batchai_quota(name.strip(), int(limit))
    except ValueError as exc:
        emulator.stop()
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(json.dumps(emulator.describe()), flush=True)
    try:
        while not stop.wait(0.5):
            reap_orphans()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
