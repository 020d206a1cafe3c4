"""Read costs out of the warehouse: totals by dimension, and the FOCUS export.

Users name dimensions and filters with words (``service``, ``region``); those words only ever
select an entry of the allow-list below. The SQL is the trusted template
`sql/queries/costs_by_dimension.sql`, parsed once; the chosen expressions are injected into its
syntax tree under quoted aliases, and every value travels as a bound parameter. No user text is
formatted into SQL or handed to a sqlglot builder that would parse it. A tag dimension
``tag:<key>`` reads the key from the Tags JSON through a bound JSONPath parameter (BigQuery takes
a JSONPath only as a literal or a query parameter) under a generated alias. Every query carries
the tenant and provider scope of `costflow.services.tenancy` as bound parameters.

``allocated=True`` reads the split view instead of the bill: the rows of `focus_v1_3` (charges
that `costflow allocate` split onto Kubernetes workloads appear as their split rows, every other
charge as billed; the row source is the view's own, `costflow.schemas.render`), so totals are
the same and only their breakdown changes. Only there do the ``k8s:`` dimensions exist:
``k8s:cluster``, ``k8s:namespace``, ``k8s:workload`` and ``k8s:label:<key>`` read one key of a
split row's AllocatedTags JSON, through a bound JSONPath exactly as tags do; a charge that was
not split has none of them (NULL).

    costs_by_dimension(wh, date(2023, 11, 1), date(2023, 12, 1), ["service"],
                       filters={"region": ["us-east-1"]})
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

import pyarrow as pa
import sqlglot
from sqlglot import exp

from costflow.errors import ConfigError
from costflow.schemas.columns import LogicalType
from costflow.schemas.focus import COST_LINE_ITEMS
from costflow.schemas.render import ALLOCATION_VIEW, DATASET, FOCUS_VIEWS, view_source
from costflow.services.tenancy import ALL_PROVIDERS, Tenant, scope_params
from costflow.warehouse import sqlfiles
from costflow.warehouse.base import Warehouse

TEMPLATE = "queries/costs_by_dimension.sql"
# Dimension name -> BigQuery expression over cost_line_items. The one allow-list: the CLI help,
# validation and the query builder all read it.
DIMENSIONS: dict[str, str] = {
    "service": "ServiceName",
    "service_category": "ServiceCategory",
    "sub_account": "SubAccountId",
    "account": "SubAccountId",
    "project": "SubAccountId",
    "billing_account": "BillingAccountId",
    "region": "RegionId",
    "provider": "ProviderName",
    "charge_category": "ChargeCategory",
    "resource": "ResourceId",
    "resource_name": "ResourceName",
    "resource_type": "ResourceType",
    "day": "DATE(ChargePeriodStart)",
    "month": "DATE_TRUNC(DATE(ChargePeriodStart), MONTH)",
}
# Filter-only dimensions: BillingCurrency is always an output key, so it is never a group-by.
FILTER_ONLY: dict[str, str] = {"currency": "BillingCurrency"}
# ``tag:<key>``: the value of one key of the Tags JSON object.
TAG_PREFIX = "tag:"
# ``k8s:<name>``: one key of a split row's AllocatedTags (``costflow.allocation`` writes them);
# ``k8s:label:<key>`` one pod label. Only the split view (``allocated``) has them.
K8S_PREFIX = "k8s:"
K8S_LABEL_PREFIX = "k8s:label:"
K8S_DIMENSIONS: dict[str, str] = {
    "k8s:cluster": "the Kubernetes cluster a split charge's node or volume belongs to",
    "k8s:namespace": "the namespace of the workload (NULL for idle capacity and unclaimed "
                     "volumes)",
    "k8s:workload": "the workload (namespace's app label or pod name); __idle__ for a node's "
                    "idle capacity, __unclaimed__ for a volume's unbound time",
}
# Tag keys are free text from the providers (AWS ``user:team``, GCP labels, Azure tags); they
# only ever reach SQL inside a bound JSONPath, so only characters the quoted JSONPath form cannot
# carry unambiguously in both engines are refused.
_TAG_KEY_REFUSED = frozenset('"\\') | frozenset(chr(c) for c in range(32)) | {"\x7f"}
# Usage is summed only when one unit is involved: adding hours to GB would be meaningless.
# MIN = MAX is "exactly one distinct unit" (both ignore nulls; no unit at all gives NULL) at
# the cost of two plain aggregates instead of a DISTINCT one (~15 % of a month's query).
_USAGE_SQL = ("IF(MIN(usage_unit) = MAX(usage_unit), SUM(usage_quantity), NULL) "
              "AS usage_quantity",
              "IF(MIN(usage_unit) = MAX(usage_unit), MIN(usage_unit), NULL) AS usage_unit")
# Metrics: the FOCUS cost columns a user may sum.
METRICS: tuple[str, ...] = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
assert all(COST_LINE_ITEMS.column(m).type is LogicalType.DECIMAL for m in METRICS)


def costs_by_dimension(warehouse: Warehouse, start: date, end: date, group_by: list[str],
                       filters: dict[str, list[str]] | None = None,
                       metric: str = "BilledCost", *, tenant: Tenant | None = None,
                       provider: str = ALL_PROVIDERS, usage: bool = False,
                       allocated: bool = False) -> pa.Table:
    """Sum ``metric`` over charges with ChargePeriodStart in [start, end), per dimension.

    Args:
        warehouse: where to read.
        start: first day included (UTC midnight).
        end: first day excluded.
        group_by: dimension names from `DIMENSIONS` or ``tag:<key>``; output columns are named
            as asked.
        filters: dimension name (or ``currency``, or ``tag:<key>``) -> values to keep (matched
            literally, never as SQL).
        metric: one of `METRICS`.
        tenant: whose accounts may be read; None means the unrestricted warehouse owner (the
            local CLI and the demo). The query services always pass one.
        provider: ``aws``, ``gcp``, ``azure`` or ``all``.
        usage: also return ``usage_quantity`` and ``usage_unit`` (summed only when one unit).
        allocated: read the split view (`focus_v1_3` rows: split charges as their allocated
            rows); needed for the ``k8s:`` dimensions. Totals equal those without it.

    Returns:
        Columns: the requested dimensions, ``BillingCurrency`` (always a key: currencies are
        never added together), ``cost`` (exact decimal) and ``rows`` (then the usage columns).

    Raises:
        ConfigError: unknown dimension or metric, a bad date range or bad filter values, a
            ``k8s:`` dimension without ``allocated``.
    """
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ConfigError(f"{name} must be a date (YYYY-MM-DD), got {value!r}.")
    if end <= start:
        raise ConfigError(f"end {end} is not after start {start} (the range is [start, end)).")
    sql, params = build_query(group_by, filters or {}, metric, usage=usage, allocated=allocated)
    scope = scope_params(tenant or Tenant.unrestricted_owner(), provider)
    table = warehouse.query(sql, {"start": start, "end": end, **params, **scope})
    if any(name.startswith((TAG_PREFIX, K8S_PREFIX)) for name in group_by):
        table = table.rename_columns(
            [*group_by, *table.column_names[len(group_by):]])
    return table


def build_query(group_by: list[str], filters: dict[str, list[str]],
                metric: str, *, usage: bool = False,
                allocated: bool = False) -> tuple[str, dict[str, object]]:
    """The BigQuery SQL and the filter and tag parameters for one request (validated).

    The scope parameters (`costflow.services.tenancy.scope_params`) and ``start``/``end`` are
    bound by the caller. Requests of the expected shapes are cached: building the syntax tree
    costs tens of milliseconds, and dashboards and agents repeat the same few requests.
    """
    if (isinstance(group_by, list | tuple) and isinstance(filters, dict)
            and all(isinstance(v, list | tuple) for v in filters.values())):
        try:
            key = (tuple(group_by), tuple(sorted((k, tuple(v)) for k, v in filters.items())),
                   metric, usage, bool(allocated))
            sql, params = _build_cached(key)
        except TypeError:  # unhashable or unsortable input: validate it the long way
            return _build_query(group_by, filters, metric, usage=usage, allocated=allocated)
        return sql, {k: list(v) if isinstance(v, list) else v for k, v in params.items()}
    return _build_query(group_by, filters, metric, usage=usage, allocated=allocated)


@lru_cache(maxsize=256)
def _build_cached(key: tuple) -> tuple[str, dict[str, object]]:
    group_by, filters, metric, usage, allocated = key
    return _build_query(list(group_by), {k: list(v) for k, v in filters}, metric, usage=usage,
                        allocated=allocated)


def _build_query(group_by: list[str], filters: dict[str, list[str]],
                 metric: str, *, usage: bool = False,
                 allocated: bool = False) -> tuple[str, dict[str, object]]:
    if not isinstance(group_by, list | tuple) or not all(isinstance(g, str) for g in group_by):
        raise ConfigError(f"group by must be a list of dimension names, got {group_by!r}.")
    if not isinstance(filters, dict):
        raise ConfigError(f"filters must map dimension names to lists of values, got "
                          f"{filters!r}.")
    _check_names("dimension", group_by, DIMENSIONS)
    _check_names("filter dimension", list(filters), {**DIMENSIONS, **FILTER_ONLY})
    if len(set(group_by)) != len(group_by):
        raise ConfigError(f"group by lists a dimension twice: {', '.join(group_by)}.")
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}.")
    if not isinstance(allocated, bool):
        raise ConfigError(f"allocated must be true or false, got {allocated!r}.")
    k8s = [n for n in [*group_by, *filters] if n.startswith(K8S_PREFIX)]
    if k8s and not allocated:
        raise ConfigError(
            f"{k8s[0]} exists only in the split view (charges that `costflow allocate` split "
            "onto Kubernetes workloads): add --allocated (MCP: allocated=true; Python: "
            "allocated=True). Without it the bill is read unsplit and has no k8s: values.")

    (template,) = sqlfiles.load(TEMPLATE)
    query = template.expression.copy()
    ctes = {cte.alias: cte.this for cte in query.find_all(exp.CTE)}
    dimensioned, final = ctes["dimensioned"], ctes["final"]
    if allocated:
        _read_split_view(ctes["in_period"])

    params: dict[str, object] = {}
    cost = next(e for e in dimensioned.expressions if e.alias == "cost")
    cost.set("this", exp.column(exp.to_identifier(metric, quoted=True)))
    # Allow-listed names are identifiers already; a tag gets a generated alias (its key is
    # user text) and the caller renames the column back.
    aliases = [exp.to_identifier(f"tag_{i}" if name.startswith((TAG_PREFIX, K8S_PREFIX))
                                 else name,
                                 quoted=True) for i, name in enumerate(group_by)]
    dimensioned.set("expressions", [exp.alias_(_dimension(name, params, f"tag_path_{i}"), alias)
                                    for i, (name, alias) in enumerate(zip(group_by, aliases,
                                                                          strict=True))]
                    + dimensioned.expressions)
    if usage:
        final.set("expressions", final.expressions + [
            sqlglot.parse_one(sql, read="bigquery") for sql in _USAGE_SQL])
    final.set("expressions", [exp.column(a.copy()) for a in aliases] + final.expressions)
    final.set("group", exp.Group(expressions=[exp.column(a.copy()) for a in aliases]
                                 + final.args["group"].expressions))
    ordered = [exp.Ordered(this=exp.column(a.copy()), nulls_first=True) for a in aliases]
    query.set("order", exp.Order(expressions=ordered + query.args["order"].expressions))

    for index, (name, values) in enumerate(sorted(filters.items())):
        if name in ("day", "month"):
            raise ConfigError(f"filter on {name!r} is not supported: narrow the date range with "
                              "start and end instead.")
        if (not isinstance(values, list | tuple) or not values
                or not all(isinstance(v, str) for v in values)):
            raise ConfigError(f"filter {name!r} needs one or more text values, got {values!r}.")
        param = f"filter_{index}"
        params[param] = list(values)
        dimensioned.where(exp.In(this=_dimension(name, params, f"filter_path_{index}"),
                                 unnest=exp.Unnest(
            expressions=[exp.Parameter(this=exp.var(param))])), append=True, copy=False)
    return query.sql(dialect="bigquery", comments=False), params


def tag_path(key: str) -> str:
    """The JSONPath of one tag key, bound as a parameter (``$."user:team"``).

    Raises:
        ConfigError: an empty key, or one with a double quote, backslash or control character.
    """
    if not key or any(ch in _TAG_KEY_REFUSED for ch in key):
        raise ConfigError(f"tag key {key!r} is not usable: give tag:<key> with a non-empty key "
                          "without double quotes, backslashes or control characters "
                          "(e.g. tag:user:team).")
    return f'$."{key}"'


def _read_split_view(in_period: exp.Expr) -> None:
    """Point the template's ``in_period`` at the row source of the split view (`focus_v1_3`).

    The source is rendered from the schema declaration by `costflow.schemas.render`, the one
    definition of "split rows in place of their origin charges"; it is trusted text.
    """
    (table,) = [t for t in in_period.find_all(exp.Table) if t.name == COST_LINE_ITEMS.name]
    rows = view_source(DATASET, ALLOCATION_VIEW, FOCUS_VIEWS[ALLOCATION_VIEW])
    (subquery,) = sqlglot.parse_one(f"SELECT * FROM {rows} AS s", read="bigquery").find_all(
        exp.Subquery)
    table.replace(subquery)


def _dimension(name: str, params: dict[str, object], path_param: str) -> exp.Expr:
    """The SQL expression of a checked dimension name; a tag or a k8s: dimension binds its
    JSONPath in ``params``."""
    if name.startswith(K8S_PREFIX):
        params[path_param] = tag_path(name)
        return exp.JSONExtractScalar(
            this=exp.column(exp.to_identifier("AllocatedTags", quoted=True)),
            expression=exp.Parameter(this=exp.var(path_param)), scalar_only=True)
    if name.startswith(TAG_PREFIX):
        params[path_param] = tag_path(name[len(TAG_PREFIX):])
        return exp.JSONExtractScalar(this=exp.column(exp.to_identifier("Tags", quoted=True)),
                                     expression=exp.Parameter(this=exp.var(path_param)),
                                     scalar_only=True)
    # Parses a trusted allow-list entry, never user text (``name`` was checked by the caller).
    return sqlglot.parse_one({**DIMENSIONS, **FILTER_ONLY}[name], read="bigquery")


def _check_names(kind: str, names: list[str], allowed: dict[str, str]) -> None:
    unknown = [n for n in names if n not in allowed and not n.startswith(TAG_PREFIX)
               and n not in K8S_DIMENSIONS and not n.startswith(K8S_LABEL_PREFIX)]
    if unknown:
        raise ConfigError(f"unknown {kind} {unknown[0]!r}; allowed: {', '.join(allowed)}, "
                          f"tag:<key>, {', '.join(K8S_DIMENSIONS)}, k8s:label:<key> (the "
                          "k8s: ones with allocated).")
    for name in names:
        if name.startswith(K8S_LABEL_PREFIX) and not name[len(K8S_LABEL_PREFIX):]:
            raise ConfigError(f"{kind} {name!r} names no label: give k8s:label:<key> "
                              "(e.g. k8s:label:app).")
