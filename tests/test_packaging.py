"""What `pip install` (and so a Dataflow worker) gets: every package, every SQL and data file."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_the_wheel_carries_every_module_sql_schemas_and_mappings(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("costflow-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every module of every package (found by package discovery, each provider folder included)
    # and every data file the code reads at run time.
    needed = [p.relative_to(ROOT).as_posix() for pattern in (
              "costflow/**/*.py", "costflow/sql/**/*.sql", "costflow/schemas/generated/*",
              "costflow/providers/*/sql/*.sql", "costflow/providers/*/mappings/*")
              for p in ROOT.glob(pattern) if "__pycache__" not in p.parts]
    assert len(needed) > 100 and not [n for n in needed if n not in names]
