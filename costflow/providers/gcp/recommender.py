"""GCP Recommender (machine type and commitment recommenders) into the recommendations table.

Why this module exists: Google's Recommender lists right-sizing (``google.compute.instance.
MachineTypeRecommender``, zonal) and committed-use purchases (``google.compute.commitment.
UsageCommitmentRecommender``, regional) with their projected cost impact. FinOps users want them
next to the AWS and Azure ones, in one shape, with the saving as an exact monthly amount. This
module is only the fetcher: it lists each parent with the official client
(``RecommenderClient.list_recommendations``, whose pager follows ``next_page_token``) and maps
the answers to rows; `costflow.recommendations.fetch_and_store` replaces the stored ones.

    costflow recommendations fetch --provider gcp --scope project=web-prod \\
        --scope location=us-central1-a

Every (recommender, project, location) is its own *source*
(``<recommender id>/projects/<p>/locations/<l>``), so fetching one project never erases
another's. A zone gives the machine-type recommender there and the commitment recommender of
its region; a region gives the commitment recommender only (machine types are zonal).
Authentication: Application Default Credentials.

Mapping [REC]: Google's Recommendation resource (cloud.google.com/recommender/docs/reference/
rest/v1/projects.locations.recommenders.recommendations):
* ``primaryImpact.costProjection.cost`` is a Money (``units`` + ``nanos``/1e9) over
  ``costProjection.duration``; a NEGATIVE cost is a saving. estimated_monthly_savings =
  -(units + nanos/1e9) x (30 days / duration), exact Decimal arithmetic, quantized to the
  declared 18 decimal places (half-even) only when 30/duration does not terminate. A "month" is
  30 days here, as Google's console shows 30-day projections. A positive cost (a
  performance recommendation that costs more) gives a negative saving.
* ``stateInfo.state`` ACTIVE/CLAIMED/SUCCEEDED/FAILED/DISMISSED -> the declared states.
* ``content.overview`` (a Struct): ``resourceName`` (full resource name), ``currentMachineType``
  and ``recommendedMachineType`` (objects with ``name``, or plain strings).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from costflow.errors import ConfigError
from costflow.recommendations import FetchRequest, FetchResult, rows_from_records

MACHINE_TYPE = "google.compute.instance.MachineTypeRecommender"
COMMITMENT = "google.compute.commitment.UsageCommitmentRecommender"
CATEGORY = {MACHINE_TYPE: "compute", COMMITMENT: "commitment"}
RESOURCE_TYPE = {MACHINE_TYPE: "Virtual Machine", COMMITMENT: None}
MONTH_SECONDS = Decimal(30 * 24 * 3600)
_PLACES = Decimal("1e-18")  # decimal128(38, 18): the declared scale of money
_NANOS = Decimal(10) ** 9
STATES = {"ACTIVE": "active", "CLAIMED": "claimed", "SUCCEEDED": "succeeded",
          "FAILED": "failed", "DISMISSED": "dismissed"}


def region_of(location: str) -> str:
    """``us-central1-a`` -> ``us-central1``; a region is returned as it is."""
    parts = location.split("-")
    return "-".join(parts[:-1]) if len(parts) == 3 and len(parts[-1]) == 1 else location


def is_zone(location: str) -> bool:
    return region_of(location) != location


def parents(projects: Iterable[str], locations: Iterable[str]) -> list[tuple[str, str, str]]:
    """(recommender, project, location) to list, deduplicated, in a stable order."""
    out: list[tuple[str, str, str]] = []
    for project in projects:
        for location in locations:
            wanted = ([(MACHINE_TYPE, location)] if is_zone(location) else []) + [
                (COMMITMENT, region_of(location))]
            for recommender, where in wanted:
                if (recommender, project, where) not in out:
                    out.append((recommender, project, where))
    return out


def monthly_savings(cost: Any, duration_seconds: int) -> Decimal | None:
    """-(cost) per 30 days, exactly (see the module docstring)."""
    if duration_seconds <= 0:
        return None
    amount = Decimal(int(cost.units)) + Decimal(int(cost.nanos)) / _NANOS
    saving = -amount * MONTH_SECONDS / Decimal(duration_seconds)
    return saving if saving == saving.quantize(_PLACES) else saving.quantize(
        _PLACES, rounding=ROUND_HALF_EVEN)


def _name(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("name")
    return value if isinstance(value, str) and value else None


def record(recommendation: Any, recommender: str, project: str, location: str) -> dict[str, Any]:
    """One Recommendation message -> one row of the declared schema."""
    from google.cloud import recommender_v1
    from google.protobuf.json_format import MessageToDict

    raw = json.loads(recommender_v1.Recommendation.to_json(recommendation))
    overview = MessageToDict(recommendation._pb.content.overview)
    projection = recommendation.primary_impact.cost_projection
    has_cost = recommendation._pb.primary_impact.HasField("cost_projection")
    savings = (monthly_savings(projection.cost, int(projection.duration.total_seconds()))
               if has_cost else None)
    resource = overview.get("resourceName") or overview.get("resource")
    state = recommendation.state_info.state.name
    refreshed = recommendation.last_refresh_time
    return {
        "recommendation_id": recommendation.name,
        "source": f"{recommender}/projects/{project}/locations/{location}",
        "category": CATEGORY[recommender],
        "SubAccountId": project,
        "RegionId": region_of(location),
        "ResourceId": resource,
        "ResourceName": resource.rsplit("/", 1)[-1] if resource else None,
        "ResourceType": RESOURCE_TYPE[recommender],
        "description": recommendation.description,
        "current_configuration": _name(overview.get("currentMachineType")),
        "recommended_configuration": _name(overview.get("recommendedMachineType"))
        or (recommendation.recommender_subtype or None),
        "estimated_monthly_savings": savings,
        "savings_currency": projection.cost.currency_code or None if has_cost else None,
        "state": STATES.get(state, "active"),
        "priority": None if recommendation.priority.name == "PRIORITY_UNSPECIFIED"
        else recommendation.priority.name,
        "last_refreshed_at": refreshed if refreshed and refreshed.timestamp() > 0 else None,
        "details": raw,
    }


def default_client() -> Any:
    from google.cloud import recommender_v1

    return recommender_v1.RecommenderClient()


def fetch(request: FetchRequest, client_factory: Callable[[], Any] | None = None,
          ) -> FetchResult:
    """Every recommendation of the scope's (recommender, project, location) parents."""
    projects = request.scope.get("project") or []
    locations = request.scope.get("location") or []
    if not projects or not locations:
        raise ConfigError("GCP Recommender needs --scope project=<id> and --scope "
                          "location=<zone or region> (repeat either for more).")
    client = (client_factory or default_client)()
    records, sources = [], []
    for recommender, project, location in parents(projects, locations):
        parent = f"projects/{project}/locations/{location}/recommenders/{recommender}"
        sources.append(f"{recommender}/projects/{project}/locations/{location}")
        for recommendation in client.list_recommendations(request={"parent": parent}):
            records.append(record(recommendation, recommender, project, location))
    return FetchResult(rows=rows_from_records(records, request), sources=sources)
