"""``python -m batchai_quickstart.emulator_config EMULATOR.json [--config config.ini]``: the [azure] section
for the emulator, so that ``--target azure`` runs offline through its proxy (docs/azure-target.md).

Reads the JSON line ``python -m emulator --proxy`` printed and writes its service principal, subscription and
storage account into the config file (a copy of config.example.ini when there is none yet), keeping every other
line and comment. A ``[resources] admin_user_password`` still ``FILL-IN-HERE`` becomes a random one, since the
azure target requires one. ``[quickstart] target`` is left alone: pass ``--target azure``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Optional

from .config import PLACEHOLDER

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.ini"
_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY = re.compile(r"^\s*([\w.-]+)\s*[=:]")


def azure_settings(described: dict) -> dict:
    """{(section, key): value} of the config for the emulator that ``described`` (its JSON line) describes."""
    missing = [k for k in ("client_id", "client_secret", "tenant_id", "subscription_id", "account_name",
                           "account_key", "https_proxy") if not described.get(k)]
    if missing:
        raise ValueError("the emulator's JSON has no {}: start it with --proxy".format(", ".join(missing)))
    return {
        ("azure", "client_id"): described["client_id"],
        ("azure", "secret"): described["client_secret"],
        ("azure", "token_uri"): "https://login.microsoftonline.com/{}/oauth2/token".format(described["tenant_id"]),
        ("azure", "subscription_id"): described["subscription_id"],
        ("azure", "storage_account_name"): described["account_name"],
        ("azure", "storage_account_key"): described["account_key"],
    }


def write_config(described: dict, path: Path, extra: Optional[dict] = None) -> Path:
    """Set the emulator's [azure] values (and ``extra`` {(section, key): value}) in ``path``, owner-only."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.is_file() else EXAMPLE.read_text(encoding="utf-8")
    values = {**azure_settings(described), **(extra or {})}
    lines, section, done = [], None, set()
    for line in text.splitlines():
        header, key = _SECTION.match(line), _KEY.match(line)
        if header:
            section = header.group(1).strip()
        elif key and (section, key.group(1)) in values:
            name = key.group(1)
            value = values[(section, name)]
            if (section, name) == ("resources", "admin_user_password") and value is None:
                current = line.split("=", 1)[-1].strip()
                value = current if current and PLACEHOLDER not in current else secrets.token_urlsafe(16)
            line = "{} = {}".format(name, value)
            done.add((section, name))
        lines.append(line)
    left = [item for item in values if item not in done]
    if left:
        raise ValueError("{} has no {}: start from config.example.ini".format(
            path, ", ".join("[{}] {}".format(*item) for item in left)))
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # it holds the emulator's secrets
        f.write("\n".join(lines) + "\n")
    return path


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batchai_quickstart.emulator_config",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("json", help="the JSON line `python -m emulator --proxy` printed, in a file ('-': stdin)")
    parser.add_argument("--config", default="config.ini", help="the config file to write (default: config.ini)")
    args = parser.parse_args(argv)
    try:
        text = sys.stdin.readline() if args.json == "-" else Path(args.json).read_text().splitlines()[0]
        try:
            described = json.loads(text)
        except ValueError:
            described = None
        if not isinstance(described, dict):
            raise ValueError("{} is not the emulator's JSON line".format(args.json))
        # None: keep a password already set, else a random one (the azure target requires one).
        path = write_config(described, Path(args.config), {("resources", "admin_user_password"): None})
    except (OSError, ValueError, IndexError) as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    print("Wrote the emulator's service principal and storage account to {}".format(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
