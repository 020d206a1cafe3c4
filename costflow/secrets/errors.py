"""Errors of the secret backends: one paragraph each, naming the secret, never its value.

Bad names, URLs, labels, values and keys are `costflow.errors.ConfigError` (the caller can fix
the input). What a backend refuses or fails is a `SecretError`; the subclasses let a caller
tell the common cases apart without parsing messages. Backends raise these *instead of* the
SDK's exception (no chained traceback): an SDK error may carry request details.
"""

from __future__ import annotations

import base64
import json

from costflow.errors import CostflowError


class SecretError(CostflowError):
    """A secret backend refused or failed an operation."""

    exit_code = 3


class SecretNotFound(SecretError):
    """The secret (or the version asked for) does not exist."""


class SecretExists(SecretError):
    """`create_secret` on a name that already has a value: use `rotate_secret`."""


class SecretAccessDenied(SecretError):
    """The credentials may not do this (HTTP 401/403, AWS AccessDenied, a key that fails)."""


class SecretVersionDisabled(SecretError):
    """The version exists but is disabled (or destroyed) and cannot be read."""


def not_found(name: str, where: str, version: str | None = None) -> SecretNotFound:
    if version and version != "latest":
        return SecretNotFound(f"version {version} of secret {name!r} not found in {where}.")
    return SecretNotFound(f"secret {name!r} not found in {where} (or it has no enabled "
                          f"version): create it with create_secret.")


def exists(name: str, where: str) -> SecretExists:
    return SecretExists(f"secret {name!r} already exists in {where}: use rotate_secret to give "
                        "it a new value.")


def denied(name: str, where: str, hint: str, detail: str = "") -> SecretAccessDenied:
    said = f" The service said: {detail}" if detail else ""
    return SecretAccessDenied(f"access denied to secret {name!r} in {where}: check the "
                              f"credentials' permissions ({hint}).{said}")


def disabled(name: str, where: str, version: str, state: str = "disabled"
             ) -> SecretVersionDisabled:
    return SecretVersionDisabled(f"version {version} of secret {name!r} in {where} is {state} "
                                 "and cannot be read: read the latest version instead.")


def scrub(text: str, *values: str) -> str:
    """``text`` shortened, with every given value (and its common encodings) blotted out.

    Used on messages a service sends back, before they go into a costflow error.
    """
    for value in values:
        if not value:
            continue
        forms = {value, json.dumps(value)[1:-1],
                 base64.b64encode(value.encode()).decode()}
        for form in forms:
            text = text.replace(form, "***")
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:400] + "..."
