"""Each Azure ML quickstart step against a mocked MLClient: the exact SDK entities and arguments."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from azure.ai.ml import PyTorchDistribution
from azure.ai.ml.constants import AssetTypes, InputOutputModes
from azure.ai.ml.entities import AmlCompute, Command, Data, Workspace
from azure.ai.ml.exceptions import JobException
from azure.core.exceptions import ResourceNotFoundError

from batchai_quickstart import azureml_steps as steps

ROOT = Path(__file__).resolve().parents[1]
# azure-ai-ml 1.35.2 builds marshmallow schemas that warn about marshmallow 4 on import.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def test_create_workspace_creates_a_workspace_entity_and_waits():
    ml = mock.MagicMock()
    result = steps.create_workspace(ml, "myws", "eastus")
    (workspace,), _ = ml.workspaces.begin_create.call_args
    assert isinstance(workspace, Workspace)
    assert (workspace.name, workspace.location, workspace.display_name) == ("myws", "eastus", "myws")
    assert result is ml.workspaces.begin_create.return_value.result.return_value


def test_data_version_follows_names_and_sizes(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("1")
    b.write_text("22")
    first = steps.data_version([a, b])
    assert first == steps.data_version([b, a]) and len(first) == 12
    b.write_text("333")
    assert steps.data_version([a, b]) != first


def test_upload_data_creates_a_uri_folder_data_asset(tmp_path):
    ml = mock.MagicMock()
    result = steps.upload_data(ml, "mnist-cntk", tmp_path, "abc")
    (data,), _ = ml.data.create_or_update.call_args
    assert isinstance(data, Data)
    assert (data.name, data.version, data.type) == ("mnist-cntk", "abc", AssetTypes.URI_FOLDER)
    assert Path(data.path) == tmp_path
    assert result is ml.data.create_or_update.return_value


def test_create_compute_scales_from_zero():
    ml = mock.MagicMock()
    steps.create_compute(ml, "gpu-cluster", "Standard_NC4as_T4_v3", 2, 120)
    (compute,), _ = ml.compute.begin_create_or_update.call_args
    assert isinstance(compute, AmlCompute)
    assert (compute.name, compute.size, compute.min_instances, compute.max_instances,
            compute.idle_time_before_scale_down) == ("gpu-cluster", "Standard_NC4as_T4_v3", 0, 2, 120)
    ml.compute.begin_create_or_update.return_value.result.assert_called_once_with()


def test_compute_status_is_one_line():
    compute = SimpleNamespace(name="c", size="Standard_NC4as_T4_v3", min_instances=0, max_instances=2,
                              idle_time_before_scale_down=120, provisioning_state="Succeeded")
    assert steps.compute_status(compute) == ("Compute c: Standard_NC4as_T4_v3 x 0 to 2 nodes (scales to 0 when "
                                             "idle for 120 s), Succeeded")


def _data():
    return Data(name="mnist-cntk", version="v1", type=AssetTypes.URI_FOLDER, path="/x")


def test_build_job_runs_the_sample_with_the_data_input_and_model_output():
    job = steps.build_job(ROOT / "samples", _data(), "gpu-cluster", "AzureML-acpt-pytorch-2.8-cuda12.6@latest",
                          "mnist-quickstart", epochs=3)
    assert isinstance(job, Command)
    assert job.command == "python ConvNet_MNIST.py ${{inputs.data}} ${{outputs.model}} --epochs 3"
    assert job.code == str(ROOT / "samples")
    assert (job.compute, job.environment, job.experiment_name) == (
        "gpu-cluster", "AzureML-acpt-pytorch-2.8-cuda12.6@latest", "mnist-quickstart")
    data_input = job.inputs["data"]
    assert (data_input.type, data_input.path, data_input.mode) == (
        AssetTypes.URI_FOLDER, "azureml:mnist-cntk:v1", InputOutputModes.RO_MOUNT)
    model = job.outputs["model"]
    assert (model.type, model.mode) == (AssetTypes.URI_FOLDER, InputOutputModes.RW_MOUNT)
    assert job.distribution is None and job.resources is None or job.resources.instance_count in (None, 1)


def test_build_job_on_two_nodes_uses_pytorch_distribution():
    job = steps.build_job(ROOT / "samples", _data(), "gpu-cluster", "env@latest", "exp", nodes=2)
    assert isinstance(job.distribution, PyTorchDistribution)
    assert job.distribution.process_count_per_instance == 1
    assert job.resources.instance_count == 2


def test_submit_job_creates_the_job():
    ml, job = mock.MagicMock(), object()
    assert steps.submit_job(ml, job) is ml.jobs.create_or_update.return_value
    ml.jobs.create_or_update.assert_called_once_with(job)


def test_stream_job_streams_then_returns_the_finished_job():
    ml = mock.MagicMock()
    assert steps.stream_job(ml, "job1") is ml.jobs.get.return_value
    ml.jobs.stream.assert_called_once_with("job1")
    ml.jobs.get.assert_called_once_with("job1")


def test_stream_job_turns_the_sdk_failure_into_one_line():
    ml = mock.MagicMock()
    error = {"error": {"code": "UserError", "message": "Execution failed.\nUser process exited with 1"}}
    ml.jobs.stream.side_effect = JobException(message="Exception : \n {} ".format(json.dumps(error, indent=4)),
                                              no_personal_data_message="x")
    with pytest.raises(steps.JobFailed) as info:
        steps.stream_job(ml, "job1")
    assert str(info.value) == "job job1 failed: UserError: Execution failed. User process exited with 1"


def test_stream_job_keeps_ctrl_c_a_keyboard_interrupt():
    ml = mock.MagicMock()

    def interrupted(name):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise JobException(message="The output streaming for the run interrupted.",
                               no_personal_data_message="x") from exc

    ml.jobs.stream.side_effect = interrupted
    with pytest.raises(KeyboardInterrupt):
        steps.stream_job(ml, "job1")


def test_job_summary():
    job = SimpleNamespace(name="j", status="Completed", studio_url="https://ml.azure.com/runs/j")
    assert steps.job_summary(job) == "Job j completed (https://ml.azure.com/runs/j)"


def test_download_job_outputs_downloads_everything_and_lists_files(tmp_path):
    ml = mock.MagicMock()

    def download(name, download_path, output_name=None):
        if output_name == "model":
            (Path(download_path) / "named-outputs" / "model").mkdir(parents=True)
            (Path(download_path) / "named-outputs" / "model" / "ConvNet_MNIST.onnx").write_bytes(b"onnx")
        else:
            (Path(download_path) / "artifacts" / "user_logs").mkdir(parents=True)
            (Path(download_path) / "artifacts" / "user_logs" / "std_log.txt").write_text("log")

    ml.jobs.download.side_effect = download
    files = steps.download_job_outputs(ml, "job1", tmp_path)
    assert ml.jobs.download.call_args_list == [mock.call("job1", download_path=str(tmp_path)),
                                               mock.call("job1", download_path=str(tmp_path), output_name="model")]
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "artifacts/user_logs/std_log.txt", "named-outputs/model/ConvNet_MNIST.onnx"]


def test_copy_model_files_copies_only_the_model_and_plot(tmp_path):
    model = tmp_path / "named-outputs" / "model"
    model.mkdir(parents=True)
    files = []
    for name in ("ConvNet_MNIST.onnx", "ConvNet_MNIST_training.png", "ConvNet_MNIST_0.pt"):
        (model / name).write_bytes(name.encode())
        files.append(model / name)
    copied = steps.copy_model_files(files, tmp_path / "outputs")
    assert sorted(p.name for p in copied) == ["ConvNet_MNIST.onnx", "ConvNet_MNIST_training.png"]
    assert (tmp_path / "outputs" / "ConvNet_MNIST.onnx").read_bytes() == b"ConvNet_MNIST.onnx"


def test_cancel_and_delete_steps_wait_for_their_operations():
    ml = mock.MagicMock()
    steps.cancel_job(ml, "job1")
    ml.jobs.begin_cancel.assert_called_once_with("job1")
    ml.jobs.begin_cancel.return_value.result.assert_called_once_with()
    steps.delete_compute(ml, "gpu-cluster")
    ml.compute.begin_delete.assert_called_once_with("gpu-cluster")
    steps.delete_workspace(ml, "myws")
    ml.workspaces.begin_delete.assert_called_once_with("myws", delete_dependent_resources=False,
                                                       permanently_delete=True)


def test_delete_azureml_resources_skips_what_is_gone():
    ml, resource, reported = mock.MagicMock(), mock.MagicMock(), []
    ml.compute.begin_delete.side_effect = ResourceNotFoundError("gone")
    steps.delete_azureml_resources(ml, resource, "rg", "ws", "gpu-cluster", report=reported.append)
    assert reported == ["Deleted workspace ws", "Deleted resource group rg"]
    resource.resource_groups.begin_delete.assert_called_once_with("rg")
