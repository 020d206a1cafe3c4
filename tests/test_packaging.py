"""What `pip install` (and so a Dataflow worker) gets: every package, every SQL and data file."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile

import pytest

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_dirs() -> set[str]:
    return {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "costflow").rglob(
        "__init__.py")}


def test_every_package_is_listed_explicitly():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert listed == _package_dirs()


@pytest.mark.slow
def test_the_wheel_carries_sql_schemas_and_mappings(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("costflow-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    needed = [p.relative_to(ROOT).as_posix() for pattern in ("costflow/sql/**/*.sql",
              "costflow/schemas/generated/*", "costflow/transforms/mappings/*.csv")
              for p in ROOT.glob(pattern)]
    assert needed and not [n for n in needed if n not in names]
