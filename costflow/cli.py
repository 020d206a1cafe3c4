"""The `costflow` command: ingest exports, query costs, export FOCUS, run the demo.

Every failure caused by input or configuration ends in a one-paragraph message naming the file,
row and column, and a non-zero exit status; never a bare traceback.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from datetime import date
from decimal import Decimal
from typing import Any

from costflow.errors import ConfigError, CostflowError

LOG_FORMAT = "%(asctime)s %(message)s"


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; expected YYYY-MM-DD") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="costflow", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="Only print results.")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser(
        "ingest", help="Load billing exports into the warehouse.",
        description="Load billing exports into the warehouse. Unknown --flags are passed to "
                    "Apache Beam (e.g. --runner DataflowRunner --project P --region R).")
    ingest.add_argument("--source", action="append", required=True,
                        help="File, directory or glob (** allowed); repeat for more.")
    ingest.add_argument("--provider", choices=["aws", "gcp", "azure"])
    ingest.add_argument("--format", dest="source_format")
    ingest.add_argument("--warehouse")
    ingest.add_argument("--json", action="store_true", help="Print the run report as JSON.")

    query = sub.add_parser("query", help="Read costs from the warehouse.")
    qsub = query.add_subparsers(dest="query", required=True)
    costs = qsub.add_parser("costs", help="Costs between two dates by dimension.")
    costs.add_argument("--start", type=_date, required=True, help="Inclusive, YYYY-MM-DD.")
    costs.add_argument("--end", type=_date, required=True, help="Exclusive, YYYY-MM-DD.")
    costs.add_argument("--group-by", default="service",
                       help="Comma-separated dimensions (default: service).")
    costs.add_argument("--filter", action="append", default=[], metavar="DIM=VALUE",
                       help="Keep rows whose dimension equals VALUE; repeat for more.")
    costs.add_argument("--metric", default="BilledCost",
                       help="BilledCost (default), EffectiveCost, ListCost or ContractedCost.")
    costs.add_argument("--format", choices=["table", "json", "csv"], default="table")
    costs.add_argument("--warehouse")

    export = sub.add_parser("export", help="Write the FOCUS view to a Parquet file.")
    export.add_argument("--out", required=True)
    export.add_argument("--focus-version", choices=["1.2", "1.3"], default="1.2")
    export.add_argument("--warehouse")

    demo = sub.add_parser("demo", help="Generate sample exports, ingest them, print costs.")
    demo.add_argument("--rows", type=int, default=50_000, help="Rows per month (default 50k).")
    demo.add_argument("--out", default="exports/cur", help="Where to write the sample exports.")
    demo.add_argument("--warehouse")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "ingest":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # Our progress lines at INFO; everything else (Beam is chatty) only when it is a problem.
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, datefmt="%H:%M:%S",
                        stream=sys.stderr)
    logging.getLogger("costflow").setLevel(logging.WARNING if args.quiet else logging.INFO)
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    try:
        return {"ingest": _ingest, "query": _query, "export": _export,
                "demo": _demo}[args.command](args, extra)
    except CostflowError as err:
        print(f"costflow: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("costflow: interrupted; nothing further was committed", file=sys.stderr)
        return 130


def ingest_argv(args: argparse.Namespace, extra: list[str]) -> list[str]:
    argv = [f"--source={s}" for s in args.source]
    for flag, value in (("provider", args.provider), ("format", args.source_format),
                        ("warehouse", args.warehouse)):
        if value:
            argv.append(f"--{flag}={value}")
    return argv + extra


def _ingest(args: argparse.Namespace, extra: list[str]) -> int:
    from costflow.pipelines.ingest import run
    from costflow.pipelines.report import format_summary

    report = run(ingest_argv(args, extra))
    print(json.dumps(report, indent=2) if args.json else format_summary(report))
    return 0


def _filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--filter {item!r} is not DIM=VALUE "
                              "(e.g. --filter region=us-east-1).")
        out.setdefault(key.strip(), []).append(value)
    return out


def _query(args: argparse.Namespace, extra: list[str]) -> int:
    from costflow.services.costs import costs_by_dimension
    from costflow.warehouse import connect, resolve_url

    if args.end <= args.start:
        raise ConfigError(f"--end {args.end} is not after --start {args.start} "
                          "(the range is [start, end)).")
    warehouse = connect(resolve_url(args.warehouse))
    try:
        table = costs_by_dimension(
            warehouse, args.start, args.end,
            group_by=[g.strip() for g in args.group_by.split(",") if g.strip()],
            filters=_filters(args.filter) or None, metric=args.metric)
    finally:
        warehouse.close()
    print(render(table.to_pylist(), table.column_names, args.format))
    return 0


def render(rows: list[dict[str, Any]], columns: list[str], fmt: str) -> str:
    """Rows as a text table, JSON or CSV; decimals stay exact text."""
    def text(v: Any) -> str:
        if isinstance(v, Decimal):
            from costflow.pipelines.report import exact
            return exact(v)
        return "" if v is None else str(v)

    if fmt == "json":
        return json.dumps([{c: text(r[c]) if isinstance(r[c], Decimal) else r[c]
                            for c in columns} for r in rows], indent=2, default=str)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[text(r[c]) for c in columns] for r in rows])
        return buf.getvalue().rstrip("\n")
    cells = [[text(r[c]) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(row[i]) for row in cells) and cells for i in range(len(columns))]
    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths, strict=True))).rstrip()
    out = [line(columns), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    if not rows:
        out.append("(no rows in this range)")
    return "\n".join(out)


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
        return True
    except ArithmeticError:
        return False


def _export(args: argparse.Namespace, extra: list[str]) -> int:
    from costflow.services.costs import export_focus
    from costflow.warehouse import connect, resolve_url

    warehouse = connect(resolve_url(args.warehouse))
    try:
        rows = export_focus(warehouse, args.out, version=args.focus_version)
    finally:
        warehouse.close()
    print(f"wrote {args.out}: FOCUS {args.focus_version}"
          + (f", {rows:,} rows" if isinstance(rows, int) else ""))
    return 0


def _demo(args: argparse.Namespace, extra: list[str]) -> int:
    from costflow.samples.demo import run_demo

    print(run_demo(rows=args.rows, out_dir=args.out, warehouse=args.warehouse))
    return 0


if __name__ == "__main__":
    sys.exit(main())
