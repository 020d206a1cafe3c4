"""Refuse secrets written into costflow.yaml in clear text, without ever repeating them.

costflow.yaml is meant to be committed and shared, so credentials live in the secret store and
the file names them (``credentials: secret://cloud-creds/acme/aws``). Two checks catch a value
pasted in anyway:

- by shape, anywhere in the text (comments too): a PEM private key block, an AWS access key id
  (``AKIA``/``ASIA`` + 16), a Google service-account key's ``"private_key"``, an Azure storage
  connection string's ``AccountKey=``, a SAS token's ``sig=``, a password in a URL
  (``scheme://user:password@host``), GitHub and Slack tokens;
- by key name: a key such as ``password``, ``secret``, ``token``, ``client_secret``,
  ``private_key``, ``access_key`` or ``credentials`` whose value is anything but a
  ``secret://`` reference. A bare ``key`` counts only for a long value without spaces (it is
  also the name of tag keys in policies: ``key: team``).

Messages name the line or key and the kind of secret, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a PEM private key block", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")),
    ("an AWS access key id", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"
                                        r"(?![A-Z0-9])")),
    ("a Google service-account key", re.compile(r"[\"']private_key[\"']\s*:")),
    ("an Azure storage account key", re.compile(r"AccountKey=[A-Za-z0-9+/=]{20,}")),
    ("a SAS token signature", re.compile(r"[?&]sig=[A-Za-z0-9%+/=]{10,}")),
    ("a password in a URL", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@[^\s]")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
)

# Key names (lower case, '-' and ' ' read as '_') whose literal value is a secret.
SECRET_KEYS = frozenset({
    "password", "passwd", "pwd", "secret", "token", "client_secret", "private_key",
    "access_key", "secret_key", "api_key", "apikey", "access_token", "refresh_token",
    "auth_token", "account_key", "sas_token", "connection_string", "secret_access_key",
    "aws_secret_access_key", "aws_access_key_id", "aws_session_token", "credential",
    "credentials", "private_key_id", "client_key",
})
_SECRET_SUFFIXES = ("_password", "_secret", "_token", "_private_key", "_access_key",
                    "_secret_key", "_api_key", "_account_key")
_AMBIGUOUS = "key"
_LONG_WORD = re.compile(r"\S{16,}")
SECRET_REFERENCE = "secret://"

ADVICE = ("store it with `costflow secrets set NAME --from-file FILE` (NAME such as "
          "cloud-creds/acme/aws) and write secret://NAME in its place; if it was ever committed "
          "or shared, rotate it")


def shapes(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line, kind) of each secret-shaped string in ``text``."""
    for kind, pattern in _SHAPES:
        for found in pattern.finditer(text):
            yield text.count("\n", 0, found.start()) + 1, kind


def shape_of(value: str) -> str | None:
    """The kind of secret ``value`` looks like, or None."""
    return next((kind for kind, pattern in _SHAPES if pattern.search(value)), None)


def secret_key(name: str, value: object) -> bool:
    """Whether ``name: value`` is a clear-text secret by its key name."""
    if value is None or isinstance(value, bool | dict | list):
        return False
    text = str(value)
    if not text or text.startswith(SECRET_REFERENCE):
        return False
    norm = re.sub(r"[-\s.]", "_", name.strip().lower())
    if norm == _AMBIGUOUS:
        return bool(_LONG_WORD.fullmatch(text))
    return norm in SECRET_KEYS or norm.endswith(_SECRET_SUFFIXES)
