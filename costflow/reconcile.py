"""Per-slice totals and their reconciliation: the proof that every cent arrived.

A slice is one provider's billing account for one billing period; it is the unit the warehouse
replaces. While batches are normalized, each one counts per slice the rows read, loaded and
dead-lettered and sums the source's invoice basis, the BilledCost loaded and the cost
dead-lettered. After staging, the warehouse recomputes the loaded sums from what it actually
holds; a slice commits only when source basis == loaded BilledCost + dead-lettered cost, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, order=True)
class SliceKey:
    provider: str
    billing_account_id: str | None   # None when a dead-lettered row had no readable account
    billing_period_start: datetime | None

    def __str__(self) -> str:
        period = self.billing_period_start.strftime("%Y-%m") if self.billing_period_start else "?"
        return f"{self.provider}/{self.billing_account_id or '?'}/{period}"

    @property
    def attributable(self) -> bool:
        return self.billing_account_id is not None and self.billing_period_start is not None


@dataclass
class SliceStats:
    rows_read: int = 0
    rows_loaded: int = 0
    rows_dead_lettered: int = 0
    source_basis: Decimal = ZERO
    billed_cost: Decimal = ZERO
    dead_lettered_cost: Decimal = ZERO
    rows_basis_unparseable: int = 0  # rows whose cost text is not a number (in dead letters)
    # The BillingCurrency of the slice's rows: what its sums are in (a run's totals are summed
    # per currency, never across; `costflow.pipelines.report`). Not reconciled: the sums are.
    currencies: frozenset[str] = frozenset()

    def merge(self, other: SliceStats) -> SliceStats:
        sums = {name: getattr(self, name) + getattr(other, name) for name in _SUMMED}
        return SliceStats(**sums, currencies=self.currencies | other.currencies)

    @property
    def difference(self) -> Decimal:
        """source basis - (loaded BilledCost + dead-lettered cost); zero when reconciled."""
        return self.source_basis - (self.billed_cost + self.dead_lettered_cost)


_SUMMED = tuple(f.name for f in fields(SliceStats) if f.name != "currencies")


def merge_all(parts: list[dict[SliceKey, SliceStats]]) -> dict[SliceKey, SliceStats]:
    out: dict[SliceKey, SliceStats] = {}
    for part in parts:
        for key, stats in part.items():
            out[key] = out[key].merge(stats) if key in out else stats
    return out


@dataclass(frozen=True)
class SliceCheck:
    """One slice's reconciliation: expected (from the source) next to what the warehouse holds."""

    key: SliceKey
    expected: SliceStats
    warehouse_rows: int
    warehouse_billed_cost: Decimal
    warehouse_dead_rows: int
    warehouse_dead_cost: Decimal

    @property
    def ok(self) -> bool:
        e = self.expected
        return (
            self.warehouse_rows == e.rows_loaded
            and self.warehouse_dead_rows == e.rows_dead_lettered
            and self.warehouse_billed_cost == e.billed_cost
            and self.warehouse_dead_cost == e.dead_lettered_cost
            and e.source_basis == self.warehouse_billed_cost + self.warehouse_dead_cost
        )

    def describe(self) -> str:
        e = self.expected
        return (
            f"slice {self.key}: source basis {e.source_basis} vs warehouse BilledCost "
            f"{self.warehouse_billed_cost} + dead-lettered {self.warehouse_dead_cost} "
            f"(difference {e.source_basis - self.warehouse_billed_cost - self.warehouse_dead_cost}"
            "); "
            f"rows loaded {self.warehouse_rows}/{e.rows_loaded}, "
            f"dead-lettered {self.warehouse_dead_rows}/{e.rows_dead_lettered}"
        )
