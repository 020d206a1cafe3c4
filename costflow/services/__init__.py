"""Query services over the warehouse: what people, the CLI and agents read."""

from __future__ import annotations

from costflow.models import (
    CostBreakdown,
    CostResult,
    ForecastPoint,
    ForecastResult,
    Recommendation,
    Resource,
    TimePeriod,
)
from costflow.services.module import InfrastructureModule
from costflow.services.providers import (
    CloudCostProvider,
    MixedCurrencyError,
    WarehouseCostProvider,
)
from costflow.services.tenancy import Tenant, row_access_policy_ddl

__all__ = ["CloudCostProvider", "CostBreakdown", "CostResult", "ForecastPoint",
           "ForecastResult", "InfrastructureModule", "MixedCurrencyError", "Recommendation",
           "Resource", "Tenant", "TimePeriod", "WarehouseCostProvider", "row_access_policy_ddl"]
