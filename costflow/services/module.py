"""InfrastructureModule: the one object that hands out costflow's infrastructure (F6 §8).

Cost providers per cloud over one warehouse, under one tenant (`get_cost_provider`), and the
rest of the design's public interface: the secret manager (`get_secret_manager`), the metadata
store (`get_metadata_store`, the design's ``get_firestore_client``: Firestore or the local
SQLite file, whichever the config names), the warehouse's BigQuery client
(`get_bigquery_client`) and the compute settings of the services costflow deploys
(`get_compute_config`). Built from costflow.yaml for one of its tenants:

    infra = InfrastructureModule.from_config(load_config("costflow.yaml"), "acme")
    result = await infra.get_cost_provider("all").get_costs(date(2026, 10, 1),
                                                            date(2026, 11, 1))
    token = await infra.get_secret_manager().get_secret("api-keys/acme/slack")

or from a warehouse URL alone (`from_url`). The secret manager and metadata store are opened on
first use and closed with the module; their SDKs are imported only then.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any

from costflow.errors import ConfigError
from costflow.services.providers import WarehouseCostProvider
from costflow.services.tenancy import ALL_PROVIDERS, PROVIDERS, Tenant, check_provider
from costflow.warehouse import connect
from costflow.warehouse.base import Warehouse

if TYPE_CHECKING:
    from costflow.config import ComputeConfig, CostflowConfig
    from costflow.metadata import MetadataStore
    from costflow.secrets import SecretBackend


class InfrastructureModule:
    """Cost providers for one tenant over one warehouse, and the other infrastructure.

    Args:
        warehouse: the `cost_analytics` dataset (DuckDB or BigQuery).
        tenant: whose accounts every provider may read.
        config: the costflow.yaml it was built from, if any: the secret store, metadata store
            and compute settings are read from it.
        secrets_url: a `costflow.secrets` URL overriding the config's (and $COSTFLOW_SECRETS).
        metadata_url: a `costflow.metadata` URL overriding the config's (and
            $COSTFLOW_METADATA).
    """

    def __init__(self, warehouse: Warehouse, tenant: Tenant, *,
                 config: CostflowConfig | None = None, secrets_url: str | None = None,
                 metadata_url: str | None = None) -> None:
        if not isinstance(tenant, Tenant):
            raise ConfigError("InfrastructureModule needs a Tenant: every query runs under "
                              "one (Tenant.of(...) or Tenant.unrestricted_owner()).")
        self.warehouse, self.tenant, self.config = warehouse, tenant, config
        self._secrets_url, self._metadata_url = secrets_url, metadata_url
        self._secret_manager: SecretBackend | None = None
        self._metadata_store: MetadataStore | None = None

    @classmethod
    def from_config(cls, config: CostflowConfig, tenant_id: str, *,
                    secrets_url: str | None = None, metadata_url: str | None = None
                    ) -> InfrastructureModule:
        """The module of one tenant of a config: its warehouse opened for reading, and a
        `Tenant` that sees the tenant's billing accounts, and its sub accounts and projects
        (a GCP project is a sub account in FOCUS).

        Raises:
            ConfigError: the config has no tenant ``tenant_id`` (the message lists them).
        """
        found = config.tenant(tenant_id)
        tenant = Tenant.of(found.id, billing_accounts=found.billing_accounts,
                           sub_accounts=(*found.sub_accounts, *found.projects))
        return cls(connect(config.warehouse, reader=True), tenant, config=config,
                   secrets_url=secrets_url, metadata_url=metadata_url)

    @classmethod
    def from_url(cls, url: str, *, tenant: Tenant) -> InfrastructureModule:
        """Open the warehouse a URL names (see `costflow.warehouse.connect`) for reading: a query
        during another process's write waits briefly, then raises `WarehouseBusy`."""
        return cls(connect(url, reader=True), tenant)

    def get_cost_provider(self, provider: str) -> WarehouseCostProvider:
        """The cost provider for ``aws``, ``gcp``, ``azure`` or ``all`` of them."""
        return WarehouseCostProvider(self.warehouse, self.tenant, check_provider(provider))

    @staticmethod
    def providers() -> tuple[str, ...]:
        """The names `get_cost_provider` accepts."""
        return (*PROVIDERS, ALL_PROVIDERS)

    def get_secret_manager(self) -> SecretBackend:
        """The secret manager (design §6): the ``secrets_url`` given, else the config's
        ``secrets`` (the local store when the file names none); without a config,
        $COSTFLOW_SECRETS, else the local store. Built once, on first call; nothing is read
        until a secret is asked for."""
        if self._secret_manager is None:
            from costflow import secrets

            url = self._secrets_url or (self.config.secrets if self.config else None)
            self._secret_manager = secrets.connect(secrets.resolve_url(url))
        return self._secret_manager

    def get_metadata_store(self) -> MetadataStore:
        """The metadata store (design §5.2; the design's ``get_firestore_client``): tenants,
        their settings, policies and cloud accounts, and the sync lock. The ``metadata_url``
        given, else the config's ``metadata`` (the local SQLite file when the file names none);
        without a config, $COSTFLOW_METADATA, else the local file. Opened on first use, closed
        by `close`."""
        if self._metadata_store is None:
            from costflow import metadata

            url = self._metadata_url or (self.config.metadata if self.config else None)
            self._metadata_store = metadata.connect(metadata.resolve_url(url))
        return self._metadata_store

    def get_bigquery_client(self) -> Any:
        """The warehouse's `google.cloud.bigquery.Client` (built on first use, with
        application-default credentials), for analytics the query services do not cover.

        Raises:
            ConfigError: the warehouse is not BigQuery (a DuckDB file has no BigQuery client).
        """
        # The BigQuery engine is imported only by a BigQuery warehouse: if it is not loaded,
        # this warehouse cannot be one (and a DuckDB user never imports the BigQuery SDK).
        engine = sys.modules.get("costflow.warehouse.bigquery_engine")
        if engine is not None and isinstance(self.warehouse, engine.BigQueryWarehouse):
            return self.warehouse.client
        url = getattr(self.warehouse, "url", type(self.warehouse).__name__)
        raise ConfigError(
            f"the warehouse {url} is not BigQuery, so there is no BigQuery client: query it "
            "through get_cost_provider() (or costflow.warehouse.connect(...).query), or set "
            "`warehouse: bigquery://PROJECT/DATASET` in costflow.yaml (or --warehouse / "
            "$COSTFLOW_WAREHOUSE) to use BigQuery.")

    def get_compute_config(self, service: str) -> ComputeConfig:
        """The compute settings (design §4.2: memory, cpu, min/max instances, concurrency,
        timeout) of a service costflow deploys, ``sync-job`` or ``mcp-server`` (alias
        ``gcp-mcp-server``): the documented default, then the config's ``compute.services``.

        Raises:
            ConfigError: an unknown service (the message lists the known ones).
        """
        if self.config is not None:
            return self.config.compute_config(service)
        from costflow.config import ComputeSettings

        return ComputeSettings().service(service)

    def close(self) -> None:
        """Release the warehouse connection, and the metadata store and secret manager if
        they were opened (a later get_* call opens them again)."""
        store, manager = self._metadata_store, self._secret_manager
        self._metadata_store = self._secret_manager = None
        try:
            if store is not None:
                store.close()
            if manager is not None:
                manager.close()
        finally:
            self.warehouse.close()

    def __enter__(self) -> InfrastructureModule:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
