"""Each quickstart step against mocked Azure clients: the exact SDK models and arguments."""
from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from unittest import mock

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.mgmt.batchai import models

from batchai_quickstart import steps

RG, WS, EXP, JOB, CLUSTER = "rg", "ws", "exp", "job", "cluster"


def test_create_resource_group_passes_name_and_location():
    resource = mock.MagicMock()
    result = steps.create_resource_group(resource, RG, "eastus")
    resource.resource_groups.create_or_update.assert_called_once_with(RG, {"location": "eastus"})
    assert result is resource.resource_groups.create_or_update.return_value


def test_create_file_share_tolerates_existing_share_and_directory():
    service = mock.MagicMock()
    share = service.get_share_client.return_value
    share.create_share.side_effect = ResourceExistsError("exists")
    share.create_directory.side_effect = ResourceExistsError("exists")
    assert steps.create_file_share(service, "batchaiquickstart", "mnistcntksample") is share
    service.get_share_client.assert_called_once_with("batchaiquickstart")
    share.create_directory.assert_called_once_with("mnistcntksample")


def test_upload_files_uploads_each_file_into_the_directory(tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.py"
    first.write_bytes(b"12345")
    second.write_bytes(b"xy")
    share = mock.MagicMock()
    names = steps.upload_files(share, "dir", [first, second], show_progress=False)
    assert names == ["a.txt", "b.py"]
    assert [c.args for c in share.get_file_client.call_args_list] == [("dir/a.txt",), ("dir/b.py",)]
    upload = share.get_file_client.return_value.upload_file
    assert [c.kwargs["length"] for c in upload.call_args_list] == [5, 2]
    assert all(callable(c.kwargs["progress_hook"]) for c in upload.call_args_list)


def test_create_workspace_uses_workspace_create_parameters():
    batchai = mock.MagicMock()
    workspace = steps.create_workspace(batchai, RG, WS, "eastus")
    args = batchai.workspaces.begin_create.call_args.args
    assert args[:2] == (RG, WS)
    assert isinstance(args[2], models.WorkspaceCreateParameters) and args[2].location == "eastus"
    assert workspace is batchai.workspaces.begin_create.return_value.result.return_value


def test_create_cluster_builds_the_original_cluster():
    batchai = mock.MagicMock()
    steps.create_cluster(batchai, RG, WS, CLUSTER, "STANDARD_NC6", 1, "demoUser", "pw", "acct", "key",
                         "https://acct.file.core.windows.net/batchaiquickstart")
    rg, ws, name, params = batchai.clusters.begin_create.call_args.args
    assert (rg, ws, name) == (RG, WS, CLUSTER)
    assert isinstance(params, models.ClusterCreateParameters)
    assert params.vm_size == "STANDARD_NC6"
    assert params.scale_settings.manual.target_node_count == 1
    assert params.user_account_settings.admin_user_name == "demoUser"
    assert params.user_account_settings.admin_user_password == "pw"
    (share,) = params.node_setup.mount_volumes.azure_file_shares
    assert isinstance(share, models.AzureFileShareReference)
    assert (share.account_name, share.credentials.account_key) == ("acct", "key")
    assert share.azure_file_url == "https://acct.file.core.windows.net/batchaiquickstart"
    assert share.relative_mount_path == "azurefileshare"
    batchai.clusters.begin_create.return_value.result.assert_called_once_with()
    assert params.vm_priority == "dedicated"  # the original's nodes


def test_create_cluster_with_low_priority_nodes():
    batchai = mock.MagicMock()
    steps.create_cluster(batchai, RG, WS, CLUSTER, "STANDARD_NC6", 2, "demoUser", "pw", "acct", "key",
                         "https://acct.file.core.windows.net/batchaiquickstart", vm_priority="lowpriority")
    params = batchai.clusters.begin_create.call_args.args[3]
    assert params.vm_priority == "lowpriority"
    # what goes on the wire: the spec's vmPriority
    assert params.serialize()["properties"]["vmPriority"] == "lowpriority"


def _cluster(state="steady", idle=1, running=0, preparing=0, unusable=0, current=1, errors=None):
    return SimpleNamespace(
        allocation_state=state, current_node_count=current, errors=errors,
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=1)),
        node_state_counts=SimpleNamespace(idle_node_count=idle, running_node_count=running,
                                          preparing_node_count=preparing, unusable_node_count=unusable,
                                          leaving_node_count=0))


def test_cluster_status_is_the_original_format():
    line = steps.cluster_status(_cluster())
    assert line == ("Cluster state: steady Target: 1; Allocated: 1; Idle: 1; Unusable: 0; Running: 0; "
                    "Preparing: 0; Leaving: 0")


def test_wait_for_cluster_prints_each_new_status_until_ready():
    batchai = mock.MagicMock()
    batchai.clusters.get.side_effect = [_cluster("resizing", idle=0, current=0), _cluster("resizing", idle=0, current=0),
                                        _cluster("steady", idle=0, preparing=1), _cluster()]
    lines = []
    steps.wait_for_cluster(batchai, RG, WS, CLUSTER, 0, on_status=lines.append)
    assert [line.split(" Target")[0] for line in lines] == ["Cluster state: resizing"] + ["Cluster state: steady"] * 2
    batchai.clusters.get.assert_called_with(RG, WS, CLUSTER)


def test_wait_for_cluster_raises_on_unusable_node():
    batchai = mock.MagicMock()
    batchai.clusters.get.return_value = _cluster(idle=0, unusable=1,
                                                 errors=[SimpleNamespace(code="AZFMountError", message="no mount")])
    with pytest.raises(steps.ClusterError, match="AZFMountError: no mount"):
        steps.wait_for_cluster(batchai, RG, WS, CLUSTER, 0, on_status=lambda _: None)


def test_create_experiment():
    batchai = mock.MagicMock()
    steps.create_experiment(batchai, RG, WS, EXP)
    batchai.experiments.begin_create.assert_called_once_with(RG, WS, EXP)


def test_create_job_is_the_original_cntk_job():
    batchai = mock.MagicMock()
    steps.create_job(batchai, RG, WS, EXP, JOB, "/cluster/id", "microsoft/cntk:2.1-gpu-python3.5-cuda8.0-cudnn6.0",
                     "mnistcntksample", epochs=3)
    rg, ws, exp, job, params = batchai.jobs.begin_create.call_args.args
    assert (rg, ws, exp, job) == (RG, WS, EXP, JOB)
    assert isinstance(params, models.JobCreateParameters)
    assert params.cluster.id == "/cluster/id" and params.node_count == 1
    assert params.container_settings.image_source_registry.image == "microsoft/cntk:2.1-gpu-python3.5-cuda8.0-cudnn6.0"
    assert params.std_out_err_path_prefix == "$AZ_BATCHAI_MOUNT_ROOT/azurefileshare"
    assert [(d.id, d.path) for d in params.input_directories] == [
        ("SAMPLE", "$AZ_BATCHAI_MOUNT_ROOT/azurefileshare/mnistcntksample")]
    assert [(d.id, d.path_prefix, d.path_suffix) for d in params.output_directories] == [
        ("MODEL", "$AZ_BATCHAI_MOUNT_ROOT/azurefileshare", "Models")]
    assert params.cntk_settings.python_script_file_path == "$AZ_BATCHAI_INPUT_SAMPLE/ConvNet_MNIST.py"
    assert params.cntk_settings.command_line_args == "$AZ_BATCHAI_INPUT_SAMPLE $AZ_BATCHAI_OUTPUT_MODEL --epochs 3"


def test_create_job_without_epochs_keeps_the_original_arguments():
    batchai = mock.MagicMock()
    steps.create_job(batchai, RG, WS, EXP, JOB, "/c", "img", "d")
    params = batchai.jobs.begin_create.call_args.args[4]
    assert params.cntk_settings.command_line_args == "$AZ_BATCHAI_INPUT_SAMPLE $AZ_BATCHAI_OUTPUT_MODEL"


def test_create_job_passes_more_script_arguments_after_the_original_ones():
    batchai = mock.MagicMock()
    steps.create_job(batchai, RG, WS, EXP, JOB, "/c", "img", "d", epochs=2, script_arguments="--seed 7")
    params = batchai.jobs.begin_create.call_args.args[4]
    assert params.cntk_settings.command_line_args == "$AZ_BATCHAI_INPUT_SAMPLE $AZ_BATCHAI_OUTPUT_MODEL --epochs 2 --seed 7"


def test_create_job_on_several_nodes_runs_one_process_per_node():
    batchai = mock.MagicMock()
    steps.create_job(batchai, RG, WS, EXP, JOB, "/c", "img", "d", node_count=3)
    params = batchai.jobs.begin_create.call_args.args[4]
    assert (params.node_count, params.cntk_settings.process_count) == (3, 3)


def test_job_state_names_the_nodes_when_there_are_several():
    assert steps.job_state(SimpleNamespace(execution_state="running", node_count=1)) == "Job state: running"
    assert steps.job_state(SimpleNamespace(execution_state="running", node_count=2)) == "Job state: running on 2 nodes"


def _job(state, exit_code=None):
    return SimpleNamespace(name=JOB, execution_state=state,
                           execution_info=None if state == "queued" else SimpleNamespace(exit_code=exit_code, errors=[]))


def test_monitor_job_reports_state_changes_and_follows_stderr():
    batchai = mock.MagicMock()
    batchai.jobs.get.side_effect = [_job("queued"), _job("running"), _job("running"), _job("succeeded", 0)]
    stderr = SimpleNamespace(name="stderr.txt", download_url="http://files/stderr.txt?sig=x")
    batchai.jobs.list_output_files.return_value = [SimpleNamespace(name="stdout.txt", download_url="u"), stderr]
    chunks = [b"Training 98778", b"", b" parameters\n"]
    offsets = []

    def fake_read(url, offset, session=None):
        offsets.append(offset)
        return chunks.pop(0)

    states, output = [], []
    with mock.patch.object(steps, "read_new_output", side_effect=fake_read):
        job = steps.monitor_job(batchai, RG, WS, EXP, JOB, 0, on_state=states.append, on_output=output.append)
    assert states == ["Job state: queued", "Job state: running", "Job state: succeeded"]
    assert "".join(output) == "Training 98778 parameters\n"
    assert offsets == [0, 14, 14]
    assert job.execution_state == "succeeded"
    options = batchai.jobs.list_output_files.call_args.args[4]
    assert isinstance(options, models.JobsListOutputFilesOptions) and options.outputdirectoryid == "stdouterr"


def _started_job(state, start_time):
    return SimpleNamespace(name=JOB, execution_state=state, node_count=1,
                           execution_info=SimpleNamespace(start_time=start_time, exit_code=None, errors=[]))


def test_monitor_job_says_why_a_running_job_is_queued_again_and_follows_the_rerun():
    batchai = mock.MagicMock()
    first, rerun = datetime(2026, 11, 29, 9, 0, 0), datetime(2026, 11, 29, 9, 0, 30)
    # As the service did: running, back to queued (executionInfo absent), running again (a later startTime).
    batchai.jobs.get.side_effect = [_started_job("running", first), _job("queued"), _job("queued"),
                                    _started_job("running", rerun), _started_job("succeeded", rerun)]
    batchai.jobs.list_output_files.return_value = [
        SimpleNamespace(name="stderr.txt", download_url="http://files/stderr.txt?sig=x")]
    # The rerun appends to the first run's stderr.txt.
    written = [b"Finished Epoch[1 of 3]\n", b"Resumed from ConvNet_MNIST_0.pt (epoch 1 of 3 done).\n",
               b"Finished Epoch[3 of 3]\n"]
    ends = [len(written[0]), len(written[0]) + len(written[1])]
    offsets = []

    def fake_read(url, offset, session=None):
        offsets.append(offset)
        return written.pop(0)

    states, output = [], []
    with mock.patch.object(steps, "read_new_output", side_effect=fake_read):
        job = steps.monitor_job(batchai, RG, WS, EXP, JOB, 0, on_state=states.append, on_output=output.append)
    assert states == ["Job state: running",
                      "Job state: queued (requeued: a node it ran on was preempted or removed; it runs again when "
                      "nodes are free)",
                      "Job state: running",
                      "Job state: succeeded"]
    assert offsets == [0] + ends  # no reads while queued; the rerun's bytes follow the first run's
    assert "".join(output).splitlines() == ["Finished Epoch[1 of 3]", "Resumed from ConvNet_MNIST_0.pt (epoch 1 of 3 done).",
                                            "Finished Epoch[3 of 3]"]
    assert job.execution_state == "succeeded"
    assert batchai.jobs.list_output_files.call_count == 1  # the same file, by the same URL


def test_monitor_job_notices_a_requeue_and_rerun_between_two_polls_by_the_later_start_time():
    batchai = mock.MagicMock()
    first, rerun = datetime(2026, 11, 29, 9, 0, 0), datetime(2026, 11, 29, 9, 0, 1)
    batchai.jobs.get.side_effect = [_started_job("running", first), _started_job("running", first),
                                    _started_job("running", rerun), _started_job("succeeded", rerun)]
    states = []
    steps.monitor_job(batchai, RG, WS, EXP, JOB, 0, on_state=states.append)
    assert states == ["Job state: running",
                      "Job state: running (again: it was requeued after a node it ran on was preempted or removed)",
                      "Job state: succeeded"]


def test_monitor_job_does_not_call_a_first_queued_state_a_requeue():
    batchai = mock.MagicMock()
    batchai.jobs.get.side_effect = [_job("queued"), _started_job("running", datetime(2026, 11, 29)),
                                    _started_job("failed", datetime(2026, 11, 29))]
    states = []
    steps.monitor_job(batchai, RG, WS, EXP, JOB, 0, on_state=states.append)
    assert states == ["Job state: queued", "Job state: running", "Job state: failed"]


def test_job_state_of_a_requeued_job_on_several_nodes():
    job = SimpleNamespace(execution_state="queued", node_count=2)
    assert steps.job_state(job, requeued=True) == ("Job state: queued on 2 nodes (requeued: a node it ran on was "
                                                   "preempted or removed; it runs again when nodes are free)")


def test_list_output_files_passes_the_directory_id():
    batchai = mock.MagicMock()
    batchai.jobs.list_output_files.return_value = iter(["f"])
    assert steps.list_output_files(batchai, RG, WS, EXP, JOB, "MODEL") == ["f"]
    rg, ws, exp, job, options = batchai.jobs.list_output_files.call_args.args
    assert (rg, ws, exp, job) == (RG, WS, EXP, JOB)
    assert (options.outputdirectoryid, options.directory) == ("MODEL", ".")


def test_job_summary_names_exit_code_and_errors():
    job = SimpleNamespace(name=JOB, execution_state="failed", execution_info=SimpleNamespace(
        exit_code=1, errors=[SimpleNamespace(code="JobFailed", message="Job failed with non-zero exit code")]))
    assert steps.job_summary(job) == "Job job failed with exit code 1 (JobFailed: Job failed with non-zero exit code)"


def test_hide_signature_elides_only_the_signature():
    url = "http://127.0.0.1:1/acct/share/f.txt?sv=2026-10-06&sr=f&sp=rl&se=2030&sig=abc%2Bdef"
    assert steps.hide_signature(url) == "http://127.0.0.1:1/acct/share/f.txt?sv=2026-10-06&sr=f&sp=rl&se=2030&sig=..."


def test_delete_steps_call_the_sdk():
    batchai, resource, files = mock.MagicMock(), mock.MagicMock(), mock.MagicMock()
    steps.terminate_job(batchai, RG, WS, EXP, JOB)
    steps.delete_job(batchai, RG, WS, EXP, JOB)
    steps.delete_cluster(batchai, RG, WS, CLUSTER)
    steps.delete_workspace(batchai, RG, WS)
    steps.delete_file_share(files, "share")
    steps.delete_resource_group(resource, RG)
    batchai.jobs.begin_terminate.assert_called_once_with(RG, WS, EXP, JOB)
    batchai.jobs.begin_delete.assert_called_once_with(RG, WS, EXP, JOB)
    batchai.clusters.begin_delete.assert_called_once_with(RG, WS, CLUSTER)
    batchai.workspaces.begin_delete.assert_called_once_with(RG, WS)
    files.delete_share.assert_called_once_with("share")
    resource.resource_groups.begin_delete.assert_called_once_with(RG)


def test_delete_quickstart_resources_skips_what_is_gone():
    clients = SimpleNamespace(batchai=mock.MagicMock(), resource=mock.MagicMock(), files=mock.MagicMock())
    clients.batchai.jobs.begin_delete.side_effect = ResourceNotFoundError("gone")
    config = SimpleNamespace(resource_group=RG, workspace=WS, experiment=EXP, job=JOB, cluster=CLUSTER, share="s")
    reports = []
    steps.delete_quickstart_resources(clients, config, report=reports.append)
    assert reports == ["Deleted cluster cluster", "Deleted workspace ws", "Deleted file share s",
                       "Deleted resource group rg"]
