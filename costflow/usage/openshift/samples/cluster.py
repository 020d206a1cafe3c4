"""A generated cluster written as a koku-metrics-operator payload, read back by the real reader.

Nodes are given by the caller (typically EC2 instances of a generated or loaded bill, so that
allocation has charges to split); pods get seeded CPU/memory requests and hourly usage, some
running above their request, and persistent volumes are bound to PVCs for part of the time.
Everything is written as the operator does (Go UTC timestamps, ``label_k:v|...`` labels,
``manifest.json``), as a directory or a ``.tar.gz``, and the generator returns what it wrote
as exact decimals, for tests to compute expectations from the inputs rather than from the
warehouse.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from costflow.usage.openshift.reports import REPORTS

GIB = 1024**3
HOUR = 3600
_NAMESPACES = ("payments", "search", "platform", "data-eng")
_WORKLOADS = ("api", "worker", "cache", "ingest", "web", "cron")


@dataclass(frozen=True)
class Node:
    name: str
    resource_id: str  # what the report's resource_id column says (e.g. an EC2 instance id)
    cpu_cores: int
    memory_gib: int


@dataclass(frozen=True)
class Volume:
    persistentvolume: str
    persistentvolumeclaim: str
    namespace: str
    capacity_gib: int
    csi_volume_handle: str  # e.g. an EBS volume id of the bill
    bound_share: float = 0.75  # share of the hours the PVC is bound (the rest unclaimed)


@dataclass
class Cluster:
    """What was written: the payload path and every report row with exact values."""

    path: Path
    cluster_id: str
    uuid: str
    pod_rows: list[dict] = field(default_factory=list)
    storage_rows: list[dict] = field(default_factory=list)


def go_utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def write_cluster(out: Path, cluster_id: str, nodes: list[Node], start: datetime, hours: int,
                  *, seed: int = 7, pods_per_node: int = 3, volumes: tuple[Volume, ...] = (),
                  tar: bool = True) -> Cluster:
    """Write ``hours`` hourly intervals from ``start`` for ``nodes`` (a .tar.gz when ``tar``,
    else a directory ``out``) and return the rows written."""
    rng = random.Random(seed)
    uuid = hashlib.blake2b(f"{cluster_id}|{seed}|{start}".encode(), digest_size=16).hexdigest()
    period_start = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    period_end = (period_start + timedelta(days=32)).replace(day=1)
    cluster = Cluster(out, cluster_id, uuid)
    pods = [(node, *_pod(rng, node)) for node in nodes for _ in range(pods_per_node)]
    for h in range(hours):
        begin = start + timedelta(hours=h)
        for node, namespace, pod, labels, cpu_request, mem_request in pods:
            cpu_usage = Decimal(rng.randint(0, int(cpu_request * 1600))) / 1000
            mem_usage = Decimal(rng.randint(GIB // 4, int(mem_request * 13 // 10)))
            cluster.pod_rows.append({
                "report_period_start": period_start, "report_period_end": period_end,
                "interval_start": begin, "interval_end": begin + timedelta(hours=1),
                "pod": pod, "namespace": namespace, "node": node.name,
                "resource_id": node.resource_id,
                "pod_usage_cpu_core_seconds": cpu_usage * HOUR,
                "pod_request_cpu_core_seconds": cpu_request * HOUR,
                "pod_limit_cpu_core_seconds": cpu_request * 2 * HOUR,
                "pod_usage_memory_byte_seconds": mem_usage * HOUR,
                "pod_request_memory_byte_seconds": mem_request * HOUR,
                "pod_limit_memory_byte_seconds": mem_request * 2 * HOUR,
                "node_capacity_cpu_cores": Decimal(node.cpu_cores),
                "node_capacity_cpu_core_seconds": Decimal(node.cpu_cores * HOUR),
                "node_capacity_memory_bytes": Decimal(node.memory_gib * GIB),
                "node_capacity_memory_byte_seconds": Decimal(node.memory_gib * GIB * HOUR),
                "pod_labels": labels, "node_role": "worker"})
        for volume in volumes:
            if rng.random() >= volume.bound_share:
                continue
            capacity = Decimal(volume.capacity_gib * GIB)
            cluster.storage_rows.append({
                "report_period_start": period_start, "report_period_end": period_end,
                "interval_start": begin, "interval_end": begin + timedelta(hours=1),
                "namespace": volume.namespace, "pod": f"{volume.persistentvolumeclaim}-user",
                "persistentvolumeclaim": volume.persistentvolumeclaim,
                "persistentvolume": volume.persistentvolume, "storageclass": "gp3",
                "persistentvolumeclaim_capacity_bytes": capacity,
                "persistentvolumeclaim_capacity_byte_seconds": capacity * HOUR,
                "volume_request_storage_byte_seconds": capacity * HOUR,
                "persistentvolumeclaim_usage_byte_seconds": capacity * HOUR / 2,
                "persistentvolume_labels": "label_tier:ssd",
                "persistentvolumeclaim_labels": f"label_app:{volume.persistentvolumeclaim}",
                "csi_volume_handle": volume.csi_volume_handle})
    files = {
        f"{uuid}_openshift_usage_report.0.csv": _csv(cluster.pod_rows,
                                                     [*REPORTS["pod"], "node_role"]),
        f"{uuid}_openshift_usage_report.1.csv": _csv(cluster.storage_rows,
                                                     [*REPORTS["storage"], "csi_volume_handle"]),
        f"{uuid}_openshift_usage_report.2.csv": _csv(
            [_labelled(start, h, period_start, period_end, node=n.name,
                       node_labels=f"label_kubernetes.io/hostname:{n.name}|"
                                   f"label_node.kubernetes.io/instance-type:m5.{n.cpu_cores}x")
             for h in range(hours) for n in nodes], list(REPORTS["node_labels"])),
        f"{uuid}_openshift_usage_report.3.csv": _csv(
            [_labelled(start, h, period_start, period_end, namespace=ns,
                       namespace_labels=f"label_team:{ns}") for h in range(hours)
             for ns in sorted({p[1] for p in pods})], list(REPORTS["namespace_labels"])),
    }
    manifest = {"uuid": uuid, "cluster_id": cluster_id, "version": "costflow-sample",
                "date": (start + timedelta(hours=hours)).isoformat().replace("+00:00", "Z"),
                "files": list(files), "start": go_utc(start),
                "end": go_utc(start + timedelta(hours=hours))}
    files["manifest.json"] = json.dumps(manifest, indent=2) + "\n"
    _write(out, files, tar)
    return cluster


def _pod(rng: random.Random, node: Node) -> tuple[str, str, str, Decimal, Decimal]:
    namespace = rng.choice(_NAMESPACES)
    workload = rng.choice(_WORKLOADS)
    suffix = f"{rng.getrandbits(32):08x}"
    pod = f"{workload}-{suffix[:6]}-{suffix[6:]}{rng.randint(100, 999)}"
    cpu_request = Decimal(rng.randint(50, node.cpu_cores * 250)) / 1000  # cores
    mem_request = Decimal(rng.randint(GIB // 2, node.memory_gib * GIB // 4))  # bytes
    labels = f"label_app:{workload}|label_team:{namespace}|label_pod-template-hash:{suffix[:6]}"
    return namespace, pod, labels, cpu_request, mem_request


def _labelled(start: datetime, h: int, period_start: datetime, period_end: datetime,
              **values: str) -> dict:
    begin = start + timedelta(hours=h)
    return {"report_period_start": period_start, "report_period_end": period_end,
            "interval_start": begin, "interval_end": begin + timedelta(hours=1), **values}


def _csv(rows: list[dict], columns: list[str]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return text.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return go_utc(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _write(out: Path, files: dict[str, str], tar: bool) -> None:
    if not tar:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
