"""az:// exports against Azurite: only the latest run per month counts, restatements replace."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from costflow.providers import CATALOG

ROOT = Path(__file__).resolve().parents[1]
AZURITE = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's documented development account (public, not a secret).
ACCOUNT = "devstoreaccount1"
KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
       "KBHBeksoGMGw==")
HEADER = ["BillingAccountId", "BillingAccountName", "BillingPeriodStartDate",
          "BillingPeriodEndDate", "BillingProfileId", "SubscriptionId", "SubscriptionName",
          "ResourceGroup", "ResourceLocation", "Date", "ConsumedService", "ResourceId",
          "MeterCategory", "MeterName", "Quantity", "EffectivePrice", "Cost", "UnitPrice",
          "PayGPrice", "BillingCurrency", "UnitOfMeasure", "ChargeType", "Frequency",
          "PricingModel", "Tags"]
SUB = "9ec51cfd-5ca7-4d76-8101-dd0a4abc5674"
EXPORT = "daily/ea-actual/20231001-20231031"


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory):
    if not AZURITE.exists():
        message = f"{AZURITE} is absent: `make test` installs Azurite with npm"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen([str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                             "--location", str(data), "--silent", "--skipApiVersionCheck",
                             "--loose"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its own group: node runs as a child
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("Azurite did not start within 30 s")
        yield (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
               f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _csv(days: dict[int, str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for day, cost in sorted(days.items()):
        writer.writerow(["8611537", "Trey Research", "10/01/2023", "10/31/2023", "8611537", SUB,
                         "Trey IT", "rg-app", "eastus", f"10/{day:02d}/2023",
                         "Microsoft.Compute", f"/subscriptions/{SUB}/resourceGroups/rg-app/"
                         "providers/Microsoft.Compute/virtualMachines/vm1", "Virtual Machines",
                         "D2s v3", "24", "0.1", cost, "0.1", "0.11", "USD", "1 Hour", "Usage",
                         "UsageBased", "OnDemand", '"env": "prod"'])
    return out.getvalue().encode()


def _upload(connection: str, stamp: str, run_id: str, submitted: str,
            days: dict[int, str]) -> None:
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(connection).get_container_client(
        "costexports")
    if not container.exists():
        container.create_container()
    folder = f"{EXPORT}/{stamp}/{run_id}"
    body = _csv(days)
    container.upload_blob(f"{folder}/part_0_0001.csv", body, overwrite=True)
    manifest = {"exportConfig": {"exportName": "ea-actual", "type": "ActualCost",
                                 "resourceId": "/providers/Microsoft.Billing/billingAccounts/"
                                 "8611537/providers/Microsoft.CostManagement/exports/ea-actual"},
                "runInfo": {"runId": run_id, "submittedTime": submitted},
                "blobs": [{"blobName": f"{folder}/part_0_0001.csv", "byteCount": len(body)}]}
    container.upload_blob(f"{folder}/manifest.json", json.dumps(manifest), overwrite=True)


def _month(warehouse: Path) -> tuple[int, Decimal, int]:
    with duckdb.connect(str(warehouse), read_only=True) as db:
        rows, total, days = db.execute(
            "SELECT count(*), sum(BilledCost), count(DISTINCT ChargePeriodStart) "
            "FROM cost_analytics.cost_line_items WHERE x_SourceProvider = 'azure'").fetchone()
    return rows, Decimal(total), days


RUN_1 = "11111111-aaaa-4bbb-8ccc-000000000001"
RUN_2 = "22222222-aaaa-4bbb-8ccc-000000000002"
RUN_3 = "33333333-aaaa-4bbb-8ccc-000000000003"


def test_latest_run_per_month_replaces_the_month(azurite: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, ingest) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    warehouse = tmp_path / "w.duckdb"
    # Two runs of October: the second is the month-to-date snapshot that supersedes the first.
    _upload(azurite, "202310031200", RUN_1, "2023-10-03T12:00:00Z", {1: "2.40", 2: "2.40"})
    _upload(azurite, "202310041200", RUN_2, "2023-10-04T12:00:00Z",
            {1: "2.40", 2: "2.40", 3: "2.64"})
    plan = CATALOG.plan(["az://costexports/daily/"], "azure")
    assert [f.delivery_id for f in plan.files] == [RUN_2]
    assert any("1 older run(s) passed over" in n for n in plan.notes)
    report = ingest("az://costexports/daily/", provider="azure")
    assert report["status"] == "succeeded"
    [slice_] = report["slices"]
    assert (slice_["billing_account_id"], slice_["source_basis"]) == ("8611537", "7.44")
    assert slice_["reconciled"] is True
    assert _month(warehouse) == (3, Decimal("7.44"), 3)
    # A third run restates day 2 and adds day 4: the month is replaced, nothing is doubled.
    _upload(azurite, "202310051200", RUN_3, "2023-10-05T12:00:00Z",
            {1: "2.40", 2: "1.20", 3: "2.64", 4: "2.64"})
    report = ingest("az://costexports/daily/", provider="azure")
    assert report["status"] == "succeeded"
    assert report["slices"][0]["source_basis"] == "8.88"
    assert _month(warehouse) == (4, Decimal("8.88"), 4)
    assert [s["delivery_id"] for s in report["sources"]] == [RUN_3]


def test_manifest_order_beats_folder_names(azurite: str, monkeypatch: pytest.MonkeyPatch,
                                          ) -> None:
    """A re-run submitted later wins even when its folder timestamp sorts earlier."""
    from azure.storage.blob import BlobServiceClient

    from costflow.providers.azure.blob import latest_runs

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    _upload(azurite, "202310061200", "44444444-aaaa-4bbb-8ccc-000000000004",
            "2023-10-06T12:00:00Z", {1: "1"})
    _upload(azurite, "202310011200", "55555555-aaaa-4bbb-8ccc-000000000005",
            "2023-10-07T12:00:00Z", {1: "2"})
    client = BlobServiceClient.from_connection_string(azurite).get_container_client(
        "costexports")
    names = [b.name for b in client.list_blobs() if b.name.endswith(".csv")]
    kept, _ = latest_runs(client, names)
    assert kept == [f"{EXPORT}/202310011200/55555555-aaaa-4bbb-8ccc-000000000005/"
                    "part_0_0001.csv"]
