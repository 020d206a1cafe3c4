"""Benchmark: one month of costs grouped by service on a 10M-row DuckDB warehouse (p50 latency).

The warehouse is generated directly in DuckDB SQL (not through the CUR generator and the ingest
pipeline, which would take many minutes for 10M rows): 12 months x ~833k rows per month of
plausible line items — 40 services, 30 regions, 200 sub accounts in 4 billing accounts,
2,000 resources, costs with 10 decimal places — inserted into the real `cost_line_items` table
created by `ensure_schema`. The query is the one `costflow query costs --group-by service` and
`CloudCostProvider.get_costs(granularity="TOTAL", group_by=["service"])` run: the
`costs_by_dimension.sql` template with the tenant and provider scope bound, through sqlglot.
Rows are inserted month by month, as commits write them (one billing period per slice), so
DuckDB's zone maps can skip the other months, as they do on a real warehouse.

Two ways of opening the file are measured: as one-shot commands do (`costflow query`: open,
query, close: opening a 10M-row file is ~30 ms of it) and as the query servers do (the MCP
server and the cost report keep the file open a moment between calls:
`costflow.warehouse.SERVER_KEEP_OPEN_S`).

    .venv/bin/python bench/query_bench.py --rows 10000000 --repeat 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import date
from pathlib import Path

from costflow.services import InfrastructureModule, Tenant
from costflow.warehouse import SERVER_KEEP_OPEN_S
from costflow.warehouse.duckdb_engine import DuckDBWarehouse

GENERATE = """
INSERT INTO cost_analytics.cost_line_items BY NAME
SELECT
  CAST(cost AS DECIMAL(38, 18)) AS BilledCost,
  CAST(cost * 0.9 AS DECIMAL(38, 18)) AS EffectiveCost,
  CAST(cost * 1.2 AS DECIMAL(38, 18)) AS ListCost,
  CAST(cost AS DECIMAL(38, 18)) AS ContractedCost,
  'BA-' || (sub % 4) AS BillingAccountId, 'Billing Account' AS BillingAccountType,
  'USD' AS BillingCurrency,
  month_start AS BillingPeriodStart, month_start + INTERVAL 1 MONTH AS BillingPeriodEnd,
  'Usage' AS ChargeCategory, 'Usage-Based' AS ChargeFrequency,
  charge_start AS ChargePeriodStart, charge_start + INTERVAL 1 HOUR AS ChargePeriodEnd,
  'AWS' AS InvoiceIssuerName, 'AWS' AS ProviderName, 'AWS' AS PublisherName,
  'AWS' AS HostProviderName, 'AWS' AS ServiceProviderName,
  'Compute' AS ServiceCategory, 'Virtual Machines' AS ServiceSubcategory,
  'Service ' || (i % 40) AS ServiceName, 'region-' || (i % 30) AS RegionId,
  'acct-' || sub AS SubAccountId, 'res-' || (i % 2000) AS ResourceId,
  CAST(1 AS DECIMAL(38, 18)) AS ConsumedQuantity, 'Hrs' AS ConsumedUnit,
  'aws' AS x_SourceProvider, 'bench' AS x_SourceFormat, 'bench://generated' AS x_SourceUri,
  i AS x_SourceRowNumber, 'bench' AS x_RunId, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS x_IngestedAt
FROM (
  SELECT i, (i * 7919) % 200 AS sub,
         ((i % 997) + 1) / 1000.0 + (i % 13) / 1e10 AS cost,
         TIMESTAMPTZ '2026-01-01 00:00:00+00' + TO_MINUTES(CAST((i * 31) % 525600 AS BIGINT))
           AS charge_start,
         DATE_TRUNC('month', TIMESTAMPTZ '2026-01-01 00:00:00+00'
                    + TO_MINUTES(CAST((i * 31) % 525600 AS BIGINT))) AS month_start
  FROM range(?) t(i)
)
ORDER BY month_start
"""


def build(path: Path, rows: int) -> float:
    path.unlink(missing_ok=True)
    warehouse = DuckDBWarehouse(path)
    warehouse.ensure_schema()
    began = time.perf_counter()
    with warehouse.connection() as con:
        con.execute(GENERATE, [rows])
        con.execute("CHECKPOINT")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--path", default="bench/out/query_bench.duckdb")
    parser.add_argument("--reuse", action="store_true", help="Keep an existing warehouse file.")
    args = parser.parse_args()
    path = Path(args.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (args.reuse and path.exists()):
        seconds = build(path, args.rows)
        print(f"generated {args.rows:,} rows in DuckDB SQL in {seconds:.1f} s")
    count = DuckDBWarehouse(path).query("SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items")
    print(f"warehouse rows: {count.column('n')[0].as_py():,}")
    for opening, keep_open in (("opened per query", 0.0), ("server", SERVER_KEEP_OPEN_S)):
        warehouse = DuckDBWarehouse(path, reader=True, keep_open=keep_open)
        try:
            measure(warehouse, opening, args.repeat)
        finally:
            warehouse.close()


def measure(warehouse: DuckDBWarehouse, opening: str, repeat: int) -> None:
    """p50/min/max of the month-by-service call, as the owner and as a scoped tenant."""
    provider = InfrastructureModule(warehouse, Tenant.unrestricted_owner()).get_cost_provider(
        "all")
    restricted = InfrastructureModule(
        warehouse, Tenant.of("bench", billing_accounts=["BA-1"], sub_accounts=["acct-2"]),
    ).get_cost_provider("aws")
    for label, chosen in (("unrestricted owner", provider), ("tenant-scoped", restricted)):
        latencies = []
        for _ in range(repeat + 1):
            began = time.perf_counter()
            result = asyncio.run(chosen.get_costs(date(2026, 6, 1), date(2026, 7, 1),
                                                  granularity="TOTAL", group_by=["service"]))
            latencies.append((time.perf_counter() - began) * 1000)
        latencies = latencies[1:]  # the first run warms the file cache and the SQL cache
        print(f"{opening}, {label}: one month grouped by service: {len(result.breakdown)} "
              f"services, total {result.total_cost:.2f} {result.currency}; p50 "
              f"{statistics.median(latencies):.0f} ms, min {min(latencies):.0f} ms, max "
              f"{max(latencies):.0f} ms over {repeat} runs")


if __name__ == "__main__":
    main()
