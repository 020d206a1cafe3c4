"""`costflow init` and what the config knows about the providers without loading them.

init must write a file `load_config` reads, whose sources are the demo exports it wrote and
whose account ids are the ones in those exports; it must never overwrite a config (or someone
else's files) without being told to. The config's list of schemes and formats
(`costflow.config.known`) must stay equal to the providers' catalog.
"""

from __future__ import annotations

import argparse
import csv
import glob
import gzip
import io
import json
from pathlib import Path

import pytest

from costflow.commands import init
from costflow.config import known, load_config
from costflow.config.template import DEMO_ACCOUNTS
from costflow.errors import ConfigError

ROWS = init.MIN_ROWS  # per month and provider: the least every generator takes, fast


def run_init(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="costflow")
    init.add_parser(parser.add_subparsers(dest="command"))
    return init.run(parser.parse_args(["init", "--rows", str(ROWS), *argv]))


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `costflow init` in a fresh directory (the generators take a few seconds)."""
    root = tmp_path_factory.mktemp("init")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("COSTFLOW_CONFIG", raising=False)
        assert run_init() == 0
    return root


def _billing_accounts(provider: str, files: list[str]) -> set[str]:
    """The billing account ids the demo export files themselves hold."""
    column = {"aws": "bill/PayerAccountId", "azure": "BillingAccountId"}
    found: set[str] = set()
    for name in files:
        with gzip.open(name, "rt", encoding="utf-8-sig") as handle:
            if provider == "gcp":
                found |= {json.loads(line)["billing_account_id"] for line in handle}
            else:
                found |= {row[column[provider]] for row in csv.DictReader(io.StringIO(
                    handle.read()))}
    return found


def test_init_writes_a_config_that_loads_and_points_at_the_demo(
        initialized: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(initialized)
    config = load_config("costflow.yaml")
    assert [t.id for t in config.tenants] == ["demo"]
    assert [(a.provider, a.id) for a in config.accounts] == [
        ("aws", "123412340534"), ("gcp", "01338E-BE3FD6-363B4C"), ("azure", "8611537")]
    assert config.warehouse == "duckdb:///.costflow/warehouse.duckdb"
    assert config.secrets.startswith("local:///") and config.metadata.startswith("local:///")
    assert config.compute_config("sync-job").memory == "2Gi"
    tenant = config.tenant("demo")
    for account in config.accounts:
        (source,) = account.sources
        assert source.ingest_argv()[:2] == [f"--source={source.uri}",
                                            f"--provider={account.provider}"]
        uri = source.uri if "*" in source.uri else f"{source.uri}/**/*.gz"
        files = sorted(f for f in glob.glob(uri, recursive=True) if f.endswith(".gz"))
        assert files, f"{account.provider}: nothing at {source.uri}"
        assert all(f.startswith(f".costflow/demo/{account.provider}/") for f in files)
        # The ids in the config are the ids in the exports the config points at.
        in_data = _billing_accounts(account.provider, files)
        assert account.id in in_data
        assert in_data == set(DEMO_ACCOUNTS[account.provider].billing_accounts)
        assert in_data <= set(tenant.billing_accounts)
    text = (initialized / "costflow.yaml").read_text(encoding="utf-8")
    assert "# The secret store credentials are read from" in text
    assert text.count("secret://cloud-creds/demo/") >= 3  # commented examples, not values


def test_init_refuses_to_overwrite_without_force(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTFLOW_CONFIG", raising=False)
    mine = "version: 1\n# my own config\n"
    (tmp_path / "costflow.yaml").write_text(mine, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^costflow.yaml already exists; nothing was written"):
        run_init()
    assert (tmp_path / "costflow.yaml").read_text(encoding="utf-8") == mine
    assert not (tmp_path / ".costflow").exists()  # refused before generating anything


def test_init_force_replaces_and_honours_path_and_demo_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "conf" / "team.yaml"
    target.parent.mkdir()
    target.write_text("version: 1\n", encoding="utf-8")
    assert run_init("--path", str(target), "--demo-dir", "data/demo", "--force") == 0
    config = load_config(target)
    assert [s.uri for a in config.accounts for s in a.sources] == [
        "data/demo/aws/**/*.csv.gz", "data/demo/gcp", "data/demo/azure"]
    # Again, over its own demo exports: they are regenerated, the config replaced.
    assert run_init("--path", str(target), "--demo-dir", "data/demo", "--force") == 0
    assert load_config(target) == config


def test_init_never_deletes_a_folder_it_did_not_write(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    precious = tmp_path / "exports" / "aws" / "real.csv"
    precious.parent.mkdir(parents=True)
    precious.write_text("keep me", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"exports/aws exists and was not written by "
                                          r"`costflow init`; nothing was written"):
        run_init("--path", "x.yaml", "--demo-dir", "exports")
    assert precious.read_text(encoding="utf-8") == "keep me"
    assert not (tmp_path / "x.yaml").exists()


def test_init_refuses_too_few_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser(prog="costflow")
    init.add_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(ConfigError, match="--rows must be at least 200"):
        init.run(parser.parse_args(["init", "--path", "x.yaml", "--rows", "10"]))
    assert list(tmp_path.iterdir()) == []


def test_known_names_equal_the_catalog() -> None:
    from costflow.providers import CATALOG

    declared = {s.name: p.name for p in CATALOG.providers for s in p.schemes}
    from costflow.sources.files import SCHEMES as FILE_SCHEMES

    declared |= {s.name: None for s in FILE_SCHEMES}
    assert declared == known.SCHEMES
    assert set(known.PERIOD_SCHEMES) == set(CATALOG.period_schemes)
    assert {p.name: tuple(sorted(n.source_format for n in p.formats))
                             for p in CATALOG.providers} == known.FORMATS
    bigquery = {name for name, s in CATALOG._schemes.items() if s.resolver is not None}
    assert set(known.BIGQUERY_SCHEMES) == bigquery
    assert set(DEMO_ACCOUNTS) == set(CATALOG.with_demo())
