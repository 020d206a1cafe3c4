"""The benchmarks' memory figure is the measured command's own, not inherited from the
benchmark process (on Linux, wait4's ru_maxrss of a child starts at its parent's RSS)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

COMMON = Path(__file__).resolve().parent.parent / "bench" / "common.py"


def _common():
    spec = importlib.util.spec_from_file_location("bench_common", COMMON)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_childs_peak_is_its_own_whatever_the_parent_holds():
    common = _common()
    ballast = bytearray(400 * 1024 * 1024)  # the parent: a benchmark that generated its input
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    child = ("import time; b = bytearray(100 * 1024 * 1024)\n"
             "for i in range(0, len(b), 4096): b[i] = 1\n"
             "time.sleep(0.5)")
    run = common.run_measured([sys.executable, "-c", child])
    assert run["exit_code"] == 0
    assert 100 <= run["rss_max_process_mb"] < 300, run["rss_max_process_mb"]
    assert 100 <= run["rss_tree_sum_mb"] < 300
    del ballast
