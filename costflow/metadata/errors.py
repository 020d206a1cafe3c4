"""Errors of the metadata store: one paragraph each, naming the URL, the document and the field.

Input the caller can fix (a bad URL, a bad path, a value the store refuses, such as a float) is
`MetadataInputError`, which is also a `costflow.errors.ConfigError` (exit 2), so code that
already handles bad input handles it. What a backend refuses or fails is a `MetadataError`
(exit 3); its subclasses let a caller tell the common cases apart without parsing messages.
`LockLost` (exit 4, like `WarehouseBusy`) means another process took a lock over: whatever the
holder was doing under it must stop. Backends raise these *instead of* the SDK's exception
(no chained traceback): a message says what happened and what to do, not where in gRPC.
"""

from __future__ import annotations

from costflow.errors import ConfigError, CostflowError


class MetadataError(CostflowError):
    """The metadata store refused or failed an operation."""

    exit_code = 3


class MetadataInputError(MetadataError, ConfigError):
    """A URL, document path, lock argument or value the store does not accept."""

    exit_code = 2


class MetadataAccessDenied(MetadataError):
    """The identity may not do this (Firestore PERMISSION_DENIED / UNAUTHENTICATED, no
    credentials, or a local file that cannot be opened)."""


class MetadataUnavailable(MetadataError):
    """The store cannot be reached (Firestore unavailable or too slow), or stayed busy (a local
    file locked by another process) for longer than the timeout. Trying again later is enough."""


class LockLost(MetadataError):
    """The lease is no longer ours: another process took the lock over after it went stale, or
    it was released. Stop the work the lock protected."""

    exit_code = 4


def one_line(text: str, limit: int = 300) -> str:
    """A service's message on one line, shortened: it goes inside a costflow message."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."
