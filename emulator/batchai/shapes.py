"""Responses in the shape the service sent them for api-version 2018-05-01.

What the backend records is shaped here, last, as the real service's recorded responses show
(tests/emulator/conformance/, from azure-sdk-for-python's Batch AI recordings of June 2018):
clusters carry no ``location``; keys without a value are left out rather than sent as null
(``errors``) or empty (``tags``); Azure file share mounts report the ``fileMode`` and
``directoryMode`` the service filled in (0777); a job the user terminated while it ran reports
``JobTerminated`` and no exit code.
"""
from __future__ import annotations

import copy
import re

from .validation import AUTOSCALE_TARGET

#: What the service filled in for an Azure file share mount that did not say.
_FILE_SHARE_DEFAULTS = {"fileMode": "0777", "directoryMode": "0777"}


def workspace(body: dict) -> dict:
    body = dict(body)
    if not body.get("tags"):
        body.pop("tags", None)
    return body


def experiment(body: dict) -> dict:
    return body


def cluster(body: dict) -> dict:
    body = copy.deepcopy(body)
    body.pop("location", None)  # 2018-05-01 clusters had none (the 2017 preview API had one)
    props = body.get("properties", {})
    ((props.get("scaleSettings") or {}).get("autoScale") or {}).pop(AUTOSCALE_TARGET, None)
    if not props.get("errors"):
        props.pop("errors", None)
    _mount_defaults((props.get("nodeSetup") or {}).get("mountVolumes"))
    return body


def job(body: dict) -> dict:
    body = copy.deepcopy(body)
    props = body.get("properties", {})
    _mount_defaults(props.get("mountVolumes"))
    info = props.get("executionInfo")
    if isinstance(info, dict):
        if not info.get("errors"):
            info.pop("errors", None)
        elif any(error.get("code") == "JobTerminated" for error in info["errors"]):
            info.pop("exitCode", None)  # the process was stopped by the service: no exit code of its own
        if info.get("exitCode") is None:
            info.pop("exitCode", None)
    return body


def _mount_defaults(volumes) -> None:
    if not isinstance(volumes, dict):
        return
    for share in volumes.get("azureFileShares") or []:
        for key, value in _FILE_SHARE_DEFAULTS.items():
            if not share.get(key):
                share[key] = value


def output_file(entry: dict) -> dict:
    """A listOutputFiles entry: the service gave file times to the second."""
    properties = entry.get("properties")
    if isinstance(properties, dict) and isinstance(properties.get("lastModified"), str):
        entry = dict(entry, properties=dict(properties, lastModified=re.sub(
            r"\.\d+Z$", "Z", properties["lastModified"])))
    return entry
