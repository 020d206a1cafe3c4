"""Readers of usage reports that carry no cost: the basis on which `costflow.allocation` splits
cloud-bill charges onto the workloads that used them.

Why not a provider folder: a provider's formats become rows of ``cost_line_items`` and are
reconciled against the source's money; usage reports (OpenShift's koku-metrics-operator
payloads) hold CPU, memory and storage seconds only and go to the ``k8s_usage`` table.
`USAGE_SOURCES` lists them once; ``costflow ingest --provider <name>`` routes them to
``costflow allocate --usage``.
"""

from __future__ import annotations

USAGE_SOURCES: tuple[str, ...] = ("openshift",)

__all__ = ["USAGE_SOURCES"]
