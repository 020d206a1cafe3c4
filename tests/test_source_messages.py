"""Every bad input ends in one paragraph naming file, row and column and what to do.

Before, each of these was a traceback or a wrong or misleading message: a Parquet cost column
holding a list or a record; an unreachable ``aws-ce://`` endpoint; an ``azure-query://``
credential Azure refuses; a valid 10 MB CSV field ("row 1 ... straddling object"); NaN on JSON
line 11 ("row 1 ... after record 0"); Arabic-Indic or full-width digits and ``0e400`` ("too
large"); UTF-16 and gzip files named ``.csv`` (both "binary NUL bytes"). Charge dates far outside
the billing period and a two-month billing period were loaded without a word: they are now
flagged on the row and warned.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from costflow.cli import main
from costflow.errors import ConfigError, SourceError
from costflow.providers import CATALOG
from costflow.providers.aws import cost_explorer_api
from costflow.providers.aws.cur_shapes import athena_name
from costflow.providers.gcp.samples import billing as gs
from costflow.sources import files
from costflow.transforms.arrow_ops import parse_decimal
from tests.conftest import normalize_file

COST = "lineItem/UnblendedCost"


def _cur_rows(cur_sample: Path) -> tuple[list[str], list[list[str]]]:
    with cur_sample.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue()


def _one_paragraph(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message


# --- C: tracebacks become one paragraph --------------------------------------------------------


@pytest.mark.needs_shared
@pytest.mark.parametrize("shape", ["list", "struct"])
def test_a_parquet_cost_column_holding_a_list_or_record_is_named(tmp_path, cur_sample, shape):
    header, _ = _cur_rows(cur_sample)
    table = pacsv.read_csv(cur_sample, convert_options=pacsv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string())))
    table = table.rename_columns([athena_name(n) for n in table.column_names])
    i = table.column_names.index("line_item_unblended_cost")
    cost = pc.cast(table.column(i), pa.float64()).combine_chunks()
    nested = (pa.ListArray.from_arrays(pa.array(range(len(cost) + 1), pa.int32()), cost)
              if shape == "list" else pa.StructArray.from_arrays([cost], ["amount"]))
    pq.write_table(table.set_column(i, "line_item_unblended_cost", nested),
                   tmp_path / "cur.parquet")
    with pytest.raises(SourceError) as err:
        normalize_file(tmp_path / "cur.parquet")
    message = str(err.value)
    _one_paragraph(message)
    assert "column 'line_item_unblended_cost'" in message
    assert ("a list per row" if shape == "list" else "a record (struct) per row") in message
    assert "one value per row" in message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CE_URI = "aws-ce://123456789012?start=2026-10-01&end=2026-11-01"


def test_an_unreachable_cost_explorer_endpoint_is_one_paragraph(monkeypatch, tmp_path, capsys):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv(cost_explorer_api.ENDPOINT_ENV, endpoint)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_MAX_ATTEMPTS", "1")):
        monkeypatch.setenv(name, value)
    with pytest.raises(SourceError) as err:
        CATALOG.plan([CE_URI])
    message = str(err.value)
    _one_paragraph(message)
    assert "could not be reached" in message and endpoint in message
    assert cost_explorer_api.ENDPOINT_ENV in message
    code = main(["ingest", "--source", "aws-ce://123456789012", "--start", "2026-10-01",
                 "--end", "2026-11-01", f"--warehouse=duckdb:///{tmp_path}/w.duckdb",
                 f"--report_dir={tmp_path}/runs", f"--staging_dir={tmp_path}/staging"])
    err_text = capsys.readouterr().err
    assert code == 2 and "could not be reached" in err_text and "Traceback" not in err_text


def test_an_azure_query_credential_failure_says_what_to_do():
    from azure.core.exceptions import ClientAuthenticationError
    from azure.mgmt.costmanagement import CostManagementClient

    from costflow.providers.azure.query_api import plan_query
    from costflow.sources.contract import PlanRequest

    class Refused:
        """What DefaultAzureCredential raises when the secret is wrong or nothing signs in."""

        def get_token(self, *scopes, **kwargs):
            raise ClientAuthenticationError("AADSTS7000215: Invalid client secret provided.")

        get_token_info = get_token

    uri = ("azure-query://subscriptions/00000000-0000-0000-0000-000000000001"
           "?start=2026-10-01&end=2026-11-01")
    with pytest.raises(ConfigError) as err:
        plan_query(uri, PlanRequest("azure", None, CATALOG),
                   client=CostManagementClient(Refused()))
    message = str(err.value)
    _one_paragraph(message)
    assert "AADSTS7000215" in message and "az login" in message and "AZURE_CLIENT_ID" in message


def test_an_azure_query_401_answer_is_a_credential_error(tmp_path):
    from costflow.providers.azure.query_api import plan_query
    from tests.test_azure_query import AZURE_REQUEST, URI, _client

    refused = (401, {}, {"error": {"code": "InvalidAuthenticationToken",
                                   "message": "The access token is invalid."}})
    client, _ = _client([refused])
    with pytest.raises(ConfigError, match="did not accept the credentials") as err:
        plan_query(URI, AZURE_REQUEST, client=client, cache_dir=str(tmp_path))
    _one_paragraph(str(err.value))


# --- D: wrong or silent messages ---------------------------------------------------------------


@pytest.mark.needs_shared
def test_a_valid_10_mb_field_is_read(tmp_path, cur_sample):
    header, rows = _cur_rows(cur_sample)
    rows = [list(r) for r in rows[:20]]
    rows[4][header.index("lineItem/LineItemDescription")] = "x" * (10 << 20)
    path = tmp_path / "cur.csv"
    path.write_text(_csv_text(header, rows), encoding="utf-8")
    done = normalize_file(path)
    assert done.rows.num_rows == 20 and done.dead_letters.num_rows == 0
    descriptions = done.rows.column("ChargeDescription").to_pylist()
    assert len(descriptions[4]) == 10 << 20 and descriptions[5] == rows[5][
        header.index("lineItem/LineItemDescription")]


@pytest.mark.needs_shared
def test_a_row_beyond_the_limit_is_named_with_its_true_row(tmp_path, cur_sample, monkeypatch):
    header, rows = _cur_rows(cur_sample)
    rows = [list(r) for r in rows[:400]]
    rows[300][header.index("lineItem/LineItemDescription")] = "x" * (10 << 20)
    path = tmp_path / "cur.csv"
    path.write_text(_csv_text(header, rows), encoding="utf-8")
    monkeypatch.setattr(files, "MAX_CSV_BLOCK_BYTES", 4 << 20)
    with pytest.raises(SourceError) as err:
        normalize_file(path)
    message = str(err.value)
    _one_paragraph(message)
    assert "row 301 is 10 MiB long, more than the 4 MiB" in message
    assert "straddl" not in message


def test_nan_on_json_line_11_is_named(tmp_path):
    lines = [json.dumps(r) for r in gs.fixture_rows()]
    assert len(lines) > 11
    lines[10] = lines[10].replace('"cost": ', '"cost": NaN, "cost_was": ', 1)
    assert "NaN" in lines[10]
    path = tmp_path / "export.json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError) as err:
        normalize_file(path, "gcp")
    message = str(err.value)
    _one_paragraph(message)
    assert "row 11: line 11 is not valid JSON (NaN is not a JSON number)" in message


@pytest.mark.parametrize(("text", "reason"), [
    ("\u0661\u0662.\u0665", "not a decimal number written with ASCII digits"),  # Arabic-Indic
    ("\uff11\uff12", "not a decimal number written with ASCII digits"),           # full-width
    ("0e400", "exponent out of range"),
    ("1e30", "too large for DECIMAL(38, 18)"),
    ("12,5", "is not a decimal number (expected plain"),
])
def test_decimal_failures_say_what_is_wrong(text, reason):
    values, errors = parse_decimal(pa.array(["1.5", text]), "cost")
    assert values.to_pylist()[1] is None
    [error] = errors
    assert error.mask.to_pylist() == [False, True] and reason in error.reason


@pytest.mark.needs_shared
def test_non_ascii_digits_in_a_real_cur_are_dead_lettered_with_that_reason(tmp_path, cur_sample):
    header, rows = _cur_rows(cur_sample)
    rows = [list(r) for r in rows[:30]]
    rows[3][header.index(COST)] = "\u0660.\u0662\u0665"
    path = tmp_path / "cur.csv"
    path.write_text(_csv_text(header, rows), encoding="utf-8")
    [reason] = normalize_file(path).dead_letters.column("ErrorReason").to_pylist()
    assert reason.startswith(f"{COST} is not a decimal number written with ASCII digits")


@pytest.mark.needs_shared
def test_utf16_and_gzip_named_csv_say_what_the_file_is(tmp_path, cur_sample):
    header, rows = _cur_rows(cur_sample)
    text = _csv_text(header, rows[:5])
    utf16 = tmp_path / "excel-unicode.csv"
    utf16.write_bytes(text.encode("utf-16"))  # with its byte order mark, as Excel writes it
    zipped = tmp_path / "cur.csv"
    zipped.write_bytes(gzip.compress(text.encode()))
    with pytest.raises(SourceError) as err:
        CATALOG.plan([str(utf16)])
    assert "UTF-16 little-endian text" in str(err.value) and "iconv" in str(err.value)
    with pytest.raises(SourceError) as err:
        CATALOG.plan([str(zipped)])
    assert "is a gzip file" in str(err.value) and ".csv.gz" in str(err.value)
    assert "NUL" not in str(err.value)


def _dated(header: list[str], rows: list[list[str]]) -> list[list[str]]:
    """Rows 0-1 dated 9999 and 1970 in their 2023-11 bill; row 2 with a two-month period."""
    start, end = header.index("lineItem/UsageStartDate"), header.index("lineItem/UsageEndDate")
    period_end = header.index("bill/BillingPeriodEndDate")
    rows = [list(r) for r in rows]
    rows[0][start], rows[0][end] = "9999-11-01T00:00:00Z", "9999-11-01T01:00:00Z"
    rows[1][start], rows[1][end] = "1970-01-01T00:00:00Z", "1970-01-01T01:00:00Z"
    rows[2][period_end] = "2024-01-01T00:00:00Z"
    return rows


@pytest.mark.needs_shared
def test_charges_outside_their_billing_period_are_flagged_not_dropped(tmp_path, cur_sample):
    header, rows = _cur_rows(cur_sample)
    assert rows[0][header.index("bill/BillingPeriodStartDate")].startswith("2023-11-01")
    path = tmp_path / "cur.csv"
    path.write_text(_csv_text(header, _dated(header, rows[:50])), encoding="utf-8")
    done = normalize_file(path)
    assert done.rows.num_rows == 50 and done.dead_letters.num_rows == 0
    flags = [json.loads(v) if v else [] for v in done.rows.column(
        "x_DataQualityFlags").to_pylist()]
    outside = [i for i, f in enumerate(flags) if "ChargePeriodStart:outside_billing_period" in f]
    two_months = [i for i, f in enumerate(flags) if "BillingPeriod:not_one_month" in f]
    assert outside == [0, 1] and two_months == [2]


@pytest.mark.needs_shared
def test_the_run_warns_with_the_count_of_flagged_rows(tmp_path, cur_sample, ingest):
    header, rows = _cur_rows(cur_sample)
    path = tmp_path / "cur.csv"
    path.write_text(_csv_text(header, _dated(header, rows[:50])), encoding="utf-8")
    report = ingest(path)
    assert report["status"] == "succeeded" and report["totals"]["rows_loaded"] == 50
    warnings = " | ".join(report["warnings"])
    assert "2 row(s) fail soft check flag:ChargePeriodStart:outside_billing_period" in warnings
    assert "1 row(s) fail soft check flag:BillingPeriod:not_one_month" in warnings


def test_cli_prints_one_paragraph_for_a_utf16_file(tmp_path, capsys):
    path = tmp_path / "cur.csv"
    path.write_bytes("bill/PayerAccountId,lineItem/UnblendedCost\n1,2\n".encode("utf-16"))
    code = main(["ingest", "--source", str(path), f"--warehouse=duckdb:///{tmp_path}/w.duckdb",
                 f"--report_dir={tmp_path}/runs", f"--staging_dir={tmp_path}/staging"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "UTF-16" in err
