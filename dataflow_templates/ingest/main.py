"""Flex Template launcher for the costflow ingest pipeline.

Why this file exists: a Flex Template runs its ``FLEX_TEMPLATE_PYTHON_PY_FILE`` as a script.
Pointing that at a module inside the package (``costflow/pipelines/ingest.py``) would put
``costflow/pipelines`` first on ``sys.path`` and make its modules importable under a second,
top-level name (``options``, ``read``, ...). So, as in Apache Beam's ``juliaset`` example, the
pipeline stays in the installed ``costflow`` package and this small driver outside it only
imports and runs it: ``costflow.pipelines.ingest.run`` is the composition root.

The Dockerfile beside it copies this file to ``/template/main.py`` and names it in
``FLEX_TEMPLATE_PYTHON_PY_FILE``. To run it by hand (from any directory, with costflow
installed), pass the pipeline's own flags:

    python dataflow_templates/ingest/main.py --source 'gs://billing/**/*.csv.gz' \\
        --warehouse bigquery://PROJECT/cost_analytics --runner DataflowRunner ...

Exit status: 0 on success; on a `costflow.errors.CostflowError` the message is printed to
stderr as ``error: <message>`` and the exit status is the error's ``exit_code`` (2 for bad
flags or input, 3 for a failed or unreconciled run).
"""

from __future__ import annotations

import logging
import sys

from costflow.errors import CostflowError
from costflow.pipelines.ingest import run
from costflow.pipelines.report import format_summary


def main(argv: list[str]) -> int:
    """Run one ingest with ``argv`` (pipeline flags); returns the process exit status."""
    try:
        report = run(argv)
    except CostflowError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(format_summary(report))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main(sys.argv[1:]))
