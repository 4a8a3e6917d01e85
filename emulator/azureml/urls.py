"""Azure ML routes as azure-ai-ml 1.35.2 calls them: ``(METHOD, regex, handler)``, matched case-insensitively.

``url_paths`` are Resource Manager routes (bearer token, any api-version) on the https endpoint;
``dataplane_paths`` are the workspace's data plane (RunHistory, dataset resolution) under the discovery
``api`` base, ``/azureml-api``, where requests carry no api-version.
"""
SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"
GROUP = SUBSCRIPTION + r"/resourcegroups/(?P<resource_group>[^/]+)"
WORKSPACE = GROUP + r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<workspace>[^/]+)"
DEPLOYMENT = GROUP + r"(?:/providers/Microsoft\.Resources)?/deployments/(?P<deployment>[^/]+)"
ASSETS = WORKSPACE + r"/(?P<kind>codes|data|environments|models)"
CONTAINER = ASSETS + r"/(?P<name>[^/]+)"
ASSET = CONTAINER + r"/versions"
LOCATION = SUBSCRIPTION + r"/providers/Microsoft\.MachineLearningServices/locations/(?P<location>[^/]+)"

url_paths = [
    ("PUT", DEPLOYMENT, "create_deployment"),
    ("GET", DEPLOYMENT, "get_deployment"),
    ("GET", DEPLOYMENT + r"/operations", "list_deployment_operations"),

    ("GET", GROUP + r"/providers/Microsoft\.MachineLearningServices/workspaces", "list_workspaces"),
    ("GET", WORKSPACE, "get_workspace"),
    ("PATCH", WORKSPACE, "update_workspace"),
    ("DELETE", WORKSPACE, "delete_workspace"),

    ("GET", WORKSPACE + r"/datastores", "list_datastores"),
    ("GET", WORKSPACE + r"/datastores/(?P<datastore>[^/]+)", "get_datastore"),
    ("POST", WORKSPACE + r"/datastores/(?P<datastore>[^/]+)/listSecrets", "list_datastore_secrets"),

    ("GET", ASSETS, "list_asset_containers"),
    ("GET", CONTAINER, "get_asset_container"),
    ("PUT", CONTAINER, "put_asset_container"),
    ("GET", ASSET, "list_asset_versions"),
    ("PUT", ASSET + r"/(?P<version>[^/]+)", "create_asset_version"),
    ("GET", ASSET + r"/(?P<version>[^/]+)", "get_asset_version"),
    ("POST", ASSET + r"/(?P<version>[^/]+)/startPendingUpload", "start_pending_upload"),

    ("GET", WORKSPACE + r"/computes", "list_computes"),
    ("PUT", WORKSPACE + r"/computes/(?P<compute>[^/]+)", "create_compute"),
    ("GET", WORKSPACE + r"/computes/(?P<compute>[^/]+)", "get_compute"),
    ("DELETE", WORKSPACE + r"/computes/(?P<compute>[^/]+)", "delete_compute"),

    ("GET", WORKSPACE + r"/jobs", "list_jobs"),
    ("PUT", WORKSPACE + r"/jobs/(?P<job>[^/]+)", "create_job"),
    ("GET", WORKSPACE + r"/jobs/(?P<job>[^/]+)", "get_job"),
    ("POST", WORKSPACE + r"/jobs/(?P<job>[^/]+)/cancel", "cancel_job"),

    ("GET", LOCATION + r"/operationresults/(?P<operation>[^/]+)", "get_operation_status"),
    ("GET", LOCATION + r"/operationstatuses/(?P<operation>[^/]+)", "get_operation_result"),
]

DATAPLANE_PREFIX = "/azureml-api"
_RUNS = (r"/history/v1\.0" + SUBSCRIPTION + r"/resourceGroups/(?P<resource_group>[^/]+)/providers/"
         r"Microsoft\.MachineLearningServices/workspaces/(?P<workspace>[^/]+)")

dataplane_paths = [
    ("GET", r"/discovery", "discovery"),
    ("GET", _RUNS + r"(?:/experiments/[^/]+|/experimentids/[^/]+)?/runs/(?P<run>[^/]+)/details", "run_details"),
    ("POST", _RUNS + r"/rundata", "run_data"),
    ("POST", r"/data/v1\.0" + SUBSCRIPTION + r"/resourceGroups/(?P<resource_group>[^/]+)/providers/"
             r"Microsoft\.MachineLearningServices/workspaces/(?P<workspace>[^/]+)/dataversion/batchGetResolvedUris",
     "resolve_data_uris"),
]
