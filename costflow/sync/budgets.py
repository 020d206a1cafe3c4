"""The budget check a sync runs after its ingests (`costflow.services.budgets`).

Why this module exists: budgets are checked "after every sync" so an alert follows the data
that caused it, without a second scheduled job. The check never changes the sync's outcome: a
budget that cannot be evaluated (a bad scope, the warehouse busy) or an alert that cannot be
delivered is logged and shown in the summary, and the sync's exit status still says only how
the loads went. Only the tenants the sync selected are checked; a config without budgets
opens nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from costflow.sync.after_loads import run_after_loads

if TYPE_CHECKING:
    from costflow.config import CostflowConfig
    from costflow.metadata import MetadataStore
    from costflow.services.budgets import BudgetCheck

LOG = logging.getLogger("costflow.sync")


def check_after_sync(config: CostflowConfig, tenants: tuple[str, ...], warehouse: str,
                     store: MetadataStore, secrets: str) -> tuple[BudgetCheck | None, str | None]:
    """(the check, None), (None, None) when no selected tenant has budgets, or (None, the
    error) when the check could not run."""
    chosen = [t for t in config.tenants if (not tenants or t.id in tenants) and t.budgets]
    if not chosen:
        return None, None
    from costflow.services.budgets import check_budgets

    check, error = run_after_loads(
        "budget check", warehouse,
        lambda wh: check_budgets(wh, chosen, store=store, secrets_url=secrets), reader=True)
    if check is None:
        return None, error
    for delivery in check.deliveries:
        LOG.info("budget alert %s", delivery.describe())
    return check, None
