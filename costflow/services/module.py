"""InfrastructureModule: the public entry point of the query side (F6 §8).

The design document's module also hands out Firestore, compute and secret clients; costflow's
query side needs none of them, so only what it serves is here: cost providers per cloud over one
warehouse, under one tenant. Everything a caller does goes through `get_cost_provider`.

    infra = InfrastructureModule.from_url("duckdb:///.costflow/warehouse.duckdb",
                                          tenant=Tenant.of("acme", billing_accounts=["1234"]))
    result = await infra.get_cost_provider("all").get_costs(date(2026, 10, 1),
                                                            date(2026, 11, 1))
"""

from __future__ import annotations

from types import TracebackType

from costflow.errors import ConfigError
from costflow.services.providers import WarehouseCostProvider
from costflow.services.tenancy import ALL_PROVIDERS, PROVIDERS, Tenant, check_provider
from costflow.warehouse import connect
from costflow.warehouse.base import Warehouse


class InfrastructureModule:
    """Cost providers for one tenant over one warehouse.

    Args:
        warehouse: the `cost_analytics` dataset (DuckDB or BigQuery).
        tenant: whose accounts every provider may read.
    """

    def __init__(self, warehouse: Warehouse, tenant: Tenant) -> None:
        if not isinstance(tenant, Tenant):
            raise ConfigError("InfrastructureModule needs a Tenant: every query runs under "
                              "one (Tenant.of(...) or Tenant.unrestricted_owner()).")
        self.warehouse, self.tenant = warehouse, tenant

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

    def close(self) -> None:
        """Release the warehouse connection."""
        self.warehouse.close()

    def __enter__(self) -> InfrastructureModule:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
