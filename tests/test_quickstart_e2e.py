"""quickstart.py end to end: the real SDKs against the embedded emulator, real training.

Runs the script as a user does (a subprocess), on the committed MNIST subset for one epoch.
"""
from __future__ import annotations

import configparser
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from conftest import PATIENCE, processes_mentioning


ROOT = Path(__file__).resolve().parents[1]
SUBSET = ROOT / "tests" / "data" / "mnist-small"


def make_config(tmp_path: Path) -> Path:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "config.example.ini")
    parser.set("local", "data_dir", str(tmp_path / "emulator-data"))
    path = tmp_path / "config.ini"
    with open(path, "w") as f:
        parser.write(f)
    os.chmod(path, 0o600)
    return path


def start_quickstart(tmp_path: Path, *extra: str, script: str = "quickstart.py") -> subprocess.Popen:
    """``script`` run as a user runs it, on the MNIST subset, with a config whose emulator lives in ``tmp_path``."""
    command = [sys.executable, str(ROOT / script), "--config", str(make_config(tmp_path)),
               "--mnist-dir", str(SUBSET), *extra]
    return subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


def interrupt_after(process: subprocess.Popen, prefix: str, timeout: float = 300) -> str:
    """Ctrl-C (SIGINT) once the running quickstart prints a line starting with ``prefix``; returns all it printed.
    A run that has not printed it within PATIENCE x ``timeout`` seconds is interrupted all the same (so that it
    cleans up), and one that does not end after Ctrl-C is killed: a failing test leaves no run behind to slow
    the tests after it."""
    seen, found = [], threading.Event()

    def read() -> None:
        for line in process.stdout:
            seen.append(line)
            if line.startswith(prefix):
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        found.wait(timeout * PATIENCE)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120 * PATIENCE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=60)
    output = "".join(seen)
    assert found.is_set(), "no line starting with {!r} within {} s:\n{}".format(prefix, timeout * PATIENCE, output)
    return output


def assert_nothing_left(tmp_path: Path) -> None:
    """No process of the run is alive, and the emulator holds none of the quickstart's resources."""
    assert processes_mentioning(str(tmp_path)) == []
    import emulator
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.storage.fileshare import ShareServiceClient

    with emulator.start(tmp_path / "emulator-data") as emu:
        resources = ResourceManagementClient(emu.credential(), emu.subscription_id, base_url=emu.arm_url,
                                             connection_verify=emu.ca_cert)
        assert [g.name for g in resources.resource_groups.list()] == []
        shares = ShareServiceClient.from_connection_string(emu.files_connection_string)
        assert [s.name for s in shares.list_shares()] == []


def test_quickstart_runs_end_to_end(tmp_path):
    process = start_quickstart(tmp_path, "--epochs", "1")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    lines = output.splitlines()
    assert "Created resource group batchaiquickstartrg" in lines
    assert ("Cluster state: steady Target: 1; Allocated: 1; Idle: 1; Unusable: 0; Running: 0; Preparing: 0; "
            "Leaving: 0") in lines
    assert "Job state: running" in lines and "Job state: succeeded" in lines
    assert lines.index("Job state: running") < lines.index("Job state: succeeded")
    # The training progress was followed from stderr.txt while the job ran.
    assert "Training 98778 parameters in 10 parameter tensors." in lines
    assert re.search(r"^Finished Epoch\[1 of 1\]: \[Training\] loss = [\d.]+ \* 2000, metric = [\d.]+% \* 2000 ",
                     output, re.M)
    final = re.search(r"^Final Results: Minibatch\[1-\d+\]: errs = ([\d.]+)% \* 500$", output, re.M)
    assert final and float(final.group(1)) < 80  # untrained: about 90%; accuracy is tested in test_sample.py
    assert "Job myjob succeeded with exit code 0" in lines
    url = r"http://127\.0\.0\.1:\d+/\w+/batchaiquickstart/[^ ]+/{}/{}\?[^ ]*sig=\.\.\."
    stdouterr = output.split("Files in stdouterr:")[1].split("Files in MODEL:")[0]
    for name in ("stdout.txt", "stderr.txt", "execution.log"):
        assert re.search(r"  {} \(\d+ bytes\) ".format(re.escape(name)) + url.format("stdouterr", re.escape(name)),
                         stdouterr), stdouterr
    models_listing = output.split("Files in MODEL:")[1]
    for name in ("ConvNet_MNIST_0.pt", "ConvNet_MNIST.onnx", "ConvNet_MNIST_metrics.csv", "ConvNet_MNIST_training.png"):
        assert re.search(r"  {} \(\d+ bytes\) ".format(re.escape(name)) + url.format("outputs/Models", re.escape(name)),
                         models_listing), models_listing
    # Secrets never reach the output.
    assert "account_key" not in output.lower() and "AccountKey" not in output
    # The downloaded model is a valid ONNX graph, the plot a PNG.
    import onnx

    onnx.checker.check_model(onnx.load(str(tmp_path / "outputs" / "ConvNet_MNIST.onnx")))
    assert (tmp_path / "outputs" / "ConvNet_MNIST_training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for deleted in ("job myjob", "cluster mycluster", "workspace myworkspace", "file share batchaiquickstart",
                    "resource group batchaiquickstartrg"):
        assert "Deleted " + deleted in lines
    assert_nothing_left(tmp_path)


def test_ctrl_c_during_the_job_terminates_it_and_cleans_up(tmp_path):
    process = start_quickstart(tmp_path, "--epochs", "200")
    output = interrupt_after(process, "Finished Epoch[1 of 200]")
    assert process.returncode == 130, output
    assert "Interrupted: stopping the job and cleaning up." in output
    assert "Terminated job myjob" in output
    assert "Deleted resource group batchaiquickstartrg" in output
    assert "Traceback" not in output
    assert_nothing_left(tmp_path)


def test_placeholder_on_azure_target_is_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "quickstart.py"), "--config", str(make_config(tmp_path)),
                             "--target", "azure"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "FILL-IN-HERE" in result.stderr and "admin_user_password" in result.stderr


def test_malformed_mnist_file_is_one_line_error_before_anything_is_created(tmp_path):
    broken = tmp_path / "broken-mnist"
    broken.mkdir()
    for source in SUBSET.glob("*.gz"):
        (broken / source.name).write_bytes(source.read_bytes())
    import gzip

    images = broken / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:5000]))
    result = subprocess.run([sys.executable, str(ROOT / "quickstart.py"), "--config", str(make_config(tmp_path)),
                             "--mnist-dir", str(broken)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "train-images-idx3-ubyte.gz" in error_lines[0] and "truncated" in error_lines[0]
    assert "Traceback" not in result.stderr
    assert "Created" not in result.stdout and "Deleted" not in result.stdout  # the data is checked first
    assert_nothing_left(tmp_path)


def test_keep_leaves_the_resources_and_cleanup_script_deletes_them(tmp_path):
    process = start_quickstart(tmp_path, "--epochs", "1", "--keep")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert "Kept the resources (--keep): python scripts/cleanup.py deletes them." in output
    assert "Deleted" not in output
    import emulator
    from azure.mgmt.batchai import BatchAI

    with emulator.start(tmp_path / "emulator-data") as emu:
        batchai = BatchAI(emu.credential(), emu.subscription_id, base_url=emu.arm_url, connection_verify=emu.ca_cert)
        job = batchai.jobs.get("batchaiquickstartrg", "myworkspace", "myexperiment", "myjob")
        assert job.execution_state == "succeeded"
        assert batchai.clusters.get("batchaiquickstartrg", "myworkspace", "mycluster").vm_size == "STANDARD_NC6"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "cleanup.py"), "--config",
                             str(tmp_path / "config.ini")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for deleted in ("job myjob", "cluster mycluster", "workspace myworkspace", "file share batchaiquickstart",
                    "resource group batchaiquickstartrg"):
        assert "Deleted " + deleted in result.stdout
    assert_nothing_left(tmp_path)


def test_what_a_test_leaves_running_in_its_tmp_path_is_found(tmp_path):
    # conftest.no_run_left_behind ends these after each test; here, the finding itself.
    sleeper = subprocess.Popen(["sleep", "600"], cwd=tmp_path)
    try:
        assert [int(pid) for pid, _ in processes_mentioning(str(tmp_path))] == [sleeper.pid]
        assert processes_mentioning(str(tmp_path / "elsewhere")) == []
    finally:
        sleeper.kill()
        sleeper.wait()
