"""What the ingest benchmarks share: paths, and running a command with its time and peak memory.

Why: ``ingest_bench.py`` (AWS, and the ``--provider`` dispatcher) hands ``--provider gcp`` to
``gcp_ingest_bench.py``, and both measure a ``costflow ingest`` subprocess the same way. Those
shared pieces live here, in a module that imports neither script, so the two scripts do not
import each other in a circle. The scripts are run directly (``python bench/ingest_bench.py``),
which puts ``bench/`` on ``sys.path``: they import this module as ``common``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _tree_rss_kb(root: int) -> tuple[int, int]:
    """(sum of VmRSS, largest VmHWM) in kB over ``root`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, largest, stack = 0, 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        largest = max(largest, int(line.split()[1]))
                    elif line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total, largest


def run_measured(cmd: list[str], *, cwd: Path | None = None) -> dict[str, Any]:
    """Run ``cmd``; return exit code, wall seconds, peak RSS (MB) and its output.

    ``rss_max_process_mb`` is the largest high-water mark (VmHWM) of any process of the tree,
    sampled every 50 ms: a process's own mark survives between samples, so only a peak in its
    last 50 ms could be missed. ``wait4``'s ``ru_maxrss`` is not used: on Linux a child's
    starts at its parent's RSS at fork (an 800 MB Python parent made /bin/true report 813 MB;
    a benchmark that generated its input in-process reported 4 GB for every command it ran).
    ``rss_tree_sum_mb`` is the largest sampled sum of VmRSS over the tree.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak_tree, peak_process, done = [0], [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            tree, largest = _tree_rss_kb(proc.pid)
            peak_tree[0] = max(peak_tree[0], tree)
            peak_process[0] = max(peak_process[0], largest)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out), (proc.stderr, err))]
    for r in readers:
        r.start()
    _, status, _ = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit_code": proc.returncode, "seconds": seconds,
            "rss_max_process_mb": peak_process[0] / 1024,
            "rss_tree_sum_mb": peak_tree[0] / 1024,
            "stdout": "".join(out), "stderr": "".join(err)}


def timing(run: dict[str, Any], rows: int) -> dict[str, Any]:
    """The result columns of a `run_measured` run over ``rows`` rows: time, rows/s, peak RSS."""
    return {"seconds": round(run["seconds"], 2), "rows_per_s": round(rows / run["seconds"]),
            "peak_rss_mb": round(max(run["rss_max_process_mb"], run["rss_tree_sum_mb"])),
            "rss_max_process_mb": round(run["rss_max_process_mb"]),
            "rss_tree_sum_mb": round(run["rss_tree_sum_mb"])}


def sql_literal(text: str) -> str:
    """A SQL string literal (paths only; they come from the benchmark, never from users)."""
    return "'" + text.replace("'", "''") + "'"


def run_statement(sql: str, threads: int, database: str = ":memory:") -> None:
    """Child-process body of a DuckDB bar: run one statement on ``threads`` threads in
    ``database`` and print its own time as JSON (``statement_seconds``)."""
    import duckdb

    con = duckdb.connect(database)
    con.execute(f"SET threads = {int(threads)}")
    started = time.perf_counter()
    con.execute(sql)
    con.close()  # a database file is complete on disk when the time is taken
    print(json.dumps({"statement_seconds": time.perf_counter() - started}))


# The floor's table: the bar's output loaded into a DuckDB database file.
FLOOR_TABLE = "focus"
FLOOR_NOTE = ("(into a table: the bar's statement loading a DuckDB file instead of writing "
              "Parquet, the least any ingest into the DuckDB warehouse does; its ratio is the "
              "best one such an ingest can reach)")


def as_table_load(copy_sql: str) -> str:
    """A bar's ``COPY (query) TO file (...)`` as ``CREATE TABLE focus AS query``.

    The same conversion, loaded into a DuckDB database file instead of written as Parquet:
    what any ingest into the DuckDB warehouse does at least, with no dead letters,
    reconciliation, quality gate or staging. Its time over the bar's is the best ratio an
    ingest that loads the warehouse can reach (the floor under ours).
    """
    found = re.search(r"^COPY \((.*)^\) TO [^\n]*$", copy_sql, re.S | re.M)
    if found is None:
        raise ValueError("a bar statement is COPY ( query ) TO ... with each part at the "
                         "start of a line")
    return f"CREATE TABLE {FLOOR_TABLE} AS {found.group(1)}"


def bar_relation(out: Path, into_table: bool) -> tuple[str, str]:
    """(database, relation) holding a bar's rows: its Parquet file, or the floor's table."""
    if into_table:
        return str(out), FLOOR_TABLE
    return ":memory:", f"read_parquet({sql_literal(str(out))})"


def bar_worker(sql: str, args: Any) -> None:
    """The ``--_duckdb-worker`` body: the bar's statement, or with ``--into-table`` its floor
    (`as_table_load`) into the database file ``--out``."""
    if args.into_table:
        run_statement(as_table_load(sql), args.threads, database=str(args.out))
    else:
        run_statement(sql, args.threads)


def run_bar(script: str, source: Path, out: Path, threads: int, *, into_table: bool = False,
            worker_args: list[str] | None = None) -> dict[str, Any]:
    """``script --_duckdb-worker [worker_args]`` (a bar's statement, `bar_worker`) in its own
    process, measured like `run_measured`; ``out`` (the bar's output) is removed first."""
    for stale in (out, out.with_name(out.name + ".wal")):
        stale.unlink(missing_ok=True)
    return run_measured([sys.executable, script, "--_duckdb-worker", "--source", str(source),
                         "--out", str(out), "--threads", str(threads),
                         *(["--into-table"] if into_table else []), *(worker_args or [])])


def with_floor(result: dict[str, Any], bar: dict[str, Any], floor: dict[str, Any]) -> None:
    """Record the floor beside ``result`` (ours), with its speed as a ratio of the bar's."""
    result["duckdb_into_table"] = floor
    if not (floor.get("ok") and floor.get("exact")):  # reported like a failed bar
        result.setdefault("problems", []).append(
            f"the DuckDB floor failed: {floor.get('message') or 'not the truth totals'}")
        result["exact"] = False
    elif bar.get("ok"):
        floor["ratio_to_duckdb"] = round(bar["seconds"] / floor["seconds"], 3)


def print_table(results: list[dict[str, Any]], label: str) -> None:
    """Ours and the bar, a line each, per result (``label``: the key naming the input)."""
    width = max(9, *(len(str(r[label])) + 2 for r in results))
    print(f"\n{label:<{width}}{'tool':<18}{'rows':>10}{'seconds':>9}{'rows/s':>10}"
          f"{'peak RSS MB':>13}{'exact':>7}{'ours/duckdb speed':>19}")
    for r in results:
        ratio = f"{r['ratio_to_duckdb']:.3f}" if "ratio_to_duckdb" in r else ""
        print(f"{r[label]:<{width}}{'costflow ingest':<18}{r['rows']:>10}{r['seconds']:>9.2f}"
              f"{r['rows_per_s']:>10}{r['peak_rss_mb']:>13}{str(r['exact']):>7}{ratio:>19}")
        for key, tool in (("duckdb", "duckdb 1 SQL"), ("duckdb_into_table", "  into a table")):
            bar = r.get(key)
            if bar and bar["ok"]:
                ratio = f"{bar['ratio_to_duckdb']:.3f}" if "ratio_to_duckdb" in bar else ""
                print(f"{'':<{width}}{tool:<18}{r['rows']:>10}{bar['seconds']:>9.2f}"
                      f"{bar['rows_per_s']:>10}{bar['peak_rss_mb']:>13}"
                      f"{str(bar['exact']):>7}{ratio:>19}")
    if any("duckdb_into_table" in r for r in results):
        print(FLOOR_NOTE)


def write_result(out: Path, payload: dict[str, Any], results: list[dict[str, Any]],
                 label: str) -> int:
    """The results as JSON with the machine's versions; exit code 1 if any is not exact."""
    import duckdb
    import pyarrow

    out.write_text(json.dumps({
        **payload, "results": results,
        "machine": {"cpus": os.cpu_count(), "python": __import__("platform").python_version(),
                    "duckdb": duckdb.__version__, "pyarrow": pyarrow.__version__},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
    print(f"\nwritten: {out}")
    failed = [r for r in results if not r["exact"]]
    for r in failed:
        print(f"\nFAILED ({r[label]}): not exactly the source's totals:\n  "
              + "\n  ".join(r["problems"]), file=sys.stderr)
    return 1 if failed else 0


def render_bar(template: Path, mappings: dict[str, Path], **sql: str) -> str:
    """A bar's statement: ``template`` (string.Template) with each mapping file as a quoted
    path and each of ``sql`` as given (already SQL: literals or reader expressions)."""
    from string import Template

    return Template(template.read_text()).substitute(
        **{name: sql_literal(str(path)) for name, path in mappings.items()}, **sql)


def add_bar_arguments(parser: Any, workdir: Path) -> None:
    """The options every ingest benchmark with a DuckDB bar takes (and the worker's own)."""
    import argparse

    parser.add_argument("--workdir", type=Path, default=workdir)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (bar)")
    parser.add_argument("--skip-duckdb", action="store_true", help="measure ours only")
    parser.add_argument("--_duckdb-worker", dest="worker", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--into-table", action="store_true", help=argparse.SUPPRESS)
