"""The re-allocation a sync runs after its ingests (`costflow.allocation.refresh`).

Why this module exists: a sync's loads may restate months whose cluster costs were split onto
namespaces; the split must follow the bill without a second job. Its children ingest with
``--no-allocate`` (two children re-allocating the same cluster at once would only repeat each
other's work), and once they are done, still under the sync's lock, this re-runs every
allocation the committed loads made stale, or lists them when costflow.yaml says
``allocation: {after_ingest: false}``. Like the budget check it never changes the sync's exit
status, which says how the loads went: a period that could not be re-allocated is logged and
shown in the summary with the command that re-splits it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from costflow.sync.after_loads import run_after_loads

if TYPE_CHECKING:
    from costflow.allocation.refresh import Refresh
    from costflow.config import CostflowConfig

LOG = logging.getLogger("costflow.sync")


def reallocate_after_sync(config: CostflowConfig, warehouse: str, run_ids: Sequence[str]
                          ) -> tuple[Refresh | None, str | None]:
    """(what was re-allocated or found stale, None), (None, None) when no load committed, or
    (None, the error) when the step could not run."""
    if not run_ids:
        return None, None
    from costflow.allocation.refresh import refresh

    done, error = run_after_loads(
        "re-allocation", warehouse,
        lambda wh: refresh(wh, run_ids, config.allocation.after_ingest))
    if done is None:
        return None, error
    level = logging.WARNING if done.failed or (done.stale and not done.enabled) else logging.INFO
    for line in done.lines():
        LOG.log(level, "%s", line)
    return done, None
