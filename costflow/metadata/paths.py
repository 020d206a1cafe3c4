"""Where documents live (F6 §5.2), and the one check every path goes through.

The layout is the design's Firestore schema, kept by both backends::

    tenants/{tenant}                          the tenant itself (display name, what it may read)
    tenants/{tenant}/config/settings          free-form settings
    tenants/{tenant}/config/policies          free-form policies (budgets later)
    tenants/{tenant}/cloud_accounts/{account} account state written by `costflow sync`
    tenants/{tenant}/users/{user}             who may see what
    locks/{name}                              costflow's own leases (see `MetadataStore`)
    api_keys/{key_id}                         MCP server bearer keys, hashed (services.api_keys)

A path is segments joined by ``/``: a document path has an even number of them, a collection
path an odd number. Every segment is checked here, before any backend sees it, against
Firestore's rules (no ``/``, not ``.`` or ``..``, not ``__name__``, at most 1,500 bytes) made
stricter so that both backends accept exactly the same paths: 1 to 128 printable characters
with no leading or trailing space. So ``../x``, ``a/b`` as an id, ``__x__`` and control
characters are refused with a message naming the path, never stored.

>>> cloud_account("acme", "123456789012")
'tenants/acme/cloud_accounts/123456789012'
>>> lock("sync")
'locks/sync'
"""

from __future__ import annotations

import re

from costflow.metadata.errors import MetadataInputError

SEGMENT_MAX_CHARS = 128
TENANTS, LOCKS = "tenants", "locks"
_RESERVED = re.compile(r"__.*__", re.DOTALL)  # Firestore reserves ids of this form
RULES = (f"path segments are 1 to {SEGMENT_MAX_CHARS} printable characters, without '/' and "
         "without leading or trailing spaces, not '.' or '..', and not of the form __name__")


def segment_problem(segment: object) -> str | None:
    """Why ``segment`` cannot be a path segment (document or collection id), or None."""
    if not isinstance(segment, str):
        return f"it is a {type(segment).__name__}, not a string"
    if not segment:
        return "it is empty"
    if len(segment) > SEGMENT_MAX_CHARS:
        return f"it is {len(segment)} characters long"
    if "/" in segment:
        return "it contains '/'"
    if not segment.isprintable():
        return "it contains a control or other non-printable character"
    if segment != segment.strip():
        return "it has a leading or trailing space"
    if segment in (".", ".."):
        return f"{segment!r} is not allowed"
    if _RESERVED.fullmatch(segment):
        return "ids of the form __name__ are reserved by Firestore"
    return None


def check_segment(segment: object, what: str = "id") -> str:
    """``segment`` when it is a valid path segment; else `MetadataInputError` naming ``what``."""
    problem = segment_problem(segment)
    if problem:
        raise MetadataInputError(f"{what} {_shown(segment)} cannot be used in a metadata path: "
                                 f"{problem}; {RULES}.")
    return str(segment)


def split(path: object, kind: str) -> list[str]:
    """The segments of a ``kind`` ("document" or "collection") path; else `MetadataInputError`."""
    if not isinstance(path, str):
        raise MetadataInputError(f"a metadata {kind} path must be a string, not "
                                 f"{type(path).__name__}.")
    parts = path.split("/")
    for number, part in enumerate(parts, 1):
        problem = segment_problem(part)
        if problem:
            raise MetadataInputError(f"metadata {kind} path {_shown(path)}: segment {number} "
                                     f"({_shown(part)}) is not allowed: {problem}; {RULES}.")
    wanted_even = kind == "document"
    if (len(parts) % 2 == 0) != wanted_even:
        example = "tenants/acme/cloud_accounts/123" if wanted_even else "tenants/acme/users"
        raise MetadataInputError(
            f"{_shown(path)} is not a {kind} path: a {kind} path has an "
            f"{'even' if wanted_even else 'odd'} number of segments (e.g. {example}).")
    return parts


def document(path: object) -> str:
    """``path`` when it is a valid document path (``collection/id[/collection/id...]``)."""
    return "/".join(split(path, "document"))


def collection(path: object) -> str:
    """``path`` when it is a valid collection path (``collection[/id/collection...]``)."""
    return "/".join(split(path, "collection"))


def _shown(value: object) -> str:
    text = repr(value) if isinstance(value, str) else type(value).__name__
    return text if len(text) <= 160 else text[:150] + "...'"


# --- the design's layout -----------------------------------------------------------------------


def tenants() -> str:
    """The collection of tenants."""
    return TENANTS


def tenant(tenant_id: str) -> str:
    """The tenant's own document (display name, billing accounts, projects...)."""
    return f"{TENANTS}/{check_segment(tenant_id, 'tenant id')}"


def tenant_settings(tenant_id: str) -> str:
    """``tenants/{tenant}/config/settings``."""
    return f"{tenant(tenant_id)}/config/settings"


def tenant_policies(tenant_id: str) -> str:
    """``tenants/{tenant}/config/policies``."""
    return f"{tenant(tenant_id)}/config/policies"


def cloud_accounts(tenant_id: str) -> str:
    """The collection ``tenants/{tenant}/cloud_accounts``."""
    return f"{tenant(tenant_id)}/cloud_accounts"


def cloud_account(tenant_id: str, account_id: str) -> str:
    """``tenants/{tenant}/cloud_accounts/{account}``: the account's state (see costflow.sync)."""
    return f"{cloud_accounts(tenant_id)}/{check_segment(account_id, 'account id')}"


def users(tenant_id: str) -> str:
    """The collection ``tenants/{tenant}/users``."""
    return f"{tenant(tenant_id)}/users"


def user(tenant_id: str, user_id: str) -> str:
    """``tenants/{tenant}/users/{user}``."""
    return f"{users(tenant_id)}/{check_segment(user_id, 'user id')}"


def lock(name: str) -> str:
    """``locks/{name}``: the document a lease is kept in."""
    return f"{LOCKS}/{check_segment(name, 'lock name')}"


API_KEYS = "api_keys"


def api_keys() -> str:
    """The collection ``api_keys``: the MCP HTTP server's bearer keys, hashed
    (`costflow.services.api_keys`), one document per key id."""
    return API_KEYS


def api_key(key_id: str) -> str:
    """``api_keys/{key_id}``: one key's tenant, name, SHA-256 and revocation time."""
    return f"{API_KEYS}/{check_segment(key_id, 'key id')}"
