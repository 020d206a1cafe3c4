"""Several problems at once, each with its key path, and the error the user finally sees.

A cross-field check (a tenant an account names, two sources with one id) runs in a model
validator, where pydantic gives one location for the whole model. `Problems` carries the exact
key path of each problem through pydantic (it is the ``ctx["error"]`` of the error pydantic
reports), so the loader can name the line of each. `ConfigFileError` is what `load_config`
raises: one paragraph naming file, line and key of every problem found.
"""

from __future__ import annotations

from collections.abc import Sequence

from costflow.errors import ConfigError

Loc = tuple[str | int, ...]


def key_path(loc: Sequence[str | int]) -> str:
    """``("accounts", 1, "sources", 0, "uri")`` -> ``accounts[1].sources[0].uri``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class Problems(ValueError):
    """Problems found by one validator, each at a key path relative to its model."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[Loc, str]] = []

    def add(self, loc: Loc, message: str) -> None:
        self.items.append((loc, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise self

    def __str__(self) -> str:
        return "; ".join(f"{key_path(loc)}: {message}" if loc else message
                         for loc, message in self.items)


class ConfigFileError(ConfigError):
    """costflow.yaml cannot be used as it is; the message names file, line and key of each
    problem and says what to do.

    Attributes:
        path: the file, as given.
        problems: (line or None, key path or "", message) for each problem, in file order.
    """

    MAX_LISTED = 12

    def __init__(self, path: str, problems: Sequence[tuple[int | None, str, str]]) -> None:
        self.path = path
        self.problems = sorted(problems, key=lambda p: (p[0] or 0, p[1]))
        super().__init__(self._paragraph())

    def _paragraph(self) -> str:
        def one(line: int | None, key: str, message: str, prefix: str) -> str:
            where = prefix + (f" line {line}" if line else "")
            where = f"{where}, {key}" if key else where
            return f"{where.strip()}: {message.rstrip('.')}"

        if len(self.problems) == 1:
            return one(*self.problems[0], prefix=self.path) + "."
        shown = [one(*p, prefix="") for p in self.problems[:self.MAX_LISTED]]
        more = len(self.problems) - len(shown)
        tail = f"; and {more} more" if more else ""
        return (f"{self.path} has {len(self.problems)} problems: " + "; ".join(shown)
                + tail + ".")
