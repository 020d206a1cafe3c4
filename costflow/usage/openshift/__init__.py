"""OpenShift / Kubernetes usage reports (the koku-metrics-operator payload format).

A payload is a directory or a ``.tar.gz`` holding ``manifest.json`` (uuid, cluster_id, files,
date) and hourly CSV reports: pod usage, storage usage, node labels and namespace labels, as
project-koku documents them (`koku/masu/util/ocp/common.py`). Usage carries no cost: it is the
basis on which `costflow.allocation` splits node costs from the cloud bill. That is why this
folder declares no `Provider` (a provider's formats become cost rows of `cost_line_items`);
the reports go to the `k8s_usage` table instead.
"""

from __future__ import annotations

from costflow.usage.openshift.payload import Payload, open_payload
from costflow.usage.openshift.reports import read_payload

__all__ = ["Payload", "open_payload", "read_payload"]
