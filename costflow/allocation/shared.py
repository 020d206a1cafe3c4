"""Cluster-shared charges: bill rows tagged with a cluster that match none of its nodes or volumes.

Why this module exists: a cluster costs more than its nodes and volumes. The managed control
plane (EKS ``AmazonEKS`` hourly fee), its load balancers, NAT gateways and snapshots carry the
cluster's tag but no node's resource id, so node matching leaves them unsplit. The providers
mark cluster resources with a tag whose key or value names the cluster:

* AWS EKS: ``aws:eks:cluster-name=<name>`` (AWS-generated cost allocation tag, once enabled in
  the billing console), ``eks:cluster-name=<name>`` (resources EKS creates), and
  ``kubernetes.io/cluster/<name>=owned`` (or ``shared``), set by the Kubernetes cloud provider.
* GKE: the label ``goog-k8s-cluster-name=<name>`` on the nodes' VMs and disks.
* AKS: ``aks-managed-cluster-name=<name>`` on the resources of the node resource group
  (``MC_<group>_<cluster>_<region>``).

Which tag names which cluster is never guessed: the user gives it, ``costflow allocate
--cluster prod-eks --cluster-tag aws:eks:cluster-name=prod-eks`` (repeatable: any of the tags
matches). A charge starting in the period whose ``Tags`` has that key with exactly that value,
and that is not a node or volume charge of the run, is split among the namespaces that ran in
the charge's period, in proportion to their priced usage there:

    namespace basis = max(request, usage) CPU core-seconds * 0.031611 / core-hour
                      + max(request, usage) memory GiB-seconds * 0.004237 / GiB-hour

summed over the namespace's pod hours inside the charge period (OpenCost's default prices, the
same as the node method's weights), divided by the cluster's total. Shares sum to 1, so there
is no idle row; only a charge whose period had no pod usage at all goes whole to the cluster's
idle row (``<cluster>/__idle__/__shared__``). Amounts are apportioned exactly as for node
charges (`costflow.allocation.split`: leftover 1e-18 units to the largest fractional parts,
ties to the first namespace in name order) and checked at commit the same way. The tags used
are kept in each row's AllocatedMethodDetails, so an automatic re-allocation
(`costflow.allocation.refresh`) uses them again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from costflow.allocation import split
from costflow.allocation.split import Portion
from costflow.errors import ConfigError

SHARED_METHOD = "costflow.k8s.cluster-shared.namespace-usage.v1"


@dataclass(frozen=True, order=True)
class ClusterTag:
    """One ``KEY=VALUE`` a charge's Tags must carry to be the cluster's shared cost."""

    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> ClusterTag:
        key, sep, value = text.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--cluster-tag {text!r}: expected KEY=VALUE, e.g. "
                              "aws:eks:cluster-name=prod-eks, goog-k8s-cluster-name=prod or "
                              "kubernetes.io/cluster/prod-eks=owned (the tag as it is in the "
                              "bill's Tags column).")
        return cls(key.strip(), value.strip())

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


def tags_of(details: Iterable[str | None]) -> list[ClusterTag]:
    """The cluster tags recorded in the AllocatedMethodDetails of earlier shared rows."""
    found: set[ClusterTag] = set()
    for text in details:
        for item in json.loads(text or "{}").get("cluster_tags", []):
            found.add(ClusterTag.parse(item))
    return sorted(found)


def prefilter(tags: Sequence[ClusterTag]) -> list[str]:
    """Texts (the tag keys as JSON strings) a matching Tags value must contain."""
    return sorted({json.dumps(t.key, ensure_ascii=False) for t in tags})


def carries(tags_json: str | None, tags: Sequence[ClusterTag]) -> bool:
    """Whether a charge's Tags JSON object has one of ``tags`` exactly."""
    if not tags_json:
        return False
    found = json.loads(tags_json)
    return isinstance(found, dict) and any(found.get(t.key) == t.value for t in tags)


def portions(cluster: str, tags: Sequence[ClusterTag], hours: list[dict[str, Any]]
             ) -> list[Portion]:
    """The split of one shared charge over the pod hours inside its period."""
    basis: dict[str, list] = {}
    for r in hours:
        entry = basis.setdefault(r["namespace"], [Decimal(0), Decimal(0), set()])
        entry[0] += max(r["pod_request_cpu_core_seconds"] or 0,
                        r["pod_usage_cpu_core_seconds"] or 0)
        entry[1] += max(r["pod_request_memory_byte_seconds"] or 0,
                        r["pod_usage_memory_byte_seconds"] or 0)
        entry[2].add(r["pod"])
    priced = {ns: Fraction(cpu) * split.CPU_CORE_HOUR_PRICE
              + Fraction(mem) / split.GIB * split.RAM_GIB_HOUR_PRICE
              for ns, (cpu, mem, _) in basis.items()}
    total = sum(priced.values(), Fraction(0))
    method = {"method": SHARED_METHOD, "cluster_tags": [str(t) for t in tags],
              "basis": "namespace share of the cluster's priced max(request, usage) in the "
                       "charge period",
              "prices": {"cpu_core_hour": str(split.CPU_CORE_HOUR_PRICE),
                         "ram_gib_hour": str(split.RAM_GIB_HOUR_PRICE)}}
    out = []
    if total:
        for ns in sorted(priced):
            cpu, mem, pods = basis[ns]
            out.append(Portion(
                (0, ns), "workload", f"{cluster}/{ns}/__shared__", "__shared__",
                {"k8s:cluster": cluster, "k8s:namespace": ns, "k8s:workload": "__shared__"},
                priced[ns] / total, {**method, "cpu_core_seconds": str(cpu),
                                     "memory_byte_seconds": str(mem), "pods": len(pods)}))
    if not total:  # nothing ran in the charge period: the whole charge is the cluster's idle
        out.append(Portion((1,), "idle", f"{cluster}/__idle__/__shared__", "__idle__",
                           {"k8s:cluster": cluster, "k8s:workload": "__idle__"}, Fraction(1),
                           {**method, "reason": "no pod usage in the charge period"}))
    return out
