"""Flex Template launcher for `costflow sync` (the scheduled load of every due source).

Why this file exists: a Flex Template runs its ``FLEX_TEMPLATE_PYTHON_PY_FILE`` as a script and
expects it to submit one Dataflow job. As for the ingest template (see its launcher), this small
driver lives outside the package; it turns the template's parameters back into ``costflow
sync`` flags and submits `costflow.schedule.dataflow_job`, a one-step job whose worker runs the
sync.

Parameters are the sync command's flags with ``_`` for ``-`` (``--due_only=true``,
``--account=123,456``): a switch takes ``true`` or ``false``, a repeatable flag a
comma-separated list. Every other flag is a pipeline option for Beam (the Flex Template service
passes ``--runner``, ``--project``, ``--region``, ... itself). Which flags exist is read from the
sync command's own parser, so the two cannot drift (a test also keeps ``metadata.json`` equal).
To run it by hand (locally it runs on the DirectRunner):

    python dataflow_templates/sync/main.py --config=costflow.yaml --dry_run=true

Exit status: 0 when the sync succeeded; 2 for a bad parameter; 3 when the job failed (the
message names sync's status and its last lines).
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys

from costflow.errors import ConfigError, CostflowError

WHEEL_DIR = os.environ.get("COSTFLOW_WHEEL_DIR", "/template/dist")
WORKER_PACKAGE_OPTIONS = ("--sdk_container_image", "--extra_package", "--setup_file",
                          "--extra_packages")


def sync_flags() -> dict[str, argparse.Action]:
    """Template parameter name -> the sync parser's action (``due_only`` -> ``--due-only``)."""
    from costflow.commands.sync import add_parser

    sub = argparse.ArgumentParser(add_help=False).add_subparsers(dest="command")
    add_parser(sub)
    parser = sub.choices["sync"]
    flags = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and not isinstance(action, argparse._HelpAction):
            flags[longs[0][2:].replace("-", "_")] = action
    return flags


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(``costflow sync`` flags, Beam pipeline options) of the launcher's ``argv``.

    Raises:
        ConfigError: a switch parameter that is not true/false, or a parameter without value.
    """
    flags = sync_flags()
    params = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    for name in flags:
        params.add_argument(f"--{name}", dest=name, default=None)
    try:
        known, rest = params.parse_known_args(argv)
    except argparse.ArgumentError as err:
        raise ConfigError(f"template parameter {err.argument_name} has no value: pass "
                          "--name=value.") from None
    sync_argv: list[str] = []
    for name, action in flags.items():
        value = getattr(known, name)
        if value is None:
            continue
        flag = next(o for o in action.option_strings if o.startswith("--"))
        if action.nargs == 0:  # a switch: store_true
            if value.strip().lower() not in ("true", "false"):
                raise ConfigError(f"parameter {name}={value!r} must be true or false.")
            if value.strip().lower() == "true":
                sync_argv.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for item in value.split(","):
                if item.strip():
                    sync_argv += [flag, item.strip()]
        else:
            sync_argv += [flag, value]
    return sync_argv, rest


def pipeline_args(rest: list[str]) -> list[str]:
    """Beam options, plus what a one-element job needs: one worker, and the costflow wheel
    this image carries (``WHEEL_DIR``) when no worker image or package is named."""
    args = list(rest)
    if not any(a.split("=")[0] in ("--max_num_workers", "--maxNumWorkers") for a in args):
        args.append("--max_num_workers=1")
    wheels = sorted(glob.glob(os.path.join(WHEEL_DIR, "costflow-*.whl")))
    if wheels and not any(a.split("=")[0] in WORKER_PACKAGE_OPTIONS for a in args):
        args.append(f"--extra_package={wheels[-1]}")
    return args


def main(argv: list[str]) -> int:
    """Submit (or, locally, run) the sync job; returns the process exit status."""
    try:
        sync_argv, rest = split_argv(argv)
    except CostflowError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from costflow.schedule.dataflow_job import build

    options = PipelineOptions(pipeline_args(rest))
    # Locally, Beam's in-process runner, as the ingest does (the default may start a service).
    local = options.view_as(StandardOptions).runner in (None, "DirectRunner", "FnApiRunner")
    pipeline = beam.Pipeline(runner=FnApiRunner() if local else None, options=options)
    build(pipeline, sync_argv)
    try:
        pipeline.run().wait_until_finish()
    except Exception as err:  # the runner wraps the worker's SyncFailed in its own errors
        lines = [line for line in str(err).splitlines() if "costflow sync exited" in line]
        print(f"error: the sync job failed: {(lines or [str(err)])[-1].strip()}",
              file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main(sys.argv[1:]))
