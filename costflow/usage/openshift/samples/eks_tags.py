"""Mark a generated cluster's resources in a generated AWS CUR the way EKS does.

Why this module exists: the AWS sample generator (`costflow.providers.aws.samples.cur`) bills
instances, volumes, NAT gateways and load balancers but knows no cluster, so its resources
carry no cluster tag. A cluster on that bill (`costflow.usage.openshift.samples.cluster`) marks
its nodes and its cluster-level resources as AWS does: the AWS-generated cost allocation tag
``aws:eks:cluster-name`` (CUR column ``resourceTags/aws:eks:cluster-name``) and the Kubernetes
cloud provider's ``kubernetes.io/cluster/<name>=owned``. This rewrites the legacy CSV with those
columns added, values set only on the rows of the given resources, and returns how many rows
it tagged per resource (the test's truth).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

RESOURCE_COLUMN = "lineItem/ResourceId"


def eks_tags(cluster: str) -> dict[str, str]:
    """The tags EKS puts on a cluster's resources (key -> value)."""
    return {"aws:eks:cluster-name": cluster, f"kubernetes.io/cluster/{cluster}": "owned"}


def tag_cluster_resources(cur: Path, cluster: str, resource_ids: Iterable[str]) -> Counter:
    """Add the EKS tag columns to the CSV ``cur`` (in place) on the rows of ``resource_ids``."""
    wanted = set(resource_ids)
    tags = eks_tags(cluster)
    with cur.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    where = header.index(RESOURCE_COLUMN)
    tagged: Counter = Counter()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*header, *(f"resourceTags/{k}" for k in tags)])
    for row in body:
        hit = row[where] in wanted
        if hit:
            tagged[row[where]] += 1
        writer.writerow([*row, *((v if hit else "") for v in tags.values())])
    cur.write_text(out.getvalue(), encoding="utf-8")
    return tagged
