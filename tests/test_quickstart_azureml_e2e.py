"""quickstart_azureml.py end to end: the real azure-ai-ml against the embedded emulator, real training.

Runs the script as a user does (a subprocess), on the committed MNIST subset for one epoch; the failing
job runs main() in this process with a training script that fails.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from doc_blocks import quickstart_command
from test_quickstart_e2e import ROOT, SUBSET, interrupt_after, make_config
from test_quickstart_e2e import start_quickstart as start_script

RG, WS, COMPUTE = "batchaiquickstartrg", "myamlworkspace", "gpu-cluster"


def start_quickstart(tmp_path: Path, *extra: str) -> subprocess.Popen:
    return start_script(tmp_path, *extra, script="quickstart_azureml.py")


def job_processes(tmp_path: Path) -> list:
    """Live processes started in the run's emulator directory (leftover jobs)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink("/proc/{}/cwd".format(pid))
        except OSError:
            continue
        if int(pid) != os.getpid() and cwd.startswith(str(tmp_path / "emulator-data")):
            found.append(pid)
    return found


def assert_nothing_left(tmp_path: Path) -> None:
    """No job process is alive, and the emulator holds no resource group or workspace."""
    assert job_processes(tmp_path) == []
    import emulator
    from azure.mgmt.resource.resources import ResourceManagementClient

    with emulator.start(tmp_path / "emulator-data") as emu:
        resources = ResourceManagementClient(emu.credential(), emu.subscription_id, base_url=emu.arm_url,
                                             connection_verify=emu.ca_cert)
        assert [g.name for g in resources.resource_groups.list()] == []
        assert emu.services["azureml"].backend.list_workspaces() == []


def check_run(output: str, tmp_path: Path, nodes: int = 1) -> None:
    lines = output.splitlines()
    assert "Created resource group {}".format(RG) in lines and "Created workspace {}".format(WS) in lines
    assert re.search(r"^Uploaded data asset mnist-cntk version \w+ \(azureml://datastores/workspaceblobstore/paths/"
                     r"LocalUpload/\w+/mnist-cntk/\)$", output, re.M), output
    assert ("Compute gpu-cluster: Standard_NC4as_T4_v3 x 0 to 2 nodes (scales to 0 when idle for 120 s), "
            "Succeeded") in lines
    submitted = re.search(r"^Submitted job (\w+) in experiment mnist-quickstart on {} node\(s\)$".format(nodes),
                          output, re.M)
    assert submitted, output
    job = submitted.group(1)
    # The log was streamed by jobs.stream while the job ran.
    stream = "Streaming user_logs/std_log.txt" if nodes == 1 else "Streaming user_logs/std_log_process_0.txt"
    assert stream in lines, output
    assert "Training 98778 parameters in 10 parameter tensors." in lines
    assert re.search(r"^Finished Epoch\[1 of 1\]: \[Training\] loss = [\d.]+ \* 2000, ", output, re.M)
    assert re.search(r"^Job {} completed \(https://ml\.azure\.com/runs/{}\?wsid=".format(job, job), output, re.M)
    logs = ["std_log.txt"] if nodes == 1 else ["std_log_process_{}.txt".format(r) for r in range(nodes)]
    for name in logs:
        assert re.search(r"^  artifacts/user_logs/{} \(\d+ bytes\)$".format(re.escape(name)), output, re.M), output
    for name in ("ConvNet_MNIST.onnx", "ConvNet_MNIST_metrics.csv", "ConvNet_MNIST_training.png"):
        assert re.search(r"^  named-outputs/model/{} \(\d+ bytes\)$".format(re.escape(name)), output, re.M), output
    assert "Downloaded outputs/ConvNet_MNIST.onnx" in lines and "Downloaded outputs/ConvNet_MNIST_training.png" in lines
    import onnx

    onnx.checker.check_model(onnx.load(str(tmp_path / "outputs" / "ConvNet_MNIST.onnx")))
    assert (tmp_path / "outputs" / "ConvNet_MNIST_training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Traceback" not in output and "AccountKey" not in output


def test_quickstart_azureml_runs_end_to_end(tmp_path):
    """docs/azureml.md's command, on the MNIST subset for one epoch."""
    script, _, arguments = quickstart_command("docs/azureml.md", "The same quickstart on Azure Machine Learning")
    assert (script, arguments) == ("quickstart_azureml.py", [])
    process = start_quickstart(tmp_path, *arguments, "--epochs", "1")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    check_run(output, tmp_path)
    for deleted in ("compute " + COMPUTE, "workspace " + WS, "resource group " + RG):
        assert "Deleted " + deleted in output.splitlines()
    assert_nothing_left(tmp_path)


def test_two_nodes_run_with_pytorch_distribution(tmp_path):
    process = start_quickstart(tmp_path, "--epochs", "1", "--nodes", "2")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    check_run(output, tmp_path, nodes=2)
    assert_nothing_left(tmp_path)


def test_ctrl_c_during_the_job_cancels_it_and_cleans_up(tmp_path):
    process = start_quickstart(tmp_path, "--epochs", "200")
    output = interrupt_after(process, "Finished Epoch[1 of 200]")
    assert process.returncode == 130, output
    assert "Interrupted: cancelling the job and cleaning up." in output
    assert re.search(r"^Cancelled job \w+$", output, re.M), output
    assert "Deleted resource group {}".format(RG) in output
    assert "Traceback" not in output
    assert_nothing_left(tmp_path)


def test_keep_leaves_the_resources_and_cleanup_script_deletes_them(tmp_path):
    process = start_quickstart(tmp_path, "--epochs", "1", "--keep")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert "Kept the resources (--keep): python scripts/cleanup_azureml.py deletes them." in output
    assert "Deleted" not in output
    job = re.search(r"^Submitted job (\w+)", output, re.M).group(1)
    import emulator

    with emulator.start(tmp_path / "emulator-data") as emu:
        backend = emu.services["azureml"].backend
        assert backend.get_job(RG, WS, job)["properties"]["status"] == "Completed"
        compute = backend.get_compute(RG, WS, COMPUTE)["properties"]["properties"]
        assert compute["vmSize"] == "Standard_NC4as_T4_v3" and compute["scaleSettings"]["minNodeCount"] == 0
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "cleanup_azureml.py"), "--config",
                             str(tmp_path / "config.ini")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for deleted in ("compute " + COMPUTE, "workspace " + WS, "resource group " + RG):
        assert "Deleted " + deleted in result.stdout
    assert_nothing_left(tmp_path)


def test_a_failing_job_shows_its_error_and_cleans_up(tmp_path, monkeypatch, capsys):
    import quickstart_azureml

    code = tmp_path / "failing-code"
    code.mkdir()
    # It runs a few seconds first: a job already over when jobs.stream starts shows no log (the SDK's behaviour).
    (code / "ConvNet_MNIST.py").write_text("import sys, time\nprint('loading the data', flush=True)\n"
                                           "time.sleep(4)\nsys.exit(3)\n")
    monkeypatch.setattr(quickstart_azureml, "CODE_DIR", code)
    # The local client setup sets these for the process (MLClient writes the cloud's name): restored after the test.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    monkeypatch.chdir(tmp_path)
    status = quickstart_azureml.run(["--config", str(make_config(tmp_path)), "--mnist-dir", str(SUBSET),
                                     "--epochs", "1"])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert status == 1, output
    assert "loading the data" in output  # streamed before it failed
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert re.match(r"error: job \w+ failed: UserError: Execution failed\. User process 'python' exited with status "
                    r"code 3\. Please check log file 'user_logs/std_log\.txt' for more details\.$", errors[0]), errors
    assert re.search(r"^  artifacts/user_logs/std_log\.txt \(\d+ bytes\)$", captured.out, re.M), output
    assert "Deleted resource group {}".format(RG) in captured.out
    assert "Traceback" not in output
    assert_nothing_left(tmp_path)


def test_placeholder_on_azure_target_is_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "quickstart_azureml.py"), "--config",
                             str(make_config(tmp_path)), "--target", "azure"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "FILL-IN-HERE" in result.stderr and "subscription_id" in result.stderr


def test_too_many_nodes_is_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "quickstart_azureml.py"), "--config",
                             str(make_config(tmp_path)), "--nodes", "3"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --nodes 3 must be from 1 to [azureml] max_nodes = 2 of {}".format(
        tmp_path / "config.ini")
