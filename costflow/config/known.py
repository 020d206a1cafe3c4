"""The names the config checks sources against, without loading the providers' catalog.

`costflow.providers.CATALOG` holds each provider's URI schemes and export formats, but loading
it imports every reader and Apache Beam (seconds), and `load_config` runs in commands that
never read a file (``costflow accounts list``, ``costflow schedule``). So the names are listed
here as data, and tests/test_config.py fails when they drift from the catalog's.
"""

from __future__ import annotations

# URI scheme -> the provider that declares it; None: a provider-neutral file system scheme
# (costflow.sources.files.SCHEMES). A path without "://" is a local file, directory or glob.
SCHEMES: dict[str, str | None] = {
    "file": None,
    "gs": None,
    "s3": "aws",
    "aws-ce": "aws",
    "bq": "gcp",
    "bq+duckdb": "gcp",
    "az": "azure",
    "azure-query": "azure",
    "opencost": "opencost",
    "opencost+https": "opencost",
}

# API sources: their period comes from start/end (`Catalog.period_schemes`).
PERIOD_SCHEMES: tuple[str, ...] = ("aws-ce", "bq", "bq+duckdb", "azure-query", "opencost",
                                   "opencost+https")

# Schemes whose planner reads lookback_days and authorized_projects (the BigQuery export).
BIGQUERY_SCHEMES: tuple[str, ...] = ("bq", "bq+duckdb")

# Provider -> its export formats (`--format`), the names of its normalizers.
FORMATS: dict[str, tuple[str, ...]] = {
    "aws": ("aws_cost_explorer", "aws_cur2", "aws_cur_legacy", "aws_cur_legacy_parquet",
            "aws_focus"),
    "gcp": ("gcp_billing_export_resource_v1", "gcp_billing_export_v1"),
    "azure": ("azure_cost_details", "azure_cost_query", "azure_focus"),
    "opencost": ("opencost_allocation", "opencost_csv_export"),
    "focus": ("focus_export",),
}
