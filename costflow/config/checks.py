"""The value checks of costflow.yaml: ids, cron schedules, currencies, URIs and store URLs.

Each check returns the value or raises `ValueError` with a sentence saying what is wrong and
what to write instead; the models (`costflow.config.models`) call them from field validators,
and the loader puts the file, line and key in front. A message repeats a value only when it
cannot hold a secret (an id, a scheme); URIs and URLs are described, never echoed whole,
because a pasted URL may carry a token.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from costflow.config import known
from costflow.config.currencies import ISO_4217
from costflow.errors import ConfigError

TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}", re.ASCII)
ACCOUNT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}", re.ASCII)
SOURCE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}", re.ASCII)
FORMAT = re.compile(r"[a-z0-9_]{1,64}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# costflow.warehouse.bigquery_engine's PROJECT_ID / DATASET_ID (a test keeps them equal).
_BQ_PROJECT = re.compile(r"^(?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_BQ_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")

# One cron field: items separated by ",", each "*", a number or a 3-letter name, an optional
# "-" range end and an optional "/" step. No "?", "L", "W" or "#": the crontab, Cloud Scheduler
# and Airflow renderings of a schedule must all read the same expression.
_ATOM = r"(?:\*|[0-9]{1,2}|[A-Za-z]{3})"
_ITEM = rf"{_ATOM}(?:-{_ATOM})?(?:/[0-9]{{1,2}})?"
_CRON_FIELD = re.compile(rf"{_ITEM}(?:,{_ITEM})*", re.ASCII)
CRON_HELP = ("a cron schedule has five fields, minute hour day-of-month month day-of-week, in "
             "UTC (e.g. \"0 6 * * *\" is 06:00 every day)")


def tenant_id(value: str) -> str:
    if not TENANT_ID.fullmatch(value):
        raise ValueError("a tenant id is 1-63 characters: lower-case letters, digits and '-', "
                         "starting with a letter or digit (e.g. acme, acme-eu)")
    return value


def account_id(value: str) -> str:
    """A billing account / subscription / payer id, safe as a metadata document id."""
    if (not ACCOUNT_ID.fullmatch(value) or value in (".", "..")
            or (value.startswith("__") and value.endswith("__"))):
        raise ValueError("an account id is 1-128 characters of letters, digits, '.', '_' and "
                         "'-' (not '.', '..' or __name__), as the provider spells it, e.g. "
                         "\"123456789012\" or \"01338E-BE3FD6-363B4C\"")
    return value


def source_id(value: str) -> str:
    if not SOURCE_ID.fullmatch(value):
        raise ValueError("a source id is 1-63 characters: lower-case letters, digits, '-' and "
                         "'_', starting with a letter or digit (e.g. cur, focus-daily)")
    return value


def source_format(value: str, provider: str | None) -> str:
    formats = known.FORMATS.get(provider or "", ()) if provider else tuple(
        f for fs in known.FORMATS.values() for f in fs)
    if not FORMAT.fullmatch(value) or value not in formats:
        raise ValueError(f"is not an export format of {provider or 'any provider'}; known: "
                         f"{', '.join(formats)} (or leave format out: the ingest detects it "
                         "from the file's columns)")
    return value


def currency(value: str) -> str:
    if value not in ISO_4217:
        hint = " (codes are upper case)" if value.upper() in ISO_4217 else ""
        raise ValueError(f"is not an ISO 4217 currency code{hint}; write three capital "
                         "letters such as USD or EUR")
    return value


def cron(value: str) -> str:
    """A five-field cron expression that croniter, Cloud Scheduler and Airflow all accept."""
    fields = value.split()
    if value.startswith("@"):
        raise ValueError(f"cron macros such as @daily are not accepted: {CRON_HELP}")
    if len(fields) != 5:
        raise ValueError(f"has {len(fields)} field(s): {CRON_HELP}")
    bad = [i for i, f in enumerate(fields) if not _CRON_FIELD.fullmatch(f)]
    from croniter import croniter

    if bad or not croniter.is_valid(" ".join(fields)):
        names = ("minute", "hour", "day-of-month", "month", "day-of-week")
        which = f" (look at the {names[bad[0]]} field)" if bad else ""
        raise ValueError(f"is not a valid cron schedule{which}: {CRON_HELP}; fields take "
                         "*, numbers, ranges a-b, steps */n and lists a,b")
    return " ".join(fields)


def uri_scheme(uri: str) -> str | None:
    return uri.split("://", 1)[0].lower() if "://" in uri else None


def source_uri(value: str) -> str:
    """A local path or glob, or a URI whose scheme a provider reads (not checked for
    existence: the ingest says when nothing is there, naming the account)."""
    if not value.strip() or value != value.strip():
        raise ValueError("a source must be a path, glob or URI without surrounding spaces")
    if _CONTROL.search(value):
        raise ValueError("a source must not contain control characters (a line break?)")
    found = uri_scheme(value)
    if found is not None and found not in known.SCHEMES:
        schemes = ", ".join(f"{s}://" for s in known.SCHEMES)
        raise ValueError(f"no reader for {found[:20]}:// locations; a source is a local "
                         f"path or glob (e.g. exports/aws/**/*.csv.gz) or one of {schemes}")
    return value


def warehouse_url(value: str) -> str:
    """The forms `costflow.warehouse.connect` accepts, checked without importing an engine."""
    accepted = ("accepted: duckdb:///relative/path.duckdb, duckdb:////absolute/path.duckdb, "
                "duckdb:///:memory: and bigquery://PROJECT/DATASET")
    if value.startswith("duckdb:///"):
        path = value[len("duckdb:///"):]
        if not path or path.endswith("/") or "?" in path or "#" in path:
            raise ValueError(f"does not name a DuckDB file; {accepted}")
        return value
    if value.startswith("bigquery://"):
        parts = urlsplit(value)
        dataset = parts.path.strip("/")
        if (not parts.netloc or not dataset or "/" in dataset or parts.query
                or parts.fragment or not _BQ_PROJECT.match(parts.netloc)
                or not _BQ_DATASET.match(dataset)):
            raise ValueError(f"does not name a BigQuery dataset (a project id is 6-30 "
                             "lower-case letters, digits or dashes, a dataset id letters, "
                             f"digits or underscores); {accepted}")
        return value
    raise ValueError(f"is not a warehouse URL; {accepted}")


def secrets_url(value: str) -> str:
    """A URL `costflow.secrets.connect` accepts (it builds a backend object, opens nothing)."""
    from costflow import secrets

    try:
        secrets.connect(value)
    except ConfigError as err:
        raise ValueError(_without_url(str(err), value)) from None
    return value


def metadata_url(value: str) -> str:
    """A URL `costflow.metadata.check_url` accepts (it opens nothing)."""
    from costflow.metadata import check_url

    try:
        check_url(value)
    except ConfigError as err:
        raise ValueError(_without_url(str(err), value)) from None
    return value


def _without_url(message: str, url: str) -> str:
    """A message of another module with the URL (which may carry a token) cut out."""
    return message.replace(repr(url[:120]), "the URL").replace(repr(url), "the URL")
