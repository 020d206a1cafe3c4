"""Atomic replacement of usage and allocation rows, with conservation checked before commit.

Both writes are one DuckDB transaction: delete what the new rows replace, insert them, check,
commit; any failure rolls back and the previous contents stay. For allocation the check is the
hard rule of split cost allocation: per origin charge (the cost_line_items row named by the
lineage columns x_RunId, x_SourceUri, x_SourceRowNumber), the allocated rows' sums of every
split column equal the charge's value exactly, and no charge is split by two allocations.
BigQuery is not supported yet: it would need the staged-load pattern of
`costflow.warehouse.bigquery_engine`, and is refused with a clear error instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from costflow.errors import ConfigError, ReconciliationError
from costflow.schemas.operational import COST_ALLOCATIONS, K8S_USAGE
from costflow.schemas.render import DATASET, ORIGIN_KEY

# Additive columns split in proportion to the shares (each conserved per origin charge).
SPLIT_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost",
                 "PricingCurrencyEffectiveCost", "x_GrossCost", "x_CommitmentCoveredCost",
                 "ConsumedQuantity", "PricingQuantity", "CommitmentDiscountQuantity")


@contextmanager
def _transaction(warehouse: Any) -> Iterator[Any]:
    from costflow.warehouse.duckdb_engine import DuckDBWarehouse

    if not isinstance(warehouse, DuckDBWarehouse):
        raise ConfigError(f"{warehouse.url}: Kubernetes usage and allocation are stored in "
                          "DuckDB warehouses only in this version (BigQuery: not yet).")
    warehouse.ensure_schema()
    with warehouse.connection() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def replace_usage(warehouse: Any, rows: pa.Table) -> dict[str, int]:
    """Replace, per cluster and report period, the days ``rows`` carry; returns rows per kind."""
    if rows.num_rows == 0:
        return {}
    keys = sorted({(r["cluster_id"], r["report_period_start"], r["interval_start"].date())
                   for r in rows.select(["cluster_id", "report_period_start",
                                         "interval_start"]).to_pylist()})
    target = f"{DATASET}.{K8S_USAGE.name}"
    with _transaction(warehouse) as con:
        for cluster, period, day in keys:
            con.execute(f"DELETE FROM {target} WHERE cluster_id = ? AND report_period_start = ? "
                        "AND CAST(interval_start AS DATE) = ?", [cluster, period, day])
        con.register("costflow_usage_rows", rows)
        con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM costflow_usage_rows")
        con.unregister("costflow_usage_rows")
    counts: dict[str, int] = {}
    for kind in rows.column("kind").to_pylist():
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def replace_allocation(warehouse: Any, cluster: str, start: date, end: date,
                       rows: pa.Table, run_id: str) -> None:
    """Replace ``cluster``'s allocation of charges starting in [start, end) with ``rows``.

    Raises:
        ReconciliationError: a charge's split does not sum to it, or a charge would be split
            twice; nothing was committed.
    """
    target = f"{DATASET}.{COST_ALLOCATIONS.name}"
    with _transaction(warehouse) as con:
        con.execute(f"DELETE FROM {target} WHERE x_AllocationCluster = ? AND "
                    "ChargePeriodStart >= ? AND ChargePeriodStart < ?",
                    [cluster, _midnight(start), _midnight(end)])
        if rows.num_rows:
            con.register("costflow_allocation_rows", rows)
            con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM costflow_allocation_rows")
            con.unregister("costflow_allocation_rows")
        broken = _unconserved(con, run_id)
        if broken:
            raise ReconciliationError(
                f"allocation of cluster {cluster} was not committed: {len(broken)} origin "
                f"charge(s) do not equal the sum of their split, e.g. {broken[0]}.")
        twice = _split_twice(con)
        if twice:
            raise ReconciliationError(
                f"allocation of cluster {cluster} was not committed: {len(twice)} charge(s) "
                f"would be split by two allocations (another cluster, or an overlapping run), "
                f"e.g. {twice[0]}. Allocate each node's charges from one cluster.")


def _midnight(day: date) -> datetime:
    from datetime import UTC

    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _unconserved(con: Any, run_id: str) -> list[dict[str, Any]]:
    key = ", ".join(ORIGIN_KEY)
    sums = ", ".join(f"SUM({c}) AS {c}" for c in SPLIT_COLUMNS)
    differs = " OR ".join(f"s.{c} IS DISTINCT FROM c.{c}" for c in SPLIT_COLUMNS)
    sql = (f"WITH s AS (SELECT {key}, {sums} FROM {DATASET}.{COST_ALLOCATIONS.name} "
           f"WHERE x_AllocationRunId = ? GROUP BY {key}) "
           f"SELECT s.x_RunId, s.x_SourceUri, s.x_SourceRowNumber, s.BilledCost AS split, "
           f"c.BilledCost AS charge FROM s LEFT JOIN {DATASET}.cost_line_items AS c "
           f"USING ({key}) WHERE c.x_RunId IS NULL OR {differs} LIMIT 5")
    cursor = con.execute(sql, [run_id])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _split_twice(con: Any) -> list[dict[str, Any]]:
    key = ", ".join(ORIGIN_KEY)
    cursor = con.execute(f"SELECT {key} FROM {DATASET}.{COST_ALLOCATIONS.name} GROUP BY {key} "
                         "HAVING COUNT(DISTINCT x_AllocationRunId) > 1 LIMIT 5")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
