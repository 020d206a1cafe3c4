"""Keeping the split right after the bill changes: re-allocation after an ingest or a sync.

Why this module exists: an allocation names its origin charges by lineage (x_RunId,
x_SourceUri, x_SourceRowNumber). Re-ingesting a slice (a restated month) deletes its rows and
inserts them again under a new x_RunId, so the split rows of its charges name rows that are
gone. `focus_v1_3` hides such split rows (it never counts a charge twice), which leaves the
restated charges unsplit: right totals, but the namespaces' costs silently vanish. After a
successful ingest (`costflow ingest`) and after a sync, `refresh` finds the allocations the
load made stale and runs `costflow allocate` again for each, from the usage already stored in
k8s_usage. An allocation period (cluster, [from, to) of the allocate run) is stale when

* any of its split rows names an origin charge that is no longer in cost_line_items, or
* a slice this load committed has charges starting inside the period (new charges of the
  period may be the cluster's nodes': a restated month, a second account's bill).

Usage loaded before its bill is allocated too: days of a cluster's stored usage that no
allocation covers, inside the load's charge periods, are allocated for the first time when the
load has charges of the cluster's nodes or volumes (the same exact-or-suffix match as
`costflow.allocation.run`), one period per run of consecutive such days. (A cluster whose nodes
are not on the loaded bill is left alone, so an unrelated load costs a few queries.)

Each stale period is re-allocated with the cluster tags its shared rows recorded
(`costflow.allocation.shared`). A period that cannot be re-allocated (its usage was removed, the
split does not conserve) keeps its previous split, which `focus_v1_3` hides where its origin is
gone, and the run output says so. Turned off (``costflow ingest --no-allocate``, or
``allocation: {after_ingest: false}`` in costflow.yaml for sync), nothing is re-run and the
output lists the stale periods and the command that re-splits each. BigQuery warehouses store
no allocation in this version: the step says it is skipped and never fails the ingest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from costflow.allocation.run import AllocationResult, allocate, resource_key
from costflow.allocation.shared import SHARED_METHOD, tags_of
from costflow.errors import CostflowError
from costflow.schemas.operational import COST_ALLOCATIONS
from costflow.schemas.render import DATASET, ORIGIN_KEY

_SPLIT = f"{DATASET}.{COST_ALLOCATIONS.name}"
_LINES = f"{DATASET}.cost_line_items"


@dataclass(frozen=True)
class StalePeriod:
    """One allocate run's period whose split no longer matches the bill."""

    cluster: str
    start: date
    end: date
    split_rows: int
    orphaned_rows: int       # split rows whose origin charge is gone
    reloaded: bool           # a slice of this load has charges starting in the period
    has_usage: bool          # k8s_usage holds the cluster's usage of the period
    first: bool = False      # never allocated: usage was loaded before these charges

    @property
    def command(self) -> str:
        return f"costflow allocate --cluster {self.cluster} --from {self.start} --to {self.end}"

    def why(self) -> str:
        if self.first:
            return ("its usage was loaded before these charges of its nodes and was never "
                    "allocated")
        parts = []
        if self.orphaned_rows:
            parts.append(f"{self.orphaned_rows:,} of its {self.split_rows:,} split row(s) name "
                         "charges that were replaced")
        if self.reloaded:
            parts.append("charges of the period were (re)loaded")
        return " and ".join(parts)


@dataclass
class Refresh:
    """What the post-ingest step did (``enabled``) or found (switched off)."""

    enabled: bool
    skipped: str | None = None
    stale: list[StalePeriod] = field(default_factory=list)
    done: list[AllocationResult] = field(default_factory=list)
    failed: list[tuple[StalePeriod, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when a stale period could not be re-allocated."""
        return not self.failed

    def lines(self) -> list[str]:
        """The run output's lines (none when no allocation was touched)."""
        if self.skipped:
            return [f"allocation: skipped: {self.skipped}"]
        if not self.enabled:
            return [f"allocation: {'not allocated' if p.first else 'stale'} (re-allocation is "
                    f"off): cluster {p.cluster} [{p.start}, {p.end}): {p.why()}; focus_v1_3 "
                    f"shows those charges unsplit until `{p.command}`" for p in self.stale]
        out = []
        first = {(p.cluster, p.start, p.end) for p in self.stale if p.first}
        for a in self.done:
            what = ("allocated cluster {} [{}, {}) for the first time (its usage was loaded "
                    "before these charges)" if (a.cluster, a.start, a.end) in first else
                    "re-allocated cluster {} [{}, {}) after the bill changed")
            out.append(f"allocation: {what.format(a.cluster, a.start, a.end)}: "
                       f"{a.charges_split:,} charge(s) split into {a.rows_written:,} row(s), "
                       f"each conserved exactly (run {a.run_id}).")
        for p, error in self.failed:
            out.append(f"allocation: NOT re-allocated: cluster {p.cluster} [{p.start}, "
                       f"{p.end}) ({p.why()}): {error} focus_v1_3 shows its replaced charges "
                       f"unsplit; fix and run `{p.command}`.")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled, "skipped": self.skipped,
            "stale": [{"cluster": p.cluster, "from": p.start.isoformat(),
                       "to": p.end.isoformat(), "split_rows": p.split_rows,
                       "orphaned_rows": p.orphaned_rows, "reloaded": p.reloaded,
                       "first_allocation": p.first, "command": p.command}
                      for p in self.stale],
            "reallocated": [{"cluster": a.cluster, "from": a.start.isoformat(),
                             "to": a.end.isoformat(), "run_id": a.run_id,
                             "charges_split": a.charges_split, "rows_written": a.rows_written,
                             "shared_charges": a.shared_charges,
                             "cluster_tags": a.cluster_tags} for a in self.done],
            "failed": [{"cluster": p.cluster, "from": p.start.isoformat(),
                        "to": p.end.isoformat(), "error": e} for p, e in self.failed]}


def stale_periods(warehouse: Any, run_ids: Sequence[str]) -> list[StalePeriod]:
    """The allocation periods the load ``run_ids`` made stale (see the module docstring)."""
    key = ", ".join(ORIGIN_KEY)
    found = warehouse.query(
        f"WITH o AS (SELECT DISTINCT {key} FROM {_LINES} WHERE x_RunId IN "
        f"(SELECT DISTINCT x_RunId FROM {_SPLIT})), "
        f"r AS (SELECT MIN(ChargePeriodStart) AS first, MAX(ChargePeriodStart) AS last "
        f"FROM {_LINES} WHERE x_RunId IN UNNEST(@runs) "
        f"GROUP BY x_SourceProvider, BillingAccountId, BillingPeriodStart), "
        f"p AS (SELECT a.x_AllocationCluster AS cluster, a.x_AllocationPeriodStart AS s, "
        f"a.x_AllocationPeriodEnd AS e, COUNT(*) AS split_rows, "
        f"COUNTIF(o.x_RunId IS NULL) AS orphaned FROM {_SPLIT} AS a LEFT JOIN o USING ({key}) "
        f"GROUP BY 1, 2, 3) "
        f"SELECT p.cluster, p.s, p.e, p.split_rows, p.orphaned, "
        f"EXISTS (SELECT 1 FROM r WHERE r.first < p.e AND r.last >= p.s) AS reloaded, "
        f"EXISTS (SELECT 1 FROM {DATASET}.k8s_usage AS u WHERE u.cluster_id = p.cluster "
        f"AND u.interval_start >= p.s AND u.interval_start < p.e) AS has_usage "
        f"FROM p ORDER BY 1, 2, 3", {"runs": list(run_ids)}).to_pylist()
    return [StalePeriod(r["cluster"], _day(r["s"]), _day(r["e"]), int(r["split_rows"]),
                        int(r["orphaned"]), bool(r["reloaded"]), bool(r["has_usage"]))
            for r in found if r["orphaned"] or r["reloaded"]]


def unallocated_periods(warehouse: Any, run_ids: Sequence[str]) -> list[StalePeriod]:
    """Runs of days of stored usage no allocation covers, inside the load's charge periods,
    of clusters whose nodes or volumes have charges in the load (see the module docstring)."""
    if not run_ids:
        return []
    loaded = warehouse.query(
        f"SELECT MIN(ChargePeriodStart) AS first, MAX(ChargePeriodStart) AS last "
        f"FROM {_LINES} WHERE x_RunId IN UNNEST(@runs)", {"runs": list(run_ids)}).to_pylist()[0]
    if loaded["first"] is None:
        return []
    window = {"start": _at(_day(loaded["first"])),
              "end": _at(_day(loaded["last"]) + timedelta(days=1))}
    days = warehouse.query(
        f"SELECT DISTINCT cluster_id AS cluster, CAST(interval_start AS DATE) AS day "
        f"FROM {DATASET}.k8s_usage WHERE kind IN ('pod', 'storage') "
        f"AND interval_start >= @start AND interval_start < @end", window).to_pylist()
    if not days:
        return []
    covered = warehouse.query(
        f"SELECT DISTINCT x_AllocationCluster AS cluster, x_AllocationPeriodStart AS s, "
        f"x_AllocationPeriodEnd AS e FROM {_SPLIT} WHERE x_AllocationPeriodEnd > @start "
        f"AND x_AllocationPeriodStart < @end", window).to_pylist()
    open_days: dict[str, set[date]] = {}
    for row in days:
        if not any(c["cluster"] == row["cluster"] and _day(c["s"]) <= row["day"] < _day(c["e"])
                   for c in covered):
            open_days.setdefault(row["cluster"], set()).add(row["day"])
    if not open_days:
        return []
    members = warehouse.query(
        f"SELECT DISTINCT cluster_id AS cluster, COALESCE(resource_id, csi_volume_handle, "
        f"node, persistentvolume) AS rid FROM {DATASET}.k8s_usage WHERE kind IN ('pod', "
        f"'storage') AND cluster_id IN UNNEST(@clusters) AND interval_start >= @start "
        f"AND interval_start < @end", {**window, "clusters": sorted(open_days)}).to_pylist()
    ids = warehouse.query(
        f"SELECT DISTINCT ResourceId AS rid FROM {_LINES} WHERE x_RunId IN UNNEST(@runs) "
        f"AND ResourceId IS NOT NULL", {"runs": list(run_ids)}).column("rid").to_pylist()
    bill = set(ids) | {rid.rstrip("/").rsplit("/", 1)[-1] for rid in ids if "/" in rid}
    priced = {m["cluster"] for m in members if resource_key(m["rid"]) in bill}
    out = []
    for cluster in sorted(open_days.keys() & priced):
        for start, end in _runs(sorted(open_days[cluster])):
            out.append(StalePeriod(cluster, start, end, 0, 0, True, True, first=True))
    return out


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as [first, last + 1) periods."""
    out: list[tuple[date, date]] = []
    for day in days:
        if out and out[-1][1] == day:
            out[-1] = (out[-1][0], day + timedelta(days=1))
        else:
            out.append((day, day + timedelta(days=1)))
    return out


def refresh(warehouse: Any, run_ids: Sequence[str], enabled: bool = True) -> Refresh:
    """Re-allocate (``enabled``) or list the periods the load ``run_ids`` made stale.

    Never raises for an allocation problem: each period's failure is in ``failed``.
    """
    from costflow.warehouse.duckdb_engine import DuckDBWarehouse

    if not isinstance(warehouse, DuckDBWarehouse):
        return Refresh(enabled, skipped=f"{warehouse.url} is not a DuckDB warehouse; "
                                        "Kubernetes allocation is stored in DuckDB only in this "
                                        "version, so nothing was re-allocated.")
    out = Refresh(enabled, stale=stale_periods(warehouse, run_ids)
                  + unallocated_periods(warehouse, run_ids))
    if not enabled:
        return out
    for period in out.stale:
        if not period.has_usage:
            out.failed.append((period, "k8s_usage holds no usage of the cluster in the period "
                                       "(load its usage reports again)."))
            continue
        try:
            out.done.append(allocate(warehouse, period.cluster, period.start, period.end,
                                     cluster_tags=_tags_used(warehouse, period)))
        except CostflowError as err:
            out.failed.append((period, str(err)))
    return out


def _tags_used(warehouse: Any, period: StalePeriod) -> list:
    details = warehouse.query(
        f"SELECT ANY_VALUE(AllocatedMethodDetails) AS d FROM {_SPLIT} WHERE "
        f"x_AllocationCluster = @cluster AND x_AllocationPeriodStart = @start AND "
        f"x_AllocationPeriodEnd = @end AND AllocatedMethodId = @method "
        f"GROUP BY x_AllocationRunId",
        {"cluster": period.cluster, "start": _at(period.start), "end": _at(period.end),
         "method": SHARED_METHOD}).column("d").to_pylist()
    return tags_of(details)


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()
