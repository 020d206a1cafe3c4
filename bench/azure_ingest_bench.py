"""Azure ingest benchmark: an EA cost-details export through ``costflow ingest``, exact.

Generates an EA actual-cost and amortized-cost export pair of one month with N usage rows each
(`costflow.providers.azure.samples.export.write_export`, CSV.gz in Azure's blob layout with
manifests; reused when present), then measures, each in its own process (`common.run_measured`,
as for AWS and GCP):

* ours, actual: ``costflow ingest --provider azure --source <actual run>`` into a fresh DuckDB
  warehouse; SUM(BilledCost) and rows must equal the generator's exact actual total.
* the bar: ``bench/azure_to_focus_duckdb.sql``, one DuckDB statement (2 threads) turning the
  same actual-cost file into 40 FOCUS columns with exact money; its SUM(BilledCost) and rows are
  checked against the same truth, and ours is reported as a ratio of its time.
* ours, the pair: ``--source <export root>``, actual and amortized joined row by row (BilledCost
  the actual cost, EffectiveCost the amortized one); SUM(BilledCost) must equal the actual
  total and SUM(EffectiveCost) the amortized total. DuckDB has no counterpart here: the join on
  Azure's row identity is ours alone, so this line has no ratio.

Usage::

    python bench/azure_ingest_bench.py --rows 1000000 [--workdir ...] [--skip-duckdb]
    python bench/ingest_bench.py --provider azure --rows 1000000     # the same
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from common import (
    HERE,
    ROOT,
    add_bar_arguments,
    bar_relation,
    bar_worker,
    print_table,
    render_bar,
    run_bar,
    run_measured,
    sql_literal,
    timing,
    with_floor,
    write_result,
)

SQL = HERE / "azure_to_focus_duckdb.sql"
MAPPINGS = ROOT / "costflow" / "providers" / "azure" / "mappings"
MONTH = "2026-10"
TOTALS = ("SELECT SUM(BilledCost) AS billed, SUM(EffectiveCost) AS effective, COUNT(*) AS n "
          "FROM {table}")


def generate(rows: int, seed: int, workdir: Path) -> dict[str, Any]:
    """The export pair (reused when present with its truth) and its exact totals."""
    root = workdir / f"azure_{rows}_seed{seed}"
    truth = workdir / f"azure_{rows}_seed{seed}.truth.json"
    if truth.exists():
        return {**json.loads(truth.read_text()), "reused": True}
    from costflow.providers.azure.samples.export import write_export

    began = time.perf_counter()
    actual, amortized = write_export(root, MONTH, rows, schema="ea", seed=seed,
                                     container="csv.gz")
    info = {"root": str(root), "actual_run": str(actual.run_dir),
            "actual_file": str(actual.files[0]), "rows": actual.rows,
            "amortized_rows": amortized.rows, "actual_total": str(actual.total),
            "amortized_total": str(amortized.total),
            "size_bytes": sum(f.stat().st_size for f in actual.files),
            "seconds": round(time.perf_counter() - began, 2)}
    truth.write_text(json.dumps(info, indent=2) + "\n")
    return {**info, "reused": False}


def _totals(url_or_file: str, table: str) -> tuple[Decimal, Decimal, int]:
    import duckdb

    with duckdb.connect(url_or_file, read_only=url_or_file != ":memory:") as con:
        billed, effective, n = con.execute(TOTALS.format(table=table)).fetchone()
    return Decimal(billed), Decimal(effective), n


def bench_ingest(label: str, source: str, workdir: Path, rows: int, billed: Decimal,
                 effective: Decimal | None) -> dict[str, Any]:
    """``costflow ingest --provider azure`` of ``source``, measured, then checked exactly."""
    costflow = Path(sys.executable).with_name("costflow")
    warehouse = workdir / f"bench_azure_{label}.duckdb"
    for stale in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        stale.unlink(missing_ok=True)
    run = run_measured([str(costflow), "ingest", "--provider", "azure", "--source", source,
                        "--warehouse", f"duckdb:///{warehouse}", "--json"], cwd=workdir)
    result: dict[str, Any] = {"input": label, "rows": rows, **timing(run, rows)}
    if run["exit_code"] != 0:
        tail = "\n".join(run["stderr"].strip().splitlines()[-8:])
        return {**result, "exact": False,
                "problems": [f"costflow ingest exited {run['exit_code']}:\n{tail}"]}
    got_billed, got_effective, n = _totals(str(warehouse), "cost_analytics.cost_line_items")
    problems = []
    if got_billed != billed:
        problems.append(f"SUM(BilledCost) {got_billed}, source actual total {billed}")
    if effective is not None and got_effective != effective:
        problems.append(f"SUM(EffectiveCost) {got_effective}, source amortized total "
                        f"{effective}")
    result.update(rows_loaded=n, billed_cost=str(got_billed),
                  effective_cost=str(got_effective))
    return {**result, "exact": not problems, "problems": problems}


def render_sql(source: Path, out: Path) -> str:
    """The bar's statement for the actual-cost file ``source``."""
    return render_bar(SQL, {name: MAPPINGS / f"azure_{file}.csv" for name, file in (
        ("services", "services"), ("regions", "regions"), ("units", "pricing_units"),
        ("types", "resource_types"))},
        source=sql_literal(str(source)), out=sql_literal(str(out)))


def bench_duckdb(source: Path, workdir: Path, rows: int, billed: Decimal, threads: int,
                 into_table: bool = False) -> dict[str, Any]:
    """The bar on ``source`` in its own process (or its floor, ``into_table``: `common.
    as_table_load`); its total checked against the truth."""
    out = workdir / ("focus_duckdb_azure.duckdb" if into_table else
                     "focus_duckdb_azure.parquet")
    run = run_bar(str(Path(__file__).resolve()), source, out, threads, into_table=into_table)
    if run["exit_code"] != 0:
        return {"ok": False, "exact": False, "message": run["stderr"][-2000:]}
    got, _, n = _totals(*bar_relation(out, into_table))
    return {"ok": True, **timing(run, rows), "rows_loaded": n, "billed_cost": str(got),
            "statement_seconds": round(json.loads(run["stdout"])["statement_seconds"], 2),
            "exact": got == billed and n == rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="usage rows per export")
    parser.add_argument("--seed", type=int, default=11)
    add_bar_arguments(parser, HERE / "out")
    args = parser.parse_args(argv)
    if args.worker:
        bar_worker(render_sql(args.source, args.out), args)
        return 0
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    gen = generate(args.rows, args.seed, workdir)
    rows, actual = gen["rows"], Decimal(gen["actual_total"])
    print(f"input: {gen['actual_file']} ({rows} rows, {gen['size_bytes'] / 2**20:.0f} MB gz, "
          f"actual total {actual}, amortized total {gen['amortized_total']})"
          + (" [reused]" if gen["reused"] else f"; generated in {gen['seconds']} s"))
    single = bench_ingest("actual", gen["actual_run"], workdir, rows, actual, None)
    if not args.skip_duckdb:
        bar = single["duckdb"] = bench_duckdb(Path(gen["actual_file"]), workdir, rows,
                                              actual, args.threads)
        if bar["ok"]:
            single["ratio_to_duckdb"] = round(bar["seconds"] / single["seconds"], 3)
        else:
            single["problems"].append(f"the DuckDB bar failed: {bar['message']}")
            single["exact"] = False
        with_floor(single, bar, bench_duckdb(Path(gen["actual_file"]), workdir, rows, actual,
                                             args.threads, into_table=True))
    pair = bench_ingest("actual+amortized", gen["root"], workdir, rows, actual,
                        Decimal(gen["amortized_total"]))
    results = [single, pair]
    print_table(results, "input")
    return write_result(workdir / "azure_bench_result.json",
                        {"rows": args.rows, "seed": args.seed, "input": gen}, results, "input")


if __name__ == "__main__":
    if not sys.platform.startswith("linux"):  # /proc sampling and os.wait4
        raise SystemExit("this benchmark measures memory through /proc: run it on Linux")
    raise SystemExit(main())
