"""Issue 10, secrets at rest and ownership: the data directory is private to its owner and used by
one emulator at a time."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

import emulator as emulator_package
from emulator.core.datadir import DataDirInUse


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_data_dir_and_its_files_are_owner_only(tmp_path, resource_client, emulator):
    resource_client.resource_groups.create_or_update("rg", {"location": "eastus"})  # the WAL gets written
    root = emulator.data_dir
    assert mode(root) == 0o700
    names = set(os.listdir(root))
    assert {"emulator.db", "emulator.db-wal", "tls", "emulator.lock", "files", "nodes"} <= names
    for name in names:
        path = root / name
        assert mode(path) & 0o077 == 0, (name, oct(mode(path)))
    for name in os.listdir(root / "tls"):
        assert mode(root / "tls" / name) == 0o600, name


def test_an_existing_data_dir_is_made_private_on_start(tmp_path):
    root = tmp_path / "data"
    emu = emulator_package.start(root)
    emu.stop()
    os.chmod(root, 0o755)
    for name in os.listdir(root):
        os.chmod(root / name, 0o755 if (root / name).is_dir() else 0o644)
    os.chmod(root / "tls" / "key.pem", 0o644)
    emu = emulator_package.start(root)
    try:
        assert mode(root) == 0o700
        for name in os.listdir(root):
            assert mode(root / name) & 0o077 == 0, name
        assert mode(root / "tls" / "key.pem") == 0o600
    finally:
        emu.stop()


def test_a_second_emulator_on_the_same_data_dir_is_refused(tmp_path):
    root = tmp_path / "data"
    first = emulator_package.start(root)
    try:
        with pytest.raises(DataDirInUse, match="pid {}".format(os.getpid())):
            emulator_package.start(root)
        result = subprocess.run([sys.executable, "-m", "emulator", "--data-dir", str(root)], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "in use by another emulator (pid {})".format(os.getpid()) in lines[0], lines
        assert first.services["batchai"].backend  # the first one carries on
    finally:
        first.stop()
    second = emulator_package.start(root)  # free again once the first has stopped
    second.stop()
