"""`costflow allocate`: load Kubernetes usage reports and split cluster node costs of the bill.

    costflow allocate --usage ./ocp-payload.tar.gz                   # load usage, split its days
    costflow allocate --cluster prod-eks --from 2026-10-01 --to 2026-11-01
    costflow allocate --cluster prod-eks --from 2026-10-01 --to 2026-11-01 \
        --cluster-tag aws:eks:cluster-name=prod-eks   # also split the cluster's tagged charges

``--usage`` loads an OpenShift usage payload (koku-metrics-operator: manifest.json and hourly
CSVs, a directory or .tar.gz) into k8s_usage, replacing the days it carries; without
``--cluster/--from/--to`` it then allocates the payload's cluster over the days it covers.
Allocation replaces the cluster's split of the charges starting in [from, to) in one
transaction, refused (exit 3) unless every charge's split sums exactly to it. ``--cluster-tag
KEY=VALUE`` (repeatable) names the tag that marks the cluster's resources in the bill: charges
carrying it that match no node or volume are split among namespaces as cluster-shared costs
(`costflow.allocation.shared`).

`after_ingest` is what `costflow ingest` runs once its load committed: the allocations the load
made stale are re-run (`costflow.allocation.refresh`), or, with ``--no-allocate``, listed.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta
from typing import Any


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; expected YYYY-MM-DD") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``costflow allocate``."""
    parser = sub.add_parser("allocate", help="Split cluster node and volume costs of the cloud "
                                             "bill onto Kubernetes workloads (FOCUS 1.3).",
                            description="Load Kubernetes usage reports and split cluster node "
                                        "and volume costs of the bill onto workloads.")
    parser.add_argument("--usage", action="append", default=[], metavar="PAYLOAD",
                        help="OpenShift usage payload (directory or .tar.gz with manifest.json) "
                             "to load first; repeat for more.")
    parser.add_argument("--cluster", help="Cluster id (the payload manifest's cluster_id).")
    parser.add_argument("--from", dest="start", type=_date, metavar="DATE",
                        help="Charges starting on or after this day (YYYY-MM-DD).")
    parser.add_argument("--to", dest="end", type=_date, metavar="DATE",
                        help="... and before this day (exclusive).")
    parser.add_argument("--cluster-tag", dest="cluster_tags", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="A tag marking the cluster's resources in the bill (e.g. "
                             "aws:eks:cluster-name=prod-eks, goog-k8s-cluster-name=prod, "
                             "aks-managed-cluster-name=prod-aks); charges carrying it that "
                             "match no node or volume are split among namespaces by usage. "
                             "Repeat for more (any one matches).")
    parser.add_argument("--warehouse")
    parser.add_argument("--format", choices=["table", "json"], default="table")


def run(args: argparse.Namespace) -> int:
    """Load usage, allocate; returns 0 (errors are raised as CostflowError)."""
    from costflow.allocation.run import allocate
    from costflow.allocation.shared import ClusterTag
    from costflow.allocation.usage import load_usage
    from costflow.errors import ConfigError
    from costflow.warehouse import connect, resolve_url

    explicit = (args.cluster, args.start, args.end)
    if any(explicit) and not all(explicit):
        raise ConfigError("give --cluster, --from and --to together (or --usage alone).")
    if not args.usage and not all(explicit):
        raise ConfigError("give --cluster, --from and --to, or --usage PAYLOAD.")
    tags = [ClusterTag.parse(t) for t in getattr(args, "cluster_tags", [])]
    warehouse = connect(resolve_url(args.warehouse))
    out: dict[str, Any] = {"usage": [], "allocations": []}
    try:
        todo = []
        for source in args.usage:
            loaded = load_usage(warehouse, source)
            out["usage"].append(loaded)
            if loaded.first_hour is not None and loaded.last_hour is not None:
                todo.append((loaded.cluster_id, loaded.first_hour.date(),
                             loaded.last_hour.date() + timedelta(days=1)))
        if all(explicit):
            todo = [explicit]
        for cluster, start, end in todo:
            out["allocations"].append(allocate(warehouse, cluster, start, end,
                                               cluster_tags=tags))
    finally:
        warehouse.close()
    print(_render(out, args.format))
    return 0


def ingest_openshift(args: argparse.Namespace) -> int:
    """``costflow ingest --provider openshift --source PAYLOAD``: the same as
    ``costflow allocate --usage PAYLOAD`` (the usage is loaded, then its days are allocated).

    For the ingest command's dispatch: usage reports carry no cost, so they do not go through
    the cost pipeline (and `openshift` declares no `Provider`).
    """
    allocate_args = argparse.Namespace(usage=list(args.source), cluster=None, start=None,
                                       end=None, warehouse=args.warehouse, cluster_tags=[],
                                       format="json" if getattr(args, "json", False) else "table")
    return run(allocate_args)


def after_ingest(report: dict[str, Any], enabled: bool) -> tuple[list[str], int]:
    """Re-allocate what the committed ingest ``report`` made stale (or, not ``enabled``, list
    it): the run output's lines, which the report also carries as ``allocation``, and the exit
    status: 0, or 3 when re-allocation was asked for (``enabled``) and a stale allocation could
    not be re-run or checked (the load stays committed). Listing never changes the status: a
    sync's children list only (the sync re-allocates), and their status says how the load went.
    """
    from costflow.allocation.refresh import refresh
    from costflow.errors import CostflowError
    from costflow.warehouse import connect

    try:
        warehouse = connect(report["warehouse"])
        try:
            done = refresh(warehouse, [report["run_id"]], enabled)
        finally:
            warehouse.close()
    except CostflowError as err:  # the warehouse busy or unreadable: the load is committed
        report["allocation"] = {"error": str(err)}
        return [f"allocation: not checked after the ingest: {err} The ingest itself was "
                "committed; run `costflow allocate` for the clusters of the period."], \
            3 if enabled else 0
    report["allocation"] = done.to_json()
    lines = done.lines()
    if not done.ok:
        lines.append("allocation: the ingest itself was committed; only the split above is "
                     "out of date (exit status 3).")
    return lines, 0 if done.ok else 3


def _render(out: dict[str, Any], fmt: str) -> str:
    from costflow.models import to_json

    if fmt == "json":
        return json.dumps({k: [to_json(v) for v in vs] for k, vs in out.items()}, indent=2)
    lines = []
    for u in out["usage"]:
        kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(u.rows.items()))
        lines.append(f"loaded usage of cluster {u.cluster_id} (payload {u.uuid}) from "
                     f"{u.source}: {kinds or 'no rows'}; hours {u.first_hour} to {u.last_hour}")
    for a in out["allocations"]:
        money = "; ".join(f"{c} allocated {a.allocated.get(c, 0)}, idle/unclaimed "
                          f"{a.idle.get(c, 0)}" for c in sorted(set(a.allocated) | set(a.idle)))
        lines.append(f"allocation {a.run_id}: cluster {a.cluster} [{a.start}, {a.end}): "
                     f"{a.charges_split:,} charge(s) split into {a.rows_written:,} row(s)"
                     + (f"; {money}" if money else "") + ". Every charge's split sums to it "
                     "exactly (checked at commit).")
        if a.idle_only_charges:
            lines.append(f"  {a.idle_only_charges:,} charge(s) had no usage in their period: "
                         "all idle (or unclaimed volume).")
        for n in a.unpriced_nodes:
            lines.append(f"  unpriced usage: node {n['node']} ({n['resource_id']}), "
                         f"{n['pod_hours']:,} pod-hour row(s): {n['reason']}; no cost invented.")
        for rid in a.matched_by_suffix:
            lines.append(f"  matched by id suffix (no exact ResourceId): {rid}")
        if a.cluster_tags:
            lines.append(f"  {a.shared_charges:,} cluster-shared charge(s) (tagged "
                         f"{' or '.join(a.cluster_tags)}, no node or volume) split among "
                         "namespaces by usage.")
    return "\n".join(lines)
