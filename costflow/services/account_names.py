"""Sub-account display names kept in the warehouse, for bills that carry ids only.

Why: FOCUS SubAccountName MUST be set when SubAccountId is (SubAccountName-C-005-C), and the
legacy AWS CUR has account ids only. Names come from the provider's own directory (AWS
Organizations `ListAccounts`, the provider's ``account_names`` fetcher) or from a user's CSV
mapping (``account_id,account_name``); they are stored in `account_names` per (provider,
account id, source) and the FOCUS views (`costflow.schemas.render`) fill SubAccountName from
them where the bill has none, a mapping's name first. Cost rows are never rewritten, so names
loaded later apply to every earlier load, and a name is never made up from the id.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from costflow.errors import ConfigError, SourceError
from costflow.providers import NAMES
from costflow.warehouse import sqlfiles
from costflow.warehouse.base import Warehouse

MAPPING = "mapping"  # the source name of a user's CSV mapping (wins in the views)
_SOURCE = re.compile(r"^[a-z][a-z0-9_.:-]{0,39}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME = 256
CSV_COLUMNS = ("account_id", "account_name")


def store_account_names(warehouse: Warehouse, provider: str, names: Mapping[str, str],
                        source: str) -> int:
    """Store ``names`` ({account id: name}) of ``provider`` from ``source``; returns rows.

    Each account id's earlier name from the same source is replaced, in one transaction.

    Raises:
        ConfigError: an unknown provider, a bad source name, or an id/name that is empty, has
            control characters, is longer than 256 characters, or a name equal to its id.
    """
    if provider not in NAMES:
        raise ConfigError(f"unknown provider {provider!r}: one of {', '.join(NAMES)}.")
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise ConfigError(f"account-name source {source!r} must be lowercase letters, digits "
                          "and _.:- (e.g. mapping, aws-directory).")
    for account_id, name in names.items():
        _check(account_id, "account id", account_id)
        _check(name, "account name", account_id)
        if name == account_id:
            raise ConfigError(f"account {account_id}: its name is its id; a name is never "
                              "made up from the id (leave the account out instead).")
    if not names:
        return 0
    warehouse.ensure_schema()
    script = sqlfiles.transaction_script("load/upsert_account_names.sql")
    ids = sorted(names)
    warehouse.query(script, {"provider": provider, "source": source, "account_ids": ids,
                             "account_names": [names[i] for i in ids]})
    return len(ids)


def read_mapping(path: str | Path) -> dict[str, str]:
    """{account id: name} from a CSV with the header ``account_id,account_name``.

    Raises:
        SourceError: naming the file, row and column of a missing header, an empty value, or
            an account id listed twice with different names.
    """
    where = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return _read_rows(where, csv.DictReader(handle))
    except OSError as err:
        raise SourceError(where, f"cannot be read: {err.strerror or err}.") from None


def _read_rows(where: str, reader: csv.DictReader) -> dict[str, str]:
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise SourceError(where, f"has no {', '.join(missing)} column (header: {header}).",
                          row=1, expected="a header account_id,account_name")
    names: dict[str, str] = {}
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        account_id, name = row["account_id"], row["account_name"]
        for column, value in (("account_id", account_id), ("account_name", name)):
            if not value:
                raise SourceError(where, "is empty.", row=number, column=column,
                                  expected="an account id and its display name")
        if names.get(account_id, name) != name:
            raise SourceError(where, f"lists account {account_id} again with another name "
                              f"({names[account_id]!r}, then {name!r}).", row=number,
                              column="account_name")
        names[account_id] = name
    return names


def fetch_account_names(provider: str, credentials: Any = None) -> dict[str, str]:
    """The provider's directory's names ({id: name}); ConfigError when it has none."""
    from costflow.providers import CATALOG

    fetcher = CATALOG.provider(provider).account_names
    if fetcher is None:
        raise ConfigError(f"provider {provider} has no account directory costflow can read: "
                          "load names from a CSV instead (--from-csv FILE).")
    return fetcher(credentials)


def directory_source(provider: str) -> str:
    """The source name of names from ``provider``'s own directory (e.g. aws-directory)."""
    return f"{provider}-directory"


def list_account_names(warehouse: Warehouse, provider: str | None = None) -> list[dict]:
    """Stored names, the one the views use first per account."""
    warehouse.ensure_schema()
    sql = sqlfiles.load("queries/account_names.sql")[0].bigquery()
    return warehouse.query(sql, {"provider": provider}).to_pylist()


def _check(value: Any, what: str, account_id: Any) -> None:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ConfigError(f"account {account_id!r}: the {what} {value!r} must be non-empty "
                          "text without surrounding spaces.")
    if _CONTROL.search(value) or len(value) > MAX_NAME:
        raise ConfigError(f"account {account_id!r}: the {what} has control characters or is "
                          f"longer than {MAX_NAME} characters.")
