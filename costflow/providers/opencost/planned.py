"""What the OpenCost planners settle that the payload does not say: currency and cluster.

Why this module exists: neither the allocation API answer nor the CSV export names a currency
(OpenCost prices in whatever its pricing source uses, USD unless configured otherwise), and the
CSV export has no cluster column (one OpenCost instance exports one cluster). The plan finisher
(`costflow.providers.opencost.plan_finish`) records both on each planned `OpencostSourceFile`
(so the run's ledger shows them) and the readers append them to every batch as
``costflow:*`` columns, which the normalizers read like any source column.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from costflow.sources.contract import SourceFile

PROVIDER = "opencost"
CURRENCY_COLUMN = "costflow:BillingCurrency"
ASSERTED_COLUMN = "costflow:CurrencyAsserted"
DEFAULT_CLUSTER_COLUMN = "costflow:DefaultCluster"
PLANNER_COLUMNS = (CURRENCY_COLUMN, ASSERTED_COLUMN, DEFAULT_CLUSTER_COLUMN)
DEFAULT_CURRENCY = "USD"


@dataclass(frozen=True)
class OpencostSourceFile(SourceFile):
    """A planned OpenCost source.

    Attributes:
        cache_path: where a fetched API page was saved (empty for files read in place).
        inner: for a CSV export, the container the shared reader reads it as ("csv").
        billing_currency: what its costs are in (``--billing-currency``, else USD).
        currency_asserted: whether the user said so (else the default).
        default_cluster: the cluster id given to a CSV export without a Cluster column.
    """

    cache_path: str = ""
    inner: str = ""
    billing_currency: str = DEFAULT_CURRENCY
    currency_asserted: bool = False
    default_cluster: str = ""

    def ledger_entry(self) -> dict[str, object]:
        entry = super().ledger_entry()
        entry["billing_currency"] = self.billing_currency
        if self.default_cluster:
            entry["default_cluster"] = self.default_cluster
        return entry


def with_planner_columns(batch: pa.RecordBatch, source: OpencostSourceFile) -> pa.RecordBatch:
    """``batch`` with the planner's currency, assertion and default cluster as columns."""
    n = batch.num_rows
    for name, value in ((CURRENCY_COLUMN, source.billing_currency),
                        (ASSERTED_COLUMN, "true" if source.currency_asserted else None),
                        (DEFAULT_CLUSTER_COLUMN, source.default_cluster or None)):
        batch = batch.append_column(name, pa.repeat(pa.scalar(value, pa.string()), n))
    return batch
