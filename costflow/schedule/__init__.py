"""Schedule as code: `costflow sync` runs rendered for cron, Cloud Scheduler and Airflow.

The config says when each account's exports should be loaded (`schedule`, UTC cron); this
package turns that into what a team's scheduler runs, so the schedule lives in version control
next to the config instead of in a console:

    groups = plan(load_config("costflow.yaml"))       # one run per distinct schedule
    render_crontab(groups, workdir=..., config_path=..., costflow_bin=..., lock_wait_seconds=...)
    render_jobs(groups, GcpTarget(project=..., region=..., ...))  # Cloud Scheduler JSON
    render_dag(groups, workdir=..., config_path=..., costflow_bin=..., timeout_seconds=...)

Every rendering runs ``costflow sync --due-only``: the rendered schedule decides when sync
looks, sync decides what is due. `costflow.schedule.dataflow_job` is the one-step Dataflow job
the sync Flex Template (``dataflow_templates/sync/``) launches; it imports Beam, this package
does not.
"""

from __future__ import annotations

from costflow.schedule.airflow import render_dag
from costflow.schedule.cloud_scheduler import GcpTarget, launch_request, render_jobs
from costflow.schedule.cron import render_crontab
from costflow.schedule.plan import ScheduleGroup, normalize_cron, plan

TARGETS = ("cron", "cloud-scheduler", "airflow")

__all__ = ["TARGETS", "GcpTarget", "ScheduleGroup", "launch_request", "normalize_cron", "plan",
           "render_crontab", "render_dag", "render_jobs"]
