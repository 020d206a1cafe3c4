"""How fast is costflow's ingest, measured against the DuckDB single-statement bar?

Why: ``../shared/reference/engineering_notes.md`` sets the bar (DuckDB turns a 94-column CUR
CSV.gz into FOCUS Parquet at ~280k rows/s on this 2-core machine). This script measures ours on
the same input, end to end, and the bar itself, so the ratio is measured rather than assumed.

Steps:
    1. Generate N rows of realistic CUR CSV.gz (`costflow.providers.aws.samples.cur`, in a
       subprocess whose time and peak RSS are recorded); a file of the same rows and seed is reused.
    2. ours: ``costflow ingest --provider aws --source FILE --warehouse duckdb:///WORKDIR/
       bench.duckdb`` into a fresh warehouse, as a subprocess. Peak RSS is reported two ways:
       the largest single process of its tree (``wait4`` ru_maxrss, exact) and the largest sum
       of RSS over the whole process tree (sampled every 50 ms), in case it spawns workers.
    3. duckdb: ``bench/cur_to_focus_duckdb.sql`` (one COPY statement, 2 threads) in a separate
       process, with costs as DECIMAL(38, 18) (exact, like ours) and as DOUBLE (for reference).
    4. the floor: the same statement (DECIMAL) loading a table in a DuckDB database file
       instead of writing Parquet (`common.as_table_load`): the least any ingest into the
       DuckDB warehouse does, so its ratio is the best such an ingest can reach.

Both tools' BilledCost totals are checked against the generator's exact total. Results are
printed as a table and written to ``WORKDIR/bench_result.json``.

Usage::

    python bench/ingest_bench.py --rows 2000000 [--workdir bench/out] [--seed 7]
    python bench/ingest_bench.py --provider gcp --rows 1000000   # bench/gcp_ingest_bench.py
    python bench/ingest_bench.py --provider azure --rows 1000000 # bench/azure_ingest_bench.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from decimal import Decimal
from pathlib import Path
from string import Template
from typing import Any

from common import FLOOR_NOTE, HERE, ROOT, bar_relation, bar_worker, run_bar, run_measured, timing

SQL = HERE / "cur_to_focus_duckdb.sql"
SERVICES = ROOT / "costflow" / "providers" / "aws" / "mappings" / "aws_services.csv"
MONEY = {"decimal": "DECIMAL(38, 18)", "double": "DOUBLE"}


def _literal(text: str) -> str:
    """A SQL string literal (paths only; they come from this script, not from users)."""
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    """A quoted SQL identifier (a column name read from the file's header)."""
    return '"' + name.replace('"', '""') + '"'


def generate(rows: int, seed: int, workdir: Path) -> dict[str, Any]:
    """The benchmark input (reused when present) and the generator's truth about it."""
    path = workdir / f"cur_{rows}_seed{seed}.csv.gz"
    truth = path.with_suffix("").with_suffix(".json")
    if path.exists() and truth.exists():
        info = json.loads(truth.read_text())
        info["reused"] = True
        return info
    run = run_measured([sys.executable, "-m", "costflow.providers.aws.samples.cur",
                        "--rows", str(rows), "--out", str(path), "--seed", str(seed)], cwd=ROOT)
    if run["exit_code"] != 0:
        raise SystemExit(f"generator failed:\n{run['stderr']}")
    info = json.loads(run["stdout"])
    info.update(seconds=run["seconds"], rss_mb=run["rss_max_process_mb"],
                size_bytes=path.stat().st_size, reused=False)
    truth.write_text(json.dumps(info, indent=2) + "\n")
    return info


def bench_ours(source: Path, workdir: Path, rows: int, total: Decimal,
               extra: list[str] | None = None) -> dict[str, Any]:
    """costflow ingest into a fresh DuckDB warehouse; a clear message when it cannot run."""
    costflow = Path(sys.executable).with_name("costflow")
    if not costflow.exists():
        return {"tool": "costflow ingest", "ok": False,
                "message": f"{costflow} not found: install the project (pip install -e .)"}
    warehouse = workdir / "bench.duckdb"
    for stale in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        stale.unlink(missing_ok=True)
    run = run_measured([str(costflow), "ingest", "--provider", "aws", "--source", str(source),
                        "--warehouse", f"duckdb:///{warehouse}", "--json", *(extra or [])],
                       cwd=workdir)
    result = {"tool": "costflow ingest", "rows": rows, **timing(run, rows)}
    if run["exit_code"] != 0:
        tail = "\n".join(run["stderr"].strip().splitlines()[-8:])
        return {**result, "ok": False, "message": (
            f"costflow ingest failed (exit code {run['exit_code']}), so it is not measured "
            f"(not runnable yet?); the DuckDB bar still is. Its last stderr lines:\n{tail}")}
    try:
        report = json.loads(run["stdout"])
        totals = report["totals"]
        result.update(rows_loaded=totals["rows_loaded"], billed_cost=totals["billed_cost"],
                      exact=Decimal(totals["billed_cost"]) == total
                      and totals["rows_loaded"] == rows)
    except (ValueError, KeyError) as exc:
        result.update(exact=None, message=f"could not read the run report: {exc}")
    return {**result, "ok": True}


def render_sql(source: Path, out: Path, money: str) -> str:
    """The benchmark statement for ``source``; tag columns come from the file's own header."""
    import duckdb

    with duckdb.connect() as con:
        cursor = con.execute(f"SELECT * FROM read_csv({_literal(str(source))}, "
                             "all_varchar = true) LIMIT 0")
        header = [d[0] for d in cursor.description or []]
    structs = [f"{{'k': {_literal(c.split('/', 1)[1])}, 'v': {_identifier(c)}}}"
               for c in header if c.startswith("resourceTags/")]
    tags = f"[{', '.join(structs)}]" if structs else "[]::STRUCT(k VARCHAR, v VARCHAR)[]"
    return Template(SQL.read_text()).substitute(
        source=_literal(str(source)), services=_literal(str(SERVICES)), out=_literal(str(out)),
        money=MONEY[money], tags=tags)


def duckdb_worker(args: argparse.Namespace) -> None:
    """Child-process body: run the one statement (or its floor), print its time as JSON."""
    bar_worker(render_sql(args.source, args.out, args.money), args)


def bench_duckdb(source: Path, workdir: Path, rows: int, total: Decimal, money: str,
                 threads: int, into_table: bool = False) -> dict[str, Any]:
    """The bar: one DuckDB statement in its own process; BilledCost total checked after.
    ``into_table``: its floor (`common.as_table_load`), loading a DuckDB file instead."""
    import duckdb

    out = workdir / f"focus_duckdb_{money}.{'duckdb' if into_table else 'parquet'}"
    run = run_bar(str(Path(__file__).resolve()), source, out, threads, into_table=into_table,
                  worker_args=["--money", money])
    name = "duckdb 1 SQL into a table" if into_table else f"duckdb 1 SQL {MONEY[money]}"
    if run["exit_code"] != 0:
        return {"tool": name, "ok": False, "message": run["stderr"][-2000:]}
    database, relation = bar_relation(out, into_table)
    with duckdb.connect(database, read_only=into_table) as con:
        n, billed = con.execute(f"SELECT count(*), sum(BilledCost) FROM {relation}").fetchall()[0]
    statement = json.loads(run["stdout"])["statement_seconds"]
    return {"tool": name, "ok": True, "rows": rows, **timing(run, rows),
            "statement_seconds": round(statement, 2), "rows_loaded": n,
            "billed_cost": str(billed), "exact": Decimal(str(billed)) == total and n == rows,
            "output_mb": round(out.stat().st_size / 2**20)}


def print_table(results: list[dict[str, Any]], bar: dict[str, Any] | None) -> None:
    print(f"\n{'tool':<32}{'rows':>10}{'seconds':>9}{'rows/s':>10}{'peak RSS MB':>13}"
          f"{'exact':>7}{'ours/duckdb':>13}")
    for r in results:
        if not r.get("ok"):
            first = (r.get("message") or "failed").splitlines()[0]
            print(f"{r['tool']:<32}  not measured: {first}")
            continue
        ratio = ""
        if bar and bar.get("ok") and (r["tool"] == "costflow ingest"
                                      or r["tool"].endswith("into a table")):
            ratio = f"{r['seconds'] / bar['seconds']:.2f}x time"
        print(f"{r['tool']:<32}{r['rows']:>10}{r['seconds']:>9.2f}{r['rows_per_s']:>10}"
              f"{r['peak_rss_mb']:>13}{str(r.get('exact')):>7}{ratio:>13}")
    if any(r["tool"].endswith("into a table") for r in results):
        print(FLOOR_NOTE)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    provider = argparse.ArgumentParser(add_help=False)
    provider.add_argument("--provider", choices=("aws", "gcp", "azure"), default="aws")
    chosen, rest = provider.parse_known_args(argv)
    if chosen.provider == "gcp":  # its own generator, formats and exactness check
        import gcp_ingest_bench

        return gcp_ingest_bench.main(rest)
    if chosen.provider == "azure":  # an EA export pair; the bar reads the actual-cost file
        import azure_ingest_bench

        return azure_ingest_bench.main(rest)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", choices=("aws", "gcp", "azure"), default="aws",
                        help="gcp: bench/gcp_ingest_bench.py, azure: bench/azure_ingest_bench.py "
                             "(see their --help)")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=HERE / "out")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (bar)")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--ingest-arg", action="append", default=[], metavar="FLAG",
                        help="pass FLAG to `costflow ingest` (repeatable), e.g. "
                             "--ingest-arg=--direct_num_workers=2")
    parser.add_argument("--_duckdb-worker", dest="worker", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--money", choices=MONEY, default="decimal", help=argparse.SUPPRESS)
    parser.add_argument("--into-table", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        duckdb_worker(args)
        return 0

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    gen = generate(args.rows, args.seed, workdir)
    source, total = Path(gen["path"]), Decimal(gen["unblended_total"])
    print(f"input: {source} ({gen['rows']} rows, {gen['size_bytes'] / 2**20:.0f} MB gz, "
          f"UnblendedCost total {total})" + (" [reused]" if gen["reused"] else
          f"; generated in {gen['seconds']:.1f} s = {gen['rows'] / gen['seconds']:,.0f} rows/s,"
          f" peak RSS {gen['rss_mb']:.0f} MB"))
    results = []
    if not args.skip_ours:
        ours = bench_ours(source, workdir, args.rows, total, args.ingest_arg)
        if not ours["ok"]:
            print(f"\n[ours] {ours['message']}")
        results.append(ours)
    for money in ("decimal", "double"):
        results.append(bench_duckdb(source, workdir, args.rows, total, money, args.threads))
    bar = results[-2]
    # The floor: the bar's statement loading a DuckDB file (`common.as_table_load`).
    results.append(bench_duckdb(source, workdir, args.rows, total, "decimal", args.threads,
                                into_table=True))
    if results[0]["tool"] == "costflow ingest" and results[0].get("ok") and bar.get("ok"):
        results[0]["ratio_to_duckdb_decimal"] = round(results[0]["seconds"] / bar["seconds"], 2)
        results[0]["rss_ratio_to_duckdb_decimal"] = round(
            results[0]["peak_rss_mb"] / bar["peak_rss_mb"], 2)
    print_table(results, bar)
    import duckdb
    import pyarrow

    result = {"rows": args.rows, "seed": args.seed, "ingest_args": args.ingest_arg, "input": gen,
              "results": results,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "duckdb": duckdb.__version__, "pyarrow": pyarrow.__version__},
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (workdir / "bench_result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {workdir / 'bench_result.json'}")
    return 0


if __name__ == "__main__":
    if not sys.platform.startswith("linux"):  # /proc sampling and os.wait4
        raise SystemExit("this benchmark measures memory through /proc: run it on Linux")
    raise SystemExit(main())
