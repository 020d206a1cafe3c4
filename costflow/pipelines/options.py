"""Pipeline options of the ingest pipeline, one PipelineOptions subclass per concern.

Flags are snake_case and match the parameters of the Dataflow Flex Template
(`dataflow_templates/ingest/metadata.json`); a test compares the two.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from costflow.providers import NAMES


def _true_or_false(text: str) -> bool:
    """A flag's value as a Flex Template passes it (``--flag=true``)."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise ValueError(f"{text!r} is not true or false")


class SourceOptions(PipelineOptions):
    """Where to read and what it is."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument("--source", action="append", default=None,
                            help="File, directory or glob (** allowed); repeat for more.")
        parser.add_argument("--provider", default=None, choices=NAMES,
                            help="Only accept exports of this provider.")
        parser.add_argument("--format", dest="source_format", default=None,
                            help="Force the export format instead of detecting it by header.")
        parser.add_argument("--billing_currency", default=None,
                            help="ISO 4217 currency (e.g. USD) the costs of exports WITHOUT a "
                                 "currency column are in, asserted by the user; used only for "
                                 "such files and flagged on their rows "
                                 "(x_DataQualityFlags BillingCurrency:asserted_by_user).")
        parser.add_argument("--authorized_project", action="append", default=None,
                            help="bq:// GCP billing export: only rows of this project; repeat "
                                 "for more (default: every project).")
        parser.add_argument("--lookback_days", type=int, default=None,
                            help="bq:// GCP billing export: re-read rows exported up to this many "
                                 "days before the ledger's high-water export_time (default 3).")
        parser.add_argument("--skip_unchanged_files", type=_true_or_false, nargs="?",
                            const=True, default=False,
                            help="Also skip files named directly (they carry no delivery id) "
                                 "when the last succeeded run that loaded each of them loaded "
                                 "the same content (uri, sha256): what `costflow sync` asks for. "
                                 "Without it, naming files again reloads them.")
        parser.add_argument("--credentials", default=None,
                            help="secret://NAME: the secret holding the credentials the "
                                 "sources are read with (a reference, never the value; each "
                                 "process that builds a client reads the secret, so Dataflow "
                                 "workers need access to it). Default: the environment's "
                                 "credential chain.")
        parser.add_argument("--secrets", default=None,
                            help="Secret store URL for --credentials (local:///DIR, "
                                 "aws-sm://REGION, gcp-sm://PROJECT, azure-kv://VAULT; default: "
                                 "$COSTFLOW_SECRETS, else local:///.costflow/secrets).")


class WarehouseOptions(PipelineOptions):
    """Where the run commits, and where it stages and reports."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument("--warehouse", default=None,
                            help="duckdb:///path.duckdb or bigquery://PROJECT/DATASET "
                                 "(default: $COSTFLOW_WAREHOUSE, else "
                                 "duckdb:///.costflow/warehouse.duckdb).")
        parser.add_argument("--staging_dir", default=None,
                            help="Directory or gs:// prefix for staged Parquet files "
                                 "(default: .costflow/staging).")
        parser.add_argument("--report_dir", default=None,
                            help="Directory or gs:// prefix for run reports "
                                 "(default: .costflow/runs).")
        parser.add_argument("--run_id", default=None,
                            help="Run ID, new for every run (default: generated): 1-128 "
                                 "letters, digits, '.', '_' or '-', starting with a letter or "
                                 "digit, no '..'. It names the staging directory and the "
                                 "report, so nothing else is accepted.")


class QualityOptions(PipelineOptions):
    """When a source counts as systematically broken."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument("--max_dead_letter_ratio", type=float, default=0.01,
                            help="Fail the run when a source dead-letters more than this "
                                 "share of its rows (and more than --dead_letter_allowance).")
        parser.add_argument("--dead_letter_allowance", type=int, default=10,
                            help="Dead-lettered rows per source tolerated whatever the ratio.")
