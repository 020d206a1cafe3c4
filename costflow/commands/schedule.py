"""`costflow schedule`: print the config's sync schedule as code for cron, Cloud Scheduler or
Airflow, so the schedule is versioned with the config instead of clicked into a console.

    costflow schedule --target cron                       # crontab lines (laptop, VM)
    costflow schedule --target airflow --out dags/costflow_sync.py
    costflow schedule --target cloud-scheduler --project P --region R \\
        --service-account SA --template-gcs-path gs://B/templates/costflow-sync.json \\
        --config-gcs-path gs://B/costflow.yaml            # JSON array of Scheduler jobs

Every rendering runs ``costflow sync --due-only`` once per distinct account schedule
(`costflow.schedule`). Printed to stdout unless ``--out`` names a file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from costflow.commands.flags import CONFIG_HELP
from costflow.errors import ConfigError

TARGETS = ("cron", "cloud-scheduler", "airflow")
SYNC_SERVICE = "sync-job"  # its compute timeout bounds a run (airflow) and a lock wait (cron)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``costflow schedule``."""
    parser = sub.add_parser(
        "schedule", help="Print the sync schedule as code: crontab, Cloud Scheduler, Airflow.",
        description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--target", required=True, choices=TARGETS)
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--out", help="Write to this file instead of stdout.")
    local = parser.add_argument_group("cron and airflow")
    local.add_argument("--workdir", help="Directory the syncs run in (default: the current "
                                         "one); relative URLs of the config resolve there, and "
                                         "a config inside it is named relative to it.")
    local.add_argument("--costflow-bin", dest="costflow_bin",
                       help="The costflow executable the schedule runs (default: the one "
                            "running now).")
    gcp = parser.add_argument_group("cloud-scheduler")
    gcp.add_argument("--project", help="GCP project of the Scheduler and Dataflow jobs.")
    gcp.add_argument("--region", help="Their region, e.g. europe-west1.")
    gcp.add_argument("--service-account", dest="service_account",
                     help="Email of the service account the jobs run as.")
    gcp.add_argument("--template-gcs-path", dest="template_gcs_path",
                     help="gs:// spec of the sync Flex Template (dataflow_templates/sync).")
    gcp.add_argument("--config-gcs-path", dest="config_gcs_path",
                     help="gs:// copy of costflow.yaml the scheduled job reads.")
    gcp.add_argument("--image", help="Worker image (sdkContainerImage); default: the "
                                     "template installs the costflow wheel it carries.")


def run(args: argparse.Namespace) -> int:
    """Render the schedule; returns the exit status (0)."""
    from costflow.config import load_config
    from costflow.schedule import GcpTarget, plan, render_crontab, render_dag, render_jobs

    config = load_config(args.config)
    groups = plan(config)
    config_path = str(Path(config.source_path or args.config or "costflow.yaml").resolve())
    if args.target == "cloud-scheduler":
        text = render_jobs(groups, GcpTarget(
            project=args.project, region=args.region, service_account=args.service_account,
            template_gcs_path=args.template_gcs_path, config_gcs_path=args.config_gcs_path,
            image=args.image))
    else:
        _refuse_gcp_flags(args)
        workdir = str(Path(args.workdir or os.getcwd()).resolve())
        # The run cds into workdir first: a config inside it is named relative to it, so the
        # directory can move (or be mounted elsewhere on an Airflow worker) as a whole.
        if Path(config_path).is_relative_to(workdir):
            config_path = str(Path(config_path).relative_to(workdir))
        costflow_bin = args.costflow_bin or default_costflow_bin()
        timeout = config.compute_config(SYNC_SERVICE).timeout_seconds
        if args.target == "cron":
            text = render_crontab(groups, workdir=workdir, config_path=config_path,
                                  costflow_bin=costflow_bin, lock_wait_seconds=timeout)
        else:
            text = render_dag(groups, workdir=workdir, config_path=config_path,
                              costflow_bin=costflow_bin, timeout_seconds=timeout)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"cannot write {args.out}: {err.strerror or err}.") from None
        print(f"Wrote {len(groups)} scheduled sync run(s) for {args.target} to {args.out}.")
    else:
        sys.stdout.write(text)
    return 0


def default_costflow_bin() -> str:
    """The ``costflow`` script beside the running interpreter (a venv's bin), else the one on
    PATH, as an absolute path: cron and Airflow workers do not share this shell's PATH."""
    beside = Path(sys.executable).parent / "costflow"
    if beside.is_file():
        return str(beside)
    found = shutil.which("costflow")
    if found:
        return str(Path(found).resolve())
    raise ConfigError("no costflow executable found beside this Python or on PATH; pass "
                      "--costflow-bin /path/to/costflow.")


def _refuse_gcp_flags(args: argparse.Namespace) -> None:
    given = [f"--{name.replace('_', '-')}" for name in ("project", "region", "service_account",
                                                        "template_gcs_path", "config_gcs_path",
                                                        "image") if getattr(args, name)]
    if given:
        raise ConfigError(f"{', '.join(given)} only apply to --target cloud-scheduler, not "
                          f"--target {args.target}.")
