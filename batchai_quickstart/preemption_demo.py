"""quickstart.py --preempt-once: preempting a node of the low-priority cluster once, on the local emulator.

Azure took low-priority nodes away whenever it needed them back. To show what follows without
waiting for that, a background thread watches the job's MODEL output through the SDK and, once
the first checkpoint is there, asks the emulator to preempt the node running the job. The
service requeues the job and reruns it on a replacement node; the sample resumes from that
checkpoint. Only the emulator can preempt a node on demand, so this is not one of the steps
(which work on Azure too).
"""
from __future__ import annotations

import re
import threading
from typing import Callable, Optional

from . import steps
from .azure_errors import describe_azure_error
from .config import ConfigError

CHECKPOINT = re.compile(r"^ConvNet_MNIST_(\d+)\.(pt|dnn)$")  # the sample's per-epoch checkpoints (PyTorch, CNTK)
OPTION = "--preempt-once"


def require_local_target(target: str) -> None:
    """--preempt-once asks the emulator for the preemption: refuse it on any other target."""
    if target != "local":
        raise ConfigError("{} needs the local target (only the emulator preempts nodes on demand): "
                          "drop --target {} or set [quickstart] target = local".format(OPTION, target))


def first_checkpoint(batchai_client, resource_group: str, workspace: str, experiment: str, job: str) -> Optional[str]:
    """The name of the earliest checkpoint the running job has written to its MODEL output, or None."""
    if batchai_client.jobs.get(resource_group, workspace, experiment, job).execution_state != "running":
        return None
    found = [(int(match.group(1)), output.name) for output in steps.list_output_files(
        batchai_client, resource_group, workspace, experiment, job, "MODEL")
        for match in [CHECKPOINT.match(output.name)] if match]
    return min(found)[1] if found else None


class PreemptOnce:
    """A background thread that calls ``preempt()`` once, as soon as ``find_checkpoint()`` names a checkpoint.

    Used as a context manager around following the job; leaving it stops the thread. Nothing is
    preempted when the job ends (or the run is interrupted) before a checkpoint appears.
    """

    def __init__(self, find_checkpoint: Callable[[], Optional[str]], preempt: Callable[[], str],
                 report: Callable[[str], None] = print, poll_seconds: float = 0.5, stop_timeout: float = 60) -> None:
        self.find_checkpoint, self.preempt, self.report = find_checkpoint, preempt, report
        self.poll_seconds, self.stop_timeout = poll_seconds, stop_timeout
        self.preempted_node: Optional[str] = None
        self.failure: Optional[str] = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="preempt-once", daemon=True)

    def __enter__(self) -> "PreemptOnce":
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.stop()
        if exc_type is None and self.preempted_node is None and self.failure is None:
            self.report("Emulator: no node was preempted: the job ended before its first checkpoint ({})".format(OPTION))

    def stop(self) -> None:
        """Stop watching; waits for a preemption under way (it returns once the job is requeued)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(self.stop_timeout)

    def _watch(self) -> None:
        try:
            while not self._stopping.wait(self.poll_seconds):
                checkpoint = self.find_checkpoint()
                if checkpoint and not self._stopping.is_set():
                    self.preempted_node = self.preempt()
                    self.report("Emulator: preempted node {} after the first checkpoint, {} ({})".format(
                        self.preempted_node, checkpoint, OPTION))
                    return
        except Exception as exc:  # a thread's exception would only print a traceback: report it in one line
            if not self._stopping.is_set():  # else the run is ending and the emulator going away: nothing to say
                self.failure = describe_azure_error(exc) if str(exc).strip() else type(exc).__name__
                self.report("Emulator: no node was preempted: {} ({})".format(self.failure, OPTION))


def preempt_once(clients, config, report: Callable[[str], None] = print) -> PreemptOnce:
    """The --preempt-once watcher of the quickstart's job, preempting through ``clients.emulator``.

    ``clients`` is a batchai_quickstart.clients.Clients of the local target, ``config`` a QuickstartConfig.
    """
    rg, ws = config.resource_group, config.workspace
    return PreemptOnce(
        find_checkpoint=lambda: first_checkpoint(clients.batchai, rg, ws, config.experiment, config.job),
        preempt=lambda: clients.emulator.preempt_node(rg, ws, config.cluster),
        report=report, poll_seconds=clients.monitor_interval)
