"""gs:// billing export files through the real google-cloud-storage client (Beam's gcsio),
against a local GCS emulator (gcp-storage-emulator) the test starts on 127.0.0.1 over HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from decimal import Decimal

import pytest

from costflow.errors import CostflowError
from costflow.providers.gcp.samples import billing as gs
from tests.test_gcp_files_e2e import SLICES, expected_slices, query

BUCKET = "billing-exports"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gcs(monkeypatch) -> Iterator:
    from gcp_storage_emulator.server import create_server
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    # Both our client and Beam's gcsio (the same google-cloud-storage library) honour this.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    # No credentials here: skip google-auth's probe of the GCE metadata server (slow retries).
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    # Beam looks for Google credentials once per process, retrying for ~30 s before it falls
    # back to an anonymous client; the emulator needs none, so say so up front.
    from apache_beam.internal.gcp import auth

    monkeypatch.setattr(auth._Credentials, "_credentials_init", True)
    monkeypatch.setattr(auth._Credentials, "_credentials", None)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test")
    try:
        yield storage.Client(project="test", credentials=AnonymousCredentials()).bucket(BUCKET)
    finally:
        server.stop()


def test_gs_glob_of_gzip_jsonl_parts(tmp_path, gcs, ingest) -> None:
    rows = gs.fixture_rows()
    # BigQuery extracts split a table into numbered parts.
    for part, chunk in enumerate((rows[:7], rows[7:])):
        local = gs.write_jsonl(chunk, tmp_path / f"p{part}.json.gz")
        gcs.blob(f"billing/202610/export-{part:012d}.json.gz").upload_from_filename(local)
    report = ingest(f"gs://{BUCKET}/billing/202610/*.json.gz", provider="gcp")
    assert report["status"] == "succeeded"
    assert sorted(s["uri"] for s in report["sources"]) == [
        f"gs://{BUCKET}/billing/202610/export-000000000000.json.gz",
        f"gs://{BUCKET}/billing/202610/export-000000000001.json.gz"]
    got = [(r["account"], r["month"], r["billed"]) for r in query(tmp_path, SLICES)]
    assert got == expected_slices(rows)
    assert got[0][2] == Decimal("565.057594")


def test_gs_parquet_and_avro(tmp_path, gcs, ingest) -> None:
    rows = gs.fixture_rows()
    gcs.blob("pq/export.parquet").upload_from_filename(gs.write_parquet(rows, tmp_path / "a.pq"))
    gcs.blob("avro/export.avro").upload_from_filename(gs.write_avro(rows, tmp_path / "a.avro"))
    ingest(f"gs://{BUCKET}/pq/*.parquet", db="pq", provider="gcp")
    ingest(f"gs://{BUCKET}/avro/*.avro", db="avro", provider="gcp")
    assert query(tmp_path, SLICES, db="pq") == query(tmp_path, SLICES, db="avro")
    assert [(r["account"], r["month"], r["billed"]) for r in query(tmp_path, SLICES, "pq")] == \
        expected_slices(rows)


def test_gs_malformed_line_names_object_and_line(tmp_path, gcs, ingest) -> None:
    import json

    first = json.dumps(gs.fixture_rows()[0])
    gcs.blob("bad/export.json").upload_from_string(first + '\n{"billing_account_id": \n')
    with pytest.raises(CostflowError, match=rf"gs://{BUCKET}/bad/export.json, row 2: line 2 "):
        ingest(f"gs://{BUCKET}/bad/*.json", provider="gcp")
