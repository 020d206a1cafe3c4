"""GCP ingest benchmark: a bulk detailed billing export through ``costflow ingest``, exact.

Generates N rows of a realistic ``gcp_billing_export_resource_v1_*`` export with
`costflow.providers.gcp.samples.bulk` (nested Parquet and/or newline-delimited JSON gzip, as
BigQuery extracts them; files are reused when present), ingests each file with
``costflow ingest --provider gcp`` into a fresh DuckDB warehouse in a subprocess, and reports
wall time, rows/s and peak RSS (measured by `common.run_measured`, as for AWS). The
warehouse's SUM(BilledCost) and row count per (BillingAccountId, BillingPeriodStart) must equal
the generator's exact ``SUM(cost) + SUM(credits.amount)`` per (billing account, invoice month)
and N rows with no dead letter; otherwise the benchmark fails (exit code 1).

The bar: ``bench/gcp_to_focus_duckdb.sql``, one DuckDB statement (2 threads, its own process)
turning the same file into 30 FOCUS columns with exact money (``CAST(x::VARCHAR AS
DECIMAL(38, 18))``, credits summed the same way) and labels as JSON; its SUM(BilledCost) per
slice is checked against the same truth, and ours is reported as a ratio of its time.

Usage::

    python bench/gcp_ingest_bench.py --rows 1000000 [--formats parquet,jsonl] [--workdir ...]
    python bench/ingest_bench.py --provider gcp --rows 1000000     # the same
"""

from __future__ import annotations

import argparse
import json
import sys
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

SUFFIX = {"parquet": ".parquet", "jsonl": ".json.gz"}
SQL = HERE / "gcp_to_focus_duckdb.sql"
MAPPINGS = ROOT / "costflow" / "providers" / "gcp" / "mappings"
SLICES = """
SELECT BillingAccountId AS account, BillingPeriodStart AS period,
       SUM(BilledCost) AS billed, SUM(EffectiveCost) AS effective, COUNT(*) AS n
FROM cost_analytics.cost_line_items GROUP BY 1, 2
"""

Truth = dict[tuple[str, str], Decimal]


def generate(rows: int, seed: int, workdir: Path, fmt: str) -> dict[str, Any]:
    """The input file (reused when present with its truth) and the generator's report."""
    path = workdir / f"gcp_{rows}_seed{seed}{SUFFIX[fmt]}"
    sidecar = workdir / f"gcp_{rows}_seed{seed}_{fmt}.truth.json"
    if path.exists() and sidecar.exists():
        return {**json.loads(sidecar.read_text()), "reused": True}
    run = run_measured([sys.executable, "-m", "costflow.providers.gcp.samples.bulk", "--rows",
                        str(rows), "--out", str(path), "--seed", str(seed)], cwd=ROOT)
    if run["exit_code"] != 0:
        raise SystemExit(f"generator failed:\n{run['stderr']}")
    info = json.loads(run["stdout"])
    info.update(wall_seconds=round(run["seconds"], 2),
                rss_mb=round(run["rss_max_process_mb"]), reused=False)
    sidecar.write_text(json.dumps(info, indent=2) + "\n")
    return info


def truth_of(info: dict[str, Any]) -> Truth:
    return {(t["billing_account_id"], t["invoice_month"]): Decimal(t["total"])
            for t in info["truth"]}


def warehouse_slices(url: str) -> dict[tuple[str, str], tuple[Decimal, Decimal, int]]:
    """SUM(BilledCost), SUM(EffectiveCost) and rows per (BillingAccountId, 'YYYYMM')."""
    from costflow.warehouse import connect

    wh = connect(url)
    try:
        rows = wh.query(SLICES).to_pylist()
    finally:
        wh.close()
    return {(r["account"], r["period"].strftime("%Y%m")): (
        Decimal(r["billed"]), Decimal(r["effective"]), r["n"]) for r in rows}


def bench_ingest(source: Path, workdir: Path, rows: int, truth: Truth,
                 extra: list[str] | None = None) -> dict[str, Any]:
    """``costflow ingest --provider gcp`` of ``source``, measured, then checked exactly."""
    costflow = Path(sys.executable).with_name("costflow")
    warehouse = workdir / "bench_gcp.duckdb"
    for stale in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        stale.unlink(missing_ok=True)
    url = f"duckdb:///{warehouse}"
    run = run_measured([str(costflow), "ingest", "--provider", "gcp", "--source", str(source),
                        "--warehouse", url, "--json", *(extra or [])], cwd=workdir)
    result: dict[str, Any] = {"file": source.name, "rows": rows, **timing(run, rows)}
    problems: list[str] = []
    if run["exit_code"] != 0:
        tail = "\n".join(run["stderr"].strip().splitlines()[-8:])
        return {**result, "exact": False,
                "problems": [f"costflow ingest exited {run['exit_code']}:\n{tail}"]}
    totals = json.loads(run["stdout"])["totals"]
    result.update(rows_loaded=totals["rows_loaded"],
                  rows_dead_lettered=totals["rows_dead_lettered"])
    if totals["rows_loaded"] != rows or totals["rows_dead_lettered"] != 0:
        problems.append(f"loaded {totals['rows_loaded']} of {rows} rows, "
                        f"{totals['rows_dead_lettered']} dead-lettered")
    found = warehouse_slices(url)
    for key in sorted(set(truth) | set(found)):
        expected, (billed, effective, _) = truth.get(key), found.get(key, (None, None, 0))
        if expected != billed:
            problems.append(f"{key[0]} {key[1]}: warehouse SUM(BilledCost) {billed}, "
                            f"source SUM(cost)+SUM(credits) {expected}")
        if effective != billed:  # amortizing CUD fees moves EffectiveCost, never changes it
            problems.append(f"{key[0]} {key[1]}: SUM(EffectiveCost) {effective} is not "
                            f"SUM(BilledCost) {billed}")
    result["slices"] = {f"{a} {m}": {"billed_cost": str(b), "effective_cost": str(e),
                                     "rows": n}
                        for (a, m), (b, e, n) in sorted(found.items())}
    return {**result, "exact": not problems, "problems": problems}



def render_sql(source: Path, out: Path) -> str:
    """The bar's statement for ``source`` (Parquet, or JSON lines with or without gzip)."""
    reader = (f"read_parquet({sql_literal(str(source))})" if source.suffix == ".parquet" else
              f"read_json({sql_literal(str(source))}, format = 'newline_delimited')")
    return render_bar(SQL, {name: MAPPINGS / f"gcp_{file}.csv" for name, file in (
        ("services", "services"), ("regions", "regions"), ("units", "units"),
        ("types", "resource_types"))}, reader=reader, out=sql_literal(str(out)))


def bench_duckdb(source: Path, workdir: Path, rows: int, truth: Truth, threads: int,
                 into_table: bool = False) -> dict[str, Any]:
    """The bar on ``source`` in its own process (or its floor, ``into_table``: `common.
    as_table_load`); its totals per slice checked against truth."""
    import duckdb

    out = workdir / ("focus_duckdb_gcp.duckdb" if into_table else "focus_duckdb_gcp.parquet")
    run = run_bar(str(Path(__file__).resolve()), source, out, threads, into_table=into_table)
    if run["exit_code"] != 0:
        return {"ok": False, "exact": False, "message": run["stderr"][-2000:]}
    database, relation = bar_relation(out, into_table)
    with duckdb.connect(database, read_only=into_table) as con:
        found = con.execute(
            "SELECT BillingAccountId, strftime(BillingPeriodStart, '%Y%m'), SUM(BilledCost), "
            f"COUNT(*) FROM {relation} GROUP BY ALL").fetchall()
    sums = {(a, m): Decimal(str(b)) for a, m, b, _ in found}
    statement = json.loads(run["stdout"])["statement_seconds"]
    return {"ok": True, **timing(run, rows), "statement_seconds": round(statement, 2),
            "rows_loaded": sum(n for *_, n in found),
            "exact": sums == truth and sum(n for *_, n in found) == rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--formats", default="parquet,jsonl",
                        help="comma-separated: parquet, jsonl")
    parser.add_argument("--ingest-arg", action="append", default=[], metavar="FLAG",
                        help="pass FLAG to `costflow ingest` (repeatable)")
    add_bar_arguments(parser, HERE / "out")
    args = parser.parse_args(argv)
    if args.worker:
        bar_worker(render_sql(args.source, args.out), args)
        return 0
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(SUFFIX))
    if unknown:
        parser.error(f"unknown format(s) {unknown}; expected some of {sorted(SUFFIX)}")
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    results, inputs = [], {}
    for fmt in formats:
        gen = inputs[fmt] = generate(args.rows, args.seed, workdir, fmt)
        print(f"input: {gen['path']} ({gen['rows']} rows, {gen['size_bytes'] / 2**20:.0f} MB)"
              + (" [reused]" if gen["reused"] else
                 f"; generated in {gen['seconds']:.1f} s = {gen['rows_per_second']:,} rows/s, "
                 f"peak RSS {gen['rss_mb']} MB"))
        ours = {"format": fmt, **bench_ingest(Path(gen["path"]), workdir, args.rows,
                                               truth_of(gen), args.ingest_arg)}
        if not args.skip_duckdb:
            bar = ours["duckdb"] = bench_duckdb(Path(gen["path"]), workdir, args.rows,
                                                truth_of(gen), args.threads)
            if bar["ok"]:
                ours["ratio_to_duckdb"] = round(bar["seconds"] / ours["seconds"], 3)
            else:
                ours["problems"].append(f"the DuckDB bar failed: {bar['message']}")
                ours["exact"] = False
            with_floor(ours, bar, bench_duckdb(Path(gen["path"]), workdir, args.rows,
                                               truth_of(gen), args.threads, into_table=True))
        results.append(ours)
    print_table(results, "format")
    return write_result(workdir / "gcp_bench_result.json",
                        {"rows": args.rows, "seed": args.seed, "ingest_args": args.ingest_arg,
                         "inputs": inputs}, results, "format")


if __name__ == "__main__":
    if not sys.platform.startswith("linux"):  # /proc sampling and os.wait4
        raise SystemExit("this benchmark measures memory through /proc: run it on Linux")
    raise SystemExit(main())
