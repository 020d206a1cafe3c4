"""Sub-account names for bills that carry ids only: AWS Organizations (moto's server, a real
protocol peer) and CSV mappings, stored in the warehouse and shown by the FOCUS views without
ever repeating a cost row or making a name up from the id."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import boto3
import pytest
import requests

from costflow.cli import main
from costflow.errors import ConfigError, SourceError
from costflow.providers.aws import organizations
from costflow.services import account_names as names
from costflow.warehouse import connect
from tests.secret_peers import free_port
from tests.warehouse_rows import ACCOUNT, cost_row, expected_for, run_start, stage

moto_server = pytest.importorskip("moto.server")
MEMBERS = 23  # more than one ListAccounts page (moto pages by 20)


def _moto() -> tuple[object, str]:
    """moto's server on a free port, its state reset (moto keeps it per process)."""
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    return server, endpoint


@pytest.fixture
def organization(monkeypatch) -> dict[str, str]:
    """moto's server with an organization of MEMBERS accounts; {id: name} as created."""
    server, endpoint = _moto()
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(organizations.ENDPOINT_ENV, endpoint)
    try:
        client = boto3.client("organizations", region_name="us-east-1", endpoint_url=endpoint)
        client.create_organization(FeatureSet="ALL")
        for i in range(MEMBERS):
            client.create_account(Email=f"team{i}@example.com", AccountName=f"team-{i:02d}")
        created = {a["Id"]: a["Name"] for page in client.get_paginator("list_accounts")
                   .paginate() for a in page["Accounts"]}
        yield created
    finally:
        server.stop()


def test_organizations_lists_every_account_across_pages(organization):
    fetched = organizations.fetch_account_names()
    assert fetched == organization
    assert len(fetched) == MEMBERS + 1  # the members and the management account


@pytest.mark.parametrize(("code", "message"), [
    ("AWSOrganizationsNotInUseException", "not in an organization.*--from-csv"),
    ("AccessDeniedException", "access denied.*organizations:ListAccounts")])
def test_organizations_refusals_say_what_to_do(monkeypatch, code, message):
    """AWS's error answers (moto answers an empty list instead), replayed with botocore's
    Stubber: the error says what to do, and nothing is stored."""
    from botocore.stub import Stubber

    client = boto3.client("organizations", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    stub = Stubber(client)
    stub.add_client_error("list_accounts", service_error_code=code, http_status_code=400)
    monkeypatch.setattr(organizations, "_client", lambda credentials: client)
    with stub, pytest.raises(SourceError, match=message):
        organizations.fetch_account_names()


def _warehouse(tmp_path: Path, rows: list[dict]) -> str:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    wh = connect(url)
    try:
        wh.ensure_schema()
        wh.begin_run(run_start("run-1"))
        wh.commit_run(stage(tmp_path / "run-1", "run-1", rows), expected_for(rows),
                      {"run_id": "run-1"})
    finally:
        wh.close()
    return url


def _view(url: str) -> list[dict]:
    wh = connect(url)
    try:
        return wh.query("SELECT SubAccountId AS id, SubAccountName AS name, BilledCost AS cost "
                        "FROM cost_analytics.focus_v1_2 ORDER BY id, cost").to_pylist()
    finally:
        wh.close()


def test_the_views_show_stored_names_and_never_repeat_a_row(organization, tmp_path):
    """Names from Organizations and from a mapping for the same account: the mapping's wins,
    every cost row appears once, and a row the bill named keeps the bill's name."""
    member, other = sorted(i for i, n in organization.items() if n.startswith("team-"))[:2]
    url = _warehouse(tmp_path, [
        cost_row("1.50", sub_account=member, row_number=1),
        cost_row("2.25", sub_account=member, row_number=2),
        cost_row("0.10", sub_account=other, row_number=3),
        cost_row("7.00", sub_account="555566667777", row_number=4),  # not in the directory
        cost_row("3.00", sub_account=other, row_number=5, SubAccountName="named-by-bill")])
    assert main(["account-names", "--provider", "aws", "--from-organizations",
                 "--warehouse", url]) == 0
    mapping = tmp_path / "names.csv"
    mapping.write_text(f"account_id,account_name\n{member},Payments (prod)\n")
    assert main(["account-names", "--provider", "aws", "--from-csv", str(mapping),
                 "--warehouse", url]) == 0

    rows = _view(url)
    assert [(r["id"], r["name"], r["cost"]) for r in rows] == sorted([
        (member, "Payments (prod)", Decimal("1.5")), (member, "Payments (prod)", Decimal("2.25")),
        (other, organization[other], Decimal("0.1")), (other, "named-by-bill", Decimal("3")),
        ("555566667777", None, Decimal("7"))], key=lambda r: (r[0], r[2]))
    # Loading again changes nothing; the totals are the bill's.
    assert main(["account-names", "--provider", "aws", "--from-organizations",
                 "--warehouse", url]) == 0
    assert _view(url) == rows
    assert sum(r["cost"] for r in rows) == Decimal("13.85")


def test_names_are_never_the_id_and_bad_mappings_name_row_and_column(tmp_path):
    url = _warehouse(tmp_path, [cost_row("1", sub_account=ACCOUNT)])
    wh = connect(url)
    try:
        with pytest.raises(ConfigError, match="its name is its id"):
            names.store_account_names(wh, "aws", {ACCOUNT: ACCOUNT}, names.MAPPING)
        with pytest.raises(ConfigError, match="unknown provider"):
            names.store_account_names(wh, "oracle", {ACCOUNT: "x"}, names.MAPPING)
        with pytest.raises(ConfigError, match="control characters"):
            names.store_account_names(wh, "aws", {ACCOUNT: "evil\x1b[2J"}, names.MAPPING)
    finally:
        wh.close()
    cases = {
        "id,name\n1,a\n": r"row 1: has no account_id, account_name column",
        "account_id,account_name\n111,\n": r"row 2, column 'account_name': is empty",
        "account_id,account_name\n111,a\n111,b\n": r"row 3, column 'account_name'.*again",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.csv"
        path.write_text(text)
        with pytest.raises(SourceError, match=message):
            names.read_mapping(path)
    assert _view(url)[0]["name"] is None
