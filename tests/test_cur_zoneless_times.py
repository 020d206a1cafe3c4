"""Legacy CUR deliveries whose usage times carry no zone: read as UTC (the CUR's documented zone),
flagged, reconciled; a zone-less value that is not ISO 8601 is still refused."""

from __future__ import annotations

import csv
import json

from tests.conftest import require_shared

_STARTS, _ENDS = "lineItem/UsageStartDate", "lineItem/UsageEndDate"


def _rewrite(tmp_path, ambiguous_row: int | None = None):
    """The real sample with UsageStart/EndDate as some deliveries write them: `2023-11-01
    00:00:00`, no `T`, no milliseconds, no zone."""
    sample = require_shared("samples/aws/cur_legacy_anonymous.csv")
    with sample.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    starts, ends = header.index(_STARTS), header.index(_ENDS)
    for row in rows:
        for i in (starts, ends):
            assert row[i].endswith(".000Z") or row[i].endswith("Z"), row[i]
            row[i] = row[i].replace("T", " ").removesuffix("Z").removesuffix(".000")
    if ambiguous_row is not None:  # a US-style local time: no provider fixes its zone
        rows[ambiguous_row][starts] = "11/01/2023 12:00:00 AM"
    out = tmp_path / "cur_zoneless.csv"
    with out.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return out, rows, starts


_QUERIES = {
    "flags": "SELECT x_DataQualityFlags AS f, ChargePeriodStart AS s "
             "FROM cost_analytics.cost_line_items",
    "dead": "SELECT ErrorColumn AS col, ErrorReason AS reason FROM cost_analytics.dead_letters",
}


def test_zoneless_usage_times_load_every_row_reconcile_and_are_flagged(tmp_path, ingest):
    source, rows, starts = _rewrite(tmp_path)
    assert rows[0][starts] == "2023-11-01 00:00:00"
    report, got = ingest(source, provider="aws", queries=_QUERIES)
    assert report["status"] == "succeeded"
    [slice_] = report["slices"]
    assert (slice_["rows_read"], slice_["rows_loaded"], slice_["rows_dead_lettered"]) == (
        1281, 1281, 0)
    assert slice_["reconciled"] is True and slice_["difference"] == "0"
    assert got["dead"] == []
    flags = [set(json.loads(r["f"] or "[]")) for r in got["flags"]]
    assert len(flags) == 1281
    assert all({"ChargePeriodStart:zoneless_utc", "ChargePeriodEnd:zoneless_utc"} <= f
               for f in flags)
    # Read as UTC: the same instants as the zoned original.
    assert min(r["s"] for r in got["flags"]).isoformat() == "2023-11-01T00:00:00+00:00"


def test_an_ambiguous_local_time_is_still_refused(tmp_path, ingest):
    source, _rows, _ = _rewrite(tmp_path, ambiguous_row=5)
    report, got = ingest(source, provider="aws", queries=_QUERIES)
    [slice_] = report["slices"]
    assert (slice_["rows_loaded"], slice_["rows_dead_lettered"]) == (1280, 1)
    [dead] = got["dead"]
    assert dead["col"] == "lineItem/UsageStartDate" and "timestamp" in dead["reason"], dead
