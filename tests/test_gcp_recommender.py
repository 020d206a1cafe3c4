"""GCP Recommender fetcher, against a Recommender gRPC service on 127.0.0.1.

The test serves ``google.cloud.recommender.v1.Recommender/ListRecommendations`` with grpcio and
the library's own protobuf messages, built like real API answers (Money units+nanos, Duration,
overview Struct, state, priority), paged with ``next_page_token``. The official
`RecommenderClient` talks to it over a real channel, so paging is the client's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest
from google.cloud import recommender_v1 as r
from google.cloud.recommender_v1.services.recommender.transports import (
    RecommenderGrpcTransport,
)
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2
from google.type import money_pb2

from costflow.errors import ConfigError
from costflow.providers.gcp import recommender as gcp_recommender
from costflow.recommendations import FetchRequest
from costflow.services.recommendation_fetch import fetch_and_store
from costflow.warehouse import connect

PROJECT = "web-prod"
ZONE_PARENT = (f"projects/{PROJECT}/locations/us-central1-a/recommenders/"
               f"{gcp_recommender.MACHINE_TYPE}")
REGION_PARENT = (f"projects/{PROJECT}/locations/us-central1/recommenders/"
                 f"{gcp_recommender.COMMITMENT}")
VM = "//compute.googleapis.com/projects/web-prod/zones/us-central1-a/instances/web-1"


def machine_type(n: int, units: int, nanos: int, state: str = "ACTIVE") -> r.Recommendation:
    overview = struct_pb2.Struct()
    overview.update({"recommendedAction": "Replace", "resourceName": f"{VM}{n}",
                     "currentMachineType": {"name": "n2-standard-8", "guestCpus": 8},
                     "recommendedMachineType": {"name": "n2-standard-4", "guestCpus": 4}})
    pb = r.Recommendation(
        name=f"{ZONE_PARENT}/recommendations/mt-{n}",
        description="Save cost by changing machine type from n2-standard-8 to n2-standard-4.",
        recommender_subtype="CHANGE_MACHINE_TYPE", priority=r.Recommendation.Priority.P2,
        state_info=r.RecommendationStateInfo(state=getattr(
            r.RecommendationStateInfo.State, state)),
    )._pb
    pb.content.overview.CopyFrom(overview)
    pb.primary_impact.category = r.Impact.Category.COST
    pb.primary_impact.cost_projection.cost.CopyFrom(
        money_pb2.Money(currency_code="USD", units=units, nanos=nanos))
    pb.primary_impact.cost_projection.duration.CopyFrom(duration_pb2.Duration(seconds=2592000))
    pb.last_refresh_time.CopyFrom(timestamp_pb2.Timestamp(seconds=1793318400))
    return r.Recommendation.wrap(pb)


def commitment() -> r.Recommendation:
    pb = r.Recommendation(
        name=f"{REGION_PARENT}/recommendations/cud-1",
        description="Purchase a 1 year commitment for 16 vCPUs and 64 GB memory.",
        recommender_subtype="COMMIT_1_YEAR",
        state_info=r.RecommendationStateInfo(state=r.RecommendationStateInfo.State.CLAIMED),
    )._pb
    pb.content.overview.update({"commitmentType": "GENERAL_PURPOSE_N2", "plan": "TWELVE_MONTH"})
    # A 31-day projection: 30/31 of it is a month, not a terminating decimal.
    pb.primary_impact.cost_projection.cost.CopyFrom(
        money_pb2.Money(currency_code="USD", units=-310, nanos=-500000000))
    pb.primary_impact.cost_projection.duration.CopyFrom(duration_pb2.Duration(seconds=31 * 86400))
    return r.Recommendation.wrap(pb)


# parent -> pages of recommendations (the zone's machine types come in two pages).
PAGES = {ZONE_PARENT: [[machine_type(1, -57, -250000000), machine_type(2, 0, -7)],
                       [machine_type(3, 12, 0, state="DISMISSED")]],
         REGION_PARENT: [[commitment()]]}


@pytest.fixture
def recommender_server() -> Iterator[tuple[str, list[r.ListRecommendationsRequest]]]:
    seen: list[r.ListRecommendationsRequest] = []

    def list_recommendations(request, context):
        seen.append(request)
        pages = PAGES.get(request.parent, [[]])
        index = int(request.page_token or 0)
        token = str(index + 1) if index + 1 < len(pages) else ""
        return r.ListRecommendationsResponse(recommendations=pages[index],
                                             next_page_token=token)

    handler = grpc.method_handlers_generic_handler("google.cloud.recommender.v1.Recommender", {
        "ListRecommendations": grpc.unary_unary_rpc_method_handler(
            list_recommendations,
            request_deserializer=r.ListRecommendationsRequest.deserialize,
            response_serializer=r.ListRecommendationsResponse.serialize)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", seen
    finally:
        server.stop(grace=None)


def client_for(address: str):
    def factory() -> r.RecommenderClient:
        return r.RecommenderClient(transport=RecommenderGrpcTransport(
            channel=grpc.insecure_channel(address)))
    return factory


def request(**scope: list[str]) -> FetchRequest:
    return FetchRequest(provider="gcp", run_id="recs-test", fetched_at=datetime(
        2026, 11, 3, tzinfo=UTC), scope=scope)


def test_zone_lists_machine_types_and_the_regions_commitments_with_paging(
        recommender_server) -> None:
    address, seen = recommender_server
    result = gcp_recommender.fetch(request(project=[PROJECT], location=["us-central1-a"]),
                                   client_factory=client_for(address))
    assert [(q.parent, q.page_token) for q in seen] == [
        (ZONE_PARENT, ""), (ZONE_PARENT, "1"), (REGION_PARENT, "")]
    assert result.sources == [
        f"{gcp_recommender.MACHINE_TYPE}/projects/web-prod/locations/us-central1-a",
        f"{gcp_recommender.COMMITMENT}/projects/web-prod/locations/us-central1"]
    rows = {row["recommendation_id"].rsplit("/", 1)[-1]: row for row in result.rows.to_pylist()}
    assert set(rows) == {"mt-1", "mt-2", "mt-3", "cud-1"}
    mt1 = rows["mt-1"]
    assert mt1["estimated_monthly_savings"] == Decimal("57.25")
    assert mt1["savings_currency"] == "USD"
    assert (mt1["category"], mt1["state"], mt1["priority"]) == ("compute", "active", "P2")
    assert (mt1["current_configuration"], mt1["recommended_configuration"]) == (
        "n2-standard-8", "n2-standard-4")
    assert (mt1["ResourceId"], mt1["ResourceName"]) == (f"{VM}1", "web-11")
    assert (mt1["SubAccountId"], mt1["RegionId"], mt1["ResourceType"]) == (
        PROJECT, "us-central1", "Virtual Machine")
    assert mt1["last_refreshed_at"] == datetime(2026, 10, 30, tzinfo=UTC)
    assert rows["mt-2"]["estimated_monthly_savings"] == Decimal("0.000000007")  # 7 nanos
    assert rows["mt-3"]["estimated_monthly_savings"] == Decimal("-12")  # costs more
    assert rows["mt-3"]["state"] == "dismissed"
    cud = rows["cud-1"]
    # 310.5 USD over 31 days -> x 30/31 = 300.483870967741935483870967... -> 18 places
    assert cud["estimated_monthly_savings"] == Decimal("300.483870967741935484")
    assert (cud["category"], cud["state"], cud["recommended_configuration"]) == (
        "commitment", "claimed", "COMMIT_1_YEAR")
    assert cud["current_configuration"] is None and cud["ResourceId"] is None


def test_a_region_lists_only_commitments() -> None:
    assert gcp_recommender.parents(["p"], ["europe-west3", "europe-west3-b"]) == [
        (gcp_recommender.COMMITMENT, "p", "europe-west3"),
        (gcp_recommender.MACHINE_TYPE, "p", "europe-west3-b")]


def test_scope_is_required() -> None:
    with pytest.raises(ConfigError, match="--scope project="):
        gcp_recommender.fetch(request(project=[PROJECT]))


def test_fetch_and_store_replaces_the_stored_recommendations(recommender_server, tmp_path,
                                                            monkeypatch) -> None:
    address, _ = recommender_server
    monkeypatch.setattr(gcp_recommender, "default_client", client_for(address))
    url = f"duckdb:///{tmp_path}/w.duckdb"
    scope = {"project": [PROJECT], "location": ["us-central1-a"]}
    for _ in range(2):  # a second fetch replaces, never duplicates
        out = fetch_and_store("gcp", url, scope)
        assert out["recommendations"] == 4
    wh = connect(url)
    try:
        stored = wh.query("""
            SELECT category, state, SUM(estimated_monthly_savings) AS savings, COUNT(*) AS n
            FROM cost_analytics.recommendations WHERE x_SourceProvider = 'gcp'
            GROUP BY 1, 2 ORDER BY 1, 2""").to_pylist()
    finally:
        wh.close()
    assert stored == [
        {"category": "commitment", "state": "claimed",
         "savings": Decimal("300.483870967741935484"), "n": 1},
        {"category": "compute", "state": "active", "savings": Decimal("57.250000007"), "n": 2},
        {"category": "compute", "state": "dismissed", "savings": Decimal("-12"), "n": 1}]
