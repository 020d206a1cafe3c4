"""Budgets a tenant declares under ``policies.budgets`` in costflow.yaml, checked on load.

Why this module exists: budgets live in the free-form ``policies`` of a tenant (the metadata
store keeps them there too), but a budget with a float amount, an unknown period or a webhook
given as a bare URL must be an error naming its line when the file is loaded, not a surprise
at the first sync. `parse_budgets` turns ``policies["budgets"]`` into frozen `Budget` models
and reports every problem at its key path (``policies.budgets[0].amount``).

    policies:
      budgets:
        - name: platform-monthly
          amount: "12000.00"          # exact decimal text (a YAML float is refused)
          currency: USD
          period: month               # month | quarter | year
          scope:                      # filters, as `costflow query costs --filter` takes them
            provider: [AWS]
            tag:team: [web]
          thresholds: [50, 80, 100]   # percent of the amount reached by actual cost
          forecast: true              # also alert when actual + forecast passes 100 %
          webhook: secret://api-keys/acme/slack-webhook

The scope's dimension names are checked against the query allow-list when a budget is
evaluated (`costflow.services.budgets`): the config layer does not import the query services.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from costflow.config import checks
from costflow.config.problems import Problems

PERIODS = ("month", "quarter", "year")
DEFAULT_THRESHOLDS = (50, 80, 100)
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}", re.ASCII)
_SCOPE_KEY = re.compile(r"[a-z_]+|tag:.+")
_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Budget(BaseModel):
    """One budget: an exact amount in one currency per calendar period, over a scope."""

    model_config = _FROZEN

    name: str
    amount: Decimal
    currency: str
    period: Literal["month", "quarter", "year"] = "month"
    scope: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    forecast: bool = True
    metric: Literal["BilledCost", "EffectiveCost"] = "BilledCost"
    webhook: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("must be 1-63 lowercase letters, digits, '-' or '_', starting "
                             "with a letter or digit (it names the budget in alerts)")
        return value

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: object) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
            raise ValueError("must be an exact decimal written as text, e.g. \"12000.00\"")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{str(value)[:40]!r} is not a decimal number") from None
        if not amount.is_finite() or amount <= 0:
            raise ValueError("must be a positive amount")
        return amount

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return checks.currency(value)

    @field_validator("scope", mode="before")
    @classmethod
    def _scope(cls, value: object) -> dict[str, tuple[str, ...]]:
        if not isinstance(value, dict):
            raise ValueError("must map dimensions to values, e.g. {provider: [AWS]}")
        out: dict[str, tuple[str, ...]] = {}
        for key, values in value.items():
            if not isinstance(key, str) or not _SCOPE_KEY.fullmatch(key):
                raise ValueError(f"{key!r} is not a dimension name (e.g. service, "
                                 "sub_account, provider, tag:team)")
            items = values if isinstance(values, list | tuple) else [values]
            if not items or not all(isinstance(v, str) and v for v in items):
                raise ValueError(f"{key}: give one or more non-empty text values")
            out[key] = tuple(items)
        return out

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(not 1 <= t <= 1000 for t in value):
            raise ValueError("list one or more percentages from 1 to 1000, e.g. [50, 80, 100]")
        if len(set(value)) != len(value):
            raise ValueError("lists a percentage twice")
        return tuple(sorted(value))

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("secret://"):
            raise ValueError("must be a reference to the secret store (secret://api-keys/"
                             "TENANT/slack-webhook), not the URL itself: a webhook URL is a "
                             "credential; store it with `costflow secrets set`")
        from costflow.secrets.names import validate_name

        validate_name(value[len("secret://"):])
        return value

    def period_of(self, day: date) -> tuple[date, date]:
        """The calendar period [start, end) of this budget that contains ``day``."""
        if self.period == "month":
            start = day.replace(day=1)
            months = 1
        elif self.period == "quarter":
            start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
            months = 3
        else:
            start = date(day.year, 1, 1)
            months = 12
        index = start.month - 1 + months
        return start, date(start.year + index // 12, index % 12 + 1, 1)


def parse_budgets(policies: dict[str, Any]) -> tuple[Budget, ...]:
    """The budgets of a tenant's ``policies`` (none when it has no ``budgets`` key).

    Raises:
        Problems: every problem, each at its key path below the tenant.
    """
    raw = policies.get("budgets")
    if raw is None:
        return ()
    problems = Problems()
    if not isinstance(raw, list):
        problems.add(("policies", "budgets"), "must be a list of budgets (- name: ...)")
        problems.raise_if_any()
    budgets: list[Budget] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        try:
            budget = Budget.model_validate(item)
        except ValidationError as err:
            for error in err.errors():
                message = str(error.get("ctx", {}).get("error") or error["msg"])
                problems.add(("policies", "budgets", i, *error["loc"]),
                             message.removeprefix("Value error, "))
            continue
        if budget.name in seen:
            problems.add(("policies", "budgets", i, "name"), f"budget {budget.name} is "
                         f"declared twice (also budgets[{seen[budget.name]}])")
        seen.setdefault(budget.name, i)
        budgets.append(budget)
    problems.raise_if_any()
    return tuple(budgets)
