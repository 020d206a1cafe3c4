"""OpenCost's CSV export (``EXPORT_CSV_FILE``) -> FOCUS.

Why this module exists: OpenCost can append one row per allocation per day to a CSV file
(opencost ``pkg/costmodel/csv_export.go``: ``Date,Namespace,ControllerKind,ControllerName,Pod,
Container,CPUCoreUsageAverage,CPUCoreRequestAverage,RAMBytesUsageAverage,
RAMBytesRequestAverage,NetworkReceiveBytes,NetworkTransferBytes,GPUs,PVBytes,CPUCost,RAMCost,
NetworkCost,PVCost,GPUCost,TotalCost``; floats written with Go's ``FormatFloat(f, 'f', -1, 64)``,
the shortest text, so the CSV text is parsed exactly as it stands). Merged exports may add a
``Labels`` column (a JSON object) or ``Label_<key>`` columns, and a ``Cluster`` column.

Mapped with the choices of `costflow.providers.opencost.focus_rows`: ChargePeriod is the
``Date`` (a UTC day: the exporter computes each day from 00:00 UTC), ResourceId the
``namespace/pod/container`` the row is for. The export has no cluster column (one OpenCost
instance exports its own cluster), so BillingAccountId is the ``Cluster`` column when a merged
export has one, else the cluster id the planner settled (`costflow.providers.opencost.plan_finish`:
``COSTFLOW_OPENCOST_CLUSTER``, default OpenCost's own default ``cluster-one``), and such rows are
flagged ``BillingAccountId:opencost_default_cluster``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from costflow.providers.opencost import focus_rows, planned
from costflow.transforms.arrow_ops import (
    column,
    fill_false,
    json_object_from_columns,
    parse_decimal,
    parse_timestamp,
)
from costflow.transforms.arrow_text import map_json
from costflow.transforms.contract import Mapped, RowError

HEADER = ("Date", "Namespace", "ControllerKind", "ControllerName", "Pod", "Container",
          "CPUCoreUsageAverage", "CPUCoreRequestAverage", "RAMBytesUsageAverage",
          "RAMBytesRequestAverage", "NetworkReceiveBytes", "NetworkTransferBytes", "GPUs",
          "PVBytes", "CPUCost", "RAMCost", "NetworkCost", "PVCost", "GPUCost", "TotalCost")
TOTAL = "TotalCost"
REQUIRED = ("Date", "Namespace", TOTAL)
COSTS = ("CPUCost", "RAMCost", "NetworkCost", "PVCost", "GPUCost")
# x_ProviderMetrics keys: the allocation API's names, so both formats read alike.
METRICS = {"cpuCoreUsageAverage": "CPUCoreUsageAverage",
           "cpuCoreRequestAverage": "CPUCoreRequestAverage",
           "ramByteUsageAverage": "RAMBytesUsageAverage",
           "ramByteRequestAverage": "RAMBytesRequestAverage",
           "networkReceiveBytes": "NetworkReceiveBytes",
           "networkTransferBytes": "NetworkTransferBytes", "gpuCount": "GPUs",
           "pvBytes": "PVBytes", "cpuCost": "CPUCost", "ramCost": "RAMCost",
           "networkCost": "NetworkCost", "pvCost": "PVCost", "gpuCost": "GPUCost"}
PROPERTY_TAGS = {f"{focus_rows.TAG_PREFIX}controllerKind": "ControllerKind",
                 f"{focus_rows.TAG_PREFIX}controller": "ControllerName",
                 f"{focus_rows.TAG_PREFIX}pod": "Pod",
                 f"{focus_rows.TAG_PREFIX}container": "Container"}
LABELS, LABEL_PREFIX, CLUSTER = "Labels", "Label_", "Cluster"


def _resource_name(batch: pa.RecordBatch) -> pa.Array:
    """namespace/pod/container, leaving out the parts a row does not have."""
    parts = [column(batch, name) for name in ("Namespace", "Pod", "Container")]
    joined = pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], "/")
    return pc.replace_substring_regex(joined, r"/+$", "")


class OpencostCsvExportNormalizer:
    """OpenCost CSV export rows -> cost_line_items."""

    provider: ClassVar[str] = planned.PROVIDER
    source_format: ClassVar[str] = "opencost_csv_export"
    basis_column: ClassVar[str] = TOTAL

    def detect_unmarked(self, columns: Sequence[str]) -> bool:
        return False

    def detect(self, columns: Sequence[str]) -> bool:
        names = set(columns)
        return {"Date", "Namespace", "ControllerKind", "ControllerName", "Pod", "Container",
                "CPUCost", "RAMCost", TOTAL} <= names

    def missing_required(self, columns: Sequence[str]) -> list[str]:
        names = set(columns)
        return [c for c in REQUIRED if c not in names]

    def map(self, batch: pa.RecordBatch) -> Mapped:
        errors: list[RowError] = []
        total, errs = parse_decimal(column(batch, TOTAL), TOTAL)
        errors += errs
        errors += focus_rows.required(column(batch, TOTAL), TOTAL,
                                      "the allocation's total cost, a number")
        for name in COSTS:
            _, errs = parse_decimal(column(batch, name), name)
            errors += errs
        date = column(batch, "Date")
        day, errs = parse_timestamp(pc.binary_join_element_wise(date, "T00:00:00Z", ""), "Date")
        errors += [RowError(e.mask, "Date", "is not a date (expected YYYY-MM-DD, the UTC day "
                            "the exporter wrote)") for e in errs]
        errors += focus_rows.required(date, "Date", "the day, YYYY-MM-DD")
        own = column(batch, CLUSTER)
        cluster = pc.coalesce(own, column(batch, planned.DEFAULT_CLUSTER_COLUMN))
        errors += focus_rows.required(cluster, CLUSTER, "a cluster id: the Cluster column or "
                                      "the planner's default cluster")
        labels, errs = self._labels(batch)
        errors += errs
        name = _resource_name(batch)
        columns = focus_rows.focus_columns(
            batch=batch, total=total, cluster=cluster,
            cluster_defaulted=fill_false(pc.is_null(own)),
            namespace=column(batch, "Namespace"), name=name,
            charge_start=day, charge_end=focus_rows.next_day(day),
            tags=focus_rows.merge_json_objects(labels,
                                               json_object_from_columns(batch, PROPERTY_TAGS)),
            metrics=json_object_from_columns(batch, METRICS))
        return Mapped(columns=columns, source_basis=total, errors=errors)

    @staticmethod
    def _labels(batch: pa.RecordBatch) -> tuple[pa.Array, list[RowError]]:
        """Tags from the ``Labels`` JSON column, else from the ``Label_<key>`` columns."""
        if LABELS in batch.schema.names:
            return map_json(column(batch, LABELS), LABELS)
        keys = {name[len(LABEL_PREFIX):]: name for name in batch.schema.names
                if name.startswith(LABEL_PREFIX) and len(name) > len(LABEL_PREFIX)}
        return json_object_from_columns(batch, keys), []
