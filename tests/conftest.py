"""Shared test fixtures.

`shared_dir` points at the reference material in ../shared. A user's fresh clone has no
../shared: tests that need it skip with a reason; under CI=true (CI always has it) they fail
instead, so they can never skip silently in CI.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COSTFLOW_SHARED", ROOT.parent / "shared"))


def require_shared(relative: str = "") -> Path:
    """Path under ../shared, or skip (fail under CI=true) when it is absent."""
    path = SHARED / relative
    if not path.exists():
        message = f"{path} is absent: the reference samples live in ../shared beside the clone"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: CI always has ../shared)")
        pytest.skip(message)
    return path


@pytest.fixture
def shared_dir() -> Path:
    return require_shared()


@pytest.fixture
def cur_sample() -> Path:
    """The real anonymized AWS legacy CUR sample (1,281 rows, 94 columns)."""
    return require_shared("samples/aws/cur_legacy_anonymous.csv")
