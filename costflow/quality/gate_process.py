"""The default quality gate in a process of its own, for local runs.

Why: building the gate's GX suite costs about six CPU-seconds (GX import ~2.3 s, context and
~150 expectations ~3.6 s) and validating a two-million-row run about three more, all Python
holding the GIL. In the ingest process that time competes with reading and normalizing, whose
threads need the GIL between Arrow kernels, and the validation runs alone after the last row
is staged. In a child process the build runs while the ingest imports Beam and plans (one core
is idle then), and the validation runs while the ingest loads the staged rows inside the
warehouse transaction (DuckDB works without the GIL); the commit waits for the verdict before
COMMIT (`costflow.quality.commit_checks.SliceGateStep`).

One child per process, started on demand and reused by later runs of the process. It is a
plain interpreter running this module (``python -m``), never a copy of the caller's main
module (multiprocessing's spawn would import that module again, and a script without a
``__main__`` guard would run twice); it talks over two pipes of its own, so nothing it prints
can garble an answer, it ends when its parent closes them or exits, and it never delays its
parent's exit. It validates exactly what
`QualityGate.validate_files` validates in this process: same suite, same files, same result.
If it cannot start, dies, or its answer cannot be read, `validate` says so by returning None
and the caller validates in this process instead; a validation error (an unreadable staged
file) comes back as the same exception.

Only the parent's side is imported by the parent: the gate itself (GX, Beam's filesystems) is
imported in the child.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

LOG = logging.getLogger("costflow.quality")
POLL_S = 0.2  # how often a waiting parent checks that the child is still alive

_LOCK = threading.Lock()  # one request at a time; start and stop under it too
_STATE: dict[str, Any] = {}  # "process", "conn": the running child and the parent's end


def start() -> None:
    """Start the child (it builds the suite at once) unless one is running; never raises."""
    with _LOCK:
        if _alive():
            return
        _stop()
        to_child, from_child = os.pipe(), os.pipe()  # (read end, write end) each
        ends = (to_child[0], from_child[1])  # the child's
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(ends[0]), str(ends[1])],
                pass_fds=ends, stdin=subprocess.DEVNULL)
        except Exception:  # noqa: BLE001 - the gate then runs in this process
            LOG.debug("could not start the quality gate process", exc_info=True)
            for fd in (*to_child, *from_child):
                os.close(fd)
            return
        for fd in ends:
            os.close(fd)
        _STATE.update(process=process, conn=_Duplex(from_child[0], to_child[1]))


def running() -> bool:
    """Whether a child is running (validations go to it)."""
    with _LOCK:
        return _alive()


def validate(files: list[str]) -> Any:
    """``QualityGate().validate_files(files)`` computed by the child.

    Returns None when no child is running or it failed to answer (it is stopped then); raises
    the validation's own exception when the validation failed.
    """
    with _LOCK:
        process, conn = _STATE.get("process"), _STATE.get("conn")
        if process is None or conn is None:
            return None
        try:
            if process.poll() is not None:
                raise EOFError(f"it had exited with code {process.returncode}")
            conn.send(list(files))
            while not conn.poll(POLL_S):
                if process.poll() is not None:
                    raise EOFError(f"it exited with code {process.returncode}")
            status, value = conn.recv()
        except Exception as exc:  # noqa: BLE001 - a dead child or an unreadable answer
            LOG.warning("the quality gate process failed (%s); validating in this process",
                        exc)
            _stop()
            return None
    if status == "error":
        raise value
    return value


def stop() -> None:
    """Stop the child; later validations run in this process until `start` runs again."""
    with _LOCK:
        _stop()


class _Duplex:
    """One read and one write pipe end as one connection (send, poll, recv, close)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._in, self._out = Connection(read_fd, writable=False), Connection(write_fd,
                                                                             readable=False)

    def send(self, obj: Any) -> None:
        self._out.send(obj)

    def poll(self, timeout: float) -> bool:
        return self._in.poll(timeout)

    def recv(self) -> Any:
        return self._in.recv()

    def close(self) -> None:
        self._out.close()
        self._in.close()


def _alive() -> bool:
    process = _STATE.get("process")
    return process is not None and process.poll() is None


def _stop() -> None:
    process, conn = _STATE.pop("process", None), _STATE.pop("conn", None)
    if conn is not None:
        conn.close()  # a waiting child reads EOF and ends
    if process is not None and process.poll() is None:
        process.terminate()  # one still building its suite
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


atexit.register(stop)


def _serve(conn: _Duplex) -> None:
    """The child: build the default suite, then validate each list of files it is sent."""
    import pyarrow

    from costflow.quality.gate import QualityGate

    try:
        QualityGate().warm_up()
    except Exception:  # noqa: BLE001 - the first validation builds it again and raises
        LOG.debug("quality gate warm-up failed in the gate process", exc_info=True)
    while True:
        try:
            files = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        try:
            answer: tuple[str, Any] = ("ok", QualityGate().validate_files(files))
        except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
            answer = ("error", exc)
        pyarrow.default_memory_pool().release_unused()  # idle until the next run: hold little
        try:
            conn.send(answer)
        except Exception as exc:  # noqa: BLE001 - e.g. an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}"
                                             f" (could not be passed back: {exc})")))


if __name__ == "__main__":
    _serve(_Duplex(int(sys.argv[1]), int(sys.argv[2])))
