"""Virtual environments with the old Azure SDK stacks, made once by the tests and reused.

The older Batch AI clients (azure-mgmt-batchai 0.2.0 and 1.0.1 on msrest/msrestazure) cannot share
the project's venv with azure-mgmt-batchai 7.0.0, so each stack gets its own venv under
``.cache/legacy-sdks/<name>/`` (git-ignored), built with ``python -m venv`` + pip on first use under
a file lock (parallel test processes build it once). The README's install commands and the main
venv are never touched. When pip cannot install a stack, the tests that need it are skipped with
pip's last lines as the reason.

Use: ``python = legacy_python("2017")``, then run client scripts with that interpreter as
subprocesses (``run_client``).
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "legacy-sdks"

#: The stacks, pinned as the 2017 tutorial's readers and the 2018-03 scripts resolved them
#: (reference real-hostnames.md section 3; batchai-api-versions.md section 0).
STACKS = {
    "2017": [
        "azure-mgmt-batchai==0.2.0", "azure-mgmt-resource==1.2.2", "azure-storage-file==2.1.0",
        "azure-common==1.1.28", "msrestazure==0.4.34", "msrest==0.7.1", "adal==1.2.7",
    ],
    "2018-03": [
        "azure-mgmt-batchai==1.0.1", "azure-mgmt-resource==2.0.0", "azure-common==1.1.28",
        "msrestazure==0.6.4.post1", "msrest==0.7.1", "adal==1.2.7",
    ],
}
#: Written last, so a venv whose install was cut short is rebuilt.
READY_MARK = "stack-ready.txt"
INSTALL_TIMEOUT_SECONDS = 900


def _venv_python(home: Path) -> Path:
    return home / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def legacy_python(name: str) -> str:
    """The interpreter of stack ``name``'s venv, built on first use; skips the test when pip fails."""
    requirements = STACKS[name]
    home = CACHE / name
    CACHE.mkdir(parents=True, exist_ok=True)
    mark = home / READY_MARK
    wanted = "\n".join(requirements) + "\n"
    with open(CACHE / (name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if mark.is_file() and mark.read_text() == wanted and _venv_python(home).is_file():
            return str(_venv_python(home))
        problem = _build(home, requirements)
        if problem:
            pytest.skip("the {} SDK stack cannot be installed with pip ({}): {}".format(name, ", ".join(requirements),
                                                                                       problem))
        mark.write_text(wanted)
    return str(_venv_python(home))


def _build(home: Path, requirements: list) -> Optional[str]:
    """Make the venv and install the stack; None when it worked, else why not (pip's last lines)."""
    try:
        venv.EnvBuilder(clear=True, with_pip=True).create(str(home))
    except (OSError, subprocess.CalledProcessError) as exc:
        return "python -m venv failed: {}".format(exc)
    command = [str(_venv_python(home)), "-m", "pip", "install", "--quiet", "--no-input", *requirements]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return "pip took longer than {} s".format(INSTALL_TIMEOUT_SECONDS)
    if result.returncode != 0:
        return " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
    return None


def run_client(python: str, script: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``script`` (Python source) with a legacy interpreter; fails the test with its output on error."""
    full_env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "CURL_CA_BUNDLE"):
        full_env.pop(name, None)  # these clients talk to the emulator directly on loopback
    full_env.update(env)
    result = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=timeout, env=full_env)
    if result.returncode != 0:
        pytest.fail("legacy client failed (exit {}):\n--- stdout\n{}\n--- stderr\n{}".format(
            result.returncode, result.stdout[-4000:], result.stderr[-4000:]), pytrace=False)
    return result


if __name__ == "__main__":  # prebuild: python tests/legacy_sdks.py 2017 2018-03
    for stack in sys.argv[1:] or list(STACKS):
        print(stack, legacy_python(stack))
