"""The schedule as Cloud Scheduler jobs that launch the sync Flex Template on Dataflow.

One job per scheduled run (`costflow.schedule.plan`), each a ``projects.locations.jobs``
resource of the Cloud Scheduler REST API (v1): at its cron time (``timeZone`` Etc/UTC) it POSTs
a ``LaunchFlexTemplateRequest`` to Dataflow's ``flexTemplates.launch`` with an OAuth token of
the service account, naming the template (``dataflow_templates/sync/``) and its parameters.

Template parameters are the ``costflow sync`` flags with ``_`` for ``-`` (a test keeps
``metadata.json`` equal to the sync command's parser): a repeatable flag takes a
comma-separated list (account, tenant and source ids never hold a comma), a switch ``true``.
The config is read from GCS (``--config-gcs-path``): the scheduled job runs far from the
laptop that rendered it, with the config's own cloud URLs (bigquery://, firestore://,
gcp-sm://).

Create the jobs with the REST API (``POST .../locations/REGION/jobs`` with each job as body),
e.g. ``jq -c '.[]' jobs.json | while read -r job; do curl -X POST -H "Authorization: Bearer
$(gcloud auth print-access-token)" -H 'Content-Type: application/json' -d "$job"
https://cloudscheduler.googleapis.com/v1/projects/P/locations/R/jobs; done``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from costflow.errors import ConfigError
from costflow.schedule.plan import ScheduleGroup, check_text

TEMPLATE_NAME = "costflow-sync"
TIME_ZONE = "Etc/UTC"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
LAUNCH_URI = ("https://dataflow.googleapis.com/v1b3/projects/{project}/locations/{region}"
              "/flexTemplates:launch")
# GCP's own rules for each value, checked before anything is rendered.
_CHECKS: dict[str, tuple[re.Pattern[str], str]] = {
    "project": (re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"),
                "a project id: 6-30 lowercase letters, digits or dashes"),
    "region": (re.compile(r"^[a-z]+-[a-z]+[0-9]+$"), "a region such as europe-west1"),
    "service_account": (re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"),
                        "a service account email"),
    "template_gcs_path": (re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/\S+$"),
                          "the gs:// path of the template spec that `gcloud dataflow "
                          "flex-template build` wrote"),
    "config_gcs_path": (re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/\S+$"),
                        "the gs:// path of the costflow.yaml the job reads"),
    "image": (re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:"
                         r"[0-9a-f]{64})?$"), "a container image path"),
}


@dataclass(frozen=True)
class GcpTarget:
    """Where and as whom the jobs run.

    Attributes:
        project: GCP project of the Scheduler jobs and the Dataflow jobs.
        region: their region (Cloud Scheduler location and Dataflow regional endpoint).
        service_account: email; Scheduler mints its OAuth token, the Dataflow job runs as it.
            It needs roles/dataflow.developer, roles/iam.serviceAccountUser on itself,
            roles/dataflow.worker, and read access to the config, secrets and warehouse.
        template_gcs_path: ``gs://`` path of the sync template spec.
        config_gcs_path: ``gs://`` path of the costflow.yaml the job syncs.
        image: optional worker image (``sdkContainerImage``); default: the launcher installs
            the wheel it carries on each worker (``--extra_package``).
    """

    project: str
    region: str
    service_account: str
    template_gcs_path: str
    config_gcs_path: str
    image: str | None = None

    def __post_init__(self) -> None:
        for name, (pattern, meaning) in _CHECKS.items():
            value = getattr(self, name)
            if value is None and name == "image":
                continue
            if not isinstance(value, str) or not pattern.match(value):
                flag = "--" + name.replace("_", "-")
                problem = (f"{flag} is missing" if value is None
                           else f"{flag} {value!r} is not {meaning}")
                raise ConfigError(f"{problem}; the cloud-scheduler target needs --project, "
                                  "--region, --service-account, --template-gcs-path and "
                                  "--config-gcs-path.")


def job_id(group: ScheduleGroup) -> str:
    """The Scheduler job id and Dataflow job name of a group (stable: `ScheduleGroup.key`)."""
    return f"{TEMPLATE_NAME}-{group.key}"


def template_parameters(group: ScheduleGroup, config_gcs_path: str) -> dict[str, str]:
    """The Flex Template parameters of one run: ``costflow sync --config CONFIG --account A
    ... --due-only`` in the template's spelling."""
    for account in group.accounts:
        check_text(account, "account id")
        if "," in account:
            raise ConfigError(f"account id {account!r} holds a comma, which the template's "
                              "comma-separated account parameter cannot carry.")
    return {"config": config_gcs_path, "account": ",".join(group.accounts), "due_only": "true"}


def launch_request(group: ScheduleGroup, target: GcpTarget) -> dict[str, Any]:
    """The ``LaunchFlexTemplateRequest`` (Dataflow v1b3) one run sends."""
    environment: dict[str, Any] = {"serviceAccountEmail": target.service_account}
    if target.image:
        environment["sdkContainerImage"] = target.image
    return {"launchParameter": {
        "jobName": job_id(group),
        "containerSpecGcsPath": target.template_gcs_path,
        "parameters": template_parameters(group, target.config_gcs_path),
        "environment": environment,
    }}


def scheduler_job(group: ScheduleGroup, target: GcpTarget) -> dict[str, Any]:
    """One Cloud Scheduler ``Job`` resource (REST v1) for a group."""
    body = json.dumps(launch_request(group, target), sort_keys=True).encode()
    accounts = ", ".join(group.accounts)
    return {
        "name": f"projects/{target.project}/locations/{target.region}/jobs/{job_id(group)}",
        "description": (f"costflow sync --due-only of {len(group.accounts)} account(s) "
                        f"({accounts})")[:500],
        "schedule": group.schedule,
        "timeZone": TIME_ZONE,
        "httpTarget": {
            "uri": LAUNCH_URI.format(project=target.project, region=target.region),
            "httpMethod": "POST",
            "headers": {"Content-Type": "application/json"},
            "body": base64.b64encode(body).decode("ascii"),
            "oauthToken": {"serviceAccountEmail": target.service_account, "scope": SCOPE},
        },
        # One retry of a failed launch call; a sync that still runs holds costflow's lock, so
        # an extra launch ends refused (exit 4), never loading twice.
        "retryConfig": {"retryCount": 1, "minBackoffDuration": "300s"},
        "attemptDeadline": "180s",
    }


def render_jobs(groups: Sequence[ScheduleGroup], target: GcpTarget) -> str:
    """A JSON array of the jobs, one per group (see the module docstring to create them)."""
    return json.dumps([scheduler_job(g, target) for g in groups], indent=2) + "\n"
