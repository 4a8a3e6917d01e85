"""quickstart.py --preempt-once end to end: a low-priority cluster whose node the emulator preempts after the
first checkpoint; the job is requeued, reruns on the replacement node and resumes from that checkpoint."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from doc_blocks import quickstart_command
from test_config import write_config
from test_quickstart_e2e import ROOT, assert_nothing_left, interrupt_after, start_quickstart

# docs/preemption.md's command. The first checkpoint comes after epoch 1: the rest leaves the watcher time to preempt.
SCRIPT, MNIST_DIR, ARGUMENTS = quickstart_command("docs/preemption.md", "Low-priority nodes and preemption")
EPOCHS = 8


def test_docs_show_the_command_run_here():
    assert (SCRIPT, MNIST_DIR, ARGUMENTS) == ("quickstart.py", "tests/data/mnist-small",
                                              ["--epochs", str(EPOCHS), "--preempt-once"])


def test_preempted_job_is_requeued_and_resumes_from_its_checkpoint(tmp_path):
    process = start_quickstart(tmp_path, *ARGUMENTS)
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output
    lines = output.splitlines()
    assert "Created cluster mycluster (1 x STANDARD_NC6, low priority)" in lines
    preempted = [line for line in lines if line.startswith("Emulator: preempted node ")]
    assert len(preempted) == 1, output
    assert re.match(r"^Emulator: preempted node tvm-\S+ after the first checkpoint, ConvNet_MNIST_\d+\.pt "
                    r"\(--preempt-once\)$", preempted[0]), preempted
    # The job ran, was requeued (seen as queued, or only as a later start if the rerun came between two polls),
    # ran again and succeeded.
    requeued = [line for line in lines if line.startswith("Job state: queued (requeued: ")
                or line.startswith("Job state: running (again: ")]
    assert len(requeued) == 1, output
    states = [line for line in lines if line.startswith("Job state: ")]
    assert states[0] == "Job state: running" and states[-1] == "Job state: succeeded", states
    assert states.index(requeued[0]) > 0
    # The followed stderr.txt holds both runs: the rerun resumed after the checkpoint instead of starting over.
    resumed = re.search(r"^Resumed from \S+/ConvNet_MNIST_(\d+)\.pt \(epoch (\d+) of {} done\)\.$".format(EPOCHS),
                        output, re.M)
    assert resumed, output
    assert int(resumed.group(2)) == int(resumed.group(1)) + 1
    assert lines.index(requeued[0]) < lines.index(resumed.group(0))
    finished = re.findall(r"^Finished Epoch\[(\d+) of {}\]".format(EPOCHS), output, re.M)
    assert finished[-1] == str(EPOCHS) and len(set(finished)) == EPOCHS, finished  # every epoch, up to the last
    assert "Job myjob succeeded with exit code 0" in lines
    assert "Traceback" not in output
    for deleted in ("job myjob", "cluster mycluster", "workspace myworkspace", "file share batchaiquickstart",
                    "resource group batchaiquickstartrg"):
        assert "Deleted " + deleted in lines
    assert_nothing_left(tmp_path)


def test_ctrl_c_after_the_rerun_terminates_the_requeued_job_and_cleans_up(tmp_path):
    process = start_quickstart(tmp_path, "--epochs", "200", "--preempt-once")
    output = interrupt_after(process, "Resumed from ", timeout=600)
    assert process.returncode == 130, output
    assert "Emulator: preempted node " in output
    assert "Terminated job myjob" in output and "Deleted resource group batchaiquickstartrg" in output
    assert "Traceback" not in output
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize("how", ["option", "config"])
def test_preempt_once_needs_the_local_target(tmp_path, how):
    if how == "option":
        command = ["--config", str(write_config(tmp_path)), "--target", "azure"]
    else:
        command = ["--config", str(write_config(tmp_path, quickstart__target="azure"))]
    result = subprocess.run([sys.executable, str(ROOT / "quickstart.py"), *command, "--preempt-once"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: --preempt-once needs the local target"), result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
