"""costflow.yaml: models, loader, error messages (file, line, key), secrets, hostile input.

Every error test asserts the exact line and key path the message names, so a message that
drifts to the wrong line or loses the key fails here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import pytest

from costflow.config import (
    COMPUTE_DEFAULTS,
    ConfigFileError,
    CostflowConfig,
    SourceConfig,
    checks,
    load_config,
    models,
    parse_config,
)
from costflow.errors import ConfigError

EXAMPLE = """\
version: 1
warehouse: duckdb:///.costflow/warehouse.duckdb
secrets: local:///.costflow/secrets
metadata: local:///.costflow/metadata.sqlite
sync:
  parallel: 3
  schedule: "0 6 * * *"
  stale_after_hours: 24
  lock_stale_seconds: 7200
tenants:
  - id: acme
    display_name: ACME Corp
    billing_accounts: ["123456789012"]
    sub_accounts: ["210987654321"]
    projects: [acme-prod]
    settings: {currency: EUR, budget: "1250.50", starts: 2026-01-01}
    policies: {required_tags: [{key: team}]}
  - id: globex
accounts:
  - id: "123456789012"
    provider: aws
    tenant: acme
    name: ACME payer
    credentials: secret://cloud-creds/acme/aws
    schedule: "30 5 * * mon-fri"
    sources:
      - uri: s3://acme-cur/reports/cur/
        id: cur
        format: aws_cur2
        billing_currency: USD
      - uri: aws-ce://
        start: 2026-10-01
        end: 2026-11-01
  - id: 01338E-BE3FD6-363B4C
    provider: gcp
    tenant: globex
    sources:
      - uri: bq://globex-billing.billing.gcp_billing_export_v1_01338E
        lookback_days: 3
        authorized_projects: [globex-web, globex-data]
      - uri: exports/gcp/**/*.json.gz
compute:
  provider: cloud_run
  services:
    - name: sync-job
      memory: 4Gi
      timeout: 2h
"""


def problem(text: str, environ: dict[str, str] | None = None) -> str:
    """The one-paragraph message parsing ``text`` as costflow.yaml raises."""
    with pytest.raises(ConfigFileError) as caught:
        parse_config(textwrap.dedent(text), "costflow.yaml", environ or {})
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_the_example_round_trips_with_every_value() -> None:
    config = parse_config(EXAMPLE, "costflow.yaml", {})

    assert config.sync.parallel == 3 and config.sync.stale_after_hours == 24
    acme = config.tenant("acme")
    assert acme.billing_accounts == ("123456789012",) and acme.projects == ("acme-prod",)
    # Free-form settings as the metadata store keeps them: an unquoted YAML date becomes text.
    assert acme.settings == {"currency": "EUR", "budget": "1250.50", "starts": "2026-01-01"}
    aws = config.account("acme", "123456789012")
    assert aws.credentials is not None and aws.credentials.uri == "secret://cloud-creds/acme/aws"
    assert aws.schedule == "30 5 * * mon-fri"
    assert [s.id for s in aws.sources] == ["cur", "source-2"]
    assert aws.sources[0].ingest_argv() == [
        "--source=s3://acme-cur/reports/cur/", "--provider=aws", "--format=aws_cur2",
        "--billing-currency=USD"]
    assert aws.sources[1].ingest_argv() == [
        "--source=aws-ce://", "--provider=aws", "--start=2026-10-01", "--end=2026-11-01"]
    gcp = config.account("globex", "01338E-BE3FD6-363B4C")
    assert gcp.sources[0].ingest_argv() == [
        "--source=bq://globex-billing.billing.gcp_billing_export_v1_01338E", "--provider=gcp",
        "--lookback-days=3", "--authorized-project=globex-web",
        "--authorized-project=globex-data"]
    assert gcp.sources[1].id == "source-2" and gcp.sources[1].start is None
    # Round trip: the dumped values validate to an equal config.
    again = CostflowConfig.model_validate(config.model_dump())
    assert again == config
    assert again.accounts[0].sources[0].ingest_argv() == aws.sources[0].ingest_argv()


def test_models_are_frozen_and_select_filters(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    config = load_config(path)
    assert config.source_path == path
    with pytest.raises(ValueError, match="frozen"):
        config.accounts[0].sources[0].uri = "elsewhere"  # type: ignore[misc]
    assert [a.id for a in config.select()] == ["123456789012", "01338E-BE3FD6-363B4C"]
    assert [a.id for a in config.select(tenants=["globex"])] == ["01338E-BE3FD6-363B4C"]
    assert [a.id for a in config.select(accounts=["123456789012"])] == ["123456789012"]
    with pytest.raises(ConfigError, match=r"no tenant 'acm' \(did you mean acme\?\)"):
        config.select(tenants=["acm"])
    with pytest.raises(ConfigError, match="no account '999'; known: 123456789012, 01338E"):
        config.select(accounts=["999"])
    with pytest.raises(ConfigError, match="no account is both in tenant"):
        config.select(tenants=["globex"], accounts=["123456789012"])
    with pytest.raises(ConfigError, match=r"team.yaml: no account of tenant acme '1'"):
        config.account("acme", "1")


def test_defaults_of_a_minimal_file() -> None:
    config = parse_config("version: 1\n", "costflow.yaml", {})
    assert (config.warehouse, config.secrets, config.metadata) == (
        models.DEFAULT_WAREHOUSE, models.DEFAULT_SECRETS, models.DEFAULT_METADATA)
    assert config.sync.parallel == 2 and config.sync.schedule == "0 6 * * *"
    assert config.accounts == () and config.tenants == ()


def test_default_urls_are_the_modules_defaults() -> None:
    from costflow import metadata, secrets, warehouse

    assert models.DEFAULT_WAREHOUSE == warehouse.DEFAULT_URL
    assert models.DEFAULT_SECRETS == secrets.DEFAULT_URL
    assert models.DEFAULT_METADATA == metadata.DEFAULT_URL


BASE = """\
tenants:
  - id: acme
accounts:
  - id: "1"
    provider: aws
    tenant: acme
    sources:
      - uri: exports/a.csv
"""


@pytest.mark.parametrize(("text", "expected"), [
    (BASE.replace("    sources:", "    sorces: []\n    sources:"),
     "costflow.yaml line 7, accounts[0].sorces: unknown key 'sorces' (did you mean sources?); "
     "the keys here are: id, provider, tenant, name, credentials, schedule, sources."),
    (BASE.replace("exports/a.csv", "https://example.com/x.csv"),
     "costflow.yaml line 8, accounts[0].sources[0].uri: no reader for https:// locations"),
    (BASE.replace("tenant: acme", "tenant: acmee"),
     "costflow.yaml line 6, accounts[0].tenant: no tenant 'acmee' (did you mean acme?); "
     "known: acme."),
    (BASE.replace("provider: aws", "provider: asw"),
     "costflow.yaml line 5, accounts[0].provider: no provider 'asw' (did you mean aws?)"),
    (BASE.replace('id: "1"', "id: 012345678901"),
     "costflow.yaml line 4, accounts[0].id: must be text; quote it"),
    (BASE.replace('id: "1"', 'id: ".."'),
     "costflow.yaml line 4, accounts[0].id: an account id is 1-128 characters"),
    (BASE + "      - uri: exports/b.csv\n        id: source-1\n",
     "costflow.yaml line 10, accounts[0].sources[1].id: source id source-1 is used twice"),
    (BASE + BASE.split("accounts:\n")[1],
     "costflow.yaml line 9, accounts[1].id: account 1 of tenant acme is listed twice"),
    (BASE.replace("tenant: acme", "tenant: acme\n    schedule: \"0 6 * *\""),
     "costflow.yaml line 7, accounts[0].schedule: has 4 field(s): a cron schedule has five"),
    (BASE.replace("tenant: acme", "tenant: acme\n    schedule: \"0 25 * * *\""),
     "costflow.yaml line 7, accounts[0].schedule: is not a valid cron schedule"),
    (BASE + "        billing_currency: UDS\n",
     "costflow.yaml line 9, accounts[0].sources[0].billing_currency: is not an ISO 4217"),
    (BASE + "        lookback_days: 3\n",
     "costflow.yaml line 9, accounts[0].sources[0].lookback_days: is read only for bq://"),
    (BASE + "        start: 2026-10-01\n",
     "costflow.yaml line 9, accounts[0].sources[0].start: only API sources"),
    (BASE + "        format: gcp_billing_export_v1\n",
     "costflow.yaml line 9, accounts[0].sources[0].format: is not an export format of aws; "
     "known: aws_cost_explorer,"),
    (BASE.replace("exports/a.csv", "az://container/exports/"),
     "costflow.yaml line 8, accounts[0].sources[0].uri: a azure location in a aws account"),
    (BASE.replace("    sources:\n      - uri: exports/a.csv\n", "    sources: []\n"),
     "costflow.yaml line 7, accounts[0].sources: lists no source"),
    (BASE.replace("    tenant: acme\n", ""),
     "costflow.yaml line 4, accounts[0].tenant: is required here; add it."),
    ("warehouse: postgres://db/costs\n",
     "costflow.yaml line 1, warehouse: is not a warehouse URL; accepted: duckdb:///"),
    ("metadata: firestore://\n",
     "costflow.yaml line 1, metadata: the URL is not a metadata store URL."),
    ("metadata: firestore://my-project/db\n",
     "costflow.yaml line 1, metadata: 'db' is not a Firestore database id"),
    ("secrets: vault://x\n", "costflow.yaml line 1, secrets: the URL is not a secret store URL."),
    ("version: 2\n", "costflow.yaml line 1, version: Input should be 1."),
    ("sync:\n  parallel: 0\n",
     "costflow.yaml line 2, sync.parallel: Input should be greater than or equal to 1."),
    ("tenants:\n  - id: Acme_Corp\n",
     "costflow.yaml line 2, tenants[0].id: a tenant id is 1-63 characters"),
    ("tenants:\n  - id: a\n  - id: a\n",
     "costflow.yaml line 3, tenants[1].id: tenant a is listed twice (also tenants[0])."),
    ("tenants:\n  - id: a\n    settings:\n      budget: 1250.5\n",
     "costflow.yaml line 3, tenants[0].settings: budget is a decimal number; write it as text"),
    ("compute:\n  services:\n    - name: mcp-server\n      min_instances: 9\n",
     "costflow.yaml line 3, compute.services[0]: min_instances (9) is above max_instances (5)"),
    ("compute:\n  services:\n    - name: sync-job\n      memory: 2GB\n",
     "costflow.yaml line 4, compute.services[0].memory: is not a memory size"),
    ("compute:\n  services:\n    - name: sync-job\n    - name: sync-job\n",
     "costflow.yaml line 4, compute.services[1].name: service sync-job is listed twice"),
    ("sync:\n  parallel: 2\n  parallel: 3\n",
     "costflow.yaml line 3: is not valid YAML (key 'parallel' appears twice in one mapping"),
    ("- a\n- b\n", "costflow.yaml line 1: must be a mapping of keys"),
    ("", "costflow.yaml line 1: must be a mapping of keys (version, warehouse, tenants, "
         "accounts, ...); run `costflow init`"),
    ("tenants: [\n", "costflow.yaml line 2: is not valid YAML"),
    ("1: x\n", "costflow.yaml line 1: a key must be text"),
])
def test_each_error_names_file_line_and_key(text: str, expected: str) -> None:
    assert expected in problem(text)


def test_several_problems_are_one_paragraph_in_file_order() -> None:
    text = BASE.replace("provider: aws", "provider: asw").replace(
        "exports/a.csv", "ftp://x/y") + "bogus: 1\n"
    message = problem(text)
    assert message.startswith("costflow.yaml has 3 problems: line 5, accounts[0].provider: ")
    assert message.index("line 5,") < message.index("line 8, accounts[0].sources[0].uri: no "
                                                    "reader for ftp://") \
        < message.index("line 9, bogus: unknown key 'bogus'")


def test_environment_variables_are_interpolated() -> None:
    text = ('warehouse: bigquery://${GCP_PROJECT}/costs\ntenants:\n  - id: a\n'
            '    display_name: "$${NOT_A_VAR} ${TEAM}s"\n')
    config = parse_config(text, "costflow.yaml", {"GCP_PROJECT": "acme-data", "TEAM": "ops"})
    assert config.warehouse == "bigquery://acme-data/costs"
    assert config.tenants[0].display_name == "${NOT_A_VAR} opss"
    assert problem(text, {"TEAM": "ops"}) == (
        "costflow.yaml line 1, warehouse: names the environment variable GCP_PROJECT, which is "
        "not set; set it (export GCP_PROJECT=...) or write $${ for a literal ${.")
    assert "line 1, warehouse: has '${' without a closing '}'" in problem(
        "warehouse: duckdb:///${X.duckdb\n")
    assert "line 1, warehouse: has ${...} without a variable name" in problem(
        "warehouse: duckdb:///${1X}.duckdb\n")


def test_interpolated_numbers_are_validated_as_numbers() -> None:
    config = parse_config("sync:\n  parallel: ${PAR}\n", "costflow.yaml", {"PAR": "4"})
    assert config.sync.parallel == 4
    assert "line 2, sync.parallel: Input should be a valid integer" in problem(
        "sync:\n  parallel: ${PAR}\n", {"PAR": "four"})


PLANTED = "Zq8wPlantedSecret7Value3xK"  # stands for a secret: no message may contain it


@pytest.mark.parametrize(("text", "environ", "expected"), [
    (BASE.replace("tenant: acme", f"tenant: acme\n    credentials: {PLANTED}"), {},
     "costflow.yaml line 7, accounts[0].credentials: holds a literal value under a key named "
     "for a secret (not shown)"),
    (f"tenants:\n  - id: a\n    settings:\n      db-password: {PLANTED}\n", {},
     "costflow.yaml line 4, tenants[0].settings.db-password: holds a literal value"),
    (f"tenants:\n  - id: a\n    policies:\n      key: {PLANTED}\n", {},
     "costflow.yaml line 4, tenants[0].policies.key: holds a literal value"),
    (f"# old key: AKIA{PLANTED[:16].upper()}\nversion: 1\n", {},
     "costflow.yaml line 1: holds what looks like an AWS access key id (not shown)"),
    (f"tenants:\n  - id: a\n    display_name: |\n      -----BEGIN RSA PRIVATE KEY-----\n"
     f"      {PLANTED}\n", {},
     "costflow.yaml line 4: holds what looks like a PEM private key block (not shown)"),
    (f"warehouse: bigquery://user:{PLANTED}@host/ds\n", {},
     "costflow.yaml line 1: holds what looks like a password in a URL"),
    (BASE.replace("exports/a.csv", f"az://c/x?sv=2024&sig={PLANTED}"), {},
     "costflow.yaml line 8: holds what looks like a SAS token signature"),
    ("tenants:\n  - id: a\n    display_name: ${NAME}\n", {"NAME": "ASIA" + PLANTED[:16].upper()},
     "costflow.yaml line 3, tenants[0].display_name: becomes an AWS access key id once ${NAME} "
     "is filled in (not shown)"),
    (BASE.replace("tenant: acme", "tenant: acme\n    credentials:\n      token: x" + PLANTED),
     {}, "costflow.yaml line 8, accounts[0].credentials.token: holds a literal value"),
])
def test_planted_clear_text_secret_is_refused_without_echo(
        text: str, environ: dict[str, str], expected: str) -> None:
    message = problem(text, environ)
    assert expected in message
    assert "costflow secrets set" in message
    for fragment in (PLANTED, PLANTED[:16], PLANTED[:16].upper(), PLANTED[-10:]):
        assert fragment not in message


def test_a_secret_reference_is_accepted_and_a_bad_name_is_not_echoed() -> None:
    ok = BASE.replace("tenant: acme", "tenant: acme\n    credentials: secret://cloud-creds/acme/aws")
    assert parse_config(ok, "costflow.yaml", {}).accounts[0].credentials.name == (  # type: ignore[union-attr]
        "cloud-creds/acme/aws")
    message = problem(ok.replace("cloud-creds/acme/aws", "cloud-creds/Acme/aws"))
    assert message.startswith("costflow.yaml line 7, accounts[0].credentials: secret name "
                              "cloud-creds/{tenant}/{provider}: the tenant part has upper-case")
    assert "Acme" not in message


def test_policies_may_name_tag_keys() -> None:
    config = parse_config("tenants:\n  - id: a\n    policies: {required_tags: [{key: team}]}\n",
                          "costflow.yaml", {})
    assert config.tenants[0].policies == {"required_tags": [{"key": "team"}]}


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    started = time.monotonic()
    message = problem("\n".join(lines) + "\ntenants: *a11\n")
    assert time.monotonic() - started < 2
    assert message == (
        "costflow.yaml: expands to more than 20,000 values once its anchors and aliases (&name, "
        "*name) are filled in, or nests them in a loop; a costflow config is small, so it is "
        "refused.")


def test_small_aliases_are_fine() -> None:
    text = BASE + "  - id: \"2\"\n    <<: &shared {provider: aws, tenant: acme}\n" \
        "    sources: [{uri: exports/b.csv}]\n"
    config = parse_config(text, "costflow.yaml", {})
    assert [(a.id, a.provider, a.tenant) for a in config.accounts] == [
        ("1", "aws", "acme"), ("2", "aws", "acme")]


@pytest.mark.parametrize(("text", "expected"), [
    ("x: " + "[" * 100 + "]" * 100 + "\n",
     "costflow.yaml line 1: nests lists and mappings more than 64 levels deep"),
    # ruamel's scanner is quadratic in flow nesting: this one alone would take minutes.
    ("x: " + "[" * 5000 + "]" * 5000 + "\n",
     "costflow.yaml line 1: nests lists and mappings more than 64 levels deep"),
    # A quote the YAML parser does not open must not hide the brackets from the count.
    ("a: it's\nb: " + "{x: " * 100 + "1" + "}" * 100 + "\n",
     "costflow.yaml line 2: nests lists and mappings more than 64 levels deep"),
    ('a: "x\\\\"\nb: ' + "[" * 100 + "]" * 100 + "\n",
     "costflow.yaml line 2: nests lists and mappings more than 64 levels deep"),
    ("x:\n" + "".join(" " * i + f"k{i}:\n" for i in range(0, 400, 2)) + "  v\n",
     "is indented more than 256 columns"),
    ("x:\n" + "- " * 2000 + "a\n", "nest"),
])
def test_deep_nesting_is_refused_quickly(text: str, expected: str) -> None:
    started = time.monotonic()
    assert expected in problem(text)
    assert time.monotonic() - started < 2


def test_files_that_are_not_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTFLOW_CONFIG", raising=False)
    with pytest.raises(ConfigFileError) as missing:
        load_config()
    assert str(missing.value) == (
        "costflow.yaml: no such file; run `costflow init` to write one for the demo data, or "
        "name yours with --config PATH or $COSTFLOW_CONFIG.")
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigFileError, match=r"^dir.yaml: is a directory, not a file"):
        load_config("dir.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"version: 1\ntenants:\n  - id: caf\xe9\n")
    with pytest.raises(ConfigFileError, match=r"^latin1.yaml line 3: is not UTF-8 text \(byte "
                                              r"0xe9\)"):
        load_config("latin1.yaml")
    (tmp_path / "huge.yaml").write_bytes(b"# " + b"x" * 1_000_000 + b"\n")
    with pytest.raises(ConfigFileError, match=r"^huge.yaml: is larger than 1,000,000 bytes"):
        load_config("huge.yaml")
    (tmp_path / "bom.yaml").write_bytes("\ufeffversion: 1\n".encode())
    assert load_config("bom.yaml").version == 1
    monkeypatch.setenv("COSTFLOW_CONFIG", "bom.yaml")
    assert load_config().source_path == Path("bom.yaml")


def test_compute_defaults_and_overrides() -> None:
    default = parse_config("version: 1\n", "costflow.yaml", {})
    sync_job = default.compute_config("sync-job")
    assert sync_job == COMPUTE_DEFAULTS["sync-job"]
    assert (sync_job.memory, sync_job.cpu, sync_job.max_instances, sync_job.timeout_seconds) == (
        "2Gi", 2, 1, 3600)
    mcp = default.compute_config("gcp-mcp-server")
    assert (mcp.name, mcp.memory, mcp.max_instances, mcp.timeout_seconds) == (
        "mcp-server", "256Mi", 5, 300)

    config = parse_config(EXAMPLE + "    - name: gcp-mcp-server\n      timeout_seconds: 60\n"
                          "    - name: ag-ui-server\n      concurrency: 40\n",
                          "costflow.yaml", {})
    changed = config.compute_config("sync-job")
    assert (changed.memory, changed.memory_mib, changed.timeout_seconds, changed.cpu) == (
        "4Gi", 4096, 7200, 2)
    assert config.compute_config("mcp-server").timeout_seconds == 60
    other = config.compute_config("ag-ui-server")
    assert (other.name, other.concurrency, other.memory, other.max_instances) == (
        "ag-ui-server", 40, "512Mi", 10)
    with pytest.raises(ConfigError, match=r"no compute settings for service 'web'; known "
                                          r"services: ag-ui-server, gcp-mcp-server, mcp-server, "
                                          r"sync-job"):
        config.compute_config("web")


@pytest.mark.parametrize(("value", "seconds"), [(300, 300), ("300s", 300), ("5m", 300),
                                                ("2h", 7200), ("45", 45)])
def test_timeouts(value: object, seconds: int) -> None:
    from costflow.config.compute import timeout_seconds

    assert timeout_seconds(value) == seconds


@pytest.mark.parametrize("value", ["0s", "300ms", "1d", True, 3.5, "169h"])
def test_bad_timeouts(value: object) -> None:
    from costflow.config.compute import timeout_seconds

    with pytest.raises(ValueError, match="duration|between 1 second"):
        timeout_seconds(value)


@pytest.mark.parametrize(("memory", "cpu", "error"), [
    ("64Mi", 1, "128Mi to 32Gi"), ("33Gi", 1, "128Mi to 32Gi"), ("1.5Gi", 1, "memory size"),
    ("512Mi", 3, "1, 2, 4, 6 or 8"), ("512Mi", 0.05, "1, 2, 4, 6 or 8")])
def test_bad_compute_values(memory: str, cpu: float, error: str) -> None:
    from costflow.config.compute import ComputeConfig

    with pytest.raises(ValueError, match=error):
        ComputeConfig(name="x", memory=memory, cpu=cpu)


GOOD_CRON = ["0 6 * * *", "*/15 * * * *", "30 5 * * mon-fri", "0 0 1 jan,jul *",
             "0 8-18/2 * * 1-5", "0 0 * * 7"]
BAD_CRON = ["@daily", "0 6 * *", "0 6 * * * *", "61 * * * *", "0 0 L * *", "0 0 ? * *",
            "0 0 * * MON#2", "*/0 * * * *", "0 0 * * 8"]


@pytest.mark.parametrize("expression", GOOD_CRON)
def test_cron_accepted_is_what_croniter_accepts(expression: str) -> None:
    from croniter import croniter

    assert checks.cron(expression) == expression
    assert croniter.is_valid(expression)


@pytest.mark.parametrize("expression", BAD_CRON)
def test_cron_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="cron"):
        checks.cron(expression)


@pytest.mark.parametrize("url", [
    "duckdb:///.costflow/w.duckdb", "duckdb:////var/w.duckdb", "duckdb:///:memory:",
    "bigquery://my-project/costs_1", "bigquery://proj/ds", "duckdb:///", "duckdb:///dir/", "duckdb:///w.duckdb?x=1",
    "bigquery://proj", "bigquery://proj/ds/extra", "bigquery:///ds", "sqlite:///x"])
def test_warehouse_check_agrees_with_connect(url: str) -> None:
    from costflow import warehouse

    try:
        warehouse.connect(url).close()
        accepted = True
    except ConfigError:
        accepted = False
    try:
        checks.warehouse_url(url)
        assert accepted, f"{url} passes the config check but connect refuses it"
    except ValueError:
        assert not accepted, f"{url} is refused by the config check but connect accepts it"


def test_source_config_alone_has_no_provider_flag() -> None:
    with pytest.raises(ValueError, match="only API sources"):
        SourceConfig(uri="exports/x.csv", id="x", end=date(2026, 1, 1))
    plain = SourceConfig(uri="exports/x.csv", id="x")
    assert plain.ingest_argv() == ["--source=exports/x.csv"] and plain.provider is None


def test_import_is_light() -> None:
    """Reading the config must not load Beam or the providers' catalog (seconds)."""
    code = ("import sys, costflow.config; "
            "print(sorted(m for m in ('apache_beam', 'costflow.providers.base', 'pyarrow', "
            "'duckdb', 'boto3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
