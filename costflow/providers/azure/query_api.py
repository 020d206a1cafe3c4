"""``azure-query://subscriptions/<id>?start=..&end=..``: the Cost Management Query API.

Why this module exists: some subscriptions have no export configured. For them the Query API
[PF §3.4] gives daily actual cost grouped by dimensions: less detail than an export (no meters,
no resources), so every row is flagged ``aggregated:query_api``, but enough for the same schema.

The query runs once, at planning, through azure-mgmt-costmanagement (``query.usage`` with a
``QueryDefinition``: ActualCost, Custom time period, Daily granularity, grouping by ChargeType and
ServiceName by default, ``?group=`` to change it). ``query.usage`` does not follow ``nextLink``
itself, so this module re-posts the query with the link's ``$skiptoken`` until none is left.
Throttling (429) is retried by the SDK's retry policy, honouring Retry-After. The raw JSON is
parsed with numbers kept as text, so costs stay exact. The answer is cached as a Parquet file of
strings whose columns carry export header names (``Date``, ``Cost``, ``SubscriptionId``...), and
the Azure normalizer maps it like an export (format ``azure_cost_query``). BillingAccountId is the
subscription (the query's scope): reconciliation is per (subscription, month), and the billing
period is the calendar month of the usage date (flagged ``BillingPeriod:from_usage_date``).
The client authenticates as the source's service principal when it names credentials
(``--credentials secret://...``, `costflow.sources.credentials`), else DefaultAzureCredential.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from costflow.errors import ConfigError, SourceError
from costflow.providers.azure.cost_details import AMORTIZED_COST, DATASET, AzureQueryNormalizer
from costflow.sources import credentials as creds
from costflow.sources.contract import (
    Plan,
    PlanRequest,
    SourceCatalog,
    SourceFile,
    whole_months,
)
from costflow.sources.credentials import CredentialsRef

CONTAINER = "azure_query"
DEFAULT_GROUPS = ("ChargeType", "ServiceName")
# Query API result columns -> the export header the normalizer's alias table knows [PF §3.4].
_RENAME = {"usagedate": "Date", "cost": "Cost", "pretaxcost": "Cost", "costusd": "CostUSD",
           "currency": "BillingCurrency", "chargetype": "ChargeType",
           "servicename": "ServiceName", "resourcegroupname": "ResourceGroup",
           "resourcegroup": "ResourceGroup", "resourcelocation": "ResourceLocation",
           "metercategory": "MeterCategory", "metersubcategory": "MeterSubCategory",
           "pricingmodel": "PricingModel", "resourceid": "ResourceId",
           "reservationid": "ReservationId", "reservationname": "ReservationName",
           "subscriptionid": "SubscriptionId", "subscriptionname": "SubscriptionName",
           "resourcetype": "ResourceType", "publishertype": "PublisherType"}


@dataclass(frozen=True)
class QuerySourceFile(SourceFile):
    """A planned Query API answer, cached at ``cache_path``."""

    cache_path: str = ""


@dataclass(frozen=True)
class QuerySpec:
    scope: str
    subscription: str
    start: date
    end: date              # exclusive
    groups: tuple[str, ...]
    widened: bool = False  # the requested period was not whole months


def parse_uri(uri: str, today: date | None = None) -> QuerySpec:
    parsed = urlparse(uri)
    path = (parsed.netloc + parsed.path).strip("/")
    parts = path.split("/")
    if len(parts) != 2 or parts[0].lower() != "subscriptions" or not parts[1]:
        raise ConfigError(f"--source {uri!r}: expected azure-query://subscriptions/<id>.")
    query = parse_qs(parsed.query)
    start, end, widened = whole_months(uri, today)
    groups = tuple(query["group"][0].split(",")) if "group" in query else DEFAULT_GROUPS
    return QuerySpec(f"subscriptions/{parts[1]}", parts[1], start, end, groups, widened)


def default_client(credentials: CredentialsRef | None = None, uri: str | None = None):
    """A CostManagementClient: the source's service principal (``--credentials``), else
    DefaultAzureCredential (environment, managed identity, az login)."""
    from azure.mgmt.costmanagement import CostManagementClient

    if credentials is not None:
        return CostManagementClient(creds.azure_credential(credentials, uri))
    from azure.identity import DefaultAzureCredential

    return CostManagementClient(DefaultAzureCredential())


def _definition(spec: QuerySpec):
    from azure.mgmt.costmanagement import models as m

    last = datetime.combine(spec.end, datetime.min.time(), UTC)
    return m.QueryDefinition(
        type="ActualCost", timeframe="Custom",
        # The API's time period is inclusive of `to`: the last second before `end`.
        time_period=m.QueryTimePeriod(
            from_property=datetime.combine(spec.start, datetime.min.time(), UTC),
            to=datetime.fromtimestamp(last.timestamp() - 1, UTC)),
        dataset=m.QueryDataset(
            granularity="Daily",
            aggregation={"totalCost": m.QueryAggregation(name="Cost", function="Sum")},
            grouping=[m.QueryGrouping(type="Dimension", name=g) for g in spec.groups]))


def fetch(client: Any, spec: QuerySpec, credentials: CredentialsRef | None = None
          ) -> tuple[list[str], list[list[str | None]]]:
    """Every page of the query: (column names, rows as text), numbers kept exact."""
    definition = _definition(spec)
    params: dict[str, str] = {}
    names: list[str] | None = None
    rows: list[list[str | None]] = []
    while True:
        try:
            text = client.query.usage(spec.scope, definition, params=params,
                                      cls=lambda response, _model, _headers:
                                      response.http_response.text())
        except Exception as exc:
            raise _api_error(spec, exc, credentials) from None
        body = json.loads(text, parse_float=str, parse_int=str)
        props = body.get("properties") or {}
        page_names = [c["name"] for c in props.get("columns") or []]
        if names is None:
            names = page_names
        elif page_names and page_names != names:
            raise SourceError(f"azure-query://{spec.scope}", "pages of the answer have "
                              "different columns.", expected="the same columns on every page")
        rows += [[None if v is None else str(v) for v in row] for row in props.get("rows") or []]
        link = props.get("nextLink")
        if not link:
            return names or [], rows
        token = parse_qs(urlparse(link).query).get("$skiptoken")
        if not token:
            raise SourceError(link, "nextLink carries no $skiptoken.",
                              expected="a nextLink with $skiptoken")
        params = {"$skiptoken": token[0]}


def _api_error(spec: QuerySpec, exc: Exception,
               credentials: CredentialsRef | None = None) -> Exception:
    """One paragraph for what the Cost Management API or the credential chain answered."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    uri = f"azure-query://{spec.scope}"
    first = creds.scrub((str(getattr(exc, "message", "") or exc).strip().splitlines() or [
        type(exc).__name__])[0])
    if credentials is not None and (isinstance(exc, ClientAuthenticationError) or getattr(
            exc, "status_code", None) in (401, 403)):
        return SourceError(uri, f"Azure refused the credentials {credentials.uri} "
                                f"({type(exc).__name__}: {first}); nothing was read.",
                           expected="a service principal with the Cost Management Reader role "
                           f"on {spec.scope}: if its client secret was revoked or rotated, "
                           f"store the current one with `costflow secrets rotate "
                           f"{credentials.name} --from-file FILE`")
    if isinstance(exc, ClientAuthenticationError):
        return ConfigError(
            f"--source {uri}: Azure did not accept the credentials ({type(exc).__name__}: "
            f"{first}), so the Cost Management Query API was not asked. Sign in with az login, "
            "or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET (or a managed "
            "identity) for an identity with the Cost Management Reader role on "
            f"{spec.scope}, then rerun.")
    if isinstance(exc, HttpResponseError):
        status = getattr(exc, "status_code", None)
        hint = ("the identity needs the Cost Management Reader role on the subscription"
                if status == 403 else "a subscription id the identity can query")
        return SourceError(uri, f"the Cost Management Query API refused the query (HTTP "
                                f"{status}: {first}); nothing was read.", expected=hint)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return SourceError(uri, f"the Cost Management API could not be reached ({first}); "
                                "nothing was read.",
                           expected="a reachable management.azure.com: check the network, "
                           "proxy (HTTPS_PROXY) and firewall, then rerun")
    return exc


def to_table(spec: QuerySpec, names: list[str], rows: list[list[str | None]]) -> pa.Table:
    """Query rows as an export-shaped table of strings."""
    columns = {}
    for i, name in enumerate(names):
        values = [r[i] for r in rows]
        header = _RENAME.get(name.lower(), name)
        if header == "Date":  # UsageDate is a number such as 20240101 [PF §3.4]
            values = [f"{v[:4]}-{v[4:6]}-{v[6:8]}" if v else v for v in values]
        columns[header] = pa.array(values, pa.string())
    if "SubscriptionId" not in columns:
        columns["SubscriptionId"] = pa.array([spec.subscription] * len(rows), pa.string())
    return pa.table(columns)


def plan_query(pattern: str, request: PlanRequest,
               client: Any = None, cache_dir: str | None = None) -> Plan:
    """Run the query and plan its cached answer as one source."""
    provider = request.provider
    if provider not in (None, "azure"):
        raise ConfigError(f"--source {pattern!r} is an Azure source, but --provider {provider}"
                          " was given.")
    spec = parse_uri(pattern)
    names, rows = fetch(client or default_client(request.credentials, pattern), spec,
                        request.credentials)
    if not rows:
        return Plan(empty_files=[pattern])
    table = to_table(spec, names, rows)
    cache = cache_dir or os.path.abspath(os.path.join(".costflow", "cache", "azure-query"))
    os.makedirs(cache, exist_ok=True)
    digest = hashlib.sha256(json.dumps([names, rows]).encode()).hexdigest()
    path = os.path.join(cache, f"{digest}.parquet")
    pq.write_table(table, path)
    source = QuerySourceFile(
        uri=pattern, size_bytes=os.path.getsize(path), sha256=digest, container=CONTAINER,
        compression=None, columns=tuple(table.column_names),
        source_format=AzureQueryNormalizer.source_format, provider="azure",
        delivery_id=f"query:{spec.start.isoformat()}..{spec.end.isoformat()}",
        cache_path=path)
    notes = [f"{pattern}: Cost Management Query API, {len(rows):,} daily rows grouped by "
             f"{', '.join(spec.groups)}; aggregated, not line items (x_DataQualityFlags "
             "aggregated:query_api)"]
    if spec.widened:
        notes.append(f"{pattern}: read as whole months ({spec.start.isoformat()}.."
                     f"{spec.end.isoformat()}, never past tomorrow): a load replaces whole "
                     "billing periods")
    return Plan(files=[source], notes=notes)


def read_query(source: SourceFile,
               catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    if not isinstance(source, QuerySourceFile):
        raise TypeError(f"{source.uri}: not planned as a Query API source")
    table = pq.read_table(source.cache_path)
    row = 1
    for batch in table.to_batches(max_chunksize=16_384):
        n = batch.num_rows
        yield row, pa.RecordBatch.from_arrays(
            list(batch.columns) + [pa.repeat(pa.scalar("query"), n), pa.nulls(n, pa.string())],
            names=batch.schema.names + [DATASET, AMORTIZED_COST])
        row += n

