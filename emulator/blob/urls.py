"""Routing as data for the Blob service: ``(method, level, restype, comp, handler name, SAS
permissions)``, as ``files/urls.py``. The permission column lists the letters any one of which
a service SAS needs (None: SharedKey only).

Levels: "account" ``/<account>/``, "container" ``/<account>/<container>``, "blob"
``/<account>/<container>/<blob name>`` (path-style; host-style drops the account segment).
"""
from __future__ import annotations

url_paths = [
    # account
    ("GET", "account", None, "list", "list_containers", None),
    ("GET", "account", "service", "properties", "get_service_properties", None),
    ("PUT", "account", "service", "properties", "set_service_properties", None),
    ("GET", "account", "account", "properties", "get_account_information", None),
    ("HEAD", "account", "account", "properties", "get_account_information", None),
    # containers
    ("PUT", "container", "container", None, "create_container", None),
    ("GET", "container", "container", None, "get_container_properties", "r"),
    ("HEAD", "container", "container", None, "get_container_properties", "r"),
    ("GET", "container", "container", "metadata", "get_container_properties", "r"),
    ("HEAD", "container", "container", "metadata", "get_container_properties", "r"),
    ("PUT", "container", "container", "metadata", "set_container_metadata", None),
    ("DELETE", "container", "container", None, "delete_container", None),
    ("GET", "container", "container", "list", "list_blobs", "l"),
    # block blobs
    ("PUT", "blob", None, None, "put_blob", "cw"),
    ("PUT", "blob", None, "block", "put_block", "cw"),
    ("PUT", "blob", None, "blocklist", "put_block_list", "cw"),
    ("GET", "blob", None, "blocklist", "get_block_list", "r"),
    ("GET", "blob", None, None, "get_blob", "r"),
    ("HEAD", "blob", None, None, "get_blob_properties", "r"),
    ("GET", "blob", None, "metadata", "get_blob_metadata", "r"),
    ("HEAD", "blob", None, "metadata", "get_blob_metadata", "r"),
    ("PUT", "blob", None, "metadata", "set_blob_metadata", "w"),
    ("PUT", "blob", None, "properties", "set_blob_properties", "w"),
    ("DELETE", "blob", None, None, "delete_blob", "d"),
]

#: What to tell a client whose restype/comp names no operation, per level.
hints = {"account": "list containers with GET ?comp=list",
         "container": "container operations take restype=container",
         "blob": "blob operations take no restype"}
