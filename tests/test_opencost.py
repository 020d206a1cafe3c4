"""OpenCost files: the real allocation answer, a generated month, the CSV export, bad inputs."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from costflow.errors import ConfigError, SourceError
from costflow.providers import CATALOG
from costflow.providers.opencost.samples import allocations as generated
from tests.conftest import normalize_file, require_shared

SAMPLE = "samples/opencost/allocation_compute_namespace.json"
PER_DAY = """
SELECT BillingAccountId AS cluster, CAST(ChargePeriodStart AS DATE) AS day,
       SUM(BilledCost) AS billed, COUNT(*) AS n
FROM cost_analytics.cost_line_items GROUP BY 1, 2 ORDER BY 1, 2
"""


def _reconciled(report: dict) -> list[tuple[str, str]]:
    assert report["status"] == "succeeded", report.get("error")
    assert report["slices"] and all(s["reconciled"] is True and s["difference"] == "0"
                                     for s in report["slices"])
    return [(s["billing_account_id"], s["billing_period_start"][:7]) for s in report["slices"]]


def _oracle(text: str) -> dict[tuple[str, date], Decimal]:
    """totalCost per (cluster, day) from the JSON text: each number read as Decimal from its
    own text, then as the shortest text of the double it denotes (what OpenCost computed)."""
    out: dict[tuple[str, date], Decimal] = {}
    for step in json.loads(text, parse_float=Decimal)["data"]:
        for allocation in step.values():
            key = (allocation["properties"]["cluster"],
                   date.fromisoformat(allocation["window"]["start"][:10]))
            shortest = Decimal(repr(float(allocation["totalCost"])))
            out[key] = out.get(key, Decimal(0)) + shortest
    return out


def test_the_generator_writes_the_real_answers_shape() -> None:
    real = json.loads(require_shared(SAMPLE).read_text())
    (step,) = real["data"]
    real_fields = {tuple(allocation) for allocation in step.values()}
    day = generated.day_allocations(date(2026, 10, 1))
    assert {tuple(allocation) for allocation in day.values()} == real_fields
    assert set(real) == {"code", "status", "data"} == set(generated.answer([day]))


def test_the_real_sample_and_a_generated_month_ingest_and_reconcile(ingest,
                                                                    tmp_path: Path) -> None:
    answer = generated.month_answer(date(2026, 10, 1))
    text = generated.answer_text(answer)  # 17 significant digits: 0.30414999999999998
    october = tmp_path / "october.json"
    october.write_text(text)
    oracle = _oracle(text)
    literals = [Decimal(t) for t in re.findall(r'"totalCost": ([0-9.e+-]+)', text)]
    assert len(literals) == 31 * 4
    # The text is not the shortest for most numbers, so reading it verbatim would differ.
    assert sum(literals) != sum(oracle.values())
    assert oracle == generated.truth(answer)
    report, found = ingest(require_shared(SAMPLE), october, provider="opencost", queries={
        "sample": "SELECT * FROM cost_analytics.cost_line_items "
                  "WHERE BillingAccountId = 'cluster-one' ORDER BY ResourceId",
        "day": PER_DAY.replace("GROUP BY", "WHERE BillingAccountId = 'prod-eks' GROUP BY"),
        "idle": """
        SELECT COUNT(*) AS n, MIN(x_LineItemType) AS kind, MIN(SubAccountId) AS sub,
               MIN(Tags) AS tags, MIN(ChargeDescription) AS said
        FROM cost_analytics.cost_line_items WHERE ResourceId = '__idle__'"""})
    assert sorted(_reconciled(report)) == [("cluster-one", "2023-01"), ("prod-eks", "2026-10")]
    # The generated month: every (cluster, day) equals the oracle from the JSON text.
    assert {(r["cluster"], r["day"]): r["billed"] for r in found["day"]} == oracle
    assert {r["n"] for r in found["day"]} == {4} and len(found["day"]) == 31
    slices = {s["billing_account_id"]: s for s in report["slices"]}
    assert Decimal(slices["prod-eks"]["billed_cost"]) == sum(oracle.values())
    (idle,) = found["idle"]
    assert (idle["n"], idle["kind"], idle["sub"]) == (31, "Idle", None)
    assert json.loads(idle["tags"]) == {"opencost:idle": "true"}
    assert idle["said"].startswith("Idle capacity of cluster prod-eks")
    # The real sample, column by column.
    rows = found["sample"]
    assert [(r["ResourceId"], r["BilledCost"]) for r in rows] == [
        ("kube-system", Decimal("0.425469")), ("opencost", Decimal("0.030644")),
        ("prometheus", Decimal("0"))]
    assert Decimal(slices["cluster-one"]["billed_cost"]) == Decimal("0.456113")
    pod = rows[1]
    assert (pod["BillingAccountId"], pod["SubAccountId"], pod["SubAccountType"]) == (
        "cluster-one", "opencost", "Kubernetes Namespace")
    assert (pod["ChargePeriodStart"].isoformat(), pod["ChargePeriodEnd"].isoformat()) == (
        "2023-01-18T11:38:45+00:00", "2023-01-20T11:38:45+00:00")
    assert pod["BillingPeriodStart"].isoformat() == "2023-01-01T00:00:00+00:00"
    assert (pod["EffectiveCost"], pod["ListCost"], pod["ContractedCost"]) == (
        Decimal("0.030644"),) * 3
    assert (pod["BillingCurrency"], pod["ServiceName"], pod["ServiceCategory"],
            pod["ServiceSubcategory"], pod["x_LineItemType"]) == (
        "USD", "Kubernetes", "Compute", "Containers", "Allocation")
    assert {pod[c] for c in ("ProviderName", "PublisherName", "InvoiceIssuerName",
                             "ServiceProviderName", "HostProviderName")} == {"Kubernetes"}
    assert json.loads(pod["Tags"]) == {
        "opencost:node": "ip-192-168-20-42.ap-southeast-2.compute.internal",
        "opencost:controllerKind": "deployment", "opencost:controller": "opencost",
        "opencost:pod": "opencost-75dc7dcc49-xdx5t", "opencost:providerID": "i-064548f89b9d35c11"}
    metrics = json.loads(pod["x_ProviderMetrics"])
    assert (metrics["cpuCost"], metrics["ramCost"], metrics["cpuEfficiency"],
            metrics["ramByteHours"]) == ("0.01817", "0.012474", "0.091055", "5277197583.375299")
    assert json.loads(pod["x_DataQualityFlags"]) == [
        "ListCost:from_BilledCost", "ContractedCost:from_BilledCost",
        "BillingCurrency:default_USD"]
    assert any("carry no currency" in w and "USD" in w for w in report["warnings"])


CSV_HEADER = ("Date,Namespace,ControllerKind,ControllerName,Pod,Container,CPUCoreUsageAverage,"
              "CPUCoreRequestAverage,RAMBytesUsageAverage,RAMBytesRequestAverage,"
              "NetworkReceiveBytes,NetworkTransferBytes,GPUs,PVBytes,CPUCost,RAMCost,"
              "NetworkCost,PVCost,GPUCost,TotalCost")
# As OpenCost's exporter writes them: FormatFloat(f, 'f', -1, 64), one row per container per day.
CSV_ROWS = [
    "2026-11-01,checkout,deployment,cart,cart-7d9f8b6c5-x2x4q,cart,0.0123,0.25,81002496,"
    "268435456,104857.6,52428.8,0,0,0.18966600000000001,0.0272928,0,0,0,0.2169588",
    "2026-11-01,search,statefulset,es,es-0,elasticsearch,1.2,2,4294967296,8589934592,"
    "0,0,0,53687091200,1.517328,0.8135040000000001,0,0.0657,0,2.396532",
    "2026-11-02,checkout,deployment,cart,cart-7d9f8b6c5-x2x4q,cart,0.0131,0.25,80002496,"
    "268435456,0,0,0,0,0.189666,0.0272928,0,0,0,0.2169588",
    "2026-11-02,__idle__,,,,,0,0,0,0,0,0,0,0,0.30415,0.1,0,0,0,0.40415",
]


def test_the_csv_export_ingests_with_labels_and_the_default_cluster(ingest,
                                                                    tmp_path: Path) -> None:
    with_json = tmp_path / "export-labels.csv"
    with_json.write_text("\n".join([f"{CSV_HEADER},Labels", *(
        row + ',"{""app"":""cart"",""team"":""web""}"' for row in CSV_ROWS[:2])]) + "\n")
    with_columns = tmp_path / "export-label-columns.csv"
    with_columns.write_text("\n".join([f"{CSV_HEADER},Label_app,Label_team",
                                       *(row + ",cart,web" for row in CSV_ROWS[2:])]) + "\n")
    report, found = ingest(with_json, with_columns, provider="opencost",
                           extra=["--billing_currency=EUR"], queries={"day": PER_DAY, "rows": """
        SELECT ResourceId, Tags, SubAccountId, x_LineItemType, x_DataQualityFlags,
               ChargePeriodEnd, BillingCurrency FROM cost_analytics.cost_line_items
        ORDER BY ChargePeriodStart, ResourceId"""})
    assert _reconciled(report) == [("cluster-one", "2026-11")]
    assert [(r["cluster"], r["day"].isoformat(), r["billed"]) for r in found["day"]] == [
        ("cluster-one", "2026-11-01", Decimal("2.6134908")),
        ("cluster-one", "2026-11-02", Decimal("0.6211088"))]
    cart, es, idle, cart2 = found["rows"]  # "__idle__" sorts before "checkout"
    assert cart["ResourceId"] == "checkout/cart-7d9f8b6c5-x2x4q/cart"
    assert json.loads(cart["Tags"]) == {
        "app": "cart", "team": "web", "opencost:controllerKind": "deployment",
        "opencost:controller": "cart", "opencost:pod": "cart-7d9f8b6c5-x2x4q",
        "opencost:container": "cart"}
    assert json.loads(cart2["Tags"])["app"] == "cart"
    assert cart["ChargePeriodEnd"].isoformat() == "2026-11-02T00:00:00+00:00"
    assert json.loads(es["x_DataQualityFlags"]) == [
        "ListCost:from_BilledCost", "ContractedCost:from_BilledCost",
        "BillingCurrency:asserted_by_user", "BillingAccountId:opencost_default_cluster"]
    assert {r["BillingCurrency"] for r in found["rows"]} == {"EUR"}
    assert (idle["ResourceId"], idle["x_LineItemType"], idle["SubAccountId"]) == (
        "__idle__", "Idle", None)
    assert any("no Cluster column" in w and "cluster-one" in w for w in report["warnings"])


# --- bad inputs: clear errors naming the file and the field ----------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_malformed_answer_names_the_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.json", '{"code": 200, "data": [{"a": {"totalCost": 1,}}]}')
    with pytest.raises(SourceError, match=r"broken\.json.*not valid JSON.*line 1"):
        CATALOG.plan([str(path)], "opencost")


@pytest.mark.parametrize(("body", "field"), [
    ('{"code": 500, "message": "prometheus unreachable"}', "code 500: prometheus unreachable"),
    ('{"code": 200, "data": {"a": 1}}', r"allocation data\[0\]\['a'\] is a JSON int"),
    ('{"code": 200, "data": "none"}', "field data is a JSON str"),
    ('{"code": 200, "data": [[1]]}', r"field data\[0\] is a JSON list"),
])
def test_answers_of_the_wrong_shape_are_refused_by_name(tmp_path: Path, body: str,
                                                         field: str) -> None:
    path = _write(tmp_path, "answer.json", body)
    with pytest.raises(SourceError, match=r"answer\.json") as caught:
        CATALOG.plan([str(path)], "opencost")
    assert re.search(field, str(caught.value)), str(caught.value)


def test_a_cost_that_is_not_a_number_is_dead_lettered_naming_the_field(tmp_path: Path) -> None:
    day = generated.day_allocations(date(2026, 10, 1), namespaces=("a", "b"), idle=False)
    day["b"]["totalCost"] = "n/a"
    day["a"]["ramCost"] = {"value": 1}
    path = _write(tmp_path, "day.json", json.dumps(generated.answer([day])))
    result = normalize_file(path, "opencost")
    assert result.rows.num_rows == 0
    reasons = {d["ErrorColumn"]: d["ErrorReason"] for d in result.dead_letters.to_pylist()}
    assert set(reasons) == {"totalCost", "ramCost"}
    assert "not a decimal number" in reasons["totalCost"]
    assert {d["x_SourceUri"] for d in result.dead_letters.to_pylist()} == {str(path)}


def test_a_csv_row_without_a_total_is_dead_lettered(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.csv", "\n".join([
        CSV_HEADER, CSV_ROWS[0], CSV_ROWS[1].rsplit(",", 1)[0] + ",abc",
        "2026-13-01" + CSV_ROWS[0][10:]]) + "\n")
    result = normalize_file(path, "opencost")
    assert result.rows.num_rows == 1
    assert [(d["x_SourceRowNumber"], d["ErrorColumn"]) for d in
            result.dead_letters.to_pylist()] == [(2, "TotalCost"), (3, "Date")]
    # The row without a readable date has no billing period: its own (unattributable) slice.
    assert sorted((k.billing_period_start is None, s.rows_dead_lettered, s.difference)
                  for k, s in result.slices.items()) == [(False, 1, 0), (True, 1, 0)]


def test_a_currency_that_is_not_a_code_is_refused() -> None:
    with pytest.raises(ConfigError, match="not an ISO 4217 code"):
        CATALOG.plan([str(require_shared(SAMPLE))], "opencost", billing_currency="dollars")


def test_a_directory_of_answers_with_a_stranger_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", json.dumps(generated.answer([generated.day_allocations(
        date(2026, 10, 1))])))
    _write(tmp_path, "b.json", '{"billing_account_id": "x"}\n')
    with pytest.raises(SourceError, match=r"b\.json.*beside OpenCost allocation answers"):
        CATALOG.plan([str(tmp_path)], "opencost")
    (tmp_path / "b.json").unlink()
    _write(tmp_path, "c.json", '{"code": 200, "data": [{}]}')
    for pattern in (tmp_path, tmp_path / "*.json"):
        plan = CATALOG.plan([str(pattern)], "opencost")
        assert [Path(f.uri).name for f in plan.files] == ["a.json"]
        assert [Path(u).name for u in plan.empty_files] == ["c.json"]
