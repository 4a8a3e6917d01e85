"""Environment variables of jobs and setup tasks, and ``$VAR`` expansion the way a node's shell does it."""
from __future__ import annotations

import os
import re
from typing import Iterable

_VARIABLE = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<plain>\w+))")

# A node's job sees a clean environment, not the submitter's: of the emulator's environment only
# what a process needs to run on this host passes (never, say, AZURE_CLIENT_SECRET, or the
# emulator's own EMULATOR_* settings, which may hold its token and account key).
_HOST_NAMES = {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
               "LD_LIBRARY_PATH", "PYTHONPATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"}
_HOST_PREFIXES = ("LC_", "OMP_", "MKL_", "OPENBLAS_", "CUDA_", "NCCL_")


# Emulated nodes share this machine's loopback: torch.distributed's gloo and NCCL would otherwise
# look for the interface of the node's host name (its private IP, which no interface here has).
NODE_NETWORK = {"GLOO_SOCKET_IFNAME": "lo", "NCCL_SOCKET_IFNAME": "lo"}


def threads_per_process(processes: int) -> dict:
    """OMP_NUM_THREADS for a job of ``processes`` processes on this machine, unless the host sets it:
    emulated nodes share its cores, where real nodes each had their own."""
    if processes <= 1 or "OMP_NUM_THREADS" in os.environ:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // processes))}


def expand(text: str, variables: dict) -> str:
    """Replace ``$NAME`` and ``${NAME}`` by their values; unknown names stay as written."""
    def value(match: re.Match) -> str:
        name = match.group("braced") or match.group("plain")
        return variables.get(name, match.group(0))

    return _VARIABLE.sub(value, text)


def host_environment() -> dict:
    """What of the emulator's environment a job inherits: the base of every job's environment."""
    return {name: value for name, value in os.environ.items()
            if name in _HOST_NAMES or name.startswith(_HOST_PREFIXES)}


def user_variables(variables: Iterable[dict], context: dict) -> dict:
    """A job's ``environmentVariables`` with ``$AZ_BATCHAI_*`` (and earlier variables) expanded."""
    result: dict = {}
    for variable in variables or []:
        result[variable["name"]] = expand(variable["value"], {**context, **result})
    return result


def secret_values(secrets: Iterable[dict]) -> dict:
    """``secrets`` as name -> value (values are used as given, never logged)."""
    return {secret["name"]: secret["value"] for secret in secrets or []}


def redact(text: str, secrets: dict) -> str:
    """``text`` with every secret value replaced by ``***``, for logs."""
    for value in sorted(secrets.values(), key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return text
