"""One rule for the steps a sync runs once after its loads: they never fail the sync.

The budget check (`costflow.sync.budgets`) and the re-allocation (`costflow.sync.allocation`)
each open the warehouse, do their work and close it. The sync's exit status says how the
loads went, so a step that cannot run (a refused warehouse, a bug) is logged and handed back
as its error text, for the summary, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from costflow.errors import CostflowError

if TYPE_CHECKING:
    from costflow.warehouse.base import Warehouse

LOG = logging.getLogger("costflow.sync")
T = TypeVar("T")


def run_after_loads(what: str, warehouse: str, work: Callable[[Warehouse], T], *,
                    reader: bool = False) -> tuple[T | None, str | None]:
    """``(work(warehouse), None)``, or ``(None, why it did not run)``; ``what`` names the step
    in the log ("budget check", "re-allocation")."""
    from costflow.warehouse import connect

    try:
        wh = connect(warehouse, reader=reader)
        try:
            return work(wh), None
        finally:
            wh.close()
    except CostflowError as err:
        LOG.warning("%s after the sync did not run: %s", what, err)
        return None, str(err)
    except Exception as err:  # a bug or an engine error must not turn loads into a crash
        LOG.warning("%s after the sync failed: %s: %s", what, type(err).__name__, err)
        return None, f"{type(err).__name__}: {err}"
