"""Resource Manager routes: subscriptions, tenants and providers (SubscriptionClient, the Azure CLI,
``ResourceManagementClient.providers``); resource groups as azure-mgmt-resource 26 calls them
(``/resourcegroups/`` in lower case; matched case-insensitively), plus the Location URL its group
deletes are polled at."""
SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"
GROUP = SUBSCRIPTION + r"/resourcegroups/(?P<resource_group>[^/]+)"
PROVIDER = SUBSCRIPTION + r"/providers/(?P<namespace>[^/]+)"

url_paths = [
    ("GET", r"/subscriptions", "list_subscriptions"),
    ("GET", SUBSCRIPTION, "get_subscription"),
    ("GET", r"/tenants", "list_tenants"),
    ("GET", SUBSCRIPTION + r"/providers", "list_providers"),
    ("GET", PROVIDER, "get_provider"),
    ("POST", PROVIDER + r"/register", "register_provider"),
    ("POST", PROVIDER + r"/unregister", "unregister_provider"),
    ("GET", SUBSCRIPTION + r"/resourcegroups", "list_groups"),
    ("PUT", GROUP, "create_or_update_group"),
    ("GET", GROUP, "get_group"),
    ("HEAD", GROUP, "check_group_existence"),
    ("PATCH", GROUP, "update_group"),
    ("DELETE", GROUP, "delete_group"),
    ("GET", SUBSCRIPTION + r"/operationresults/(?P<operation>[^/]+)", "get_operation"),
]
