"""InfrastructureModule (F6 §8): built from costflow.yaml for one tenant, it hands out the cost
providers, the secret manager, the metadata store, the warehouse's BigQuery client and the
compute settings, each from the config (local stores in tmp_path; BigQuery through the fake
client of test_bigquery_warehouse, since no BigQuery emulator runs offline)."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from costflow.config import load_config
from costflow.errors import ConfigError
from costflow.metadata import paths
from costflow.services.module import InfrastructureModule
from costflow.services.tenancy import Tenant
from costflow.warehouse.bigquery_engine import BigQueryWarehouse
from tests.conftest import modules_loaded_by
from tests.test_bigquery_warehouse import FakeBigQueryClient
from tests.warehouse_rows import ACCOUNT, NOV, cost_row, expected_for, run_start, stage

CONFIG = """\
version: 1
warehouse: duckdb:///{root}/warehouse.duckdb
secrets: local:///{root}/secrets
metadata: local:///{root}/metadata.sqlite
tenants:
  - id: acme
    billing_accounts: ["{account}"]
    sub_accounts: ["sub-1"]
    projects: ["web-prod"]
  - id: beta
    billing_accounts: ["999"]
accounts: []
compute:
  services:
    - name: sync-job
      memory: 4Gi
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COSTFLOW_SECRETS_KEY", Fernet.generate_key().decode())
    for var in ("COSTFLOW_SECRETS", "COSTFLOW_METADATA", "COSTFLOW_WAREHOUSE"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "costflow.yaml"
    path.write_text(CONFIG.format(root=tmp_path, account=ACCOUNT))
    return load_config(path)


def test_from_config_scopes_the_module_to_the_tenants_accounts(config, tmp_path: Path):
    with InfrastructureModule.from_config(config, "acme") as infra:
        assert infra.tenant == Tenant.of("acme", billing_accounts=[ACCOUNT],
                                         sub_accounts=["sub-1", "web-prod"])
        assert infra.warehouse.url == f"duckdb:///{tmp_path}/warehouse.duckdb"
        assert infra.config is config


def test_the_cost_provider_reads_only_the_tenants_rows(config, tmp_path: Path):
    from costflow.warehouse import connect

    writer = connect(config.warehouse)
    rows = [cost_row("1.50", row_number=1),
            cost_row("2.25", account="999", sub_account="999", row_number=2)]
    writer.ensure_schema()
    writer.begin_run(run_start("run-1"))
    writer.commit_run(stage(tmp_path / "staging", "run-1", rows), expected_for(rows), {})
    writer.close()
    for tenant, total in (("acme", Decimal("1.50")), ("beta", Decimal("2.25"))):
        with InfrastructureModule.from_config(config, tenant) as infra:
            result = asyncio.run(infra.get_cost_provider("all").get_costs(
                NOV.date(), date(2023, 12, 1), granularity="TOTAL"))
            assert result.total_cost == total, tenant


def test_from_config_names_the_known_tenants(config):
    with pytest.raises(ConfigError, match=r"no tenant 'acme-eu'.*known: acme, beta"):
        InfrastructureModule.from_config(config, "acme-eu")


def test_secret_manager_is_the_configs_store_built_once(config, tmp_path: Path):
    with InfrastructureModule.from_config(config, "acme") as infra:
        manager = infra.get_secret_manager()
        assert infra.get_secret_manager() is manager
        asyncio.run(manager.create_secret("api-keys/acme/slack", "xoxb-planted", {}))
        assert asyncio.run(manager.get_secret("api-keys/acme/slack")) == "xoxb-planted"
    assert (tmp_path / "secrets").is_dir()
    assert b"xoxb-planted" not in b"".join(p.read_bytes() for p in
                                           (tmp_path / "secrets").iterdir())


def test_an_explicit_secrets_url_wins_over_the_config(config, tmp_path: Path):
    other = tmp_path / "other-secrets"
    with InfrastructureModule.from_config(config, "acme",
                                          secrets_url=f"local:///{other}") as infra:
        asyncio.run(infra.get_secret_manager().create_secret("api-keys/acme/x", "v", {}))
    assert other.is_dir() and not (tmp_path / "secrets").exists()


def test_metadata_store_is_the_configs_and_is_closed_with_the_module(config, tmp_path: Path):
    infra = InfrastructureModule.from_config(config, "acme")
    store = infra.get_metadata_store()
    assert infra.get_metadata_store() is store
    store.set(paths.tenant_settings("acme"), {"currency": "EUR", "budget": "1250.50"})
    infra.close()
    assert (tmp_path / "metadata.sqlite").is_file()
    # Closed with the module; a new module (or a later call) opens the same file again.
    with InfrastructureModule.from_config(config, "acme") as again:
        assert again.get_metadata_store().get(paths.tenant_settings("acme")) == {
            "currency": "EUR", "budget": "1250.50"}


def test_bigquery_client_is_the_warehouses_client():
    fake = FakeBigQueryClient()
    calls = []

    def factory(project: str, location: str | None) -> FakeBigQueryClient:
        calls.append((project, location))
        return fake

    warehouse = BigQueryWarehouse("acme-finops-prod", "billing", client_factory=factory,
                                  location="EU")
    infra = InfrastructureModule(warehouse, Tenant.of("acme", billing_accounts=["1"]))
    assert infra.get_bigquery_client() is fake
    assert infra.get_bigquery_client() is fake
    assert calls == [("acme-finops-prod", "EU")]


def test_bigquery_client_on_duckdb_says_what_to_do(config, tmp_path: Path):
    with InfrastructureModule.from_config(config, "acme") as infra, pytest.raises(
            ConfigError, match=r"warehouse duckdb:///.*warehouse.duckdb is not BigQuery.*"
                               r"bigquery://PROJECT/DATASET"):
        infra.get_bigquery_client()


def test_compute_config_comes_from_the_config_over_the_defaults(config):
    with InfrastructureModule.from_config(config, "acme") as infra:
        sync = infra.get_compute_config("sync-job")
        assert (sync.memory, sync.cpu, sync.max_instances, sync.timeout_seconds) == (
            "4Gi", 2, 1, 3600)
        assert infra.get_compute_config("gcp-mcp-server") == infra.get_compute_config(
            "mcp-server")
        assert infra.get_compute_config("mcp-server").memory == "256Mi"
        with pytest.raises(ConfigError, match="known services: gcp-mcp-server, mcp-server, "
                                              "sync-job"):
            infra.get_compute_config("coordinator")


def test_compute_config_without_a_config_is_the_documented_default(tmp_path: Path):
    from costflow.config import COMPUTE_DEFAULTS

    infra = InfrastructureModule.from_url(f"duckdb:///{tmp_path}/w.duckdb",
                                          tenant=Tenant.unrestricted_owner())
    assert infra.get_compute_config("sync-job") == COMPUTE_DEFAULTS["sync-job"]
    assert infra.get_compute_config("sync-job").memory == "2Gi"
    infra.close()


def test_importing_the_module_loads_no_sdk_or_store():
    assert modules_loaded_by("costflow.services.module", (
        "google.cloud.bigquery", "google.cloud.firestore", "costflow.metadata",
        "costflow.secrets", "costflow.config", "boto3", "azure")) == []
