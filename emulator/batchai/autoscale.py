"""Auto-scale clusters (``scaleSettings.autoScale``): the cluster grows for queued jobs up to its
``maximumNodeCount`` and shrinks to its ``minimumNodeCount`` when idle, passing through
``resizing`` to ``steady`` as the service did (its azure-sdk-for-python test test_auto_scaling: a
cluster switched to autoScale 0..1 grew for a job and went back to 0 nodes afterwards).

The service evaluated its scaling every few minutes; here every ``INTERVAL_SECONDS``, and a
cluster shrinks once it has wanted fewer nodes for ``IDLE_SECONDS``. Growth stops at the quotas
(the service's documentation: a cluster that does not reach its target may have reached its core
quota). The target it picks is kept in the cluster's stored scale settings under
``validation.AUTOSCALE_TARGET`` (never shown to clients), which is where the allocator and the
scheduler read every cluster's target from.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable, Optional

from ..core.arm import utc_now
from .validation import AUTOSCALE_TARGET, target_node_count

log = logging.getLogger("emulator.batchai")

INTERVAL_SECONDS = 0.2
IDLE_SECONDS = 1.0


def wanted_nodes(auto: dict, busy: int, queued: int) -> int:
    """Nodes the cluster should have: those running jobs plus those queued jobs ask for, within its bounds."""
    return max(auto["minimumNodeCount"], min(auto["maximumNodeCount"], busy + queued))


class AutoScaler:
    """One thread that re-targets every auto-scale cluster; ``reconcile(cluster_id)`` resizes one."""

    def __init__(self, store, reconcile: Callable[[int], None],
                 headroom: Callable[[int], Optional[int]] = lambda cluster_id: None) -> None:
        self.store = store
        self._reconcile = reconcile
        self._headroom = headroom  # the most nodes a cluster may have within the quotas
        self._shrink_since: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batchai-autoscale", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL_SECONDS):
            try:
                self.evaluate()
            except Exception:  # keep scaling the other clusters; the next round tries again
                log.exception("auto-scale evaluation failed")

    def evaluate(self) -> None:
        """One round: give each auto-scale cluster the target its jobs call for."""
        now = time.monotonic()
        for row in self.store.query("SELECT id, resource_group, workspace, name, properties FROM bai_clusters "
                                    "WHERE provisioning_state = 'succeeded'"):
            props = json.loads(row["properties"])
            auto = props["scaleSettings"].get("autoScale")
            if auto is None:
                self._shrink_since.pop(row["id"], None)
                continue
            busy = self.store.query_one("SELECT COUNT(*) AS n FROM bai_nodes WHERE cluster_id = ? AND "
                                        "state = 'running'", (row["id"],))["n"]
            queued = sum(json.loads(job["properties"]).get("nodeCount", 1) for job in self.store.query(
                "SELECT properties FROM bai_jobs WHERE execution_state = 'queued' AND resource_group = ? AND "
                "workspace = ? AND cluster = ?", (row["resource_group"], row["workspace"], row["name"])))
            wanted = wanted_nodes(auto, busy, queued)
            current = target_node_count(props["scaleSettings"])
            most = self._headroom(row["id"])
            if most is not None and wanted > current:  # as on the service: growth stops at the quota
                wanted = max(current, min(wanted, most))
            if wanted < current:  # shrink only after the cluster has wanted fewer nodes for a while
                since = self._shrink_since.setdefault(row["id"], now)
                if now - since < IDLE_SECONDS:
                    continue
            self._shrink_since.pop(row["id"], None)
            if wanted == current:
                continue
            auto[AUTOSCALE_TARGET] = wanted
            changed = self.store.execute(
                "UPDATE bai_clusters SET properties = ?, allocation_state = 'resizing', allocation_state_time = ? "
                "WHERE id = ? AND properties = ?", (json.dumps(props), utc_now(), row["id"], row["properties"]))
            if changed:
                log.info("cluster %s auto-scales from %d to %d node(s)", row["name"], current, wanted)
                self._reconcile(row["id"])
