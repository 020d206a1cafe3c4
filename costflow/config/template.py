"""The commented costflow.yaml that `costflow init` writes for the demo data.

One tenant, ``demo``, and one account per provider whose source is the demo export written by
that provider's demo writer; local warehouse, secret store and metadata store. The comments
say what each key means, so the file doubles as the reference a user edits from; a test loads
what `render` returns with `load_config`, so the template can never drift from the models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoAccount:
    """The billing account the demo exports of one provider belong to (the ids are the ones
    the sample generators write; tests/test_config_init.py reads them back from the files)."""

    id: str
    name: str
    billing_accounts: tuple[str, ...]
    what: str


DEMO_ACCOUNTS: dict[str, DemoAccount] = {
    "aws": DemoAccount("123412340534", "Demo AWS payer", ("123412340534",),
                       "legacy CUR delivery, csv.gz, two months"),
    "gcp": DemoAccount("01338E-BE3FD6-363B4C", "Demo GCP billing account",
                       ("01338E-BE3FD6-363B4C", "0A7F21-9C44D2-5E8B10"),
                       "detailed billing export, JSON lines gzip, two invoice months"),
    "azure": DemoAccount("8611537", "Demo Azure EA enrollment", ("8611537",),
                         "EA actual + amortized cost exports, csv.gz, two months"),
}

_HEADER = """\
# costflow.yaml: the tenants, cloud accounts and export locations `costflow sync` loads.
# Written by `costflow init` for the demo exports under {demo_dir}/.
# Reference: README "Configuration". Every key is checked when the file is read: an unknown
# key, a bad URI or an account naming a missing tenant is an error naming the line.
#
# Paths and local URLs are relative to the directory you run costflow from.
# ${{NAME}} in a value is replaced by the environment variable NAME ($${{ writes a literal ${{).
# Never put a password, key or token here: store it with
#   costflow secrets set cloud-creds/TENANT/PROVIDER --from-file key.json
# and name it, e.g. credentials: secret://cloud-creds/acme/aws

version: 1                 # the format of this file

# Where costs are loaded: duckdb:///relative/file.duckdb, duckdb:////absolute/file.duckdb
# or bigquery://PROJECT/DATASET.
warehouse: {warehouse}

# The secret store credentials are read from: local:///dir (encrypted files; the key is in
# $COSTFLOW_SECRETS_KEY or the OS keyring), aws-sm://REGION, gcp-sm://PROJECT or
# azure-kv://VAULT_NAME.
secrets: {secrets}

# Where sync keeps each account's state (last load, failures, locks): local:///file.sqlite,
# or firestore://PROJECT[/DATABASE].
metadata: {metadata}

sync:
  parallel: 2                # sources loaded at the same time
  schedule: "0 6 * * *"      # cron (UTC) for accounts without their own schedule
  stale_after_hours: 36      # `costflow accounts list` flags an account not loaded for longer
  lock_stale_seconds: 21600  # a sync lock without heartbeat for this long may be taken over

# Business units. A tenant may read the costs of the billing accounts, sub accounts
# (AWS linked accounts, Azure subscriptions) and GCP projects listed here.
tenants:
  - id: demo                 # lower-case letters, digits and '-'
    display_name: Demo tenant
    billing_accounts: {billing_accounts}
    sub_accounts: []         # e.g. ["210987654321"]
    projects: []             # e.g. [acme-prod]
    settings: {{}}             # free-form; money as text ("1250.50"), never 1250.5
    policies: {{}}             # free-form (budgets, required tags, ...)

# Cloud accounts: one entry per billing account (AWS payer, GCP billing account, Azure
# billing account or subscription), each with the export locations its costs come from.
accounts:
"""

_ACCOUNT = (
    ("  - id: {id}", "as the provider spells it; quote numbers"),
    ("    provider: {provider}", "aws, gcp or azure"),
    ("    tenant: demo", "one of the tenants above"),
    ("    name: {name}", "optional display name"),
    ("    # credentials: secret://cloud-creds/demo/{provider}", "cloud locations need one"),
    ("    # schedule: \"0 7 * * *\"", "cron (UTC); default: sync.schedule"),
    ("    sources:", "{what}"),
    ("      - uri: {uri}", "a path, glob or URI `costflow ingest` reads"),
    ("        id: demo", "unique in this account (default: source-1, ...)"),
)
_COMMENT_COLUMN = 40

_FOOTER = """\

# A real account looks like this (uncomment and edit):
#  - id: "123456789012"
#    provider: aws
#    tenant: demo
#    credentials: secret://cloud-creds/demo/aws
#    sources:
#      - uri: s3://my-cur-bucket/reports/my-cur/   # any location `costflow ingest` reads
#        id: cur
#        format: aws_cur2          # optional: the export format (detected when left out)
#        billing_currency: USD     # optional: only for exports without a currency column
#      - uri: aws-ce://            # API sources also take start and end dates
#        id: cost-explorer
#        start: 2026-10-01
#        end: 2026-11-01
#  BigQuery export sources (bq://) also take lookback_days: 3 and authorized_projects: [p].

# Cloud Run settings of the services costflow deploys (design F6 section 4.2); only what you
# change is listed. Defaults: sync-job 2Gi, 2 cpu, 0-1 instances, concurrency 1, 3600s;
# mcp-server 256Mi, 1 cpu, 0-5 instances, concurrency 80, 300s.
compute:
  provider: cloud_run
  services: []
  # services:
  #   - name: sync-job
  #     memory: 4Gi              # 128Mi to 32Gi
  #     timeout: 2h              # seconds, or 300s, 5m, 2h
"""


def _q(value: str) -> str:
    """A YAML scalar that stays a string (JSON strings are valid YAML)."""
    return json.dumps(value)


def render(sources: Mapping[str, str], demo_dir: str,
           warehouse: str = "duckdb:///.costflow/warehouse.duckdb",
           secrets: str = "local:///.costflow/secrets",
           metadata: str = "local:///.costflow/metadata.sqlite") -> str:
    """costflow.yaml text for the demo exports: ``sources`` maps provider -> its location."""
    billing = [b for p in sources for b in DEMO_ACCOUNTS[p].billing_accounts]
    text = _HEADER.format(demo_dir=demo_dir, warehouse=warehouse, secrets=secrets,
                          metadata=metadata, billing_accounts=json.dumps(billing))
    for provider, uri in sources.items():
        account = DEMO_ACCOUNTS[provider]
        values = {"id": _q(account.id), "provider": provider, "name": _q(account.name),
                  "what": account.what, "uri": _q(uri)}
        for code, comment in _ACCOUNT:
            line = code.format(**values)
            text += f"{line.ljust(_COMMENT_COLUMN)} # {comment.format(**values)}\n"
    return text + _FOOTER
