"""Tenant isolation: which billing accounts and sub accounts a query may see.

Every read of the query services runs under a `Tenant`. The tenant travels into the SQL as three
bound parameters, never as text:

    (@tenant_all OR BillingAccountId IN UNNEST(@tenant_billing_accounts)
                 OR SubAccountId IN UNNEST(@tenant_sub_accounts))

A row is visible when its billing account is listed (the whole account: every sub account in
it) or its sub account / project is listed (the design document's ``authorized_projects``). A
tenant listing nothing sees nothing. `Tenant.unrestricted_owner()` is the warehouse owner on a
laptop (the CLI's default without --billing-account / --sub-account); it is an explicit
choice, bound as ``@tenant_all = TRUE``, never the absence of the condition.

On BigQuery the same rule is also rendered as row access policy DDL (`row_access_policy_ddl`),
so a principal querying the dataset directly, outside costflow, is held to the same rows. DDL
cannot take parameters: there the values are validated and rendered as escaped literals by
sqlglot, and the statement is meant for an administrator to review and run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from costflow.errors import ConfigError
from costflow.providers import NAMES

PROVIDERS = NAMES  # the providers costflow reads (costflow.providers)
ALL_PROVIDERS = "all"
# Principals BigQuery accepts in GRANT TO (row access policies).
_GRANTEE = re.compile(r"^(user|group|serviceAccount|domain):[A-Za-z0-9._%+@-]+$")
_POLICY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
# Anything a billing account / project ID never contains: control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Tenant:
    """Who is asking, and which accounts they may see.

    Attributes:
        tenant_id: a stable name, used in logs and in the row access policy name.
        billing_accounts: billing account IDs whose every row is visible.
        sub_accounts: sub account / project / subscription IDs whose rows are visible.
        unrestricted: sees every row (the warehouse owner); only via `Tenant.unrestricted`.
    """

    tenant_id: str
    billing_accounts: frozenset[str] = field(default_factory=frozenset)
    sub_accounts: frozenset[str] = field(default_factory=frozenset)
    unrestricted: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.tenant_id, str) or not self.tenant_id.strip():
            raise ConfigError("a tenant needs a non-empty tenant_id.")
        for kind, values in (("billing account", self.billing_accounts),
                             ("sub account", self.sub_accounts)):
            if isinstance(values, str):
                raise ConfigError(f"{kind}s of tenant {self.tenant_id!r} must be a collection of "
                                  f"IDs, not the single string {values!r}.")
            for value in values:
                if not isinstance(value, str) or not value or _CONTROL.search(value):
                    raise ConfigError(f"{kind} ID {value!r} of tenant {self.tenant_id!r} is not "
                                      "a non-empty ID without control characters.")
        object.__setattr__(self, "billing_accounts", frozenset(self.billing_accounts))
        object.__setattr__(self, "sub_accounts", frozenset(self.sub_accounts))

    @classmethod
    def of(cls, tenant_id: str, billing_accounts: Iterable[str] = (),
           sub_accounts: Iterable[str] = ()) -> Tenant:
        """A tenant restricted to the accounts listed."""
        return cls(tenant_id, frozenset(billing_accounts), frozenset(sub_accounts))

    @classmethod
    def unrestricted_owner(cls, tenant_id: str = "owner") -> Tenant:
        """The warehouse owner: sees every account (say so explicitly; never a default)."""
        return cls(tenant_id, unrestricted=True)

    def can_see(self, billing_account: str | None, sub_account: str | None) -> bool:
        """The rule the SQL applies, in Python (for tests and for filtering fetched rows)."""
        return (self.unrestricted or billing_account in self.billing_accounts
                or sub_account in self.sub_accounts)

    def params(self) -> dict[str, Any]:
        """The bound parameters the scope condition of every query template uses."""
        return {"tenant_all": self.unrestricted,
                "tenant_billing_accounts": sorted(self.billing_accounts),
                "tenant_sub_accounts": sorted(self.sub_accounts)}


def check_provider(provider: str) -> str:
    """``provider`` if it is one costflow knows, else a ConfigError listing them."""
    allowed = (*PROVIDERS, ALL_PROVIDERS)
    if provider not in allowed:
        raise ConfigError(f"unknown provider {provider!r}; allowed: {', '.join(allowed)}.")
    return provider


def scope_params(tenant: Tenant, provider: str = ALL_PROVIDERS) -> dict[str, Any]:
    """Every parameter of the scope condition: the tenant's and the provider's."""
    return {**tenant.params(), "provider": check_provider(provider)}


def row_access_policy_ddl(tenant: Tenant, table_id: str, grantees: list[str]) -> str:
    """BigQuery DDL holding ``grantees`` to the tenant's rows of ``table_id``.

    Args:
        tenant: the tenant; its ID becomes the policy name ``costflow_tenant_<id>``.
        table_id: ``project.dataset.table`` (cost_line_items or recommendations).
        grantees: principals, e.g. ``group:finops-acme@example.com``.

    Returns:
        One ``CREATE OR REPLACE ROW ACCESS POLICY`` statement.

    Raises:
        ConfigError: an unrestricted tenant (it needs no policy), a tenant ID that is not a
            valid policy name, a malformed table ID or grantee.
    """
    if tenant.unrestricted:
        raise ConfigError(f"tenant {tenant.tenant_id!r} is unrestricted: it needs no row access "
                          "policy (grant it plain table access instead).")
    name = f"costflow_tenant_{tenant.tenant_id}"
    if not _POLICY_NAME.match(name):
        raise ConfigError(f"tenant ID {tenant.tenant_id!r} cannot name a row access policy: use "
                          "letters, digits and underscores only.")
    parts = table_id.split(".")
    if len(parts) != 3 or not all(parts) or any(_CONTROL.search(p) or "`" in p for p in parts):
        raise ConfigError(f"table {table_id!r} is not project.dataset.table.")
    if not grantees:
        raise ConfigError("a row access policy needs at least one grantee, e.g. "
                          "group:finops@example.com.")
    bad = [g for g in grantees if not _GRANTEE.match(g)]
    if bad:
        raise ConfigError(f"grantee {bad[0]!r} is not user:, group:, serviceAccount: or domain: "
                          "followed by an address.")
    target = exp.Table(this=exp.to_identifier(parts[2], quoted=True),
                       db=exp.to_identifier(parts[1], quoted=True),
                       catalog=exp.to_identifier(parts[0], quoted=True))
    conditions = [
        exp.In(this=exp.column(column),
               expressions=[exp.Literal.string(v) for v in sorted(values)])
        for column, values in (("BillingAccountId", tenant.billing_accounts),
                               ("SubAccountId", tenant.sub_accounts)) if values]
    predicate = exp.or_(*conditions) if conditions else exp.false()
    to = ", ".join(exp.Literal.string(g).sql("bigquery") for g in grantees)
    return (f"CREATE OR REPLACE ROW ACCESS POLICY {exp.to_identifier(name).sql('bigquery')}\n"
            f"ON {target.sql('bigquery')}\nGRANT TO ({to})\n"
            f"FILTER USING ({predicate.sql('bigquery')})")
