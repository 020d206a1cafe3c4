"""Which Beam runners run the pipeline in this process, known without importing Beam.

The CLI starts the quality gate's process before it imports the pipeline (Beam's import alone
takes seconds, time the gate process uses to build its suite) and only for a run in this
process: a remote runner's commit step runs on a worker, with its own gate.
"""

from __future__ import annotations

from collections.abc import Sequence

LOCAL_RUNNERS = (None, "DirectRunner", "FnApiRunner")


def runner_of(argv: Sequence[str]) -> str | None:
    """The ``--runner`` named in pipeline arguments (the last one, as Beam reads them)."""
    runner = None
    for position, arg in enumerate(argv):
        if arg == "--runner" and position + 1 < len(argv):
            runner = argv[position + 1]
        elif arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
    return runner


def is_local(argv: Sequence[str]) -> bool:
    """Whether ``argv`` runs the pipeline in this process."""
    return runner_of(argv) in LOCAL_RUNNERS
