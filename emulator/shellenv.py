"""``eval "$(python -m emulator.shellenv --data-dir DIR)"``: point this shell's Azure clients at the emulator.

Prints the POSIX shell lines that send every https request of the processes started from this shell
through the emulator's HTTPS proxy (``python -m emulator --proxy --data-dir DIR``, running) and make them
trust the proxy's CA bundle:

* ``HTTPS_PROXY`` and ``https_proxy`` (lower case wins in Python's urllib and requests when both are set);
* ``REQUESTS_CA_BUNDLE`` (requests: the Azure SDKs, msrestazure, adal, MSAL, the Azure CLI) and
  ``SSL_CERT_FILE`` (OpenSSL's default: aiohttp async SDKs, urllib, .NET on Linux), replacing what the
  machine may preset;
* ``unset CURL_CA_BUNDLE`` (requests falls back to it) and ``unset NO_PROXY no_proxy``, so that no Azure
  hostname bypasses the proxy (loopback is served by the proxy too).

``--undo`` prints the lines that unset them all again. ``--json FILE`` (``-`` for stdin) reads the JSON line
``python -m emulator --proxy`` printed instead of ``--data-dir``. See docs/any-azure-client.md.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Optional

#: In the data directory while an emulator with its proxy runs: {"https_proxy": ..., "proxy_ca_bundle": ...}.
SETTINGS_FILE = "proxy.json"
EXPORTED = ("HTTPS_PROXY", "https_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
UNSET = ("CURL_CA_BUNDLE", "NO_PROXY", "no_proxy")


def write_settings(data_dir: Path, https_proxy: str, ca_bundle: str) -> Path:
    from .core.datadir import create_private_file

    path = Path(data_dir) / SETTINGS_FILE
    create_private_file(path)  # owner-only, like everything in the data directory
    path.write_text(json.dumps({"https_proxy": https_proxy, "proxy_ca_bundle": ca_bundle}) + "\n")
    return path


def export_lines(https_proxy: str, ca_bundle: str) -> str:
    """The shell lines (see the module's docstring)."""
    proxy, bundle = shlex.quote(https_proxy), shlex.quote(ca_bundle)
    values = {"HTTPS_PROXY": proxy, "https_proxy": proxy, "REQUESTS_CA_BUNDLE": bundle, "SSL_CERT_FILE": bundle}
    lines = ["export {}={}".format(name, values[name]) for name in EXPORTED]
    lines.append("unset " + " ".join(UNSET))
    return "\n".join(lines) + "\n"


def undo_lines() -> str:
    return "unset " + " ".join(EXPORTED) + "\n"


def _settings(args: argparse.Namespace) -> dict:
    if args.json:
        text = sys.stdin.readline() if args.json == "-" else Path(args.json).read_text().splitlines()[0]
        source = "the JSON line in " + ("stdin" if args.json == "-" else args.json)
    else:
        path = Path(args.data_dir) / SETTINGS_FILE
        source = str(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ValueError("no emulator proxy is running on {0}: start `python -m emulator --proxy --data-dir {0}` "
                             "first".format(args.data_dir)) from None
    try:
        settings = json.loads(text)
    except ValueError:
        raise ValueError("{} is not the emulator's JSON".format(source)) from None
    if not isinstance(settings, dict) or not settings.get("https_proxy") or not settings.get("proxy_ca_bundle"):
        raise ValueError("{} has no https_proxy: start the emulator with --proxy".format(source))
    return settings


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.shellenv", description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--data-dir", help="the data directory of a running `python -m emulator --proxy`")
    where.add_argument("--json", metavar="FILE", help="the JSON line `python -m emulator --proxy` printed ('-': stdin)")
    parser.add_argument("--undo", action="store_true", help="print the lines that unset the variables instead")
    args = parser.parse_args(argv)
    if args.undo:
        sys.stdout.write(undo_lines())
        return 0
    if not args.data_dir and not args.json:
        parser.error("give --data-dir DIR (a running emulator's) or --json FILE")
    try:
        settings = _settings(args)
    except (OSError, ValueError) as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    sys.stdout.write(export_lines(settings["https_proxy"], settings["proxy_ca_bundle"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
