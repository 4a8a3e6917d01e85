"""Idle scale-down of AmlCompute clusters: nodes no job wants stay for the compute's
``scaleSettings.nodeIdleTimeBeforeScaleDown`` (an ISO 8601 duration; azure-ai-ml sends its
``idle_time_before_scale_down``, 120 s by default) and leave after it, as Batch AI auto-scale clusters
shrink after their idle time (emulator/batchai/autoscale.py). A compute without the setting, or with
``PT0S``, lets idle nodes go at once. Tests shorten it through the SDK's own setting.

``target`` is what the runner's allocator sees as the cluster's target; a thread wakes the runner
(``reconcile``) when a cluster's idle time has passed, so that its idle nodes leave then.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

import isodate

log = logging.getLogger("emulator.azureml")

INTERVAL_SECONDS = 0.2


def idle_seconds(scale_settings: dict) -> float:
    """``nodeIdleTimeBeforeScaleDown`` in seconds (0 when absent or not a duration)."""
    value = scale_settings.get("nodeIdleTimeBeforeScaleDown")
    if not value:
        return 0.0
    try:
        return max(0.0, isodate.parse_duration(value).total_seconds())
    except (isodate.ISO8601Error, AttributeError, TypeError, ValueError):
        return 0.0


class IdleScaleDown:
    """Holds clusters at their node count for their idle time once their jobs want fewer nodes."""

    def __init__(self, reconcile: Callable[[int], None]) -> None:
        self._reconcile = reconcile
        self._since: dict = {}   # cluster id -> (monotonic time it first wanted fewer nodes, idle seconds)
        self._woken: set = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def target(self, cluster_id: int, wanted: int, current: int, idle: float) -> int:
        """The cluster's target: ``wanted``, or its ``current`` nodes while they have been idle for less than
        ``idle`` seconds."""
        with self._lock:
            if wanted >= current or idle <= 0:
                self._since.pop(cluster_id, None)
                self._woken.discard(cluster_id)
                return wanted
            since, _ = self._since.setdefault(cluster_id, (time.monotonic(), idle))
            self._since[cluster_id] = (since, idle)  # a changed setting counts from the same moment
            return wanted if time.monotonic() - since >= idle else current

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="azureml-scaledown", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL_SECONDS):
            now = time.monotonic()
            with self._lock:
                due = [cluster_id for cluster_id, (since, idle) in self._since.items()
                       if now - since >= idle and cluster_id not in self._woken]
                self._woken.update(due)
            for cluster_id in due:
                try:
                    log.info("compute %s: idle time passed, scaling down", cluster_id)
                    self._reconcile(cluster_id)
                except Exception:  # the next change wakes it again
                    log.exception("idle scale-down of compute %s failed", cluster_id)
