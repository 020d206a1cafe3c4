"""GCP ResourceType from resource.global_name through mappings/gcp_resource_types.csv."""

from __future__ import annotations

import copy
import json

from costflow.providers.gcp.billing import RESOURCE_TYPES
from costflow.providers.gcp.samples import billing as gs
from costflow.providers.gcp.samples import bulk
from tests.gcp_rows import map_rows


def test_resource_kinds_map_and_an_unknown_kind_is_flagged_not_guessed() -> None:
    row = next(r for r in gs.fixture_rows() if (r.get("resource") or {}).get("global_name"))
    assert "/instances/" in row["resource"]["global_name"]
    bucket, unknown, none = (copy.deepcopy(row) for _ in range(3))
    bucket["resource"]["global_name"] = "//storage.googleapis.com/projects/_/buckets/logs-eu"
    unknown["resource"]["global_name"] = "//example.googleapis.com/projects/p/widgets/w1"
    none["resource"] = None
    cols = map_rows([row, bucket, unknown, none]).columns
    assert cols["ResourceType"].to_pylist() == ["Virtual Machine", "Storage Bucket", None, None]
    flags = [json.loads(f) if f else [] for f in cols["x_DataQualityFlags"].to_pylist()]
    assert ["ResourceType:unmapped" in f for f in flags] == [False, False, True, False]


def test_every_resource_of_the_bulk_generator_has_a_type(tmp_path) -> None:
    import pyarrow.parquet as pq

    path = bulk.write_parquet(tmp_path / "e.parquet", 2000).path
    resources = pq.read_table(path, columns=["resource"]).column("resource").to_pylist()
    names = {r["global_name"] for r in resources if r and r.get("global_name")}
    kinds = {n.split("/")[2] + "/" + n.split("/")[-2] for n in names}
    assert len(kinds) >= 4 and kinds <= set(RESOURCE_TYPES)
