"""OpenCost allocation API answers (flattened by `costflow.providers.opencost.answers`) -> FOCUS.

Why this module exists: one row per allocation per window of the allocation API, mapped with
the choices of `costflow.providers.opencost.focus_rows`. The source columns are the
Allocation's JSON names (``totalCost``, ``cpuCost``, ...), the ``properties`` fields
(``cluster``, ``namespace``, ...), ``labels`` (a JSON object) and ``windowStart``/``windowEnd``.
The answer is only ever planned by this provider (saved answers, ``opencost://``), so the
format is never detected by header.

[OpenCost API] = opencost.io/docs/integrations/api (Allocation API: window, aggregate, step,
includeIdle, accumulate; the Allocation fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from costflow.providers.opencost import answers, focus_rows
from costflow.transforms.arrow_ops import (
    column,
    constant,
    json_object_from_columns,
    parse_decimal,
    parse_timestamp,
)
from costflow.transforms.arrow_text import map_json
from costflow.transforms.contract import Mapped, RowError

TOTAL = "totalCost"
REQUIRED = (TOTAL, "cluster", answers.WINDOW_START, answers.WINDOW_END, "name")
# x_ProviderMetrics: cost components, adjustments, usage and efficiencies, as exact text.
METRICS = {name: name for name in answers.NUMBERS if name != TOTAL}
COST_METRICS = [name for name in METRICS if name.endswith(("Cost", "CostAdjustment"))]
# Provider tags: the Kubernetes properties beyond cluster and namespace.
PROPERTY_TAGS = {f"{focus_rows.TAG_PREFIX}{p}": p
                 for p in ("node", "controllerKind", "controller", "pod", "container",
                           "providerID")}


class OpencostAllocationNormalizer:
    """Flattened allocation API rows -> cost_line_items."""

    provider: ClassVar[str] = answers.PROVIDER
    source_format: ClassVar[str] = answers.SOURCE_FORMAT
    basis_column: ClassVar[str] = TOTAL

    def detect_unmarked(self, columns: Sequence[str]) -> bool:
        return False

    def detect(self, columns: Sequence[str]) -> bool:
        return False  # planned only by this provider's answer planners

    def missing_required(self, columns: Sequence[str]) -> list[str]:
        names = set(columns)
        return [c for c in REQUIRED if c not in names]

    def map(self, batch: pa.RecordBatch) -> Mapped:
        n = batch.num_rows
        errors: list[RowError] = []
        total, errs = parse_decimal(column(batch, TOTAL), TOTAL)
        errors += errs
        errors += focus_rows.required(column(batch, TOTAL), TOTAL,
                                      "the allocation's totalCost, a number")
        errors += focus_rows.required(column(batch, "cluster"), "cluster",
                                      "properties.cluster, the cluster id (CLUSTER_ID)")
        # The window is the charge period; an allocation without one falls back to its own
        # start/end (the minutes it ran inside the window).
        start_text = pc.coalesce(column(batch, answers.WINDOW_START), column(batch, "start"))
        end_text = pc.coalesce(column(batch, answers.WINDOW_END), column(batch, "end"))
        start, errs = parse_timestamp(start_text, answers.WINDOW_START)
        errors += errs
        end, errs = parse_timestamp(end_text, answers.WINDOW_END)
        errors += errs
        errors += focus_rows.required(start_text, answers.WINDOW_START,
                                      "window.start, an RFC 3339 time")
        errors += focus_rows.required(end_text, answers.WINDOW_END,
                                      "window.end, an RFC 3339 time")
        for name in COST_METRICS:  # a cost component that is not a number: a broken answer
            _, errs = parse_decimal(column(batch, name), name)
            errors += errs
        labels, errs = map_json(column(batch, answers.LABELS), "labels")
        errors += errs
        properties = json_object_from_columns(batch, PROPERTY_TAGS)
        columns = focus_rows.focus_columns(
            batch=batch, total=total, cluster=column(batch, "cluster"),
            cluster_defaulted=constant(False, n, pa.bool_()),
            namespace=column(batch, "namespace"), name=column(batch, "name"),
            charge_start=start, charge_end=end,
            tags=focus_rows.merge_json_objects(labels, properties),
            metrics=json_object_from_columns(batch, METRICS))
        return Mapped(columns=columns, source_basis=total, errors=errors)

