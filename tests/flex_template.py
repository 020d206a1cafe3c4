"""Reading a Flex Template's Dockerfile the way Docker does, for the ingest and sync template
tests: which file FLEX_TEMPLATE_PYTHON_PY_FILE launches, and where each COPY puts its sources."""

from __future__ import annotations

import posixpath
import shlex
from pathlib import Path


def dockerfile_copies(template: Path) -> tuple[str, dict[str, str]]:
    """The image path FLEX_TEMPLATE_PYTHON_PY_FILE names, and each COPY's image path -> source.

    Docker's rule: with several sources or a destination ending in "/", each source goes
    into the destination directory under its own name; otherwise the destination is its path.
    """
    workdir, py_file, copies = "/", None, {}
    for line in (template / "Dockerfile").read_text().splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        instruction, args = words[0].upper(), words[1:]
        if instruction == "WORKDIR":
            workdir = posixpath.join(workdir, args[0])
        elif instruction == "COPY":
            assert not any(a.startswith("--") for a in args), f"unhandled COPY flags: {line}"
            *sources, dest = args
            into_dir = len(sources) > 1 or dest.endswith("/")
            for src in sources:
                path = posixpath.join(workdir, dest, posixpath.basename(src) if into_dir else "")
                copies[posixpath.normpath(path)] = posixpath.normpath(src)
        elif instruction == "ENV" and args[0].startswith("FLEX_TEMPLATE_PYTHON_PY_FILE="):
            py_file = posixpath.normpath(posixpath.join(workdir, args[0].partition("=")[2]))
    assert py_file, "the Dockerfile sets no FLEX_TEMPLATE_PYTHON_PY_FILE"
    return py_file, copies
