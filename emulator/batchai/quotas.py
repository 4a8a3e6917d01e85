"""Batch AI usages and quotas: what ``GET .../locations/{location}/usages`` reports, and the
early refusal of a cluster or resize that would pass a quota.

Names, order, units and default limits are those the real service returned for api-version
2018-05-01 in June 2018 (azure-sdk-for-python's recording test_quota_and_usage.yaml; the spec
example ListUsages.json has the same shape; both under tests/emulator/conformance/): the cluster
count, the total dedicated vCPUs of the region, the dedicated vCPUs per VM family, then the same
for low priority. A cluster's vCPUs are its VM size's cores times its nodes (STANDARD_NC6: 6).
Current values count the nodes clusters have allocated; a create or resize is checked against
what the clusters ask for (their target node counts), so that two resizes cannot pass a quota
between them.

Limits are kept in SQLite per location and can be changed (``set_limit``; ``python -m emulator
--quota``).
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

from . import exceptions as errors

CLUSTERS = "Clusters"
TOTAL = {"dedicated": "Total Cluster Dedicated Regional vCPUs",
         "lowpriority": "Total Cluster LowPriority Regional vCPUs"}
NO_LIMIT = -1

#: VM family (as the usages name it, in the recorded order) -> ({VM size: cores}, default limit,
#: the same for dedicated and low priority). Cores from Azure's VM size tables.
FAMILIES = {
    "Standard D Family": ({"STANDARD_D1": 1, "STANDARD_D2": 2, "STANDARD_D3": 4, "STANDARD_D4": 8, "STANDARD_D11": 2,
                           "STANDARD_D12": 4, "STANDARD_D13": 8, "STANDARD_D14": 16}, 24),
    "Standard Dv2 Family": ({"STANDARD_D1_V2": 1, "STANDARD_D2_V2": 2, "STANDARD_D3_V2": 4, "STANDARD_D4_V2": 8,
                             "STANDARD_D5_V2": 16, "STANDARD_D11_V2": 2, "STANDARD_D12_V2": 4, "STANDARD_D13_V2": 8,
                             "STANDARD_D14_V2": 16, "STANDARD_D15_V2": 20}, 24),
    "Standard NC Family": ({"STANDARD_NC6": 6, "STANDARD_NC12": 12, "STANDARD_NC24": 24, "STANDARD_NC24R": 24}, 24),
    "Standard NCv2 Family": ({"STANDARD_NC6S_V2": 6, "STANDARD_NC12S_V2": 12, "STANDARD_NC24S_V2": 24,
                              "STANDARD_NC24RS_V2": 24}, 0),
    "Standard NCv3 Family": ({"STANDARD_NC6S_V3": 6, "STANDARD_NC12S_V3": 12, "STANDARD_NC24S_V3": 24,
                              "STANDARD_NC24RS_V3": 24}, 0),
    "Standard ND Family": ({"STANDARD_ND6S": 6, "STANDARD_ND12S": 12, "STANDARD_ND24S": 24, "STANDARD_ND24RS": 24}, 0),
    "Standard NV Family": ({"STANDARD_NV6": 6, "STANDARD_NV12": 12, "STANDARD_NV24": 24}, 24),
}
_SIZES = {size: (family, cores) for family, (sizes, _) in FAMILIES.items() for size, cores in sizes.items()}
DEFAULT_CLUSTERS = 20
DEFAULT_REGIONAL_CORES = 24


def family_usage_name(family: str, priority: str) -> str:
    return "{} Cluster {} vCPUs".format(family, "Dedicated" if priority == "dedicated" else "LowPriority")


def _localized(name: str) -> str:
    return name.replace("LowPriority", "Low Priority")


def default_limits() -> dict:
    """Usage name -> limit, in the order the service listed them."""
    limits = {CLUSTERS: DEFAULT_CLUSTERS}
    for priority in ("dedicated", "lowpriority"):
        limits[TOTAL[priority]] = DEFAULT_REGIONAL_CORES
        for family, (_, default) in FAMILIES.items():
            limits[family_usage_name(family, priority)] = default
    return limits


def vm_size_cores(vm_size: str) -> tuple[str, int]:
    """(family, cores) of a VM size; 400 for a size Batch AI clusters could not use."""
    found = _SIZES.get(str(vm_size).upper())
    if found is None:
        raise errors.invalid_parameter(
            "The VM size '{}' is not supported for Batch AI clusters; use one of {}.".format(
                vm_size, ", ".join(sorted(_SIZES))))
    return found


class ClusterDemand:
    """What one cluster holds or asks for: VM size, priority, allocated and target node counts."""

    __slots__ = ("cluster_id", "location", "vm_size", "priority", "allocated", "target")

    def __init__(self, cluster_id: int, location: str, vm_size: str, priority: str, allocated: int,
                 target: int) -> None:
        self.cluster_id, self.location, self.vm_size, self.priority = cluster_id, location, vm_size, priority
        self.allocated, self.target = allocated, target


class Quotas:
    """Quota limits per location (SQLite) and the usages computed from the clusters' demands,
    which ``demands()`` returns (a callback: this module knows no tables but its own)."""

    SCHEMA = "CREATE TABLE IF NOT EXISTS bai_quotas (location TEXT NOT NULL, name TEXT NOT NULL, " \
             "quota INTEGER NOT NULL, PRIMARY KEY (location, name));"

    def __init__(self, store, demands: Callable[[], Iterable[ClusterDemand]]) -> None:
        self.store = store
        self._demands = demands
        store.ensure_schema(self.SCHEMA)

    # ---- limits
    def limits(self, location: str) -> dict:
        limits = default_limits()
        for row in self.store.query("SELECT name, quota FROM bai_quotas WHERE location = ? OR location = '*' "
                                    "ORDER BY location = '*' DESC", (location.lower(),)):
            limits[row["name"]] = row["quota"]
        return limits

    def set_limit(self, name: str, limit: int, location: Optional[str] = None) -> None:
        """Change one quota (``location`` None: every location). Names as ``usages`` reports them."""
        if name not in default_limits():
            raise ValueError("unknown Batch AI quota {!r}; known: {}".format(name, ", ".join(default_limits())))
        if not isinstance(limit, int) or limit < NO_LIMIT:
            raise ValueError("a quota limit is a whole number >= 0 (or -1: no limit), not {!r}".format(limit))
        self.store.execute("INSERT OR REPLACE INTO bai_quotas (location, name, quota) VALUES (?, ?, ?)",
                           ((location or "*").lower(), name, limit))

    # ---- usages
    def usages(self, location: str) -> list:
        """The usages list of one location, as the service wrote it."""
        limits = self.limits(location)
        current = dict.fromkeys(limits, 0)
        for demand in self._demands():
            if demand.location.lower() != location.lower():
                continue
            current[CLUSTERS] += 1
            for name, cores in self._core_usages(demand, demand.allocated):
                current[name] += cores
        return [{"unit": "Count", "currentValue": current[name], "limit": limit,
                 "name": {"value": name, "localizedValue": _localized(name)}} for name, limit in limits.items()]

    @staticmethod
    def _core_usages(demand: ClusterDemand, nodes: int) -> list:
        found = _SIZES.get(str(demand.vm_size).upper())
        if found is None:  # a cluster stored before sizes were checked: it counts as a cluster only
            return []
        family, cores = found
        priority = "lowpriority" if demand.priority == "lowpriority" else "dedicated"
        # the family first: the more specific quota is the one a refusal names
        return [(family_usage_name(family, priority), cores * nodes), (TOTAL[priority], cores * nodes)]

    def headroom(self, cluster_id: int) -> Optional[int]:
        """The most nodes the cluster can have without passing a quota (None: no limit applies)."""
        demands = list(self._demands())
        mine = next((d for d in demands if d.cluster_id == cluster_id), None)
        found = _SIZES.get(str(mine.vm_size).upper()) if mine else None
        if found is None:
            return None
        cores = found[1]
        limits = self.limits(mine.location)
        in_use: dict = {}
        for demand in demands:
            if demand.cluster_id != cluster_id and demand.location.lower() == mine.location.lower():
                for name, used in self._core_usages(demand, max(demand.allocated, demand.target)):
                    in_use[name] = in_use.get(name, 0) + used
        most = None
        for name, _ in self._core_usages(mine, 1):
            if limits[name] != NO_LIMIT:
                allowed = max(0, limits[name] - in_use.get(name, 0)) // cores
                most = allowed if most is None else min(most, allowed)
        return most

    # ---- the early check
    def check(self, location: str, vm_size: str, priority: str, target: int,
              cluster_id: Optional[int] = None) -> None:
        """Refuse (400) a new cluster (``cluster_id`` None) or a resize that passes a quota."""
        vm_size_cores(vm_size)  # 400 for a size clusters cannot have
        candidate = ClusterDemand(cluster_id or -1, location, vm_size, priority, 0, target)
        limits = self.limits(location)
        others = [d for d in self._demands() if d.location.lower() == location.lower() and d.cluster_id != cluster_id]
        if cluster_id is None and limits[CLUSTERS] != NO_LIMIT and len(others) + 1 > limits[CLUSTERS]:
            raise errors.cluster_quota_reached(CLUSTERS, limits[CLUSTERS], len(others))
        in_use: dict = {}
        for demand in others:
            for name, cores in self._core_usages(demand, max(demand.allocated, demand.target)):
                in_use[name] = in_use.get(name, 0) + cores
        for name, cores in self._core_usages(candidate, target):
            if cores and limits[name] != NO_LIMIT and in_use.get(name, 0) + cores > limits[name]:
                raise errors.core_quota_reached(name, limits[name], in_use.get(name, 0), cores)
