"""Open the warehouse a URL names: the one place a URL becomes an engine.

    duckdb:///.costflow/warehouse.duckdb   DuckDB file, relative to the working directory
    duckdb:////var/lib/costflow/wh.duckdb  DuckDB file, absolute path
    duckdb:///:memory:                     DuckDB in memory (tests, experiments)
    bigquery://PROJECT/DATASET             BigQuery dataset

The engines are imported only when asked for, so a DuckDB user never imports the BigQuery client.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from costflow.errors import ConfigError
from costflow.warehouse.base import RunStart, StagedRun, Warehouse

ENV_VAR = "COSTFLOW_WAREHOUSE"
DEFAULT_URL = "duckdb:///.costflow/warehouse.duckdb"
DUCKDB_PREFIX = "duckdb:///"
ACCEPTED = (
    "Accepted warehouse URLs: duckdb:///relative/path.duckdb (relative to the working "
    "directory), duckdb:////absolute/path.duckdb, duckdb:///:memory:, and "
    f"bigquery://PROJECT/DATASET. Set it with --warehouse or {ENV_VAR}; the default is "
    f"{DEFAULT_URL}."
)

__all__ = ["DEFAULT_URL", "ENV_VAR", "SERVER_KEEP_OPEN_S", "RunStart", "StagedRun",
           "Warehouse", "connect", "resolve_url"]


def resolve_url(flag_value: str | None = None) -> str:
    """The warehouse URL to use: the flag, else ``$COSTFLOW_WAREHOUSE``, else the default."""
    return flag_value or os.environ.get(ENV_VAR) or DEFAULT_URL


# How long a query server keeps a DuckDB file open after a query for the next one (seconds).
SERVER_KEEP_OPEN_S = 1.0


def connect(url: str, *, reader: bool = False, keep_open: float = 0.0) -> Warehouse:
    """The `Warehouse` a URL names (nothing is opened or created until it is used).

    ``reader=True`` is for the query side (CLI query, MCP server, query services): on DuckDB a
    query then waits only briefly for another process's write to finish and says the warehouse
    is busy (`costflow.errors.WarehouseBusy`) instead of waiting as long as a writer does
    (`costflow.warehouse.duckdb_engine`). BigQuery needs no such wait. ``keep_open`` (DuckDB,
    long-lived query servers; `SERVER_KEEP_OPEN_S`) keeps the file open that many seconds after
    a query for the next one; call ``close()`` when done.

    Raises:
        ConfigError: the URL is not one of the accepted forms.
    """
    if url.startswith(DUCKDB_PREFIX):
        path = url[len(DUCKDB_PREFIX):]
        if not path or path.endswith("/") or "?" in path or "#" in path:
            raise ConfigError(f"{url!r} does not name a DuckDB file. {ACCEPTED}")
        from costflow.warehouse.duckdb_engine import DuckDBWarehouse

        # Only a reader passes the flag: tests swap in subclasses taking the path alone.
        if keep_open:
            return DuckDBWarehouse(path, reader=reader, keep_open=keep_open)
        return DuckDBWarehouse(path, reader=True) if reader else DuckDBWarehouse(path)
    if url.startswith("bigquery://"):
        parts = urlsplit(url)
        dataset = parts.path.strip("/")
        if (not parts.netloc or not dataset or "/" in dataset or parts.query
                or parts.fragment):
            raise ConfigError(f"{url!r} does not name a BigQuery dataset. {ACCEPTED}")
        from costflow.warehouse.bigquery_engine import BigQueryWarehouse

        return BigQueryWarehouse(parts.netloc, dataset)
    raise ConfigError(f"{url!r} is not a warehouse URL. {ACCEPTED}")
