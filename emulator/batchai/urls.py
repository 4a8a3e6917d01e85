"""Batch AI routes (API 2018-05-01), as azure-mgmt-batchai 7.0.0 calls them: ``(METHOD, regex, handler)``;
then those of the older API versions 2017-09-01-preview and 2018-03-01 (``legacy_*``, clusters, jobs
and file servers directly in the resource group, legacy.py). Operations, usages and operation
results share one path across versions; their handlers dispatch on api-version.

Names are matched loosely (``[^/]+``) so that a bad name gets a 400 that says why, not a 404.
"""
SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"
PROVIDER = SUBSCRIPTION + r"/resourceGroups/(?P<resource_group>[^/]+)/providers/Microsoft\.BatchAI"
WORKSPACE = PROVIDER + r"/workspaces/(?P<workspace>[^/]+)"
EXPERIMENT = WORKSPACE + r"/experiments/(?P<experiment>[^/]+)"
CLUSTER = WORKSPACE + r"/clusters/(?P<cluster>[^/]+)"
JOB = EXPERIMENT + r"/jobs/(?P<job>[^/]+)"
FILE_SERVER = WORKSPACE + r"/fileServers/(?P<file_server>[^/]+)"
LEGACY_CLUSTER = PROVIDER + r"/clusters/(?P<cluster>[^/]+)"
LEGACY_JOB = PROVIDER + r"/jobs/(?P<job>[^/]+)"
LEGACY_FILE_SERVER = PROVIDER + r"/fileServers/(?P<file_server>[^/]+)"
OPERATIONS = SUBSCRIPTION + r"/providers/Microsoft\.BatchAI/locations/(?P<location>[^/]+)"

url_paths = [
    ("GET", SUBSCRIPTION + r"/providers/Microsoft\.BatchAI/workspaces", "list_workspaces"),
    ("GET", PROVIDER + r"/workspaces", "list_workspaces_by_resource_group"),
    ("PUT", WORKSPACE, "create_workspace"),
    ("GET", WORKSPACE, "get_workspace"),
    ("PATCH", WORKSPACE, "update_workspace"),
    ("DELETE", WORKSPACE, "delete_workspace"),

    ("GET", WORKSPACE + r"/experiments", "list_experiments"),
    ("PUT", EXPERIMENT, "create_experiment"),
    ("GET", EXPERIMENT, "get_experiment"),
    ("DELETE", EXPERIMENT, "delete_experiment"),

    ("GET", WORKSPACE + r"/clusters", "list_clusters"),
    ("PUT", CLUSTER, "create_cluster"),
    ("GET", CLUSTER, "get_cluster"),
    ("PATCH", CLUSTER, "update_cluster"),
    ("DELETE", CLUSTER, "delete_cluster"),
    ("POST", CLUSTER + r"/listRemoteLoginInformation", "list_cluster_remote_login_information"),
    ("GET", CLUSTER + r"/listRemoteLoginInformation", "list_cluster_remote_login_information"),

    ("GET", WORKSPACE + r"/fileServers", "list_file_servers"),
    ("PUT", FILE_SERVER, "create_file_server"),
    ("GET", FILE_SERVER, "get_file_server"),
    ("DELETE", FILE_SERVER, "delete_file_server"),

    ("GET", EXPERIMENT + r"/jobs", "list_jobs"),
    ("PUT", JOB, "create_job"),
    ("GET", JOB, "get_job"),
    ("DELETE", JOB, "delete_job"),
    ("POST", JOB + r"/terminate", "terminate_job"),
    ("POST", JOB + r"/listOutputFiles", "list_output_files"),
    ("GET", JOB + r"/listOutputFiles", "list_output_files"),  # nextLink pages are GETs
    ("POST", JOB + r"/listRemoteLoginInformation", "list_job_remote_login_information"),
    ("GET", JOB + r"/listRemoteLoginInformation", "list_job_remote_login_information"),

    ("GET", OPERATIONS + r"/usages", "list_usages"),
    ("GET", r"/providers/Microsoft\.BatchAI/operations", "list_operations"),

    ("GET", OPERATIONS + r"/operationresults/(?P<operation>[^/]+)", "get_operation"),
    ("GET", OPERATIONS + r"/operationstatuses/(?P<operation>[^/]+)", "get_operation"),

    # 2017-09-01-preview and 2018-03-01 (old clients POST a listing's nextLink: POST and GET both)
    ("GET", SUBSCRIPTION + r"/providers/Microsoft\.BatchAI/clusters", "legacy_list_clusters"),
    ("GET", PROVIDER + r"/clusters", "legacy_list_clusters_by_resource_group"),
    ("PUT", LEGACY_CLUSTER, "legacy_create_cluster"),
    ("GET", LEGACY_CLUSTER, "legacy_get_cluster"),
    ("PATCH", LEGACY_CLUSTER, "legacy_update_cluster"),
    ("DELETE", LEGACY_CLUSTER, "legacy_delete_cluster"),
    ("POST", LEGACY_CLUSTER + r"/listRemoteLoginInformation", "legacy_list_cluster_remote_login_information"),
    ("GET", LEGACY_CLUSTER + r"/listRemoteLoginInformation", "legacy_list_cluster_remote_login_information"),

    ("GET", SUBSCRIPTION + r"/providers/Microsoft\.BatchAI/fileServers", "legacy_list_file_servers"),
    ("GET", PROVIDER + r"/fileServers", "legacy_list_file_servers_by_resource_group"),
    ("PUT", LEGACY_FILE_SERVER, "legacy_create_file_server"),
    ("GET", LEGACY_FILE_SERVER, "legacy_get_file_server"),
    ("DELETE", LEGACY_FILE_SERVER, "legacy_delete_file_server"),

    ("GET", SUBSCRIPTION + r"/providers/Microsoft\.BatchAI/jobs", "legacy_list_jobs"),
    ("GET", PROVIDER + r"/jobs", "legacy_list_jobs_by_resource_group"),
    ("PUT", LEGACY_JOB, "legacy_create_job"),
    ("GET", LEGACY_JOB, "legacy_get_job"),
    ("DELETE", LEGACY_JOB, "legacy_delete_job"),
    ("POST", LEGACY_JOB + r"/terminate", "legacy_terminate_job"),
    ("POST", LEGACY_JOB + r"/listOutputFiles", "legacy_list_output_files"),
    ("GET", LEGACY_JOB + r"/listOutputFiles", "legacy_list_output_files"),
    ("POST", LEGACY_JOB + r"/listRemoteLoginInformation", "legacy_list_job_remote_login_information"),
    ("GET", LEGACY_JOB + r"/listRemoteLoginInformation", "legacy_list_job_remote_login_information"),
]
