"""Low-priority nodes (``vmPriority: lowpriority``) and their preemption.

On the service a low-priority VM could be taken back by Azure at any time. Batch AI ran on Azure
Batch, whose documentation says of a preempted node: "Tasks which were running on the Compute Node
when it was preempted will be rescheduled when another Compute Node becomes available"; Batch AI's
ExecutionState: a job is queued "when it is created, or when it is awaiting a retry", and its
startTime "is the most recent time at which the job started running" after a restart. So here the
node leaves, the job on it stops on all its nodes and is queued again (what it wrote to shares
stays), and the cluster resizes to get a replacement on which the job runs again
(``JobRunner.preempt_node``). Dedicated nodes are never preempted.

Two ways to preempt: ``preempt`` on demand (``Emulator.preempt_node``, for tests and
demonstrations), or at random: every idle or running low-priority node is preempted at ``rate``
per node-hour (a Poisson process, so ``rate`` 60 is about one preemption a minute per node), drawn
from a generator seeded with ``seed`` when one is given.
"""
from __future__ import annotations

import json
import logging
import math
import random
import sqlite3
import threading
from typing import Callable, Optional

from ..core.controls import PreemptionRefused, check_rate
from .validation import vm_priority

log = logging.getLogger("emulator.batchai")

TICK_SECONDS = 0.5
PREEMPTIBLE_STATES = ("running", "idle")  # nodes being prepared or leaving are not taken


class Preemptions:
    """Preempts low-priority nodes on demand and at a configured random rate."""

    def __init__(self, store, find_cluster: Callable[[str, str, str], Optional[sqlite3.Row]],
                 preempt_node: Callable[[int, str], bool], rate: float = 0.0, seed: Optional[int] = None) -> None:
        self.store = store
        self._find_cluster = find_cluster  # BatchAIBackend.find_cluster(resource_group, workspace, name)
        self._preempt_node = preempt_node  # JobRunner.preempt_node(cluster_id, node_id)
        self._lock = threading.Lock()
        self._rate = check_rate(rate)
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # ---- on demand ---------------------------------------------------------------------------

    def preempt(self, resource_group: str, workspace: str, cluster: str, node_id: Optional[str] = None) -> str:
        """Preempt ``node_id`` of a low-priority cluster, or (None) its first node running a job, else its
        first idle node; returns the node's id once its job is back in the queue."""
        row = self._find_cluster(resource_group, workspace, cluster)
        if row is None:
            raise PreemptionRefused("there is no cluster {} in workspace {} of resource group {}".format(
                cluster, workspace, resource_group))
        if _priority(row) != "lowpriority":
            raise PreemptionRefused("cluster {} has dedicated nodes, which are never preempted; create it with "
                                    "vmPriority 'lowpriority'".format(row["name"]))
        nodes = self.store.query("SELECT node_id, state FROM bai_nodes WHERE cluster_id = ? ORDER BY seq",
                                 (row["id"],))
        if node_id is None:
            node = next((n for n in nodes if n["state"] == "running"), None) or \
                next((n for n in nodes if n["state"] == "idle"), None)
            if node is None:
                raise PreemptionRefused("cluster {} has no idle or running node to preempt ({})".format(
                    row["name"], _states(nodes)))
        else:
            node = next((n for n in nodes if n["node_id"] == node_id), None)
            if node is None:
                raise PreemptionRefused("cluster {} has no node {}".format(row["name"], node_id))
            if node["state"] not in PREEMPTIBLE_STATES:
                raise PreemptionRefused("node {} of cluster {} is {}: only idle or running nodes are preempted".format(
                    node_id, row["name"], node["state"]))
        if not self._preempt_node(row["id"], node["node_id"]):
            raise PreemptionRefused("node {} of cluster {} left before it could be preempted".format(
                node["node_id"], row["name"]))
        return node["node_id"]

    # ---- at random ---------------------------------------------------------------------------

    def set_rate(self, rate, seed: Optional[int] = None) -> None:
        """Preempt low-priority nodes at random, ``rate`` per node-hour (0 stops); ``seed`` restarts the draws."""
        value = check_rate(rate)
        with self._lock:
            self._rate = value
            if seed is not None:
                self._random = random.Random(seed)
        if value > 0:
            self.start()

    def start(self) -> None:
        """Start drawing random preemptions if a rate is set (idempotent)."""
        with self._lock:
            if self._rate <= 0 or self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, name="batchai-preemptions", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.draw()
            except Exception:  # the next tick tries again
                log.exception("random preemption failed")

    def draw(self, seconds: float = TICK_SECONDS) -> list:
        """One tick: each preemptible low-priority node is preempted with the chance of at least one event
        of the rate's Poisson process in ``seconds``; returns the ids of the nodes preempted."""
        with self._lock:
            chance = 1 - math.exp(-self._rate * seconds / 3600)
            candidates = [(node["cluster_id"], node["node_id"]) for node in self._preemptible()]
            chosen = [candidate for candidate in candidates if self._random.random() < chance]
        preempted = []
        for cluster_id, node_id in chosen:
            if self._preempt_node(cluster_id, node_id):
                log.info("node %s preempted at random", node_id)
                preempted.append(node_id)
        return preempted

    def _preemptible(self) -> list:
        rows = self.store.query(
            "SELECT n.cluster_id, n.node_id, c.properties FROM bai_nodes n JOIN bai_clusters c ON c.id = n.cluster_id "
            "WHERE c.provisioning_state = 'succeeded' AND n.state IN ('running', 'idle') ORDER BY n.cluster_id, n.seq")
        return [row for row in rows if _priority(row) == "lowpriority"]


def _priority(row: sqlite3.Row) -> str:
    return vm_priority(json.loads(row["properties"]))


def _states(nodes: list) -> str:
    if not nodes:
        return "it has no nodes"
    counts: dict = {}
    for node in nodes:
        counts[node["state"]] = counts.get(node["state"], 0) + 1
    return ", ".join("{} {}".format(count, state) for state, count in sorted(counts.items()))
