"""The `costflow` command: ingest exports, query costs, export FOCUS, serve MCP, run the demo.

Every failure caused by input or configuration ends in a one-paragraph message naming the file,
row and column, and a non-zero exit status; never a bare traceback.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import signal
import sys
import threading
from datetime import date
from typing import Any

from costflow.errors import ConfigError, CostflowError
from costflow.progress import install as progress_display
from costflow.providers import NAMES
from costflow.schemas.operational import RUN_STATUSES
from costflow.text import render_costs, render_table
from costflow.usage import USAGE_SOURCES

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
    ingest.add_argument("--provider", choices=[*NAMES, *USAGE_SOURCES],
                        help="A provider, or a usage source (openshift: usage reports, loaded "
                             "and allocated as `costflow allocate --usage` does).")
    ingest.add_argument("--format", dest="source_format")
    ingest.add_argument("--warehouse")
    ingest.add_argument("--json", action="store_true", help="Print the run report as JSON.")
    ingest.add_argument("--no-allocate", dest="no_allocate", action="store_true",
                        help="Do not re-run the Kubernetes allocations this load makes stale "
                             "(they are listed instead; see `costflow allocate`).")
    ingest.add_argument("--billing-currency", dest="billing_currency",
                        help="ISO 4217 currency (e.g. USD) of exports that have no currency "
                             "column, asserted by you; flagged on their rows.")
    ingest.add_argument("--start", type=_date,
                        help="azure-query://, aws-ce://, bq://: inclusive start (bq://: a "
                             "Google billing day, US/Pacific).")
    ingest.add_argument("--end", type=_date,
                        help="azure-query://, aws-ce://, bq://: exclusive end.")
    ingest.add_argument("--authorized-project", dest="authorized_project", action="append",
                        default=[], help="bq://: only rows of this GCP project; repeat.")
    ingest.add_argument("--lookback-days", dest="lookback_days", type=int,
                        help="bq://: re-read rows exported up to N days before the last "
                             "load's high-water export_time (default 3).")
    ingest.add_argument("--credentials",
                        help="secret://NAME of the secret the sources are read with (a "
                             "reference, never the value; default: the environment's chain).")
    ingest.add_argument("--secrets", help="Secret store URL for --credentials (default: "
                                          "$COSTFLOW_SECRETS, else local:///.costflow/secrets).")

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
    costs.add_argument("--granularity", choices=["TOTAL", "DAILY", "MONTHLY"], default="TOTAL",
                       help="Add a day or month column (default: TOTAL, none).")
    costs.add_argument("--currency", help="Report in this currency (e.g. EUR): each day's "
                                          "amounts converted with that day's exchange rate "
                                          "(costflow rates load); unconvertible ones are listed.")
    costs.add_argument("--max-rate-age", dest="max_rate_age", type=int, default=7,
                       help="With --currency: use a rate up to this many days older than the "
                            "charge day (default 7).")
    costs.add_argument("--allocated", action="store_true",
                       help="Read the split view: node and volume charges split onto "
                            "Kubernetes workloads by `costflow allocate` (same totals); "
                            "needed for k8s:cluster, k8s:namespace, k8s:workload, "
                            "k8s:label:<key>.")
    _scope_flags(costs)

    anomalies = qsub.add_parser("anomalies", help="Days whose cost departs from its weekly "
                                                  "baseline, per dimension.")
    anomalies.add_argument("--start", type=_date, required=True, help="Inclusive, YYYY-MM-DD.")
    anomalies.add_argument("--end", type=_date, required=True, help="Exclusive, YYYY-MM-DD.")
    anomalies.add_argument("--group-by", default="service",
                           help="Comma-separated dimensions (default: service).")
    anomalies.add_argument("--metric", default="BilledCost")
    _scope_flags(anomalies)

    forecast = qsub.add_parser("forecast", help="Forecast costs from the daily history.")
    forecast.add_argument("--start", type=_date, required=True, help="Inclusive, YYYY-MM-DD.")
    forecast.add_argument("--end", type=_date, required=True, help="Exclusive, YYYY-MM-DD.")
    forecast.add_argument("--granularity", choices=["DAILY", "MONTHLY"], default="MONTHLY")
    forecast.add_argument("--metric", default="BilledCost")
    forecast.add_argument("--currency", help="Needed when the history has several currencies.")
    forecast.add_argument("--confidence", type=float, default=0.95,
                          help="Of the prediction interval (default 0.95).")
    _scope_flags(forecast)

    recs = qsub.add_parser("recommendations", help="Cost optimization recommendations.")
    recs.add_argument("--category", help="compute, storage, network, database, commitment, other")
    recs.add_argument("--state", action="append", default=[],
                      help="active (default), claimed, succeeded, failed, dismissed; repeat.")
    _scope_flags(recs)

    resources = qsub.add_parser("resources", help="Resources and the cost attributed to each.")
    resources.add_argument("--resource-type", help='e.g. "Virtual Machine" (matched exactly).')
    resources.add_argument("--start", type=_date, help="Inclusive (default: last 30 days).")
    resources.add_argument("--end", type=_date, help="Exclusive.")
    resources.add_argument("--metric", default="BilledCost")
    resources.add_argument("--limit", type=int, default=100)
    _scope_flags(resources)

    mcp = sub.add_parser("mcp", help="Serve the query tools to AI agents (MCP over stdio, "
                                      "or streamable HTTP with per-tenant bearer keys).")
    _tenant_flags(mcp)
    mcp.add_argument("--warehouse")
    mcp.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                     help="stdio (default: one user, the tenant from the flags) or http (each "
                          "request's bearer key decides the tenant; see costflow keys).")
    mcp.add_argument("--host", default="127.0.0.1", help="http: address to listen on.")
    mcp.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8765),
                     help="http: port (default $PORT, else 8765).")
    mcp.add_argument("--config", help="http: costflow.yaml declaring the tenants (default "
                                      "$COSTFLOW_CONFIG, else ./costflow.yaml); stdio: read "
                                      "with --tenant.")
    mcp.add_argument("--tenant", help="stdio: serve this tenant of the config (its accounts, "
                                      "and its budgets for get_budgets) instead of "
                                      "--billing-account/--sub-account.")
    mcp.add_argument("--metadata", help="http: metadata store holding the keys (default: "
                                        "the config's).")
    mcp.add_argument("--rate", type=float, default=5.0,
                     help="http: requests per second per key, sustained (default 5).")
    mcp.add_argument("--burst", type=int, default=20,
                     help="http: requests per key at once (default 20).")
    mcp.add_argument("--audit-log", dest="audit_log",
                     help="http: append the audit lines (one per tool call) to this file "
                          "(default stderr).")

    export = sub.add_parser("export", help="Write the FOCUS view to a Parquet file, or a "
                                           "FOCUS dataset (Parquet + metadata.json) to a dir.")
    export.add_argument("--out", required=True,
                        help="FILE.parquet: one Parquet file; otherwise a directory that gets "
                             "cost_and_usage.parquet and the FOCUS metadata.json.")
    export.add_argument("--focus-version", choices=["1.2", "1.3"], default="1.2")
    export.add_argument("--warehouse")
    export.add_argument("--validate", action="store_true",
                        help="Run the FOCUS validator (focus-validator, `make focus-validator`) "
                             "on the export with the applicability criteria of its providers.")

    recs = sub.add_parser("recommendations", help="Fetch provider recommendations.")
    rsub = recs.add_subparsers(dest="recommendations", required=True)
    fetch = rsub.add_parser(
        "fetch", help="Fetch a provider's cost recommendations into the warehouse, replacing "
                      "its previous ones.")
    fetch.add_argument("--provider", required=True, choices=NAMES)
    fetch.add_argument("--scope", action="append", default=[], metavar="KEY=VALUE",
                       help="Where to look, e.g. region=us-east-1, project=web-prod, "
                            "subscription=<id>; repeat for more.")
    fetch.add_argument("--warehouse")

    runs = sub.add_parser("runs", help="The load ledger: what each ingest run did.")
    runs_sub = runs.add_subparsers(dest="runs", required=True)
    runs_list = runs_sub.add_parser(
        "list", help="Runs, newest first: status, times, sources, rows, totals, error. Runs "
                     "whose process died are marked abandoned first.")
    runs_list.add_argument("--limit", type=int, default=50,
                           help="At most this many (default 50).")
    runs_list.add_argument("--status", choices=RUN_STATUSES, help="Only runs in this status.")
    runs_list.add_argument("--staging-dir", dest="staging_dir",
                           help="Staging root of the runs (default .costflow/staging): an "
                                "abandoned run's staging directory there is removed.")
    runs_show = runs_sub.add_parser(
        "show", help="One run: sources, rows, totals and reconciliation per slice, error.")
    runs_show.add_argument("run_id", metavar="RUN", help="The run id (see `costflow runs list`).")
    for command in (runs_list, runs_show):
        command.add_argument("--format", choices=["table", "json"], default="table")
        command.add_argument("--warehouse")

    demo = sub.add_parser("demo", help="Generate sample exports, ingest them, print costs.")
    demo.add_argument("--rows", type=int,
                      help="Rows per month of each provider (default 10k with all, else 50k).")
    demo.add_argument("--provider", choices=NAMES,
                      help="Only this provider's sample exports (default: every cloud with "
                           "demo exports, and a Kubernetes cluster on the AWS bill).")
    demo.add_argument("--out", help="Where to write the sample exports (default: "
                                    "exports/<provider>; a folder per provider in it when "
                                    "all clouds are generated).")
    demo.add_argument("--warehouse")
    for command in _commands().values():
        command.add_parser(sub)
    return parser


def _commands() -> dict[str, Any]:
    """The subcommands that live in `costflow.commands` (each: add_parser, run)."""
    from costflow.commands import (
        account_names,
        accounts,
        allocate,
        budgets,
        deploy,
        init,
        keys,
        rates,
        report,
        schedule,
        secrets,
        sync,
    )

    return {"account-names": account_names, "accounts": accounts, "allocate": allocate,
            "budgets": budgets, "deploy": deploy, "init": init, "keys": keys, "rates": rates,
            "report": report, "schedule": schedule, "secrets": secrets, "sync": sync}


def _tenant_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--billing-account", action="append", default=[],
                        help="Only this billing account's rows (repeat for more).")
    parser.add_argument("--sub-account", action="append", default=[],
                        help="Only this sub account / project / subscription (repeat).")
    parser.add_argument("--provider", default="all", choices=["all", *NAMES])


def _scope_flags(parser: argparse.ArgumentParser) -> None:
    _tenant_flags(parser)
    parser.add_argument("--format", choices=["table", "json", "csv"], default="table")
    parser.add_argument("--warehouse")


def _tenant(args: argparse.Namespace) -> Any:
    """Restricted to the listed accounts; without any, the warehouse owner sees everything."""
    from costflow.services.tenancy import Tenant

    if args.billing_account or args.sub_account:
        return Tenant.of("cli", args.billing_account, args.sub_account)
    return Tenant.unrestricted_owner("cli")


def _reported_by_the_cli(record: logging.LogRecord) -> bool:
    """Drop a log record whose exception is one of ours: Beam logs a failing step's exception
    with its whole traceback, and the CLI prints that same error as one paragraph."""
    exc = record.exc_info[1] if record.exc_info else None
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # a cause chain may loop
        if isinstance(exc, CostflowError):
            return False
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return True


def honor_deliberate_interrupts() -> None:
    """Take SIGINT as Ctrl-C even if it was ignored when we started, when we lead our own session.

    A process started in the background of a script inherits SIGINT ignored, and Python keeps
    it so. A costflow that leads its own session (a sync's ingest child) has no terminal a
    Ctrl-C could come from: a SIGINT it gets is the sync stopping it on purpose, and it must
    record its run as interrupted and remove its staging, not be killed after the grace period.
    """
    if (threading.current_thread() is threading.main_thread()
            and os.getsid(0) == os.getpid()
            and signal.getsignal(signal.SIGINT) == signal.SIG_IGN):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    honor_deliberate_interrupts()
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "ingest":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # Our progress lines at INFO on their own handler; everything else (Beam and GX are chatty,
    # and GX sets levels on its own loggers) reaches stderr only from WARNING up.
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, datefmt="%H:%M:%S",
                        stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)
        handler.addFilter(_reported_by_the_cli)
    ours = logging.getLogger("costflow")
    if not ours.handlers:
        formatter = logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S")
        # On a terminal, progress bars (files and rows of an ingest, sources of a sync);
        # elsewhere the same records as plain lines.
        if args.quiet or not progress_display(ours, sys.stderr, formatter):
            mine = logging.StreamHandler(sys.stderr)
            mine.setFormatter(formatter)
            ours.addHandler(mine)
    ours.propagate = False
    ours.setLevel(logging.WARNING if args.quiet else logging.INFO)
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    try:
        if args.command in _commands():
            return int(_commands()[args.command].run(args))
        return {"ingest": _ingest, "query": _query, "export": _export, "mcp": _mcp,
                "recommendations": _recommendations, "runs": _runs,
                "demo": _demo}[args.command](args, extra)
    except CostflowError as err:
        print(f"costflow: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("costflow: interrupted; nothing further was committed", file=sys.stderr)
        return 130


def ingest_argv(args: argparse.Namespace, extra: list[str]) -> list[str]:
    from costflow.providers import CATALOG
    from costflow.sources.contract import with_period

    argv = [f"--source={with_period(s, args.start, args.end, CATALOG.period_schemes)}"
            for s in args.source]
    for flag, value in (("provider", args.provider), ("format", args.source_format),
                        ("warehouse", args.warehouse),
                        ("billing_currency", getattr(args, "billing_currency", None)),
                        ("lookback_days", getattr(args, "lookback_days", None)),
                        ("credentials", getattr(args, "credentials", None)),
                        ("secrets", getattr(args, "secrets", None))):
        if value is not None and value != "":
            argv.append(f"--{flag}={value}")
    argv += [f"--authorized_project={p}" for p in getattr(args, "authorized_project", [])]
    return argv + extra


def _ingest(args: argparse.Namespace, extra: list[str]) -> int:
    if args.provider in USAGE_SOURCES:  # no cost: not the cost pipeline
        from costflow.commands.allocate import ingest_openshift

        return ingest_openshift(args)
    argv = ingest_argv(args, extra)
    from costflow.pipelines.ingest import run
    from costflow.pipelines.report import format_summary

    report = run(argv)
    from costflow.commands.allocate import after_ingest

    lines, status = after_ingest(report, enabled=not args.no_allocate)
    print(json.dumps(report, indent=2) if args.json else "\n".join([format_summary(report),
                                                                    *lines]))
    return status


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
    from costflow.warehouse import connect, resolve_url

    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if start and end and end <= start:
        raise ConfigError(f"--end {end} is not after --start {start} "
                          "(the range is [start, end)).")
    warehouse = connect(resolve_url(args.warehouse), reader=True)
    try:
        print({"costs": _query_costs, "forecast": _query_forecast,
               "recommendations": _query_recommendations,
               "resources": _query_resources,
               "anomalies": _query_anomalies}[args.query](args, warehouse))
    finally:
        warehouse.close()
    return 0


def _query_costs(args: argparse.Namespace, warehouse: Any) -> str:
    from costflow.services.costs import costs_by_dimension
    from costflow.services.providers import GRANULARITIES

    group_by = [g.strip() for g in args.group_by.split(",") if g.strip()]
    time_dim = GRANULARITIES[args.granularity]
    if args.currency and args.allocated:
        raise ConfigError("--allocated with --currency is not supported yet: query the split "
                          "view in the billing currency (drop --currency), or convert the "
                          "unsplit bill (drop --allocated).")
    if args.currency:
        return _query_costs_converted(args, warehouse,
                                      [time_dim, *group_by] if time_dim else group_by)
    table = costs_by_dimension(
        warehouse, args.start, args.end, group_by=[time_dim, *group_by] if time_dim else group_by,
        filters=_filters(args.filter) or None, metric=args.metric, tenant=_tenant(args),
        provider=args.provider, allocated=args.allocated)
    return render_costs(table.to_pylist(), table.column_names, args.format,
                        terminal=sys.stdout.isatty())


def _query_costs_converted(args: argparse.Namespace, warehouse: Any,
                           group_by: list[str]) -> str:
    from costflow.models import to_json
    from costflow.services.rates_convert import convert_costs, summary_lines

    result = convert_costs(warehouse, args.start, args.end, group_by, args.currency,
                           _filters(args.filter) or None, args.metric, tenant=_tenant(args),
                           provider=args.provider, max_age_days=args.max_rate_age)
    if args.format == "json":
        return json.dumps(to_json(result), indent=2)
    rows = [{**r, "status": "converted"} for r in result.rows] + [
        {**u.values, "currency": u.currency, "cost": u.cost, "rows": u.rows,
         "status": "unconvertible"} for u in result.unconvertible]
    columns = [*group_by, "currency", "cost", "rows"]
    table = render_table(rows, columns + (["status"] if result.unconvertible else []),
                         args.format)
    return table if args.format == "csv" else "\n".join([table, "", *summary_lines(result)])


def _query_anomalies(args: argparse.Namespace, warehouse: Any) -> str:
    from costflow.models import to_json
    from costflow.services.anomalies import find_anomalies

    group_by = [g.strip() for g in args.group_by.split(",") if g.strip()]
    report = find_anomalies(warehouse, _tenant(args), args.start, args.end, group_by,
                            provider=args.provider, metric=args.metric)
    if args.format == "json":
        return json.dumps(to_json(report), indent=2)
    rows = [{"day": a.day, **a.dimensions, "kind": a.kind, "currency": a.currency,
             "actual": a.actual, "expected": a.expected, "difference": a.difference,
             "share_of_period": a.share_of_period} for a in report.anomalies]
    columns = ["day", *group_by, "kind", "currency", "actual", "expected", "difference",
               "share_of_period"]
    table = render_table(rows, columns, args.format)
    return table if args.format == "csv" else f"{table}\n\n{report.method}"


def _provider(args: argparse.Namespace, warehouse: Any) -> Any:
    from costflow.services.providers import WarehouseCostProvider

    return WarehouseCostProvider(warehouse, _tenant(args), args.provider)


def _query_forecast(args: argparse.Namespace, warehouse: Any) -> str:
    import asyncio

    from costflow.models import to_json
    from costflow.text import exact

    result = asyncio.run(_provider(args, warehouse).get_forecast(
        args.start, args.end, args.granularity, metric=args.metric, currency=args.currency,
        confidence=args.confidence))
    if args.format == "json":
        return json.dumps(to_json(result), indent=2)
    rows = [{"start": p.period.start, "end": p.period.end, "currency": result.currency,
             "cost": p.cost, "lower": p.lower, "upper": p.upper} for p in result.points]
    table = render_table(rows, ["start", "end", "currency", "cost", "lower", "upper"], args.format)
    if args.format == "csv":
        return table
    wape = "n/a" if result.backtest_wape is None else f"{result.backtest_wape:.2%}"
    return (f"{table}\n\ntotal {exact(result.total_cost)} {result.currency} "
            f"({result.confidence:.0%} interval {exact(result.total_lower)} to "
            f"{exact(result.total_upper)}); {result.metric}\n"
            f"model: {result.model}; history {result.history.start} to {result.history.end} "
            f"(exclusive)\nbacktest on the last {result.backtest_days} days of history: mean "
            f"absolute error {exact(result.backtest_mae)} per day, WAPE {wape}")


def _query_recommendations(args: argparse.Namespace, warehouse: Any) -> str:
    import asyncio

    from costflow.models import to_json

    recs = asyncio.run(_provider(args, warehouse).get_recommendations(
        args.category, states=tuple(args.state or ["active"])))
    if args.format == "json":
        return json.dumps(to_json(recs), indent=2)
    columns = ["provider", "category", "resource_id", "current_configuration",
               "recommended_configuration", "estimated_monthly_savings", "savings_currency",
               "description"]
    if args.format == "csv":
        columns = list(to_json(recs[0])) if recs else columns
    rows = [vars(r) for r in recs]
    return render_table(rows, columns, args.format)


def _query_resources(args: argparse.Namespace, warehouse: Any) -> str:
    import asyncio

    from costflow.models import to_json

    found = asyncio.run(_provider(args, warehouse).get_resources(
        args.resource_type, start_date=args.start, end_date=args.end, metric=args.metric,
        limit=args.limit))
    if args.format == "json":
        return json.dumps(to_json(found), indent=2)
    columns = ["resource_id", "resource_type", "provider", "service", "sub_account_id",
               "region_id", "currency", "cost", "rows"]
    return render_table([vars(r) for r in found], columns, args.format)


def _mcp(args: argparse.Namespace, extra: list[str]) -> int:
    from costflow.services.mcp_server import serve
    from costflow.warehouse import resolve_url

    if args.tenant:
        from costflow.config import load_config
        from costflow.services.mcp_http import tenant_of
        from costflow.sync.runner import SyncRequest, resolve_urls

        if args.transport == "http":
            raise ConfigError("--tenant is for stdio: over HTTP each request's bearer key "
                              "decides the tenant (drop --tenant).")
        if args.billing_account or args.sub_account:
            raise ConfigError("--tenant takes the tenant's accounts from the config: drop "
                              "--billing-account/--sub-account (or drop --tenant).")
        config = load_config(args.config)
        warehouse, _, _ = resolve_urls(config, SyncRequest(warehouse=args.warehouse))
        serve(warehouse, tenant_of(config, args.tenant), args.provider,
              tenant_config=config.tenant(args.tenant))
        return 0
    if args.transport == "http":
        from costflow.config import load_config
        from costflow.services.mcp_http import serve_http
        from costflow.sync.runner import SyncRequest, resolve_urls

        if args.billing_account or args.sub_account:
            raise ConfigError("over HTTP each request's bearer key decides the tenant: drop "
                              "--billing-account/--sub-account and create keys with "
                              "`costflow keys create --tenant T --name N`.")
        config = load_config(args.config)
        warehouse, metadata, _ = resolve_urls(config, SyncRequest(warehouse=args.warehouse,
                                                                  metadata=args.metadata))
        serve_http(config, warehouse, metadata, host=args.host, port=args.port,
                   provider_scope=args.provider, rate=args.rate, burst=args.burst,
                   audit_path=args.audit_log)
        return 0
    serve(resolve_url(args.warehouse), _tenant(args), args.provider)
    return 0


def _export(args: argparse.Namespace, extra: list[str]) -> int:
    from costflow.services.focus_export import export_dataset, export_focus
    from costflow.warehouse import connect, resolve_url

    warehouse = connect(resolve_url(args.warehouse))
    try:
        if args.out.endswith(".parquet"):
            rows = export_focus(warehouse, args.out, version=args.focus_version)
        else:  # a FOCUS dataset directory with its metadata (costflow.services.focus_export)
            written = export_dataset(warehouse, args.out, version=args.focus_version)
            rows = written["rows"]
            print(f"wrote {written['metadata']}: FOCUS {args.focus_version} dataset metadata")
    finally:
        warehouse.close()
    print(f"wrote {args.out}: FOCUS {args.focus_version}"
          + (f", {rows:,} rows" if isinstance(rows, int) else ""))
    if not args.validate:
        return 0
    from pathlib import Path

    from costflow.quality import focus_validator
    from costflow.services.focus_export import DATA_FILE

    data = Path(args.out) if args.out.endswith(".parquet") else Path(args.out) / DATA_FILE
    try:
        ok, lines = focus_validator.check_export(data, args.focus_version)
    except focus_validator.ValidatorUnavailable as exc:
        print(f"not validated: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0 if ok else 1


def _recommendations(args: argparse.Namespace, extra: list[str]) -> int:
    from costflow.services.recommendation_fetch import fetch_and_store
    from costflow.warehouse import resolve_url

    scope: dict[str, list[str]] = {}
    for item in args.scope:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ConfigError(f"--scope {item!r} is not KEY=VALUE (e.g. --scope region=us-east-1).")
        scope.setdefault(key.strip(), []).append(value.strip())
    done = fetch_and_store(args.provider, resolve_url(args.warehouse), scope)
    print(f"{done['recommendations']:,} {args.provider} recommendation(s) from "
          f"{', '.join(done['sources']) or 'no source'} replace the previous fetch "
          f"(run {done['run_id']}).")
    return 0


def _runs(args: argparse.Namespace, extra: list[str]) -> int:
    import os

    from costflow.services.runs import list_runs, render_run, render_runs, show_run
    from costflow.warehouse import connect, resolve_url

    warehouse = connect(resolve_url(args.warehouse))
    try:
        if args.runs == "list":
            staging = args.staging_dir or os.path.abspath(os.path.join(".costflow", "staging"))
            print(render_runs(list_runs(warehouse, limit=args.limit, status=args.status,
                                        staging_root=staging), args.format))
        else:
            print(render_run(show_run(warehouse, args.run_id), args.format))
    finally:
        warehouse.close()
    return 0


def _demo(args: argparse.Namespace, extra: list[str]) -> int:
    from costflow.demo import run_demo

    print(run_demo(rows=args.rows, out_dir=args.out, warehouse=args.warehouse,
                   provider=args.provider or "all"))
    return 0


def console() -> None:
    """The `costflow` command (and ``python -m costflow.cli``): `main`, then a prompt exit.

    Once an ingest has finished, the interpreter's own teardown (freeing the module state of
    Beam, great-expectations, pyarrow and DuckDB) takes another 1.1-1.3 s on this machine;
    every daily run and every sync child paid it. Here the process leaves as soon as what an
    exit must still do is done: threads it started have ended, exit handlers have run, logs
    and output are written. If the output cannot be written (a closed pipe), Python's own
    exit takes over and reports it as it always did. An uncaught exception (and
    ``SystemExit``, from ``--help`` or a usage error) leaves the ordinary way too.
    """
    code = main()
    try:
        _finish_before_exit()
    except OSError:
        sys.exit(code)
    os._exit(code)


def _finish_before_exit() -> None:
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()


if __name__ == "__main__":
    console()
