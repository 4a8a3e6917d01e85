"""Resource Manager routes used by azure-mgmt-resource 26 (``/resourcegroups/`` in lower case; matched
case-insensitively), plus the Location URL its group deletes are polled at."""
SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"
GROUP = SUBSCRIPTION + r"/resourcegroups/(?P<resource_group>[^/]+)"

url_paths = [
    ("GET", SUBSCRIPTION + r"/resourcegroups", "list_groups"),
    ("PUT", GROUP, "create_or_update_group"),
    ("GET", GROUP, "get_group"),
    ("HEAD", GROUP, "check_group_existence"),
    ("PATCH", GROUP, "update_group"),
    ("DELETE", GROUP, "delete_group"),
    ("GET", SUBSCRIPTION + r"/operationresults/(?P<operation>[^/]+)", "get_operation"),
]
