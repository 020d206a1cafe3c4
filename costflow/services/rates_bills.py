"""Exchange rates the bills themselves carry, copied into the exchange_rates table.

GCP states ``currency_conversion_rate`` (USD -> billing currency) and Azure
``ExchangeRatePricingToBilling`` (pricing -> billing currency) on each row; the normalizers keep
it exact as ``x_PricingToBillingRate`` next to ``PricingCurrency`` and ``BillingCurrency``.
AWS's CUR carries no rate. One rate per charge day, provider and pair becomes a row with source
``bill:<provider>``. A day whose rows state different rates for the same pair is not loaded
(which of them would apply is not guessed); it is returned as a conflict for the caller to report.

    loaded, conflicts = load_bill_rates(warehouse)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from costflow.services.rates import Rate, store_rates
from costflow.services.tenancy import ALL_PROVIDERS, check_provider
from costflow.warehouse import sqlfiles
from costflow.warehouse.base import Warehouse


@dataclass(frozen=True)
class BillRateConflict:
    """A day on which one provider's rows state several rates for one pair."""

    day: date
    provider: str
    from_currency: str
    to_currency: str
    rates: int


def load_bill_rates(warehouse: Warehouse, provider: str = ALL_PROVIDERS,
                    ) -> tuple[dict[str, int], list[BillRateConflict]]:
    """Store every unambiguous day's bill rate; returns (rows per source, conflicts)."""
    warehouse.ensure_schema()
    sql = sqlfiles.load("queries/bill_rates.sql")[0].bigquery()
    table = warehouse.query(sql, {"provider": check_provider(provider)})
    per_source: dict[str, list[Rate]] = {}
    conflicts: list[BillRateConflict] = []
    for row in table.to_pylist():
        if row["rates"] != 1:
            conflicts.append(BillRateConflict(row["day"], row["provider"], row["from_currency"],
                                              row["to_currency"], row["rates"]))
            continue
        per_source.setdefault(f"bill:{row['provider']}", []).append(
            Rate(row["day"], row["from_currency"], row["to_currency"], row["rate"]))
    loaded = {source: store_rates(warehouse, rates, source)
              for source, rates in sorted(per_source.items())}
    return loaded, conflicts
