"""`costflow schedule`: each rendering parsed back and checked against the plan.

crontab lines are split as cron splits them (croniter reads each expression) and their command
is run through ``sh`` with a fake ``costflow`` that records its argv; the Cloud Scheduler jobs
are validated with a JSON schema of the REST resource and their base64 body decoded as a
LaunchFlexTemplateRequest; the Airflow DAG file is parsed with ``ast`` and imported with a tiny
fake ``airflow`` package (Airflow itself is not installed). Hostile paths and account ids
(quotes, ``$(...)``, ``%``, ``{{ }}``, spaces) must reach ``costflow`` as the literal words.
"""

from __future__ import annotations

import argparse
import ast
import base64
import importlib.util
import json
import shlex
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jinja2
import jsonschema
import pytest
from croniter import croniter

from costflow.commands import schedule as command
from costflow.config import load_config
from costflow.errors import ConfigError
from costflow.schedule import (
    GcpTarget,
    ScheduleGroup,
    launch_request,
    plan,
    render_crontab,
    render_dag,
    render_jobs,
)
from costflow.schedule.airflow import jinja_escape
from tests.conftest import modules_loaded_by

CONFIG = """\
version: 1
sync:
  schedule: "0 6 * * *"
tenants:
  - id: acme
    billing_accounts: ["123456789012"]
  - id: beta
accounts:
  - id: "123456789012"
    provider: aws
    tenant: acme
    sources: [{uri: exports/aws/}]
  - id: "0133-AB"
    provider: azure
    tenant: beta
    schedule: "30  */4 * * 1-5"
    sources: [{uri: exports/azure/}]
  - id: billing-x
    provider: gcp
    tenant: beta
    sources: [{uri: exports/gcp/}]
"""
HOSTILE = "we'ird $(touch PWNED) \"q\" %d {{ 7*7 }} {% raw %} ;&|`id` \\"
HOSTILE_ACCOUNT = "a'b;$(touch PWNED)%s{{x}}"
TARGET = dict(project="acme-finops", region="europe-west1",
              service_account="sync@acme-finops.iam.gserviceaccount.com",
              template_gcs_path="gs://acme-bucket/templates/costflow-sync.json",
              config_gcs_path="gs://acme-bucket/config/costflow.yaml")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "costflow.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A fake `costflow` executable that writes its argv (JSON) and cwd to a file."""
    record = tmp_path / "argv.json"
    script = tmp_path / "bin" / "fake costflow"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      f"open({str(record)!r}, 'w').write(json.dumps([sys.argv[1:], "
                      "os.getcwd()]))\nprint('sync summary line')\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, record


def test_plan_groups_accounts_by_their_effective_schedule(config_file: Path):
    groups = plan(load_config(config_file))
    assert groups == [
        ScheduleGroup("0 6 * * *", ("123456789012", "billing-x"), ("acme", "beta")),
        ScheduleGroup("30 */4 * * 1-5", ("0133-AB",), ("beta",)),
    ]
    assert groups[0].sync_flags() == ["--account", "123456789012", "--account", "billing-x",
                                      "--due-only"]
    assert groups[0].key != groups[1].key and len(groups[0].key) == 10


def _cron_entries(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(environment lines, [(expression, command)]) as cron reads a crontab."""
    env, entries = [], []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(None, 5)
        if "=" in fields[0] and len(fields) == 1:
            env.append(line)
            continue
        entries.append((" ".join(fields[:5]), fields[5]))
    return env, entries


def _as_cron_runs(command_field: str) -> str:
    """What cron hands to sh: ``\\%`` becomes ``%``; an unescaped ``%`` would end the command
    (the rest becomes stdin), which the renderer must never produce."""
    out, escaped = [], False
    for ch in command_field:
        if escaped:
            if ch != "%":
                out.append("\\")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            raise AssertionError(f"unescaped % in crontab command: {command_field}")
        else:
            out.append(ch)
    if escaped:
        out.append("\\")
    return "".join(out)


def test_crontab_has_one_line_per_schedule_in_utc(config_file: Path):
    groups = plan(load_config(config_file))
    text = render_crontab(groups, workdir="/srv/finops", config_path=str(config_file),
                          costflow_bin="/opt/venv/bin/costflow", lock_wait_seconds=3600)
    env, entries = _cron_entries(text)
    assert env == ["CRON_TZ=UTC"]
    assert [expr for expr, _ in entries] == ["0 6 * * *", "30 */4 * * 1-5"]
    base = datetime(2026, 11, 6, 5, 0, tzinfo=UTC)  # a Friday
    assert croniter(entries[0][0], base).get_next(datetime) == base.replace(hour=6)
    # 30 */4 on weekdays: 08:30 Friday, then Monday 00:30.
    runs = croniter(entries[1][0], base)
    assert [runs.get_next(datetime) for _ in range(5)][-2:] == [
        datetime(2026, 11, 6, 20, 30, tzinfo=UTC), datetime(2026, 11, 9, 0, 30, tzinfo=UTC)]
    words = shlex.split(_as_cron_runs(entries[0][1]))
    assert words == ["cd", "/srv/finops", "&&", "mkdir", "-p", ".costflow/logs", "&&",
                     "flock", "-w", "3600", ".costflow/sync.cron.lock",
                     "/opt/venv/bin/costflow", "sync", "--config", str(config_file),
                     "--account", "123456789012", "--account", "billing-x", "--due-only",
                     ">>", ".costflow/logs/sync.log", "2>&1"]


def test_crontab_command_passes_hostile_values_as_literal_words(tmp_path: Path, recorder):
    script, record = recorder
    workdir = tmp_path / HOSTILE
    workdir.mkdir()
    config_path = str(tmp_path / f"{HOSTILE}.yaml")
    group = ScheduleGroup("0 6 * * *", (HOSTILE_ACCOUNT, "123"), ("acme",))
    text = render_crontab([group], workdir=str(workdir), config_path=config_path,
                          costflow_bin=str(script), lock_wait_seconds=5)
    (_, command_field), = _cron_entries(text)[1]
    done = subprocess.run(["sh", "-c", _as_cron_runs(command_field)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    argv, cwd = json.loads(record.read_text())
    assert argv == ["sync", "--config", config_path, "--account", HOSTILE_ACCOUNT,
                    "--account", "123", "--due-only"]
    assert cwd == str(workdir)
    assert (workdir / ".costflow/logs/sync.log").read_text() == "sync summary line\n"
    assert not list(tmp_path.rglob("PWNED"))


@pytest.mark.parametrize("bad", ["/srv/fin\nops", "/srv/\rx", "/srv/\x00x", ""])
def test_a_path_with_a_line_break_is_refused(bad: str):
    group = ScheduleGroup("0 6 * * *", ("123",), ("acme",))
    with pytest.raises(ConfigError, match="control character"):
        render_crontab([group], workdir=bad, config_path="/c.yaml", costflow_bin="/b",
                       lock_wait_seconds=5)
    with pytest.raises(ConfigError, match="control character"):
        render_dag([group], workdir="/w", config_path=bad, costflow_bin="/b",
                   timeout_seconds=5)


# The Cloud Scheduler REST v1 `Job` resource (cloud.google.com/scheduler/docs/reference/rest/
# v1/projects.locations.jobs), the fields a client may set, and its HttpTarget / OAuthToken.
JOB_SCHEMA = {
    "type": "object",
    "required": ["name", "schedule", "timeZone", "httpTarget"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/"
                                              r"locations/[a-z0-9-]+/jobs/[A-Za-z0-9_-]{1,500}$"},
        "description": {"type": "string", "maxLength": 500},
        "schedule": {"type": "string", "minLength": 9},
        "timeZone": {"type": "string", "enum": ["Etc/UTC", "UTC"]},
        "attemptDeadline": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?s$"},
        "retryConfig": {"type": "object", "additionalProperties": False, "properties": {
            "retryCount": {"type": "integer", "minimum": 0, "maximum": 5},
            "maxRetryDuration": {"type": "string", "pattern": r"^[0-9]+s$"},
            "minBackoffDuration": {"type": "string", "pattern": r"^[0-9]+s$"},
            "maxBackoffDuration": {"type": "string", "pattern": r"^[0-9]+s$"},
            "maxDoublings": {"type": "integer"}}},
        "httpTarget": {
            "type": "object",
            "required": ["uri", "httpMethod", "body", "oauthToken"],
            "additionalProperties": False,
            "properties": {
                "uri": {"type": "string", "pattern": r"^https://[a-z.]+googleapis\.com/"},
                "httpMethod": {"enum": ["POST", "GET", "HEAD", "PUT", "DELETE", "PATCH",
                                        "OPTIONS"]},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "body": {"type": "string", "pattern": r"^[A-Za-z0-9+/]*={0,2}$"},
                "oauthToken": {"type": "object", "required": ["serviceAccountEmail"],
                               "additionalProperties": False, "properties": {
                                   "serviceAccountEmail": {"type": "string",
                                                           "pattern": r"^[^@\s]+@[^@\s]+$"},
                                   "scope": {"type": "string"}}},
            },
        },
    },
}
# Dataflow v1b3 LaunchFlexTemplateRequest with its LaunchFlexTemplateParameter (template by
# GCS path) and the FlexTemplateRuntimeEnvironment fields costflow sets.
LAUNCH_SCHEMA = {
    "type": "object",
    "required": ["launchParameter"],
    "additionalProperties": False,
    "properties": {
        "validateOnly": {"type": "boolean"},
        "launchParameter": {
            "type": "object",
            "required": ["jobName", "containerSpecGcsPath", "parameters"],
            "additionalProperties": False,
            "properties": {
                "jobName": {"type": "string", "pattern": r"^[a-z]([-a-z0-9]{0,1022}[a-z0-9])?$"},
                "containerSpecGcsPath": {"type": "string", "pattern": r"^gs://"},
                "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
                "environment": {"type": "object", "additionalProperties": False, "properties": {
                    "serviceAccountEmail": {"type": "string"},
                    "sdkContainerImage": {"type": "string"},
                    "tempLocation": {"type": "string"},
                    "maxWorkers": {"type": "integer"}}},
            },
        },
    },
}


def test_cloud_scheduler_jobs_launch_the_sync_template(config_file: Path):
    groups = plan(load_config(config_file))
    jobs = json.loads(render_jobs(groups, GcpTarget(**TARGET)))
    assert len(jobs) == 2
    for job, group in zip(jobs, groups, strict=True):
        jsonschema.validate(job, JOB_SCHEMA)
        assert croniter.is_valid(job["schedule"]) and job["schedule"] == group.schedule
        target = job["httpTarget"]
        assert target["uri"] == ("https://dataflow.googleapis.com/v1b3/projects/acme-finops/"
                                 "locations/europe-west1/flexTemplates:launch")
        assert target["oauthToken"]["serviceAccountEmail"] == TARGET["service_account"]
        request = json.loads(base64.b64decode(target["body"], validate=True))
        jsonschema.validate(request, LAUNCH_SCHEMA)
        launch = request["launchParameter"]
        assert launch["containerSpecGcsPath"] == TARGET["template_gcs_path"]
        assert launch["environment"] == {"serviceAccountEmail": TARGET["service_account"]}
        assert job["name"].endswith("/jobs/" + launch["jobName"])
        assert launch["parameters"] == {"config": TARGET["config_gcs_path"],
                                        "account": ",".join(group.accounts),
                                        "due_only": "true"}
    assert jobs[0]["name"] != jobs[1]["name"]
    # Rendering again gives the same job names: re-creating replaces, never duplicates.
    assert [j["name"] for j in json.loads(render_jobs(groups, GcpTarget(**TARGET)))] == [
        j["name"] for j in jobs]


def test_an_image_becomes_the_workers_sdk_container(config_file: Path):
    image = "europe-west1-docker.pkg.dev/acme-finops/costflow/costflow-sync:1.0"
    group = plan(load_config(config_file))[0]
    request = launch_request(group, GcpTarget(**TARGET, image=image))
    assert request["launchParameter"]["environment"]["sdkContainerImage"] == image


@pytest.mark.parametrize(("field", "value"), [
    ("project", "Acme Finops"), ("project", None), ("region", "europe west1"),
    ("service_account", "not-an-email"), ("template_gcs_path", "/local/spec.json"),
    ("config_gcs_path", "gs://bucket"), ("image", "not an image")])
def test_bad_gcp_flags_are_refused_naming_the_flag(field: str, value: str | None):
    with pytest.raises(ConfigError, match="--" + field.replace("_", "-")):
        GcpTarget(**{**TARGET, field: value})


class _FakeAirflow:
    """Writes a fake `airflow` package whose DAG and BashOperator record their arguments."""

    SOURCES = {
        "airflow/__init__.py": (
            "DAGS = []\n_CURRENT = []\n"
            "class DAG:\n"
            "    def __init__(self, **kwargs):\n"
            "        self.kwargs, self.tasks = kwargs, []\n        DAGS.append(self)\n"
            "    def __enter__(self):\n        _CURRENT.append(self)\n        return self\n"
            "    def __exit__(self, *exc):\n        _CURRENT.pop()\n"),
        "airflow/operators/__init__.py": "",
        "airflow/operators/bash.py": (
            "import airflow\n"
            "class BashOperator:\n"
            "    def __init__(self, **kwargs):\n"
            "        self.kwargs = kwargs\n        airflow._CURRENT[-1].tasks.append(self)\n"),
    }

    @classmethod
    def install(cls, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        for name, text in cls.SOURCES.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        monkeypatch.syspath_prepend(str(root))
        for name in [m for m in sys.modules if m == "airflow" or m.startswith("airflow.")]:
            monkeypatch.delitem(sys.modules, name)


def _import_dag(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ast.parse(source)
    assert importlib.util.find_spec("airflow") is None, "tests expect Airflow to be absent"
    _FakeAirflow.install(tmp_path / "fake", monkeypatch)
    path = tmp_path / "costflow_sync_dag.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("costflow_sync_dag", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import airflow

    try:
        return module, list(airflow.DAGS)
    finally:
        for name in [m for m in sys.modules if m == "airflow" or m.startswith("airflow.")]:
            del sys.modules[name]


def test_airflow_dag_has_one_dag_and_task_per_schedule(config_file: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    groups = plan(load_config(config_file))
    source = render_dag(groups, workdir="/srv/finops", config_path="/srv/finops/costflow.yaml",
                        costflow_bin="/opt/venv/bin/costflow", timeout_seconds=3600)
    module, dags = _import_dag(source, tmp_path, monkeypatch)
    assert [d.kwargs["dag_id"] for d in dags] == [f"costflow_sync_{g.key}" for g in groups]
    for dag, group in zip(dags, groups, strict=True):
        assert getattr(module, dag.kwargs["dag_id"]) is dag
        assert dag.kwargs["schedule"] == group.schedule and croniter.is_valid(group.schedule)
        assert dag.kwargs["catchup"] is False and dag.kwargs["max_active_runs"] == 1
        assert dag.kwargs["start_date"].tzinfo is not None
        assert dag.kwargs["default_args"]["retries"] == 2
        assert dag.kwargs["default_args"]["execution_timeout"] == timedelta(seconds=3600)
        (task,) = dag.tasks
        assert task.kwargs["task_id"] == "sync"
        command = jinja2.Template(task.kwargs["bash_command"]).render()
        assert shlex.split(command) == ["cd", "/srv/finops", "&&", "/opt/venv/bin/costflow",
                                        "sync", "--config", "/srv/finops/costflow.yaml",
                                        *group.sync_flags()]


def test_airflow_command_survives_jinja_and_bash_with_hostile_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorder):
    script, record = recorder
    workdir = tmp_path / HOSTILE
    workdir.mkdir()
    config_path = f"/etc/{HOSTILE}'''\"\"\".yaml"
    group = ScheduleGroup("0 6 * * *", (HOSTILE_ACCOUNT,), ("acme",))
    source = render_dag([group], workdir=str(workdir), config_path=config_path,
                        costflow_bin=str(script), timeout_seconds=60)
    module, (dag,) = _import_dag(source, tmp_path, monkeypatch)
    assert config_path in module.__doc__
    # Airflow renders bash_command with Jinja, then runs it with bash.
    command = jinja2.Environment().from_string(dag.tasks[0].kwargs["bash_command"]).render()
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    argv, cwd = json.loads(record.read_text())
    assert argv == ["sync", "--config", config_path, "--account", HOSTILE_ACCOUNT,
                    "--due-only"]
    assert cwd == str(workdir)
    assert not list(tmp_path.rglob("PWNED"))


@pytest.mark.parametrize("text", ["{{ 7*7 }}", "{% if x %}", "{#c#}", "}}", "a{b", ""])
def test_jinja_escape_renders_back_to_the_text(text: str):
    assert jinja2.Template(jinja_escape(text)).render() == text


def _command_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["schedule", *argv])


def test_command_prints_the_crontab_for_the_config(config_file: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]):
    args = _command_args("--target", "cron", "--config", str(config_file), "--workdir",
                         str(tmp_path), "--costflow-bin", "/opt/venv/bin/costflow")
    assert command.run(args) == 0
    config = load_config(config_file)
    assert capsys.readouterr().out == render_crontab(
        plan(config), workdir=str(tmp_path), config_path="costflow.yaml",
        costflow_bin="/opt/venv/bin/costflow",
        lock_wait_seconds=config.compute_config("sync-job").timeout_seconds)


def test_command_writes_the_dag_to_out(config_file: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "dags" / "costflow_sync.py"
    out.parent.mkdir()
    args = _command_args("--target", "airflow", "--config", str(config_file), "--out",
                         str(out), "--workdir", "/srv/finops")
    assert command.run(args) == 0
    assert "Wrote 2 scheduled sync run(s) for airflow" in capsys.readouterr().out
    tree = ast.parse(out.read_text())
    assert any(isinstance(n, ast.ImportFrom) and n.module == "airflow" for n in tree.body)
    # The default executable is the costflow beside this interpreter (absolute, for cron's PATH).
    assert repr(str(Path(sys.executable).parent / "costflow"))[1:-1] in out.read_text()
    # A config outside the workdir keeps its absolute path (inside, it is named relatively).
    assert "cd /srv/finops && " in out.read_text()
    assert f"--config {config_file.resolve()} --account" in out.read_text()


def test_command_renders_cloud_scheduler_jobs(config_file: Path,
                                              capsys: pytest.CaptureFixture[str]):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TARGET.items()]
    args = _command_args("--target", "cloud-scheduler", "--config", str(config_file), *flags)
    assert command.run(args) == 0
    jobs = json.loads(capsys.readouterr().out)
    assert [j["schedule"] for j in jobs] == ["0 6 * * *", "30 */4 * * 1-5"]


def test_command_refuses_flags_of_another_target(config_file: Path):
    args = _command_args("--target", "cron", "--config", str(config_file), "--project", "p")
    with pytest.raises(ConfigError, match="--project only apply to --target cloud-scheduler"):
        command.run(args)
    args = _command_args("--target", "cloud-scheduler", "--config", str(config_file))
    with pytest.raises(ConfigError, match="--project is missing"):
        command.run(args)


def test_command_without_accounts_says_there_is_nothing_to_schedule(tmp_path: Path):
    empty = tmp_path / "costflow.yaml"
    empty.write_text("version: 1\n")
    with pytest.raises(ConfigError, match="lists no accounts"):
        command.run(_command_args("--target", "cron", "--config", str(empty)))


def test_module_imports_no_beam_or_sdk():
    assert modules_loaded_by("costflow.schedule, costflow.commands.schedule", (
        "apache_beam", "google", "croniter", "airflow", "pyarrow", "duckdb")) == []
