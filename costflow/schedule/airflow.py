"""The schedule as an Airflow DAG file.

An Airflow DAG has one schedule, so the file defines one DAG per scheduled run
(`costflow.schedule.plan`), ``costflow_sync_<key>``, each with one ``BashOperator`` task
``sync`` running ``costflow sync --due-only --account ...`` with retries: a retry re-runs only
what is still due (a failed source, or everything when another sync held the lock, exit 4).
``max_active_runs=1`` and ``catchup=False``: sync catches up by itself.

The file imports only Airflow and the standard library; it works with Airflow 2.4+ (``schedule=``)
and 3 (BashOperator from the standard provider). Values reach it as Python literals (``repr``)
and the shell command inside is shell-quoted; since Airflow renders ``bash_command`` with Jinja,
every ``{`` of it is written as ``{{ '{' }}`` so no config value can become a template. The
command never ends in ``.sh``/``.bash`` (Airflow would read it as a template file name).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from costflow.errors import ConfigError
from costflow.schedule.plan import ScheduleGroup, check_text

RETRIES = 2
RETRY_DELAY_MINUTES = 10
START_DATE = (2024, 1, 1)

TEMPLATE = '''\
"""costflow sync: one DAG per schedule, rendered by `costflow schedule --target airflow`.

Source config: {config_path}
Render it again after changing a schedule or an account in that file. Each task runs
`costflow sync --due-only`: sync decides from each account's schedule and its state in the
metadata store which sources are due, so a retry or a late run re-does only what is needed.
"""

from datetime import datetime, timedelta, timezone

from airflow import DAG

try:  # Airflow 3: BashOperator lives in the standard provider
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

DEFAULT_ARGS = {{
    "owner": "costflow",
    "retries": {retries},
    "retry_delay": timedelta(minutes={retry_delay}),
    "execution_timeout": timedelta(seconds={timeout}),
}}

# dag_id, cron schedule (UTC), accounts, the Bash command (Jinja-escaped, shell-quoted).
SCHEDULES = {schedules}

for _dag_id, _schedule, _accounts, _command in SCHEDULES:
    with DAG(
        dag_id=_dag_id,
        schedule=_schedule,
        start_date=datetime({start}, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["costflow"],
        description="costflow sync --due-only of " + ", ".join(_accounts),
    ) as _dag:
        BashOperator(task_id="sync", bash_command=_command)
    globals()[_dag_id] = _dag
'''


def jinja_escape(text: str) -> str:
    """``text`` such that Jinja renders it back unchanged (every ``{`` becomes an expression
    printing ``{``; a lone ``}`` is plain text to Jinja)."""
    return re.sub(r"\{", "{{ '{' }}", text)


def bash_command(group: ScheduleGroup, *, workdir: str, config_path: str,
                 costflow_bin: str) -> str:
    """The task's ``bash_command`` (before Jinja escaping)."""
    argv = [costflow_bin, "sync", "--config", config_path, *group.sync_flags()]
    command = f"cd {shlex.quote(workdir)} && " + " ".join(shlex.quote(w) for w in argv)
    if command.endswith((".sh", ".bash")):  # sync_flags ends with --due-only; keep it so
        raise ConfigError("internal: an Airflow bash_command must not end in .sh or .bash.")
    return command


def render_dag(groups: Sequence[ScheduleGroup], *, workdir: str, config_path: str,
               costflow_bin: str, timeout_seconds: int) -> str:
    """The DAG file's Python source.

    Args:
        groups: the plan (`costflow.schedule.plan.plan`).
        workdir: directory on the Airflow worker the syncs run in.
        config_path: the config file on the Airflow worker.
        costflow_bin: the ``costflow`` executable on the worker.
        timeout_seconds: a task's ``execution_timeout``.
    """
    for value, what in ((workdir, "working directory"), (config_path, "config path"),
                        (costflow_bin, "costflow executable")):
        check_text(value, what)
    rows = [(f"costflow_sync_{g.key}", g.schedule, list(g.accounts),
             jinja_escape(bash_command(g, workdir=workdir, config_path=config_path,
                                       costflow_bin=costflow_bin))) for g in groups]
    schedules = "[\n" + "".join(f"    {row!r},\n" for row in rows) + "]"
    return TEMPLATE.format(config_path=_docstring_safe(config_path), retries=RETRIES,
                           retry_delay=RETRY_DELAY_MINUTES, timeout=int(timeout_seconds),
                           schedules=schedules, start=", ".join(map(str, START_DATE)))


def _docstring_safe(text: str) -> str:
    """``text`` inside the module docstring: backslashes, quotes and non-ASCII escaped, so no
    value can end the docstring early (the docstring reads back as ``text``)."""
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped.replace('"', '\\"').replace("'", "\\'")
