"""The ``allocation:`` settings of costflow.yaml: what a sync does about Kubernetes allocations.

Why this module exists: re-ingesting a restated month replaces its charges, which makes the
split of a cluster's costs onto namespaces (`costflow allocate`) stale. A sync re-runs the
allocations its loads made stale (`costflow.allocation.refresh`) unless this says not to::

    allocation:
      after_ingest: false   # list the stale allocations instead of re-running them

(`costflow ingest` has the flag ``--no-allocate`` for the same.)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AllocationSettings(BaseModel):
    """How a sync keeps Kubernetes allocations in step with the bill."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    after_ingest: bool = True
