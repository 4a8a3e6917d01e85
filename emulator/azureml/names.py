"""Azure ML's naming rules, checked where a request names something: one 400 (``UserError``, naming the
property) for a name the service would refuse, before any of it reaches the database or the disk.

The rules are the service's (REST spec 2024-04-01-preview resource name patterns, azure-ai-ml 1.35.2),
with the same relaxations as batchai_quickstart/azureml_config.py where the service is known to accept more:
- jobs: ``^[a-zA-Z0-9][a-zA-Z0-9\\-_]{0,254}$`` (the spec's pattern);
- computes: ``^[a-zA-Z](?![a-zA-Z0-9-]*-\\d+$)[a-zA-Z0-9\\-]{2,23}$`` (the spec's pattern);
- workspaces: ``^[a-zA-Z0-9][a-zA-Z0-9_-]{0,32}$``: the workspace data plane's pattern (``{2,32}``), shorter
  names allowed because the Resource Manager spec sets no minimum;
- asset containers (codes, data, environments, models) and experiments: letters, digits, ``-``, ``_`` and
  ``.``, starting with a letter or digit, at most 255 characters (the spec leaves ``.`` out, but curated
  environments such as ``AzureML-acpt-pytorch-2.8-cuda12.6`` have it);
- command job input and output names: ``^[a-zA-Z_]+[a-zA-Z0-9_]*$`` (the SDK's
  ``validate_key_contains_allowed_characters``), at most 255 characters here;
- asset versions have no pattern in the spec: here 1-255 characters without ``/``, ``\\`` or control
  characters, and neither ``.`` nor ``..``.
"""
from __future__ import annotations

import re
from typing import Any, Optional

from . import exceptions as errors

# Patterns are used with fullmatch: "$" would also match before a final newline.
WORKSPACE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,32}")
COMPUTE = re.compile(r"[a-zA-Z](?![a-zA-Z0-9-]*-\d+$)[a-zA-Z0-9-]{2,23}")
JOB = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}")
ASSET = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}")  # asset containers and experiments
IO_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,254}")
VERSION = re.compile(r"(?!\.{1,2}$)[^/\\\x00-\x1f\x7f]{1,255}")

RULES = {
    "workspace": (WORKSPACE, "start with a letter or digit and have at most 33 letters, digits, '_' or '-'"),
    "compute": (COMPUTE, "start with a letter, have 3-24 letters, digits or '-', and not end in '-' and a number"),
    "job": (JOB, "start with a letter or digit and have at most 255 letters, digits, '_' or '-'"),
    "asset": (ASSET, "start with a letter or digit and have at most 255 letters, digits, '_', '-' or '.'"),
    "version": (VERSION, "have 1-255 characters, none of them '/', '\\' or a control character, and not be "
                         "'.' or '..'"),
    "experiment": (ASSET, "start with a letter or digit and have at most 255 letters, digits, '_', '-' or '.'"),
    "io": (IO_NAME, "be made of letters, digits and '_', not start with a digit, and have at most 255 characters"),
}

# URL parameter -> the rule it follows (routes in urls.py).
URL_PARAMETERS = {"workspace": "workspace", "compute": "compute", "job": "job", "name": "asset",
                  "version": "version"}


def check(rule: str, value: Any, prop: str) -> str:
    """``value`` if it follows ``rule``; else a 400 naming ``prop`` (e.g. 'properties.inputs')."""
    pattern, wording = RULES[rule]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise errors.invalid_request("{} {!r} is not a valid name: it must {}.".format(prop, value, wording))
    return value


def check_url(params: dict) -> None:
    """The names a write request's URL carries (workspace, compute, job, asset name and version)."""
    for parameter, rule in URL_PARAMETERS.items():
        if parameter in params:
            check(rule, params[parameter], "The {} name".format(parameter) if parameter != "name" else
                  "The asset name")


def check_deployment(body: Any) -> None:
    """A workspace template deployment: the workspaceName parameter names the workspace it creates."""
    properties = body.get("properties") if isinstance(body, dict) else None
    parameters = properties.get("parameters") if isinstance(properties, dict) else None
    value = parameters.get("workspaceName") if isinstance(parameters, dict) else None
    if isinstance(value, dict) and value.get("value"):
        check("workspace", value["value"], "properties.parameters.workspaceName")


def check_job(body: Any) -> None:
    """A command job's experiment name and the names of its inputs and outputs (each becomes a directory)."""
    properties: Optional[dict] = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(properties, dict):
        return  # the body's shape is checked elsewhere
    if properties.get("experimentName") is not None:
        check("experiment", properties["experimentName"], "properties.experimentName")
    for kind in ("inputs", "outputs"):
        named = properties.get(kind)
        if isinstance(named, dict):
            for key in named:
                check("io", key, "properties.{} key".format(kind))
