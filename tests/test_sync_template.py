"""The sync Flex Template: its parameters are exactly `costflow sync`'s flags, its launcher
turns them back into those flags, and the one-step job it submits runs the sync."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from costflow.commands.sync import add_parser
from costflow.config import checks
from costflow.errors import ConfigError
from costflow.schedule import GcpTarget, ScheduleGroup, launch_request
from costflow.schedule.dataflow_job import localize_config
from tests.conftest import ROOT
from tests.flex_template import dockerfile_copies
from tests.test_gcp_gcs_source import gcs  # noqa: F401  (the GCS emulator fixture)

TEMPLATE = ROOT / "dataflow_templates/sync"
METADATA = json.loads((TEMPLATE / "metadata.json").read_text())
PARAMS = {p["name"]: p for p in METADATA["parameters"]}


def _sync_parser() -> argparse.ArgumentParser:
    sub = argparse.ArgumentParser().add_subparsers(dest="command")
    add_parser(sub)
    return sub.choices["sync"]


def _sync_actions() -> dict[str, argparse.Action]:
    return {a.option_strings[0].removeprefix("--").replace("-", "_"): a
            for a in _sync_parser()._actions if a.option_strings and a.option_strings[0] != "-h"}


@pytest.fixture(scope="module")
def launcher():
    spec = importlib.util.spec_from_file_location("costflow_sync_launcher", TEMPLATE / "main.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_metadata_parameters_match_the_sync_flags():
    assert set(PARAMS) == set(_sync_actions())
    # Optional as on the command line, but for the config: a worker has no ./costflow.yaml.
    for name, action in _sync_actions().items():
        assert PARAMS[name]["isOptional"] is not (action.required or name == "config"), name


def test_switches_take_true_or_false_and_lists_take_the_configs_ids():
    for name, action in _sync_actions().items():
        if action.nargs == 0:
            assert PARAMS[name]["regexes"] == ["^(true|false)$"], name
    # Repeatable flags are comma-separated lists of ids exactly as the config checks them.
    for name, pattern in (("account", checks.ACCOUNT_ID), ("tenant", checks.TENANT_ID),
                          ("source", checks.SOURCE_ID)):
        assert isinstance(_sync_actions()[name], argparse._AppendAction)
        assert PARAMS[name]["regexes"] == [f"^{pattern.pattern}(,{pattern.pattern})*$"]
        (regex,) = PARAMS[name]["regexes"]
        assert not re.match(regex, "a;b") and not re.match(regex, "a,,b")


def test_launcher_turns_parameters_into_sync_flags_and_keeps_beam_options(launcher):
    argv = ["--config=gs://b/costflow.yaml", "--account=123,0133-AB", "--due_only=true",
            "--dry_run=false", "--parallel=3", "--runner=DataflowRunner", "--project=p",
            "--region=europe-west1"]
    sync_argv, rest = launcher.split_argv(argv)
    assert sync_argv == ["--config", "gs://b/costflow.yaml", "--account", "123", "--account",
                         "0133-AB", "--parallel", "3", "--due-only"]
    assert rest == ["--runner=DataflowRunner", "--project=p", "--region=europe-west1"]
    # And the result is what `costflow sync` itself parses.
    parsed = _sync_parser().parse_args(sync_argv)
    assert (parsed.account, parsed.due_only, parsed.dry_run, parsed.parallel) == (
        ["123", "0133-AB"], True, False, 3)


def test_a_scheduler_job_launches_the_sync_of_its_group(launcher):
    group = ScheduleGroup("0 6 * * *", ("123456789012", "billing-x"), ("acme",))
    target = GcpTarget(project="acme-finops", region="europe-west1",
                       service_account="sync@acme-finops.iam.gserviceaccount.com",
                       template_gcs_path="gs://acme-bucket/t/costflow-sync.json",
                       config_gcs_path="gs://acme-bucket/costflow.yaml")
    parameters = launch_request(group, target)["launchParameter"]["parameters"]
    assert set(parameters) <= set(PARAMS)
    for name, value in parameters.items():
        for regex in PARAMS[name].get("regexes", []):
            assert re.match(regex, value), (name, value)
    sync_argv, rest = launcher.split_argv([f"--{k}={v}" for k, v in parameters.items()])
    assert sync_argv == ["--config", "gs://acme-bucket/costflow.yaml", *group.sync_flags()]
    assert rest == []


def test_launcher_adds_one_worker_and_the_wheel_unless_told_otherwise(launcher, tmp_path,
                                                                      monkeypatch):
    wheel = tmp_path / "costflow-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    monkeypatch.setattr(launcher, "WHEEL_DIR", str(tmp_path))
    assert launcher.pipeline_args(["--runner=DataflowRunner"]) == [
        "--runner=DataflowRunner", "--max_num_workers=1", f"--extra_package={wheel}"]
    assert launcher.pipeline_args(["--max_num_workers=2", "--sdk_container_image=r/i:1"]) == [
        "--max_num_workers=2", "--sdk_container_image=r/i:1"]


@pytest.mark.parametrize("argv", [["--due_only=yes"], ["--account"]])
def test_launcher_refuses_a_bad_parameter_with_exit_2(argv, tmp_path):
    done = subprocess.run([sys.executable, str(TEMPLATE / "main.py"), *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_split_argv_names_the_parameter(launcher):
    with pytest.raises(ConfigError, match="dry_run='maybe' must be true or false"):
        launcher.split_argv(["--dry_run=maybe"])


CONFIG = """\
version: 1
warehouse: duckdb:///.costflow/warehouse.duckdb
metadata: local:///.costflow/metadata.sqlite
tenants:
  - id: acme
accounts:
  - id: "123456789012"
    provider: aws
    tenant: acme
    sources:
      - uri: {uri}
        id: cur
"""


def test_the_job_runs_the_sync_on_a_worker(tmp_path: Path):
    config = tmp_path / "costflow.yaml"
    config.write_text(CONFIG.format(uri=tmp_path / "exports" / "aws"))
    done = subprocess.run([sys.executable, str(TEMPLATE / "main.py"), f"--config={config}",
                           "--dry_run=true", "--json=true"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # The worker logs sync's output line by line; the JSON summary is the one {...} block.
    summary = json.loads(done.stderr[done.stderr.index("{\n"):done.stderr.rindex("}") + 1])
    assert (summary["dry_run"], summary["exit_status"]) == (True, 0)
    assert [(s["account"], s["source"], s["status"]) for s in summary["sources"]] == [
        ("123456789012", "cur", "dry-run")]


def test_a_failing_sync_fails_the_job_with_its_status(tmp_path: Path):
    config = tmp_path / "costflow.yaml"
    config.write_text(CONFIG.format(uri=tmp_path / "missing" / "*.csv"))
    done = subprocess.run([sys.executable, str(TEMPLATE / "main.py"), f"--config={config}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    assert "error: the sync job failed: " in done.stderr
    assert "costflow sync exited with status 3" in done.stderr


def test_a_config_on_gcs_is_copied_to_the_worker(tmp_path: Path, gcs):  # noqa: F811
    gcs.blob("config/costflow.yaml").upload_from_string("version: 1\n")
    argv = localize_config(["--config", "gs://billing-exports/config/costflow.yaml",
                            "--due-only"], str(tmp_path))
    assert argv == ["--config", str(tmp_path / "costflow.yaml"), "--due-only"]
    assert (tmp_path / "costflow.yaml").read_text() == "version: 1\n"
    assert localize_config(["--config=/etc/c.yaml"], str(tmp_path)) == ["--config=/etc/c.yaml"]



def test_dockerfile_launches_the_sync_launcher_from_outside_the_package():
    py_file, copies = dockerfile_copies(TEMPLATE)
    assert copies.get(py_file) == "dataflow_templates/sync/main.py"
    text = (TEMPLATE / "Dockerfile").read_text()
    # The wheel the launcher hands to workers is built where it looks for it.
    from_launcher = re.search(r'"COSTFLOW_WHEEL_DIR", "([^"]+)"', (TEMPLATE / "main.py")
                              .read_text())
    assert from_launcher and f"-w {from_launcher.group(1)} ." in text
