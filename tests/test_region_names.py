"""RegionName from the region tables (mappings/aws_regions.csv, mappings/gcp_regions.csv)."""

from __future__ import annotations

import copy
import csv
import json

from costflow.providers.aws import cur
from costflow.providers.gcp import billing
from costflow.providers.gcp.samples import billing as gs
from costflow.providers.gcp.samples import world
from costflow.transforms.arrow_ops import map_values
from tests.conftest import require_shared
from tests.gcp_rows import map_rows


def test_aws_table_agrees_with_the_locations_the_real_cur_writes(cur_sample) -> None:
    # Every (region code, product/location) pair the real sample carries is in the table, so a
    # row without product/location gets the name AWS itself writes on its siblings.
    with cur_sample.open(encoding="utf-8", newline="") as f:
        pairs = {(r["product/region"], r["product/location"]) for r in csv.DictReader(f)
                 if r["product/region"] and r["product/location"]}
    assert pairs and {code: cur.REGION_NAMES.get(code) for code, _ in pairs} == dict(pairs)


def test_aws_rows_without_a_location_are_named_from_the_table(tmp_path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    from costflow.cli import main

    monkeypatch.chdir(tmp_path)
    warehouse = f"duckdb:///{tmp_path}/w.duckdb"
    source = str(require_shared("samples/aws/cur_legacy_anonymous.csv"))
    assert main(["-q", "ingest", "--source", source, "--warehouse", warehouse]) == 0
    assert main(["-q", "export", "--out", str(tmp_path / "f.parquet"),
                 "--warehouse", warehouse]) == 0
    rows = pq.read_table(tmp_path / "f.parquet", columns=["RegionId", "RegionName"]).to_pylist()
    with_id = [r for r in rows if r["RegionId"]]
    assert len(with_id) > 1000
    assert all(r["RegionName"] for r in with_id)
    # us-east-1 rows (227 of them blank in product/location) carry AWS's own spelling.
    assert {r["RegionName"] for r in with_id if r["RegionId"] == "us-east-1"} == {
        "US East (N. Virginia)"}


def test_gcp_regions_of_the_generators_are_named() -> None:
    regions = {loc[2] for loc in world.LOCATIONS.values() if loc[2]}
    fixture = {r["location"]["region"] for r in gs.fixture_rows()
               if (r.get("location") or {}).get("region")}
    assert regions and fixture and (regions | fixture) <= set(billing.REGION_NAMES)
    assert billing.REGION_NAMES["us-central1"] == "Iowa"



def test_gcp_region_name_is_the_display_name_and_an_unknown_id_is_flagged() -> None:
    row = next(r for r in gs.fixture_rows()
               if (r.get("location") or {}).get("region") == "us-central1")
    new = copy.deepcopy(row)
    new["location"]["region"] = "mars-north1"
    cols = map_rows([row, new]).columns
    assert cols["RegionId"].to_pylist() == ["us-central1", "mars-north1"]
    assert cols["RegionName"].to_pylist() == ["Iowa", "mars-north1"]
    flags = [json.loads(f) if f else [] for f in cols["x_DataQualityFlags"].to_pylist()]
    assert "RegionName:unmapped" not in flags[0] and "RegionName:unmapped" in flags[1]
    assert map_values(cols["RegionId"], billing.REGION_NAMES).null_count == 1
