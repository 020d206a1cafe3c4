"""What the ingest benchmarks share: paths, and running a command with its time and peak memory.

Why: ``ingest_bench.py`` (AWS, and the ``--provider`` dispatcher) hands ``--provider gcp`` to
``gcp_ingest_bench.py``, and both measure a ``costflow ingest`` subprocess the same way. Those
shared pieces live here, in a module that imports neither script, so the two scripts do not
import each other in a circle. The scripts are run directly (``python bench/ingest_bench.py``),
which puts ``bench/`` on ``sys.path``: they import this module as ``common``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS (kB) over ``root`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def run_measured(cmd: list[str], *, cwd: Path | None = None) -> dict[str, Any]:
    """Run ``cmd``; return exit code, wall seconds, peak RSS (MB) and its output.

    ``rss_max_process_mb`` is exact (``wait4`` reports the largest RSS among the child and the
    descendants it waited for); ``rss_tree_sum_mb`` is the largest sampled sum over the tree.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak_tree, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak_tree[0] = max(peak_tree[0], _tree_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out), (proc.stderr, err))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit_code": proc.returncode, "seconds": seconds,
            "rss_max_process_mb": usage.ru_maxrss / 1024,
            "rss_tree_sum_mb": peak_tree[0] / 1024,
            "stdout": "".join(out), "stderr": "".join(err)}


def timing(run: dict[str, Any], rows: int) -> dict[str, Any]:
    """The result columns of a `run_measured` run over ``rows`` rows: time, rows/s, peak RSS."""
    return {"seconds": round(run["seconds"], 2), "rows_per_s": round(rows / run["seconds"]),
            "peak_rss_mb": round(max(run["rss_max_process_mb"], run["rss_tree_sum_mb"])),
            "rss_max_process_mb": round(run["rss_max_process_mb"]),
            "rss_tree_sum_mb": round(run["rss_tree_sum_mb"])}


def sql_literal(text: str) -> str:
    """A SQL string literal (paths only; they come from the benchmark, never from users)."""
    return "'" + text.replace("'", "''") + "'"
