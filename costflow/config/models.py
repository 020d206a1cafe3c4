"""The costflow.yaml models: tenants, their cloud accounts and each account's sources.

Frozen pydantic models with ``extra="forbid"``, so a typo'd key is an error rather than a
setting silently ignored. Field checks live in `costflow.config.checks`; the checks that span
fields (a tenant an account names exists, ids are unique, a bq:// option is only on a bq://
source) are model validators that report each problem at its own key path (`Problems`).
`costflow.config.loader` reads the file into these models and names file and line.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_serializer,
    model_validator,
)

from costflow.config import checks, known
from costflow.config.allocation import AllocationSettings
from costflow.config.budgets import Budget, parse_budgets
from costflow.config.compute import ComputeConfig, ComputeSettings
from costflow.config.problems import Problems
from costflow.errors import ConfigError
from costflow.providers import NAMES

SECRET_SCHEME = "secret://"
DEFAULT_WAREHOUSE = "duckdb:///.costflow/warehouse.duckdb"   # costflow.warehouse.DEFAULT_URL
DEFAULT_SECRETS = "local:///.costflow/secrets"               # costflow.secrets.DEFAULT_URL
DEFAULT_METADATA = "local:///.costflow/metadata.sqlite"      # costflow.metadata default
DEFAULT_SCHEDULE = "0 6 * * *"

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class SecretRef(BaseModel):
    """A reference to a secret in the store (``secret://cloud-creds/acme/aws``), never a value."""

    model_config = _FROZEN

    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        from costflow.secrets.names import validate_name

        try:
            return validate_name(value)
        except ConfigError as err:
            raise ValueError(str(err)) from None

    @property
    def uri(self) -> str:
        return SECRET_SCHEME + self.name

    @model_serializer
    def _as_uri(self) -> str:
        """Dumped as written in costflow.yaml, so a dump validates back to the same config."""
        return self.uri

    @classmethod
    def parse(cls, value: object) -> SecretRef:
        """``secret://NAME`` as a reference; anything else is refused without being echoed."""
        if isinstance(value, SecretRef):
            return value
        if not isinstance(value, str) or not value.startswith(SECRET_SCHEME):
            raise ValueError(
                "must be a reference to the secret store, secret://NAME (e.g. "
                "secret://cloud-creds/acme/aws), not the credentials themselves (the value is "
                "not shown); store them with `costflow secrets set cloud-creds/TENANT/PROVIDER "
                "--from-file FILE` and write that name here")
        name = value[len(SECRET_SCHEME):]
        cls._name(name)  # the error at the credentials key itself, not at a "name" key
        return cls(name=name)


class SyncSettings(BaseModel):
    """How `costflow sync` runs."""

    model_config = _FROZEN

    parallel: int = Field(default=2, ge=1, le=64)
    schedule: str = DEFAULT_SCHEDULE
    stale_after_hours: int = Field(default=36, ge=1)
    lock_stale_seconds: int = Field(default=21600, ge=60)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return checks.cron(value)


def _plain(value: Any, where: str) -> Any:
    """A free-form value as the metadata store keeps it: no float (money is exact)."""
    if isinstance(value, float):
        raise ValueError(f"{where} is a decimal number; write it as text (\"1250.50\") so it "
                         "stays exact, as money must")
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, date):  # an unquoted YAML date: kept as its ISO text
        return value.isoformat()
    return value


class TenantConfig(BaseModel):
    """A business unit, and the accounts and projects whose costs it may read."""

    model_config = _FROZEN

    id: str
    display_name: str | None = None
    billing_accounts: tuple[str, ...] = ()
    sub_accounts: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    settings: dict[str, Any] = Field(default_factory=dict)
    policies: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return checks.tenant_id(value)

    @field_validator("billing_accounts", "sub_accounts", "projects")
    @classmethod
    def _ids(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not value.strip() or checks._CONTROL.search(value):
                raise ValueError("ids must be non-empty text without control characters")
        return values

    @field_validator("settings", "policies")
    @classmethod
    def _free_form(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {k: _plain(v, k) for k, v in value.items()}

    @model_validator(mode="after")
    def _budgets(self) -> TenantConfig:
        parse_budgets(self.policies)  # Problems at policies.budgets[i].<key>
        return self

    @property
    def budgets(self) -> tuple[Budget, ...]:
        """The budgets declared in ``policies.budgets`` (`costflow.config.budgets`)."""
        return parse_budgets(self.policies)


class SourceConfig(BaseModel):
    """One export location of an account, and the `costflow ingest` flags it is read with."""

    model_config = _FROZEN

    uri: str
    id: str
    format: str | None = None
    billing_currency: str | None = None
    start: date | None = None
    end: date | None = None
    lookback_days: int | None = Field(default=None, ge=0, le=366)
    authorized_projects: tuple[str, ...] = ()
    _provider: str | None = PrivateAttr(default=None)

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        return checks.source_uri(value)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return checks.source_id(value)

    @field_validator("billing_currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else checks.currency(value)

    @model_validator(mode="after")
    def _consistent(self) -> SourceConfig:
        problems = Problems()
        scheme = checks.uri_scheme(self.uri)
        if self.start and self.end and self.start >= self.end:
            problems.add(("end",), "must be after start (end is exclusive)")
        if (self.start or self.end) and scheme not in known.PERIOD_SCHEMES:
            problems.add(("start",) if self.start else ("end",),
                         "only API sources (" + ", ".join(f"{s}://" for s in
                                                         known.PERIOD_SCHEMES)
                         + ") take a period; files say their own period")
        if scheme not in known.BIGQUERY_SCHEMES:
            for key in ("lookback_days", "authorized_projects"):
                if getattr(self, key):
                    problems.add((key,), "is read only for bq:// sources (the BigQuery "
                                 "billing export)")
        problems.raise_if_any()
        return self

    @property
    def provider(self) -> str | None:
        """The provider of the account this source belongs to (set when the account is built)."""
        return self._provider

    def ingest_argv(self) -> list[str]:
        """The `costflow ingest` flags for this source (credentials are the account's, and
        travel as a ``--credentials secret://...`` reference added by the caller)."""
        argv = [f"--source={self.uri}"]
        if self._provider:
            argv.append(f"--provider={self._provider}")
        for flag, value in (("format", self.format), ("billing-currency", self.billing_currency),
                            ("start", self.start), ("end", self.end),
                            ("lookback-days", self.lookback_days)):
            if value is not None:
                argv.append(f"--{flag}={value}")
        argv += [f"--authorized-project={p}" for p in self.authorized_projects]
        return argv


class AccountConfig(BaseModel):
    """A cloud billing account (AWS payer, GCP billing account, Azure billing account or
    subscription) of one tenant, with the sources its costs are loaded from."""

    model_config = _FROZEN

    id: str
    provider: str
    tenant: str
    name: str | None = None
    credentials: SecretRef | None = None
    schedule: str | None = None
    sources: tuple[SourceConfig, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _source_ids(cls, data: Any) -> Any:
        """A source without an id gets ``source-N`` (its position, from 1)."""
        if not isinstance(data, dict) or not isinstance(data.get("sources"), list | tuple):
            return data
        sources = [dict(s, id=f"source-{i}") if isinstance(s, dict) and "id" not in s else s
                   for i, s in enumerate(data["sources"], start=1)]
        return {**data, "sources": sources}

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return checks.account_id(value)

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        if value not in NAMES:
            raise ValueError(_unknown("provider", value, NAMES, ", ".join(NAMES)).rstrip("."))
        return value

    @field_validator("credentials", mode="before")
    @classmethod
    def _credentials(cls, value: object) -> SecretRef | None:
        return None if value is None else SecretRef.parse(value)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else checks.cron(value)

    @model_validator(mode="after")
    def _sources(self) -> AccountConfig:
        problems = Problems()
        if not self.sources:
            problems.add(("sources",), "lists no source; add at least one (- uri: PATH or URI)")
        seen: dict[str, int] = {}
        for i, source in enumerate(self.sources):
            if source.id in seen:
                problems.add(("sources", i, "id"), f"source id {source.id} is used twice in "
                             f"this account (also sources[{seen[source.id]}]); give each "
                             "source its own id")
            seen.setdefault(source.id, i)
            if source.format is not None:
                try:
                    checks.source_format(source.format, self.provider)
                except ValueError as err:
                    problems.add(("sources", i, "format"), str(err))
            owner = known.SCHEMES.get(checks.uri_scheme(source.uri) or "")
            if owner is not None and owner != self.provider:
                problems.add(("sources", i, "uri"), f"a {owner} location in a {self.provider} "
                             f"account; put it under a {owner} account (or fix provider)")
            source._provider = self.provider
        problems.raise_if_any()
        return self

    @property
    def label(self) -> str:
        """``tenant/account`` as messages and summaries name it."""
        return f"{self.tenant}/{self.id}"


class CostflowConfig(BaseModel):
    """costflow.yaml as a whole (see the README, "Configuration")."""

    model_config = _FROZEN

    version: Literal[1] = 1
    warehouse: str = DEFAULT_WAREHOUSE
    secrets: str = DEFAULT_SECRETS
    metadata: str = DEFAULT_METADATA
    sync: SyncSettings = Field(default_factory=SyncSettings)
    tenants: tuple[TenantConfig, ...] = ()
    accounts: tuple[AccountConfig, ...] = ()
    compute: ComputeSettings = Field(default_factory=ComputeSettings)
    allocation: AllocationSettings = Field(default_factory=AllocationSettings)
    _source_path: Path | None = PrivateAttr(default=None)

    @field_validator("warehouse")
    @classmethod
    def _warehouse(cls, value: str) -> str:
        return checks.warehouse_url(value)

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: str) -> str:
        return checks.secrets_url(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: str) -> str:
        return checks.metadata_url(value)

    @model_validator(mode="after")
    def _references(self) -> CostflowConfig:
        problems = Problems()
        tenants: dict[str, int] = {}
        for i, tenant in enumerate(self.tenants):
            if tenant.id in tenants:
                problems.add(("tenants", i, "id"), f"tenant {tenant.id} is listed twice (also "
                             f"tenants[{tenants[tenant.id]}])")
            tenants.setdefault(tenant.id, i)
        accounts: dict[tuple[str, str], int] = {}
        for i, account in enumerate(self.accounts):
            if account.tenant not in tenants:
                known_ids = ", ".join(tenants) or "none yet"
                problems.add(("accounts", i, "tenant"), _unknown("tenant", account.tenant,
                                                                 tenants, known_ids))
            key = (account.tenant, account.id)
            if key in accounts:
                problems.add(("accounts", i, "id"), f"account {account.id} of tenant "
                             f"{account.tenant} is listed twice (also accounts[{accounts[key]}]); "
                             "put all its sources under one entry")
            accounts.setdefault(key, i)
        problems.raise_if_any()
        return self

    @property
    def source_path(self) -> Path | None:
        """The file this config was loaded from (None when built in code)."""
        return self._source_path

    def tenant(self, tenant_id: str) -> TenantConfig:
        for tenant in self.tenants:
            if tenant.id == tenant_id:
                return tenant
        raise ConfigError(self._where() + _unknown("tenant", tenant_id, self._tenant_ids(),
                                                   ", ".join(self._tenant_ids()) or "none"))

    def account(self, tenant_id: str, account_id: str) -> AccountConfig:
        self.tenant(tenant_id)
        for account in self.accounts:
            if account.tenant == tenant_id and account.id == account_id:
                return account
        ids = [a.id for a in self.accounts if a.tenant == tenant_id]
        raise ConfigError(self._where() + _unknown(f"account of tenant {tenant_id}", account_id,
                                                   ids, ", ".join(ids) or "none"))

    def select(self, tenants: Iterable[str] = (), accounts: Iterable[str] = ()
               ) -> list[AccountConfig]:
        """The accounts of the named tenants and with the named account ids (both filters
        apply; an empty filter selects all), in file order.

        Raises:
            ConfigError: a tenant or account id that the config does not have.
        """
        wanted_tenants, wanted_accounts = list(tenants), list(accounts)
        for tenant_id in wanted_tenants:
            self.tenant(tenant_id)
        ids = [a.id for a in self.accounts]
        for account_id in wanted_accounts:
            if account_id not in ids:
                raise ConfigError(self._where() + _unknown("account", account_id, ids,
                                                           ", ".join(ids) or "none"))
        chosen = [a for a in self.accounts
                  if (not wanted_tenants or a.tenant in wanted_tenants)
                  and (not wanted_accounts or a.id in wanted_accounts)]
        if not chosen and wanted_tenants and wanted_accounts:
            raise ConfigError(f"{self._where()}no account is both in tenant(s) "
                              f"{', '.join(wanted_tenants)} and among "
                              f"{', '.join(wanted_accounts)}.")
        return chosen

    def compute_config(self, service: str) -> ComputeConfig:
        """The compute settings of a service: the documented default, then this file's
        ``compute.services`` entry for it. `ConfigError` lists the known services."""
        return self.compute.service(service)

    def _tenant_ids(self) -> list[str]:
        return [t.id for t in self.tenants]

    def _where(self) -> str:
        return f"{self.source_path}: " if self.source_path else ""


def _unknown(what: str, name: str, known_names: Iterable[str], listing: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known_names), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"no {what} {name[:130]!r}{hint}; known: {listing}."

