"""AWS Compute Optimizer rightsizing recommendations -> the provider-neutral recommendations table.

Why this module exists: Compute Optimizer is where AWS says which EC2 instances, EBS volumes and
Lambda functions are the wrong size, and what changing them would save. This module is only the
fetcher (`costflow.recommendations` stores what it returns, replacing the previous fetch):

    costflow recommendations fetch --provider aws --scope region=us-east-1 [--scope region=...]

Per region in the scope (default: the session's region, else us-east-1) it pages through
GetEC2InstanceRecommendations, GetEBSVolumeRecommendations and GetLambdaFunctionRecommendations
(``nextToken``) [PF §2.7]. Choices:

* ``finding`` is matched case-insensitively ignoring ``_``: the model's ``Overprovisioned`` and the
  live API's ``OVER_PROVISIONED`` are the same finding [PF §2.7 gotcha].
* One row per resource, from its top-ranked option (lowest ``rank``): recommended configuration,
  and ``savingsOpportunity.estimatedMonthlySavings`` with its currency (the API gives a double;
  its shortest decimal text is stored, e.g. 70.08). The option after discounts and the whole
  record stay in ``details``.
* Resources found *Optimized* (and Lambda's *Unavailable*) are not stored: there is nothing to do,
  and a row claiming 0 savings would only crowd the list. Under-provisioned ones are stored
  (state active): the fix usually costs more, which their savings (null or negative) show.
* ``source`` is per kind *and region* (``aws.compute_optimizer.ec2/us-east-1``), so fetching one
  region replaces that region's recommendations and leaves the others alone.

Clients are built lazily per region; ``COSTFLOW_COMPUTE_OPTIMIZER_ENDPOINT_URL`` overrides the
endpoint. [PF §2.7] = ../shared/reference/provider_formats.md §2.7.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from costflow.errors import ConfigError, SourceError
from costflow.recommendations import FetchRequest, FetchResult, rows_from_records

log = logging.getLogger(__name__)
ENDPOINT_ENV = "COSTFLOW_COMPUTE_OPTIMIZER_ENDPOINT_URL"
DEFAULT_REGION = "us-east-1"
# Findings that need no action (after normalize_finding) are not stored.
_NO_ACTION = {"optimized", "unavailable"}


def normalize_finding(finding: str | None) -> str:
    """``OVER_PROVISIONED`` and ``Overprovisioned`` -> ``overprovisioned`` [PF §2.7]."""
    return (finding or "").replace("_", "").replace(" ", "").lower()


# Display spelling of each finding, whatever the API sent.
_FINDING_LABEL = {"overprovisioned": "Overprovisioned", "underprovisioned": "Underprovisioned",
                  "notoptimized": "Not optimized"}


@dataclass(frozen=True)
class _Kind:
    """One Compute Optimizer resource kind: its operation and where its fields are."""

    name: str                  # source suffix: aws.compute_optimizer.<name>/<region>
    operation: str             # boto3 method
    items: str                 # list key of the answer
    arn: str
    options: str
    category: str              # recommendations category
    resource_type: str
    current: Callable[[Mapping[str, Any]], str | None]
    recommended: Callable[[Mapping[str, Any]], str | None]


def _volume(config: Mapping[str, Any] | None) -> str | None:
    if not config:
        return None
    iops = config.get("volumeBaselineIOPS")
    return (f"{config.get('volumeType')} {config.get('volumeSize')} GiB"
            + (f", {iops} IOPS" if iops else ""))


KINDS = (
    # GetEC2InstanceRecommendations: currentInstanceType -> recommendationOptions[].instanceType.
    _Kind("ec2", "get_ec2_instance_recommendations", "instanceRecommendations", "instanceArn",
          "recommendationOptions", "compute", "Virtual Machine",
          lambda r: r.get("currentInstanceType"), lambda o: o.get("instanceType")),
    # GetEBSVolumeRecommendations: currentConfiguration -> volumeRecommendationOptions[]
    # .configuration (type, size, IOPS).
    _Kind("ebs", "get_ebs_volume_recommendations", "volumeRecommendations", "volumeArn",
          "volumeRecommendationOptions", "storage", "Block Storage Volume",
          lambda r: _volume(r.get("currentConfiguration")),
          lambda o: _volume(o.get("configuration"))),
    # GetLambdaFunctionRecommendations: currentMemorySize -> memorySizeRecommendationOptions[]
    # .memorySize (MB).
    _Kind("lambda", "get_lambda_function_recommendations", "lambdaFunctionRecommendations",
          "functionArn", "memorySizeRecommendationOptions", "compute", "Serverless Function",
          lambda r: f"{r['currentMemorySize']} MB" if r.get("currentMemorySize") else None,
          lambda o: f"{o['memorySize']} MB" if o.get("memorySize") else None),
)


def source_name(kind: _Kind, region: str) -> str:
    return f"aws.compute_optimizer.{kind.name}/{region}"


def _pages(client: Any, kind: _Kind, region: str) -> Iterator[dict[str, Any]]:
    """Every recommendation of one kind in one region, following ``nextToken``."""
    args: dict[str, Any] = {}
    while True:
        try:
            answer = getattr(client, kind.operation)(**args)
        except Exception as exc:
            raise _api_error(f"{kind.operation} in {region}", exc) from exc
        for error in answer.get("errors") or []:
            log.warning("Compute Optimizer %s %s: %s %s", kind.name, error.get("identifier"),
                        error.get("code"), error.get("message"))
        yield from answer.get(kind.items) or []
        token = answer.get("nextToken")
        if not token:
            return
        args = {**args, "nextToken": token}


def _api_error(what: str, exc: Exception) -> Exception:
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return ConfigError(f"Compute Optimizer {what}: no AWS credentials found (environment, "
                           "~/.aws, instance role).")
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return SourceError(f"compute-optimizer:{what}", f"the API refused the request: "
                           f"{err.get('Code')}: {err.get('Message')}.",
                           expected="an account opted in to Compute Optimizer, with "
                                    "compute-optimizer:Get*Recommendations allowed")
    return exc


def _savings(option: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    money = (option.get("savingsOpportunity") or {}).get("estimatedMonthlySavings") or {}
    value = money.get("value")
    # A double in the API: its shortest decimal text (repr) is what AWS meant, e.g. 70.08.
    return (None if value is None else Decimal(repr(float(value))), money.get("currency"))


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def to_record(kind: _Kind, rec: Mapping[str, Any], region: str) -> dict[str, Any] | None:
    """One recommendations row from an API item, or None when there is nothing to do."""
    finding = normalize_finding(rec.get("finding"))
    options = sorted(rec.get(kind.options) or [], key=lambda o: o.get("rank", 1 << 30))
    if finding in _NO_ACTION or not options:
        return None
    top = options[0]
    arn = rec[kind.arn]
    current, target = kind.current(rec), kind.recommended(top)
    savings, currency = _savings(top)
    label = _FINDING_LABEL.get(finding, str(rec.get("finding")))
    reasons = ", ".join(rec.get("findingReasonCodes") or [])
    return {
        "recommendation_id": f"{arn}#{target}",
        "source": source_name(kind, region),
        "category": kind.category,
        "SubAccountId": rec.get("accountId"),
        "RegionId": _arn_region(arn) or region,
        "ResourceId": arn,
        "ResourceName": rec.get("instanceName"),
        "ResourceType": kind.resource_type,
        "description": f"{label}: change {current} to {target}"
                       + (f" ({reasons})" if reasons else ""),
        "current_configuration": current,
        "recommended_configuration": target,
        "estimated_monthly_savings": savings,
        "savings_currency": currency,
        "state": "active",
        "last_refreshed_at": _utc(rec.get("lastRefreshTimestamp")),
        "details": {"finding": rec.get("finding"), "top_option": top, "record": rec},
    }


def _arn_region(arn: str) -> str | None:
    """arn:aws:<service>:<region>:<account>:<resource>."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None


def _client(region: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        "compute-optimizer", region_name=region,
        endpoint_url=os.environ.get(ENDPOINT_ENV) or None)


def _regions(scope: Mapping[str, list[str]]) -> list[str]:
    unknown = set(scope) - {"region"}
    if unknown:
        raise ConfigError(f"--scope {sorted(unknown)[0]}=...: Compute Optimizer takes "
                          "region=<region> (repeat for more regions).")
    if scope.get("region"):
        return sorted(set(scope["region"]))
    import boto3

    return [boto3.session.Session().region_name or DEFAULT_REGION]


def fetch_with(clients: Callable[[str], Any], request: FetchRequest) -> FetchResult:
    """Fetch every kind in every region of the scope, with ``clients(region)``."""
    records: list[dict[str, Any]] = []
    sources: list[str] = []
    for region in _regions(request.scope):
        client = clients(region)
        for kind in KINDS:
            for rec in _pages(client, kind, region):
                row = to_record(kind, rec, region)
                if row is not None:
                    records.append(row)
            sources.append(source_name(kind, region))
    return FetchResult(rows_from_records(records, request), sources)


def fetch(request: FetchRequest) -> FetchResult:
    return fetch_with(_client, request)
