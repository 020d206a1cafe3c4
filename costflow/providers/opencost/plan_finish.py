"""The OpenCost plan finisher: every planned OpenCost source learns its currency and cluster.

Why this module exists: the payloads say neither (`costflow.providers.opencost.planned`). The
currency is the user's ``--billing-currency`` (an ISO 4217 code), else USD, OpenCost's own
default pricing currency; a plan note says which. A CSV export without a ``Cluster`` column gets
the cluster id ``COSTFLOW_OPENCOST_CLUSTER`` names, else ``cluster-one`` (OpenCost's default
``CLUSTER_ID``), also in a note. CSV exports, planned by the shared file planner, become
`OpencostSourceFile` s read through `read_csv_export` (the shared CSV reader plus those columns).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator

import pyarrow as pa

from costflow.errors import ConfigError
from costflow.providers.opencost.planned import (
    DEFAULT_CURRENCY,
    PROVIDER,
    OpencostSourceFile,
    with_planner_columns,
)
from costflow.sources.contract import Plan, SourceCatalog, SourceFile

CSV_CONTAINER = "opencost_csv"
CLUSTER_ENV = "COSTFLOW_OPENCOST_CLUSTER"
OPENCOST_DEFAULT_CLUSTER = "cluster-one"  # OpenCost's CLUSTER_ID when none is configured
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


def finish_plan(plan: Plan, catalog: SourceCatalog) -> Plan:
    ours = [f for f in plan.files if f.provider == PROVIDER]
    if not ours:
        return plan
    asserted = plan.assertions.get("billing_currency")
    if asserted is not None and not _CURRENCY_CODE.match(asserted):
        raise ConfigError(f"--billing-currency {asserted!r} is not an ISO 4217 code (expected "
                          "three capital letters such as USD or EUR).")
    currency = asserted or DEFAULT_CURRENCY
    notes = list(plan.notes)
    notes.append(f"OpenCost sources carry no currency: their costs are taken to be in {currency} "
                 + ("as asserted by --billing-currency" if asserted else
                    "(the default; pass --billing-currency CODE if OpenCost prices in another "
                    "currency)"))
    cluster = os.environ.get(CLUSTER_ENV) or OPENCOST_DEFAULT_CLUSTER
    files: list[SourceFile] = []
    for source in plan.files:
        if source.provider != PROVIDER:
            files.append(source)
            continue
        if isinstance(source, OpencostSourceFile):
            files.append(dataclasses.replace(source, billing_currency=currency,
                                             currency_asserted=asserted is not None))
            continue
        default = "" if "Cluster" in source.columns else cluster
        if default:
            notes.append(f"{source.uri}: an OpenCost CSV export has no Cluster column; its "
                         f"rows are given cluster {default!r} "
                         + (f"(from {CLUSTER_ENV})" if os.environ.get(CLUSTER_ENV) else
                            f"(OpenCost's default CLUSTER_ID; set {CLUSTER_ENV} to name it)"))
        files.append(OpencostSourceFile(**{f.name: getattr(source, f.name)
                                           for f in dataclasses.fields(SourceFile)
                                           if f.name != "container"},
                                        container=CSV_CONTAINER, inner=source.container,
                                        billing_currency=currency,
                                        currency_asserted=asserted is not None,
                                        default_cluster=default))
    return Plan(files, plan.empty_files, notes, plan.assertions)


def read_csv_export(source: SourceFile,
                    catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The shared reader's batches of a CSV export, with the planner's columns."""
    if not isinstance(source, OpencostSourceFile):
        raise TypeError(f"{source.uri}: not planned as an OpenCost CSV export")
    inner = SourceFile(**{f.name: getattr(source, f.name) for f in dataclasses.fields(SourceFile)
                          if f.name != "container"}, container=source.inner)
    for first, batch in catalog.read_batches(inner):
        yield first, with_planner_columns(batch, source)
