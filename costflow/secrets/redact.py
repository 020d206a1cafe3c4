"""Keep secret values out of the cloud SDKs' debug logs.

At DEBUG level the SDKs log request and response bodies: botocore logs the parameters of every
call (``SecretString`` included) and every response body; the GCP client logs request and
response payloads (base64 secret data) as structured ``extra`` fields. Anyone who turns on
DEBUG logging to chase a network problem would write secrets into their log files.

`secret_call()` marks the current context (a context variable, so it follows the call into
the worker thread `asyncio.to_thread` uses, and nothing else) as a secret operation;
`install()` puts a `Withhold` filter on the SDK loggers that log bodies. While a secret call
runs, their records are replaced by a one-line note naming the logger; outside one (an S3
download, a BigQuery job) they pass untouched.

The filter sits on the loggers listed in `BODY_LOGGERS` (a logger's filters see only records
logged on that exact logger). tests/test_secrets.py runs every backend with every logger at
DEBUG and fails if a planted value shows up anywhere, so a new SDK logger that logs bodies is
caught there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# The exact loggers that write request/response bodies, measured with every logger at DEBUG
# (tests/test_secrets.py): botocore logs the call's parameters and the response body; the GCP
# REST transport logs both payloads as structured extras; azure-core's network trace policy
# logs bodies when a client is made with logging_enable=True. (azure-core's HttpLoggingPolicy
# logs URLs and headers only, Authorization redacted: it is left alone.)
BODY_LOGGERS = (
    "botocore.endpoint",
    "botocore.parsers",
    "google.cloud.secretmanager_v1.services.secret_manager_service.transports.rest",
    "azure.core.pipeline.policies._universal",
)

_ACTIVE: ContextVar[bool] = ContextVar("costflow_secret_call", default=False)
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_installed = False
_lock = threading.Lock()


class Withhold(logging.Filter):
    """Replace a record made during a secret call by a note; pass every other record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _ACTIVE.get():
            record.msg = f"[{record.name}: record of a secret operation withheld by costflow]"
            record.args = None
            record.exc_info = record.exc_text = record.stack_info = None
            for key in [k for k in vars(record) if k not in _STANDARD]:
                delattr(record, key)  # structured extras (httpRequest, httpResponse, ...)
        return True


def install() -> None:
    """Put the `Withhold` filter on `BODY_LOGGERS` (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        withhold = Withhold()
        for name in BODY_LOGGERS:
            logging.getLogger(name).addFilter(withhold)
        _installed = True


@contextmanager
def secret_call() -> Iterator[None]:
    """Mark the current context as a secret operation for its duration."""
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
