"""quickstart.py --preempt-once's watcher, with mocked clients: it preempts once after the first checkpoint,
never before, never after the run ends, and reports every outcome in one line."""
from __future__ import annotations

import threading
from types import SimpleNamespace
from unittest import mock

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.mgmt.batchai import models

from batchai_quickstart import preemption_demo
from batchai_quickstart.config import ConfigError

RG, WS, EXP, JOB, CLUSTER = "rg", "ws", "exp", "job", "cluster"
WAIT = 60  # bounded waits for the watcher thread: generous for a loaded machine


def _outputs(*names):
    return [SimpleNamespace(name=name, download_url="http://files/" + name) for name in names]


def test_first_checkpoint_is_the_earliest_checkpoint_of_the_running_job():
    batchai = mock.MagicMock()
    batchai.jobs.get.return_value = SimpleNamespace(execution_state="running")
    batchai.jobs.list_output_files.return_value = _outputs("ConvNet_MNIST.onnx", "ConvNet_MNIST_10.pt",
                                                           "ConvNet_MNIST_2.pt", "ConvNet_MNIST_metrics.csv")
    assert preemption_demo.first_checkpoint(batchai, RG, WS, EXP, JOB) == "ConvNet_MNIST_2.pt"
    batchai.jobs.get.assert_called_with(RG, WS, EXP, JOB)
    options = batchai.jobs.list_output_files.call_args.args[4]
    assert isinstance(options, models.JobsListOutputFilesOptions) and options.outputdirectoryid == "MODEL"
    batchai.jobs.list_output_files.return_value = _outputs("ConvNet_MNIST_0.dnn")  # the CNTK path's
    assert preemption_demo.first_checkpoint(batchai, RG, WS, EXP, JOB) == "ConvNet_MNIST_0.dnn"
    batchai.jobs.list_output_files.return_value = _outputs("ConvNet_MNIST_0.pt.partial", "ConvNet_MNIST.onnx")
    assert preemption_demo.first_checkpoint(batchai, RG, WS, EXP, JOB) is None


@pytest.mark.parametrize("state", ["queued", "succeeded", "failed", "terminating"])
def test_first_checkpoint_is_none_unless_the_job_runs(state):
    batchai = mock.MagicMock()
    batchai.jobs.get.return_value = SimpleNamespace(execution_state=state)
    batchai.jobs.list_output_files.return_value = _outputs("ConvNet_MNIST_0.pt")
    assert preemption_demo.first_checkpoint(batchai, RG, WS, EXP, JOB) is None
    batchai.jobs.list_output_files.assert_not_called()


def test_preempts_once_after_the_first_checkpoint():
    found = iter([None, None, "ConvNet_MNIST_0.pt", "ConvNet_MNIST_0.pt"])
    preempted = threading.Event()
    preempt = mock.Mock(side_effect=lambda: preempted.set() or "tvm-1_1-20261129t090000z-p")
    lines = []
    with preemption_demo.PreemptOnce(lambda: next(found), preempt, report=lines.append, poll_seconds=0.01) as watcher:
        assert preempted.wait(WAIT)
    preempt.assert_called_once_with()
    assert watcher.preempted_node == "tvm-1_1-20261129t090000z-p"
    assert lines == ["Emulator: preempted node tvm-1_1-20261129t090000z-p after the first checkpoint, "
                     "ConvNet_MNIST_0.pt (--preempt-once)"]


def test_no_preemption_when_the_job_ends_before_a_checkpoint():
    polled = threading.Event()
    preempt = mock.Mock()
    lines = []

    def find():
        polled.set()
        return None

    with preemption_demo.PreemptOnce(find, preempt, report=lines.append, poll_seconds=0.01):
        assert polled.wait(WAIT)
    preempt.assert_not_called()
    assert lines == ["Emulator: no node was preempted: the job ended before its first checkpoint (--preempt-once)"]


def test_interrupted_run_stops_the_watcher_silently():
    polled = threading.Event()
    preempt = mock.Mock()
    lines = []

    def find():
        polled.set()
        return None

    watcher = preemption_demo.PreemptOnce(find, preempt, report=lines.append, poll_seconds=0.01)
    with pytest.raises(KeyboardInterrupt):
        with watcher:
            assert polled.wait(WAIT)
            raise KeyboardInterrupt
    assert not watcher._thread.is_alive()
    preempt.assert_not_called()
    assert lines == []


def test_a_failure_while_the_run_goes_on_is_one_line():
    def find():
        raise ServiceRequestError("Connection refused\nmore detail")

    lines = []
    with preemption_demo.PreemptOnce(find, mock.Mock(), report=lines.append, poll_seconds=0.01) as watcher:
        watcher._thread.join(WAIT)
    assert lines == ["Emulator: no node was preempted: Connection refused (--preempt-once)"]


def test_a_refused_preemption_is_one_line():
    class PreemptionRefused(ValueError):
        pass

    def preempt():
        raise PreemptionRefused("cluster mycluster has dedicated nodes: only low-priority nodes are preempted")

    lines = []
    with preemption_demo.PreemptOnce(lambda: "ConvNet_MNIST_0.pt", preempt, report=lines.append,
                                     poll_seconds=0.01) as watcher:
        watcher._thread.join(WAIT)
    assert lines == ["Emulator: no node was preempted: cluster mycluster has dedicated nodes: only low-priority "
                     "nodes are preempted (--preempt-once)"]


def test_a_failure_after_the_run_ended_is_not_reported():
    """At the end of a run the emulator stops under the watcher: what it then fails with says nothing new."""
    polling, release, failed = threading.Event(), threading.Event(), threading.Event()
    lines = []

    def find():
        polling.set()
        release.wait(WAIT)
        failed.set()
        raise ServiceRequestError("Connection refused")

    watcher = preemption_demo.PreemptOnce(find, mock.Mock(), report=lines.append, poll_seconds=0.01, stop_timeout=0.1)
    with watcher:
        assert polling.wait(WAIT)  # leaving sets the stop flag; the poll under way then fails
    release.set()
    watcher._thread.join(WAIT)
    assert failed.is_set() and not watcher._thread.is_alive()
    assert lines == ["Emulator: no node was preempted: the job ended before its first checkpoint (--preempt-once)"]


def test_preempt_once_preempts_through_the_emulator_of_the_clients():
    batchai = mock.MagicMock()
    batchai.jobs.get.return_value = SimpleNamespace(execution_state="running")
    batchai.jobs.list_output_files.return_value = _outputs("ConvNet_MNIST_0.pt")
    preempted = threading.Event()
    emulator = mock.Mock()
    emulator.preempt_node.side_effect = lambda *args: preempted.set() or "tvm-1_1-p"
    clients = SimpleNamespace(batchai=batchai, emulator=emulator, monitor_interval=0.01)
    config = SimpleNamespace(resource_group=RG, workspace=WS, experiment=EXP, job=JOB, cluster=CLUSTER)
    lines = []
    with preemption_demo.preempt_once(clients, config, report=lines.append):
        assert preempted.wait(WAIT)
    emulator.preempt_node.assert_called_once_with(RG, WS, CLUSTER)
    batchai.jobs.get.assert_called_with(RG, WS, EXP, JOB)
    assert lines == ["Emulator: preempted node tvm-1_1-p after the first checkpoint, ConvNet_MNIST_0.pt "
                     "(--preempt-once)"]


def test_needs_the_local_target():
    preemption_demo.require_local_target("local")
    with pytest.raises(ConfigError, match=r"^--preempt-once needs the local target") as info:
        preemption_demo.require_local_target("azure")
    assert "\n" not in str(info.value)
