"""Secret names: one strict grammar, and a reversible spelling for each backend.

The design document (F6 §6.1) names secrets by three patterns::

    cloud-creds/{tenant}/{provider}     e.g. cloud-creds/acme/aws
    api-keys/{tenant}/{service}         e.g. api-keys/acme/slack-webhook
    llm/{provider}                      e.g. llm/openai

A name becomes a file name (local store) and a URL path segment (AWS, GCP, Azure), so it is
treated as hostile until it matches, in full, one of these patterns where each ``{part}`` is a
*segment*: 1 to 63 lowercase ASCII letters and digits, with single ``-`` or ``_`` between them
(``acme``, ``acme-eu``, ``team_7``). So no ``.``/``..``, no leading, trailing or double slash, no
upper case (Azure compares names case-insensitively), no control characters, no look-alike
Unicode letters.

Because a separator (``-``, ``_`` or ``/``) always stands alone between two letters or digits,
each backend's spelling below is reversible (`decode_*` gives the name back):

============  ===========================  ==============================
backend       allowed characters, length   ``-`` / ``_`` / ``/`` spelled
============  ===========================  ==============================
AWS SM        ``[A-Za-z0-9/_+=.@-]``, 512   unchanged
GCP SM        ``[A-Za-z0-9_-]``, 255        ``-`` / ``_`` / ``__``
local files   as GCP, then ``.secret``     ``-`` / ``_`` / ``__``
Azure KV      ``[0-9A-Za-z-]``, 127         ``-`` / ``--`` / ``---``
============  ===========================  ==============================

So ``cloud-creds/acme_eu/aws`` is ``cloud-creds__acme_eu__aws`` on GCP (and
``cloud-creds__acme_eu__aws.secret`` locally) and ``cloud-creds---acme--eu---aws`` on Azure.

A name is refused when its Azure spelling (the longest) would exceed 127 characters, so every
valid name is valid on every backend.
"""

from __future__ import annotations

import re

from costflow.errors import ConfigError

SEGMENT = r"[a-z0-9]+(?:[-_][a-z0-9]+)*"
_SEGMENT_RE = re.compile(SEGMENT, re.ASCII)
_ALLOWED = re.compile(r"[a-z0-9_-]+", re.ASCII)
SEGMENT_MAX = 63
AZURE_MAX = 127

# Kind -> the parts that follow it (the design's f6-secrets-config.yaml patterns).
PATTERNS: dict[str, tuple[str, ...]] = {
    "cloud-creds": ("tenant", "provider"),
    "api-keys": ("tenant", "service"),
    "llm": ("provider",),
}
ACCEPTED = ("Secret names follow cloud-creds/{tenant}/{provider}, api-keys/{tenant}/{service} or "
            "llm/{provider}, each part 1-63 lowercase letters and digits with single '-' or '_' "
            "between them (e.g. cloud-creds/acme/aws).")


def validate_name(name: object) -> str:
    """The name, if it matches one of the design's patterns in full; else `ConfigError`.

    The message says what is wrong without repeating the string: a name that fails may be a
    secret value passed where the name belongs (swapped arguments).
    """
    if not isinstance(name, str):
        raise ConfigError(f"a secret name must be a string, not {type(name).__name__}. "
                          f"{ACCEPTED}")
    kind, _, rest = name.partition("/")
    if kind not in PATTERNS:
        raise ConfigError(f"a secret name ({len(name)} characters) does not start with "
                          f"cloud-creds/, api-keys/ or llm/. {ACCEPTED}")
    parts = rest.split("/") if rest else []
    expected = PATTERNS[kind]
    pattern = kind + "/" + "/".join("{" + p + "}" for p in expected)
    if len(parts) != len(expected):
        raise ConfigError(f"a {kind}/ secret name has {len(parts)} part(s) after {kind}/: it "
                          f"must be {pattern}. {ACCEPTED}")
    for label, part in zip(expected, parts, strict=True):
        problem = _segment_problem(part)
        if problem:
            raise ConfigError(f"secret name {pattern}: the {label} part {problem}. {ACCEPTED}")
    if len(to_azure(name)) > AZURE_MAX:
        raise ConfigError(f"a {pattern} secret name is too long: Azure Key Vault takes "
                          f"{AZURE_MAX} characters once '/' and '_' are spelled '---' and '--'.")
    return name


def _segment_problem(part: str) -> str:
    """Why ``part`` is not a segment, in words that do not repeat it (it may hold anything)."""
    if _SEGMENT_RE.fullmatch(part) and len(part) <= SEGMENT_MAX:
        return ""
    if not part:
        return "is empty"
    if len(part) > SEGMENT_MAX:
        return f"is {len(part)} characters (at most {SEGMENT_MAX})"
    if any("A" <= ch <= "Z" for ch in part):
        return "has upper-case letters (names are lower case: Azure ignores case)"
    if not _ALLOWED.fullmatch(part):
        return "has characters other than a-z, 0-9, '-' and '_'"
    return "starts or ends with '-' or '_', or has two of them in a row"


def make_name(kind: str, *parts: str) -> str:
    """A validated name from its parts: ``make_name("cloud-creds", "acme", "aws")``."""
    return validate_name("/".join((kind, *parts)))


def to_gcp(name: str) -> str:
    """GCP secret id (and local file stem): ``/`` becomes ``__``."""
    return name.replace("/", "__")


def from_gcp(secret_id: str) -> str:
    """The name a GCP secret id (`to_gcp`) spells; `ConfigError` if it spells none."""
    return validate_name(secret_id.replace("__", "/"))


def to_azure(name: str) -> str:
    """Azure Key Vault secret name: ``-`` stays, ``_`` becomes ``--``, ``/`` becomes ``---``."""
    return name.replace("_", "--").replace("/", "---")


_DASH_RUN = re.compile(r"-+")
_AZURE_BACK = {1: "-", 2: "_", 3: "/"}


def from_azure(secret_name: str) -> str:
    """The name an Azure secret name (`to_azure`) spells; `ConfigError` if it spells none."""
    def back(match: re.Match[str]) -> str:
        run = len(match.group())
        if run not in _AZURE_BACK:
            raise ConfigError(f"{secret_name[:130]!r} is not a costflow secret name spelled "
                              "for Azure Key Vault.")
        return _AZURE_BACK[run]

    return validate_name(_DASH_RUN.sub(back, secret_name))
