"""``aws-ce://[<payer-account-id>]?start=..&end=..``: the Cost Explorer API as a source.

Why this module exists: accounts without a CUR still have Cost Explorer. ``GetCostAndUsage``
[PF §2.6] gives daily cost per linked account and service, every metric: less detail than a CUR,
so every row is flagged ``aggregated:cost_explorer``, but enough for the same schema. It follows
the ``azure-query://`` pattern (`costflow.providers.azure.query_api`): the query runs once, at
planning; the answer is cached as a Parquet file of strings (amounts stay the API's exact text)
and read back by `read_ce` (the ``aws_ce`` container);
`costflow.providers.aws.cost_explorer` maps it.

Choices, because Cost Explorer is not an export:

* **Whole months.** A billing period is a calendar month and a load replaces the slice (payer,
  month). A query for part of a month would replace the whole month with part of it, so the
  period is widened to whole months (start to the 1st, end to the next 1st, but never past
  tomorrow, UTC: there is no cost after today). A plan note says when it was widened.
* **BillingAccountId.** GetCostAndUsage does not return the payer (management) account. It is
  the URI's host when given (``aws-ce://123456789012``), else the account of the caller
  (STS ``GetCallerIdentity``): Cost Explorer is normally queried from the management account,
  and from a member account it only shows that account, which is then its own billing account.
* **Pagination.** With GroupBy, answers are paged: ``NextPageToken`` is followed to the end.

The boto3 clients are built lazily; ``COSTFLOW_CE_ENDPOINT_URL`` points Cost Explorer and STS at
another endpoint (moto in tests). Credentials come from the source's reference
(``--credentials secret://...``, `costflow.sources.credentials`), else boto3's standard chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from costflow.errors import ConfigError, SourceError
from costflow.providers.aws.cost_explorer import (
    ACCOUNT_NAME,
    END,
    ESTIMATED,
    GROUP_KEYS,
    METRICS,
    PAYER,
    START,
    AwsCostExplorerNormalizer,
)
from costflow.sources import credentials as creds
from costflow.sources.contract import (
    Plan,
    PlanRequest,
    SourceCatalog,
    SourceFile,
    whole_months,
)
from costflow.sources.credentials import CredentialsRef

SCHEME = "aws-ce"
CONTAINER = "aws_ce"
ENDPOINT_ENV = "COSTFLOW_CE_ENDPOINT_URL"
REGION = "us-east-1"  # Cost Explorer's only endpoint (ce.us-east-1.amazonaws.com)
_ACCOUNT = re.compile(r"^\d{12}$")
COLUMNS = (START, END, ESTIMATED, *GROUP_KEYS, ACCOUNT_NAME, PAYER,
           *(name for m in METRICS for name in (m, f"{m}Unit")))


@dataclass(frozen=True)
class CeSourceFile(SourceFile):
    """A planned GetCostAndUsage answer, cached at ``cache_path``."""

    cache_path: str = ""


@dataclass(frozen=True)
class CeSpec:
    payer: str | None      # None: the caller's account (STS)
    start: date            # first day of a month
    end: date              # exclusive: the 1st of a month, or tomorrow
    widened: bool          # the requested period was not whole months


def parse_uri(uri: str, today: date | None = None) -> CeSpec:
    """The payer and the whole-month period of an ``aws-ce://`` URI."""
    parsed = urlparse(uri)
    payer = (parsed.netloc + parsed.path).strip("/") or None
    if payer is not None and not _ACCOUNT.match(payer):
        raise ConfigError(f"--source {uri!r}: expected aws-ce:// or aws-ce://<payer account id "
                          "(12 digits)>.")
    start, end, widened = whole_months(uri, today)
    return CeSpec(payer, start, end, widened)


def _client(service: str, credentials: CredentialsRef | None = None,
            uri: str | None = None) -> Any:
    """A client from the source's credentials reference, else boto3's standard chain."""
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - boto3 is a runtime dependency
        raise ConfigError("Reading aws-ce:// needs boto3 (pip install costflow).") from exc
    session = (boto3.session.Session() if credentials is None
               else creds.aws_session(credentials, uri))
    return session.client(service, region_name=REGION,
                          endpoint_url=os.environ.get(ENDPOINT_ENV) or None)


def request(spec: CeSpec) -> dict[str, Any]:
    """The GetCostAndUsage request: daily, every metric, by linked account and service."""
    return {"TimePeriod": {"Start": spec.start.isoformat(), "End": spec.end.isoformat()},
            "Granularity": "DAILY", "Metrics": list(METRICS),
            "GroupBy": [{"Type": "DIMENSION", "Key": key} for key in GROUP_KEYS]}


def _api_error(uri: str, exc: Exception,
               credentials: CredentialsRef | None = None) -> Exception:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, NoCredentialsError):
        return ConfigError(f"--source {uri!r}: no AWS credentials found (environment, "
                           "~/.aws, instance role); Cost Explorer needs ce:GetCostAndUsage.")
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or "")
        text = str(err.get("Message") or "").strip()
        text = "" if text.startswith("<") else (text.splitlines() or [""])[0]  # an HTML/XML body
        said = creds.scrub(f"{code}: {text}" if text else
                           f"HTTP {code}" if code.isdigit() else code)
        if credentials is not None:
            return SourceError(uri, f"Cost Explorer refused the query with the credentials "
                                    f"{credentials.uri}: {said}.",
                               expected="credentials allowed ce:GetCostAndUsage for the "
                               "period: if the keys were revoked or rotated, store the current "
                               f"ones with `costflow secrets rotate {credentials.name} "
                               "--from-file FILE`")
        return SourceError(uri, f"Cost Explorer refused the query: {said}.",
                           expected="credentials allowed ce:GetCostAndUsage for the period")
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError
                  | ConnectionClosedError):
        endpoint = os.environ.get(ENDPOINT_ENV)
        where = (f"{endpoint} (from {ENDPOINT_ENV})" if endpoint
                 else f"the Cost Explorer endpoint of {REGION}")
        fix = (f"unset {ENDPOINT_ENV} or point it at a running endpoint" if endpoint else
               "check the network, proxy (HTTPS_PROXY) and firewall of this machine")
        return SourceError(uri, f"Cost Explorer could not be reached at {where}: "
                                f"{_first_line(exc)}; nothing was read.",
                           expected=f"a reachable Cost Explorer API: {fix}, then rerun")
    if isinstance(exc, BotoCoreError):
        return ConfigError(f"--source {uri!r}: the AWS client failed before Cost Explorer "
                           f"answered: {_first_line(exc)}. Check the AWS configuration "
                           "(credentials, profile, region settings) and rerun.")
    return exc


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def fetch(client: Any, spec: CeSpec, uri: str, credentials: CredentialsRef | None = None
          ) -> tuple[list[dict[str, str | None]], int]:
    """Every page of the answer as flat rows of text (see COLUMNS), and the number of pages."""
    body = request(spec)
    rows: list[dict[str, str | None]] = []
    pages = 0
    while True:
        try:
            answer = client.get_cost_and_usage(**body)
        except Exception as exc:
            raise _api_error(uri, exc, credentials) from None
        pages += 1
        names = {a.get("Value"): (a.get("Attributes") or {}).get("description")
                 for a in answer.get("DimensionValueAttributes") or []}
        for result in answer.get("ResultsByTime") or []:
            period = result.get("TimePeriod") or {}
            for group in result.get("Groups") or []:
                rows.append(_row(uri, period, result.get("Estimated"), group, names))
        token = answer.get("NextPageToken")
        if not token:
            return rows, pages
        body = {**body, "NextPageToken": token}


def _row(uri: str, period: dict[str, str], estimated: object, group: dict[str, Any],
         names: dict[str, str | None]) -> dict[str, str | None]:
    keys = group.get("Keys") or []
    if len(keys) != len(GROUP_KEYS):
        raise SourceError(uri, f"a group has keys {keys}, not one per GroupBy "
                               f"({', '.join(GROUP_KEYS)}).",
                          expected="Keys [<linked account>, <service>]")
    row: dict[str, str | None] = {
        START: period.get("Start"), END: period.get("End"),
        ESTIMATED: None if estimated is None else str(bool(estimated)).lower(),
        **dict(zip(GROUP_KEYS, keys, strict=True)),
        ACCOUNT_NAME: names.get(keys[0]) or None}
    metrics = group.get("Metrics") or {}
    for metric in METRICS:
        value = metrics.get(metric) or {}
        amount = value.get("Amount")
        # Amounts are strings [PF §2.6]; kept as text so the decimal stays exact.
        row[metric] = None if amount is None else str(amount)
        row[f"{metric}Unit"] = value.get("Unit")
    return row


def payer_account(spec: CeSpec, sts: Any, uri: str,
                  credentials: CredentialsRef | None = None) -> str:
    if spec.payer:
        return spec.payer
    try:
        return str(sts.get_caller_identity()["Account"])
    except Exception as exc:
        raise _api_error(uri, exc, credentials) from None


def plan_ce(pattern: str, request: PlanRequest,
            client: Any = None, sts: Any = None, cache_dir: str | None = None,
            today: date | None = None) -> Plan:
    """Run the query and plan its cached answer as one source."""
    provider = request.provider
    if provider not in (None, "aws"):
        raise ConfigError(f"--source {pattern!r} is an AWS source, but --provider {provider}"
                          " was given.")
    spec = parse_uri(pattern, today)
    ref = request.credentials
    rows, pages = fetch(client or _client("ce", ref, pattern), spec, pattern, ref)
    if not rows:
        return Plan(empty_files=[pattern])
    payer = payer_account(spec, sts or (None if spec.payer else _client("sts", ref, pattern)),
                          pattern, ref)
    for row in rows:
        row[PAYER] = payer
    table = pa.table({name: pa.array([r.get(name) for r in rows], pa.string())
                      for name in COLUMNS})
    cache = cache_dir or os.path.abspath(os.path.join(".costflow", "cache", SCHEME))
    os.makedirs(cache, exist_ok=True)
    digest = hashlib.sha256(json.dumps(table.to_pydict(), sort_keys=True).encode()).hexdigest()
    path = os.path.join(cache, f"{digest}.parquet")
    pq.write_table(table, path)
    period = f"{spec.start.isoformat()}..{spec.end.isoformat()}"
    source = CeSourceFile(
        uri=pattern, size_bytes=os.path.getsize(path), sha256=digest, container=CONTAINER,
        compression=None, columns=COLUMNS, source_format=AwsCostExplorerNormalizer.source_format,
        provider="aws", delivery_id=f"ce:{period}", delivery=f"{SCHEME}://{payer}/{period}",
        cache_path=path)
    notes = [f"{pattern}: Cost Explorer GetCostAndUsage for payer {payer}, {period} "
             f"(exclusive), {len(rows):,} daily rows by linked account and service in "
             f"{pages} page(s); aggregated, not line items (x_DataQualityFlags "
             "aggregated:cost_explorer)"]
    if spec.widened:
        notes.append(f"{pattern}: read as whole months ({period}, never past tomorrow): a "
                     "load replaces whole billing periods")
    return Plan(files=[source], notes=notes)


def read_ce(source: SourceFile,
            catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    if not isinstance(source, CeSourceFile):
        raise TypeError(f"{source.uri}: not planned as a Cost Explorer source")
    row = 1
    for batch in pq.read_table(source.cache_path).to_batches(max_chunksize=16_384):
        yield row, batch
        row += batch.num_rows

