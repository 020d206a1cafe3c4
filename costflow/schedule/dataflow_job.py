"""The Dataflow job the sync Flex Template launches: one worker runs ``costflow sync``.

Why a pipeline at all: a Flex Template launch must end in exactly one Dataflow job graph (the
launcher VM runs the template's ``main.py``, which submits a pipeline). ``costflow sync`` is
not one pipeline but an orchestrator of several ingests, so the job is the smallest pipeline
that runs it: one element (the sync flags) and one step (`RunSync`) that runs
``python -m costflow.cli sync ...`` on the worker, in a scratch directory, and fails the step
when sync fails (Dataflow retries a failed batch step; with ``--due-only`` a retry re-runs only
the sources still due). Its log lines go to the job's worker logs; sync never prints a secret.

A ``--config`` on GCS (``gs://...``) is copied into the scratch directory first, through
Beam's FileSystems, with the worker's own credentials.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from costflow.errors import CostflowError

LOG = logging.getLogger("costflow.schedule")
CONFIG_NAME = "costflow.yaml"


class SyncFailed(CostflowError):
    """``costflow sync`` ended with a non-zero status on the worker."""

    exit_code = 3


def localize_config(argv: list[str], workdir: str) -> list[str]:
    """``argv`` with a remote ``--config`` (``gs://``, any scheme Beam's FileSystems reads)
    replaced by a copy in ``workdir``; local paths are left alone."""
    from apache_beam.io.filesystems import FileSystems

    out = list(argv)
    for index, word in enumerate(out):
        value = None
        if word == "--config" and index + 1 < len(out):
            value, at = out[index + 1], index + 1
        elif word.startswith("--config="):
            value, at = word.partition("=")[2], index
        if value is None or "://" not in value:
            continue
        local = os.path.join(workdir, CONFIG_NAME)
        with FileSystems.open(value) as remote, open(local, "wb") as copy:
            copy.write(remote.read())
        out[at] = local if at != index else f"--config={local}"
    return out


class RunSync(beam.DoFn):
    """Runs ``costflow sync`` with the element's flags; yields its exit status (0).

    Raises:
        SyncFailed: sync exited non-zero (3: a source failed, 4: another sync holds the lock,
            2: bad config); its last output lines are in the message.
    """

    def process(self, element: list[str]) -> Iterator[int]:
        with tempfile.TemporaryDirectory(prefix="costflow-sync-") as workdir:
            argv = localize_config(list(element), workdir)
            done = subprocess.run([sys.executable, "-m", "costflow.cli", "sync", *argv],
                                  cwd=workdir, capture_output=True, text=True, check=False)
        for line in done.stdout.splitlines():
            LOG.info("%s", line)
        for line in done.stderr.splitlines():
            LOG.warning("%s", line)
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise SyncFailed(f"costflow sync exited with status {done.returncode}: {tail}")
        yield done.returncode


def build(pipeline: beam.Pipeline, sync_argv: list[str]) -> Any:
    """The job: one element, the sync flags, through `RunSync`."""
    return (pipeline
            | "SyncFlags" >> beam.Create([list(sync_argv)])
            | "RunSync" >> beam.ParDo(RunSync()))
