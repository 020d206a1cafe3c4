"""`run_query`: read-only SQL over the tenant's FOCUS rows, for questions the fixed tools miss.

An agent (or a person) writes one BigQuery-dialect ``SELECT`` over a relation called ``focus``
(the FOCUS 1.3 columns plus ``x_SourceProvider``). The text is never run as written: it is
parsed with sqlglot, checked, rewritten and regenerated, so what reaches the engine is built
from the syntax tree alone (comments dropped, every identifier quoted):

1. exactly one statement, and it is a query (``SELECT``, or a ``UNION``/``INTERSECT``/
   ``EXCEPT`` of them); stacked statements, ``PRAGMA``, ``SET``, ``COPY``, ``ATTACH``,
   ``INSTALL``/``LOAD`` and everything else sqlglot does not parse as a query are refused;
2. every node of the tree is of an allow-listed kind, and every function is allow-listed
   (aggregates, arithmetic, text, date and window functions): table functions
   (``read_csv``, ``read_parquet``, ``glob``, ``duckdb_tables()``...), unknown functions,
   parameters, struct access and ``UNNEST`` are refused by not being on the list;
3. every table reference is the bare name ``focus`` or the name of a CTE of the query (CTEs
   are renamed to generated names, and a CTE may not be called ``focus``): schemas,
   ``INFORMATION_SCHEMA``, other tables (``load_runs``, ``cost_line_items``), quoted paths and
   look-alike unicode names are refused;
4. each ``focus`` reference becomes a subquery over ``cost_analytics.cost_line_items`` carrying
   the tenant and provider scope of `costflow.services.tenancy` as bound parameters, so no
   text of the query can reach a row outside the tenant;
5. the outermost query gets ``LIMIT max_rows + 1`` (a smaller limit of its own is kept), and
   the run is cut at ``timeout`` seconds: DuckDB's connection is interrupted from a timer,
   BigQuery's job gets ``job_timeout_ms`` and ``maximum_bytes_billed``.

A refused query raises `QueryRefused` (a `ConfigError`) saying what was refused and what is
allowed; the agent reads it and rewrites the query.
"""

from __future__ import annotations

import math
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from costflow.errors import ConfigError
from costflow.models import to_json
from costflow.schemas.focus import COST_LINE_ITEMS, focus_columns
from costflow.services.tenancy import ALL_PROVIDERS, Tenant, scope_params
from costflow.warehouse import sqlfiles
from costflow.warehouse.base import Warehouse

RELATION = "focus"
FOCUS_VERSION = "1.3"
# The columns `focus` exposes: the FOCUS columns, and which provider's export a row came from.
COLUMNS: tuple[str, ...] = (*(c.name for c in focus_columns(FOCUS_VERSION)), "x_SourceProvider")
DEFAULT_ROWS, MAX_ROWS = 1_000, 10_000
DEFAULT_TIMEOUT, MAX_TIMEOUT = 10.0, 120.0
MAX_SQL_CHARS = 20_000
DEFAULT_MAX_BYTES_BILLED = 10 * 1024**3  # BigQuery: 10 GiB scanned at most per query
CTE_PREFIX = "_q_cte_"
# The scope condition, word for word the one of costflow/sql/queries/*.sql (tenancy.py).
_SCOPE = ("(@tenant_all OR BillingAccountId IN UNNEST(@tenant_billing_accounts) "
          "OR SubAccountId IN UNNEST(@tenant_sub_accounts)) "
          "AND (@provider = 'all' OR x_SourceProvider = @provider)")

# Node kinds a query may contain besides the functions below: the clauses of a SELECT,
# operators, literals and names. Anything else is refused.
_CLAUSES: tuple[str, ...] = (
    "Select", "Union", "Intersect", "Except", "Subquery", "From", "Join", "Where", "Group",
    "Having", "Qualify", "Order", "Ordered", "Limit", "Offset", "With", "CTE", "TableAlias",
    "Alias", "Table", "Column", "Identifier", "Star", "Literal", "Null", "Boolean", "Paren",
    "Tuple", "Distinct", "Window", "WindowSpec", "Filter", "IgnoreNulls", "RespectNulls",
    "Escape", "Exists", "Neg", "Not", "Is", "In", "Between", "Like", "ILike", "NullSafeEQ",
    "NullSafeNEQ", "Add", "Sub", "Mul", "Div", "Mod", "IntDiv", "DPipe", "EQ", "NEQ", "GT",
    "GTE", "LT", "LTE", "And", "Or", "Case", "If", "Cast", "TryCast", "DataType",
    "DataTypeParam", "Interval", "Var", "WeekStart", "JSONPath", "JSONPathKey", "JSONPathRoot",
    "JSONPathSubscript",
)
# Functions (sqlglot classes): aggregates, numbers, text, dates and windows. No function that
# reads files, the network, settings, the catalog or the environment is (or may be) here.
_FUNCTIONS: tuple[str, ...] = (
    "Sum", "Avg", "Count", "Min", "Max", "CountIf", "ApproxDistinct", "Stddev", "StddevPop",
    "StddevSamp", "Variance", "VariancePop", "AnyValue", "GroupConcat", "ArrayAgg",
    "PercentileCont", "PercentileDisc", "Median", "ApproxQuantile", "LogicalAnd", "LogicalOr",
    "Corr", "CovarPop", "CovarSamp", "Abs", "Round", "Floor", "Ceil", "Sqrt", "Pow", "Ln", "Log",
    "Exp", "Sign", "SafeDivide", "Trunc", "Coalesce", "Nullif", "Greatest", "Least", "Upper",
    "Lower", "Length", "Substring", "Trim", "Concat", "ConcatWs", "StrPosition", "StartsWith",
    "EndsWith", "RegexpLike", "RegexpExtract", "RegexpReplace", "Left", "Right", "Pad",
    "Replace", "Initcap", "SplitPart", "Date", "DateTrunc", "TimestampTrunc", "DatetimeTrunc",
    "DateAdd", "DateSub", "DateDiff", "TimestampAdd", "TimestampSub", "TimestampDiff",
    "Timestamp", "Extract", "CurrentDate", "CurrentTimestamp", "StrToDate", "StrToTime",
    "TimeToStr", "LastDay", "DayOfWeek", "DayOfMonth", "DayOfYear", "WeekOfYear", "Month",
    "Year", "Quarter", "JSONExtract", "JSONExtractScalar", "JSONValue", "RowNumber", "Rank",
    "DenseRank", "PercentRank", "CumeDist", "Ntile", "Lag", "Lead", "FirstValue", "LastValue",
    "NthValue",
)
ALLOWED_NODES: frozenset[type] = frozenset(getattr(exp, n) for n in (*_CLAUSES, *_FUNCTIONS))
# Table arguments a `focus` reference may carry: its name and an alias (no schema, no time
# travel, no sampling, no pivot, no table function).
_TABLE_ARGS = frozenset({"this", "alias"})
_DATE_PART = re.compile(r"[A-Za-z_]{1,20}")


class QueryRefused(ConfigError):
    """The SQL is not a single read-only query over ``focus`` that run_query accepts."""


@dataclass(frozen=True)
class QueryResult:
    """What a query returned: column names and types, rows as JSON-ready dicts.

    Attributes:
        columns: output column names, in order.
        types: the engine's type of each column.
        rows: at most ``row_limit`` rows; decimals as exact text, dates and times as ISO text.
        truncated: the query had more rows than ``row_limit``.
        row_limit: the limit applied.
        seconds: how long the engine took.
    """

    columns: list[str]
    types: list[str]
    rows: list[dict[str, Any]]
    truncated: bool
    row_limit: int
    seconds: float


def check_query(sql: str) -> exp.Query:
    """The parsed query when it passes every check (see the module docstring); CTEs renamed.

    Raises:
        QueryRefused: what is refused and what is allowed.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRefused("give one SELECT over the relation `focus` as text.")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused(f"the query is {len(sql):,} characters long; at most "
                           f"{MAX_SQL_CHARS:,} are accepted.")
    if "\x00" in sql:
        raise QueryRefused("the query contains a NUL character.")
    try:
        parsed = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
    except (ParseError, TokenError) as err:
        first = str(err).splitlines()[0][:300]
        raise QueryRefused(f"the query is not BigQuery SQL sqlglot can parse ({first}); write "
                           f"one SELECT over `{RELATION}`.") from None
    if len(parsed) != 1:
        raise QueryRefused(f"give exactly one statement (found {len(parsed)}): one SELECT over "
                           f"`{RELATION}`, without ';'-separated statements.")
    (query,) = parsed
    if not isinstance(query, exp.Query) or isinstance(query, exp.Subquery):
        raise QueryRefused(f"only a SELECT is accepted (this parses as {_kind(query)}); run_query "
                           "reads, it never changes or configures anything.")
    for node in query.walk():
        if type(node) not in ALLOWED_NODES:
            raise QueryRefused(_not_allowed(node))
        # A Var is printed as written: only a date part (DAY, MONTH...) where one belongs.
        if isinstance(node, exp.Var) and not (
                _DATE_PART.fullmatch(node.name) and (node.arg_key == "unit" or isinstance(
                    node.parent, exp.Extract | exp.Interval | exp.WeekStart))):
            raise QueryRefused(f"{node.name[:40]!r} is not allowed there: only a date part "
                               "(DAY, WEEK, MONTH...) as a unit of a date function.")
    _rename_ctes(query)
    for table in query.find_all(exp.Table):
        _check_table(table)
    for column in query.find_all(exp.Column):
        if column.args.get("db") or column.args.get("catalog"):
            raise QueryRefused(f"column {column.sql('bigquery')!r} names a schema: refer to "
                               f"columns as name or alias.name of `{RELATION}`.")
    return query


def scoped_query(sql: str, tenant: Tenant, provider: str = ALL_PROVIDERS,
                 max_rows: int = DEFAULT_ROWS) -> tuple[exp.Query, dict[str, Any]]:
    """The checked query with ``focus`` replaced by the tenant's rows and the row limit set,
    and the parameters to bind (the tenant and provider scope)."""
    if not isinstance(tenant, Tenant):
        raise ConfigError(f"run_query runs under a Tenant; got {type(tenant).__name__}.")
    _check_limit(max_rows)
    params = scope_params(tenant, provider)
    query = check_query(sql)
    for table in list(query.find_all(exp.Table)):
        if table.name.startswith(CTE_PREFIX):
            continue
        alias = table.args.get("alias")
        scoped = exp.Subquery(this=_focus_rows(), alias=alias.copy() if alias else
                              exp.TableAlias(this=exp.to_identifier(RELATION)))
        table.replace(scoped)
    for identifier in query.find_all(exp.Identifier):
        identifier.set("quoted", True)
    _limit(query, max_rows + 1)
    return query, params


def run_query(warehouse: Warehouse, tenant: Tenant, sql: str, provider: str = ALL_PROVIDERS,
              *, max_rows: int = DEFAULT_ROWS, timeout: float = DEFAULT_TIMEOUT,
              max_bytes_billed: int = DEFAULT_MAX_BYTES_BILLED) -> QueryResult:
    """Run ``sql`` (one SELECT over ``focus``) under ``tenant`` and ``provider``.

    Args:
        warehouse: DuckDB or BigQuery.
        tenant: whose rows ``focus`` holds.
        sql: BigQuery-dialect SELECT over ``focus``.
        provider: ``all`` or one provider.
        max_rows: rows returned at most (1 to `MAX_ROWS`); more are cut and flagged.
        timeout: seconds the engine may take (0 < timeout <= `MAX_TIMEOUT`).
        max_bytes_billed: BigQuery only: the job fails rather than scan more.

    Raises:
        QueryRefused: the query is not accepted (what and why).
        ConfigError: the engine refused it (a bad column, a type error) or it ran too long.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
            0 < timeout <= MAX_TIMEOUT) or math.isnan(timeout):
        raise ConfigError(f"timeout {timeout!r} must be a number of seconds above 0 and at "
                          f"most {MAX_TIMEOUT:g}.")
    query, params = scoped_query(sql, tenant, provider, max_rows)
    started = time.monotonic()
    engine = sys.modules.get("costflow.warehouse.bigquery_engine")
    if engine is not None and isinstance(warehouse, engine.BigQueryWarehouse):
        table = _on_bigquery(warehouse, query, params, timeout, max_bytes_billed, max_rows)
    else:
        table = _on_duckdb(warehouse, query, params, timeout)
    seconds = time.monotonic() - started
    rows = table.slice(0, max_rows).to_pylist()
    return QueryResult(table.column_names, [str(t) for t in table.schema.types],
                       [{k: _plain(v) for k, v in row.items()} for row in rows],
                       table.num_rows > max_rows, max_rows, seconds)


# --- checks ---------------------------------------------------------------------------------


def _kind(node: exp.Expr) -> str:
    return node.key.upper() if node.key else type(node).__name__


def _not_allowed(node: exp.Expr) -> str:
    if isinstance(node, exp.Func):
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        return (f"function {name}() is not allowed in run_query: only aggregate, arithmetic, "
                "text, date, JSON and window functions are (no table functions, no file, "
                "network, settings or catalog functions).")
    if isinstance(node, exp.Parameter | exp.Placeholder):
        return "query parameters are not allowed: write values as literals."
    return (f"{node.key.upper()} ({node.sql('bigquery')[:80]!r}) is not allowed in run_query: "
            f"write a plain SELECT over `{RELATION}` (joins, subqueries, CTEs, UNION, "
            "GROUP BY, window functions are fine).")


def _rename_ctes(query: exp.Query) -> None:
    """CTEs get generated names, and table references to them follow. A reference that only
    looks like one (another scope) then names no table at all and fails: never a real table."""
    names: dict[str, str] = {}
    for number, cte in enumerate(query.find_all(exp.CTE)):
        name = cte.alias_or_name
        if name.casefold() == RELATION:
            raise QueryRefused(f"a CTE may not be called `{RELATION}`: that name is the "
                               "tenant's rows. Name it something else.")
        if (cte.args.get("alias") and cte.args["alias"].args.get("columns")) or not name:
            raise QueryRefused("name CTE columns inside its SELECT (AS), not in a column list.")
        names[name.casefold()] = f"{CTE_PREFIX}{number}"
        cte.set("alias", exp.TableAlias(this=exp.to_identifier(names[name.casefold()])))
    for with_ in query.find_all(exp.With):
        if with_.args.get("recursive"):
            raise QueryRefused("WITH RECURSIVE is not allowed in run_query.")
    for table in query.find_all(exp.Table):
        new = names.get(table.name.casefold())
        if new and isinstance(table.this, exp.Identifier) and not (
                table.args.get("db") or table.args.get("catalog")):
            table.set("this", exp.to_identifier(new))


def _check_table(table: exp.Table) -> None:
    extra = {k for k, v in table.args.items() if v and k not in _TABLE_ARGS}
    if isinstance(table.this, exp.Identifier) and table.name.startswith(CTE_PREFIX) and not extra:
        return
    if (extra or not isinstance(table.this, exp.Identifier) or table.name != RELATION):
        raise QueryRefused(f"{table.sql('bigquery')[:80]!r} is not a relation run_query reads: "
                           f"the only table is `{RELATION}` (the tenant's FOCUS rows; columns: "
                           "see describe). Other tables, schemas, files and table functions "
                           "are refused.")


def _check_limit(max_rows: int) -> None:
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or not (
            1 <= max_rows <= MAX_ROWS):
        raise ConfigError(f"max_rows {max_rows!r} must be a whole number from 1 to "
                          f"{MAX_ROWS:,}.")


def _limit(query: exp.Query, most: int) -> None:
    """LIMIT the outermost query to ``most`` rows (a smaller literal limit of its own stays)."""
    current = query.args.get("limit")
    if current is not None:
        value = current.expression
        if not (isinstance(value, exp.Literal) and value.is_int):
            raise QueryRefused("LIMIT takes a whole number.")
        most = min(most, int(value.name))
    query.set("limit", exp.Limit(expression=exp.Literal.number(most)))


def _focus_rows() -> exp.Select:
    """SELECT the `focus` columns of cost_line_items under the scope condition (parameters)."""
    table = exp.Table(this=exp.to_identifier(COST_LINE_ITEMS.name),
                      db=exp.to_identifier(sqlfiles.DATASET))
    return (exp.select(*(exp.column(exp.to_identifier(c, quoted=True)) for c in COLUMNS))
            .from_(table).where(sqlglot.parse_one(_SCOPE, read="bigquery")))


# --- engines --------------------------------------------------------------------------------


def _on_duckdb(warehouse: Warehouse, query: exp.Query, params: dict[str, Any],
               timeout: float) -> pa.Table:
    connection = getattr(warehouse, "connection", None)
    if connection is None:
        raise ConfigError(f"run_query reads DuckDB and BigQuery warehouses, not "
                          f"{type(warehouse).__name__}.")
    import duckdb

    statement = sqlfiles.duckdb_statement(query)
    with connection(read_only=True) as con:
        # Never let a name resolve to a Python object of this process (DuckDB's replacement
        # scans): every table of the query is ours already; this is a second lock on the door.
        con.execute("SET python_enable_replacements = false")
        done = threading.Event()
        watchdog = threading.Thread(target=_interrupt_after, args=(con, timeout, done),
                                    daemon=True)
        watchdog.start()
        try:
            relation = con.sql(statement.sql, params=statement.bind(params))
            return relation.to_arrow_table()
        except duckdb.InterruptException:
            raise ConfigError(f"the query ran longer than {timeout:g} s and was stopped: "
                              "narrow the period or aggregate more.") from None
        except duckdb.Error as err:
            raise ConfigError(f"the warehouse refused the query: {_one_line(err)}") from None
        finally:
            done.set()
            watchdog.join()


def _interrupt_after(con: Any, timeout: float, done: threading.Event) -> None:
    """Interrupt ``con`` once ``timeout`` has passed, and again every 50 ms until the query
    ends: an interrupt that lands while DuckDB is still planning (a many-way join under load)
    finds no running query and is lost, so one is not enough."""
    if done.wait(timeout):
        return
    while not done.is_set():
        con.interrupt()
        done.wait(0.05)


def _on_bigquery(warehouse: Any, query: exp.Query, params: dict[str, Any], timeout: float,
                 max_bytes_billed: int, max_rows: int) -> pa.Table:
    from google.api_core import exceptions as gexc
    from google.cloud import bigquery

    from costflow.warehouse.bigquery_engine import query_parameters

    text = sqlfiles.retarget(query, warehouse.tables()).sql(dialect="bigquery", comments=False)
    config = bigquery.QueryJobConfig(
        query_parameters=query_parameters(params), maximum_bytes_billed=max_bytes_billed,
        job_timeout_ms=int(timeout * 1000), labels={"costflow_statement": "run_query"})
    try:
        job = warehouse.client.query(text, job_config=config)
        return job.result(timeout=timeout, max_results=max_rows + 1).to_arrow()
    except gexc.GoogleAPICallError as err:
        raise ConfigError(f"BigQuery refused the query: {_one_line(err)}") from None
    except TimeoutError:
        raise ConfigError(f"the query ran longer than {timeout:g} s and was stopped.") from None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 400 else text[:400] + "..."


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)  # shortest round-trip text: the engine's float, never re-rounded
    return to_json(value)
