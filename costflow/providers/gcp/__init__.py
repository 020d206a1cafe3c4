"""GCP: the Cloud Billing export (standard and detailed), from BigQuery or as extracted files
(JSON lines, Parquet, Avro; local or gs://), and Recommender.

Everything costflow knows about GCP is in this folder and is declared once, below.
"""

from __future__ import annotations

from costflow.providers.base import Provider
from costflow.providers.gcp import bigquery_export, export_files, recommender
from costflow.providers.gcp.billing import GcpDetailedExport, GcpStandardExport
from costflow.providers.gcp.samples.demo import write_demo
from costflow.sources.contract import Container, Scheme

PROVIDER = Provider(
    "gcp",
    formats=(GcpStandardExport(), GcpDetailedExport()),
    schemes=tuple(Scheme(name, bigquery_export.plan_export,
                         resolver=bigquery_export.resolve_pattern, period=True)
                  for name in ("bq", "bq+duckdb")),
    containers=(*export_files.CONTAINERS,
                Container(bigquery_export.LOCAL, bigquery_export.read_local),
                Container(bigquery_export.BIGQUERY, beam_reader=bigquery_export.beam_read)),
    file_types=export_files.FILE_TYPES,
    recommender=recommender.fetch,
    demo=write_demo,
    # Google's system labels (goog-...) and GKE's (k8s-...).
    tag_prefixes=("goog-", "k8s-"),
)
