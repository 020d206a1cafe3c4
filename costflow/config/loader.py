"""Read costflow.yaml: hostile-input limits, YAML with line numbers, ``${VAR}``, validation.

The file is read as untrusted text: at most `MAX_BYTES`, strict UTF-8, one YAML document whose
duplicate keys are an error (ruamel.yaml's round-trip loader, which also keeps each key's
line). Anchors and aliases are allowed but the document may expand to at most `MAX_VALUES`
values and `MAX_DEPTH` levels, so a "billion laughs" file is refused at once instead of being
expanded. Secrets in clear text are refused (`costflow.config.cleartext`). String values may
name environment variables, ``${GCP_PROJECT}``; ``$${`` writes a literal ``${``.

Every problem becomes one `ConfigFileError` paragraph naming file, line and key path
(``costflow.yaml line 14, accounts[1].sources[0].uri: ...``); values are not echoed.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from costflow.config import cleartext
from costflow.config.models import CostflowConfig
from costflow.config.problems import ConfigFileError, Loc, Problems, key_path

ENV_VAR = "COSTFLOW_CONFIG"
DEFAULT_PATH = "costflow.yaml"
MAX_BYTES = 1_000_000
MAX_VALUES = 20_000
MAX_DEPTH = 64
MAX_INDENT = 256
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
INIT_HINT = ("run `costflow init` to write one for the demo data, or name yours with --config "
             f"PATH or ${ENV_VAR}")


def resolve_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The argument, else ``$COSTFLOW_CONFIG``, else ``./costflow.yaml``."""
    return Path(path if path is not None else os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load_config(path: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None) -> CostflowConfig:
    """The validated config of ``path`` (see `resolve_path`).

    Args:
        path: the file; None for ``$COSTFLOW_CONFIG`` or ``./costflow.yaml``.
        environ: the variables ``${VAR}`` reads (default ``os.environ``).

    Raises:
        ConfigFileError: the file is missing, unreadable, not YAML, or not a valid config;
            the message names file, line and key of every problem found.
    """
    file = resolve_path(path)
    text = _read(file)
    return parse_config(text, str(file), os.environ if environ is None else environ,
                        source_path=file)


def parse_config(text: str, name: str = DEFAULT_PATH, environ: Mapping[str, str] | None = None,
                 source_path: Path | None = None) -> CostflowConfig:
    """The validated config in ``text``; ``name`` is the file name messages use."""
    env = os.environ if environ is None else environ
    problems: list[tuple[int | None, str, str]] = [
        (line, "", f"holds what looks like {kind} (not shown); secrets never go in this file: "
         f"{cleartext.ADVICE}") for line, kind in cleartext.shapes(text)]
    if problems:  # before parsing: a secret stays out of every later message
        raise ConfigFileError(name, problems)
    _refuse_deep_text(text, name)
    document = _parse_yaml(text, name)
    if _expanded_size(document, name) > MAX_VALUES:
        raise ConfigFileError(name, [(None, "", f"expands to more than {MAX_VALUES:,} values "
                                      "once its anchors and aliases (&name, *name) are filled "
                                      "in, or nests them in a loop; a costflow config is small, "
                                      "so it is refused")])
    walker = _Walker(env, name)
    data = walker.plain(document, ())
    if walker.problems:
        raise ConfigFileError(name, [(walker.line(loc), key_path(loc), message)
                                     for loc, message in walker.problems])
    if not isinstance(data, dict):
        raise ConfigFileError(name, [(1, "", "must be a mapping of keys (version, warehouse, "
                                      f"tenants, accounts, ...); {INIT_HINT}")])
    try:
        config = CostflowConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigFileError(name, [(walker.line(loc), key_path(loc), message)
                                     for loc, message in _problems(err)]) from None
    config._source_path = source_path
    return config


def _read(file: Path) -> str:
    def fail(message: str) -> ConfigFileError:
        return ConfigFileError(str(file), [(None, "", message)])

    try:
        if file.is_dir():
            raise fail("is a directory, not a file; name the YAML file itself")
        with open(file, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise fail(f"no such file; {INIT_HINT}") from None
    except PermissionError:
        raise fail("cannot be read (permission denied); check the file's owner and mode") from None
    except OSError as err:
        raise fail(f"cannot be read ({err.strerror or type(err).__name__})") from None
    if len(raw) > MAX_BYTES:
        raise fail(f"is larger than {MAX_BYTES:,} bytes; a costflow config is a few kilobytes: "
                   "is this the right file?")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise ConfigFileError(str(file), [(line, "", "is not UTF-8 text (byte "
                                           f"0x{raw[err.start]:02x}); save the file as UTF-8")]
                              ) from None


def _refuse_deep_text(text: str, name: str) -> None:
    """Refuse deep nesting before the YAML parser sees it: ruamel's scanner slows down
    quadratically with flow nesting (``[[[[...`` 5,000 deep takes minutes).

    Counts ``[``/``{`` minus ``]``/``}`` outside quoted scalars and comments, and the
    indentation of each line; a costflow config needs neither deep."""
    depth, quote, line, previous, in_comment, escaped = 0, "", 1, "\n", False, False
    for char in text:
        if char == "\n":
            line, in_comment = line + 1, False
        if in_comment:
            continue
        if quote:  # inside '...' (no escapes but '') or "..." (backslash escapes)
            if escaped:
                escaped = False
            elif quote == '"' and char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char == "#" and previous in " \t\n":
            in_comment = True
        elif char in "'\"" and previous in " \t\n[{,":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigFileError(name, [(line, "", f"nests lists and mappings more than "
                                              f"{MAX_DEPTH} levels deep; a costflow config is "
                                              "shallow, so it is refused")])
        elif char in "]}":
            depth = max(0, depth - 1)
        previous = char
    for number, text_line in enumerate(text.split("\n"), start=1):
        if len(text_line) - len(text_line.lstrip(" ")) > MAX_INDENT:
            raise ConfigFileError(name, [(number, "", f"is indented more than {MAX_INDENT} "
                                          "columns; a costflow config is shallow, so it is "
                                          "refused")])


def _parse_yaml(text: str, name: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(p) for p in (err.context, err.problem) if p)
        if "duplicate key" in problem or type(err).__name__ == "DuplicateKeyError":
            problem = (f"{_duplicate(err)} appears twice in one mapping; keep one (YAML "
                       "would silently use the last)")
        raise ConfigFileError(name, [(line, "", f"is not valid YAML ({problem})")]) from None
    except RecursionError:
        raise ConfigFileError(name, [(None, "", f"is nested too deeply (more than {MAX_DEPTH} "
                                      "levels)")]) from None
    except YAMLError as err:
        raise ConfigFileError(name, [(None, "", f"is not valid YAML ({type(err).__name__})")]
                              ) from None


def _duplicate(err: Exception) -> str:
    found = re.search(r'found duplicate key "([^"\n]{1,80})"', str(err))
    return f"key {found.group(1)!r}" if found else "a key"


def _expanded_size(document: Any, name: str) -> int:
    """How many values the document holds once aliases are expanded, counted without
    expanding them (each shared node is counted once and multiplied); a loop counts as
    too many. Stops counting past `MAX_VALUES`."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, Mapping | list | tuple):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if depth > MAX_DEPTH:
            raise ConfigFileError(name, [(None, "", f"nests lists and mappings more than "
                                          f"{MAX_DEPTH} levels deep; a costflow config is "
                                          "shallow, so it is refused")])
        if key in active:
            return MAX_VALUES + 1
        active.add(key)
        children = node.values() if isinstance(node, Mapping) else node
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_VALUES:
                break
        active.discard(key)
        sizes[key] = total
        return total

    return size(document, 0)


class _Walker:
    """Turns ruamel's document into plain values, checking size, depth, secrets and ``${}``,
    and remembers the line of every key path."""

    def __init__(self, environ: Mapping[str, str], name: str) -> None:
        self.environ, self.name = environ, name
        self.lines: dict[Loc, int] = {(): 1}
        self.problems: list[tuple[Loc, str]] = []

    def line(self, loc: Loc) -> int | None:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None

    def plain(self, value: Any, loc: Loc) -> Any:
        """Plain values of a document `_expanded_size` has bounded (so recursion is too)."""
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    self.problems.append((loc, "a key must be text (quote it: "
                                          f"\"{str(key)[:40]}\":)"))
                    continue
                here = (*loc, key)
                self._remember(value, key, here, is_key=True)
                if cleartext.secret_key(key, item):
                    self.problems.append((here, "holds a literal value under a key named for a "
                                          "secret (not shown); secrets never go in this file: "
                                          f"{cleartext.ADVICE}"))
                    continue
                out[key] = self.plain(item, here)
            return out
        if isinstance(value, list | tuple):
            items = []
            for i, item in enumerate(value):
                self._remember(value, i, (*loc, i), is_key=False)
                items.append(self.plain(item, (*loc, i)))
            return items
        if isinstance(value, str):
            return self._interpolate(str(value), loc)
        if isinstance(value, bool) or type(value).__name__ == "ScalarBoolean":
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, date) or value is None:
            return value
        self.problems.append((loc, f"holds a YAML value of type {type(value).__name__} (a "
                              "tag such as !!binary?); write plain text, numbers or lists"))
        return None

    def _remember(self, container: Any, key: Any, loc: Loc, is_key: bool) -> None:
        lc: Any = getattr(container, "lc", None)
        try:
            where = lc.key(key) if is_key else lc.item(key)
            self.lines[loc] = where[0] + 1
        except (AttributeError, KeyError, IndexError, TypeError):
            pass  # a merged (<<) key: its line is its parent's

    def _interpolate(self, text: str, loc: Loc) -> str:
        if "$" not in text:
            return text
        used: list[str] = []

        def one(found: re.Match[str]) -> str:
            whole = found.group(0)
            if whole == "$${":
                return "${"
            name = found.group(1)
            if name is None:
                self.problems.append((loc, "has '${' without a closing '}'; write ${NAME} for "
                                      "an environment variable or $${ for a literal ${"))
                return ""
            if not _VAR_NAME.fullmatch(name):
                self.problems.append((loc, "has ${...} without a variable name (letters, digits "
                                      "and _); write $${ for a literal ${"))
                return ""
            if name not in self.environ:
                self.problems.append((loc, f"names the environment variable {name}, which is not "
                                      f"set; set it (export {name}=...) or write $${{ for a "
                                      "literal ${"))
                return ""
            used.append(name)
            return self.environ[name]

        value = _REFERENCE.sub(one, text)
        kind = cleartext.shape_of(value) if used else None
        if kind:
            self.problems.append((loc, f"becomes {kind} once ${{{used[0]}}} is filled in (not "
                                  f"shown); secrets never go in the config: {cleartext.ADVICE}"))
            return ""
        return value


def _problems(err: ValidationError) -> list[tuple[Loc, str]]:
    """pydantic's errors as (key path, message), never echoing the input."""
    out: list[tuple[Loc, str]] = []
    for item in err.errors(include_input=False, include_url=False):
        loc: Loc = tuple(item["loc"])
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, Problems):
            out += [((*loc, *sub), message) for sub, message in cause.items]
            continue
        kind = item["type"]
        if kind == "extra_forbidden":
            out.append((loc, _unknown_key(loc)))
        elif kind == "missing":
            out.append((loc, "is required here; add it"))
        elif kind == "string_type":
            out.append((loc, "must be text; quote it (a number such as an account id loses "
                        "leading zeros: write \"012345678901\")"))
        elif cause is not None:
            out.append((loc, str(cause)))
        else:
            out.append((loc, str(item["msg"])))
    return out


def _unknown_key(loc: Loc) -> str:
    allowed = _keys_at(loc[:-1])
    key = str(loc[-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    listing = f"; the keys here are: {', '.join(allowed)}" if allowed else ""
    return f"unknown key {key[:60]!r}{hint}{listing}"


def _keys_at(loc: Loc) -> list[str]:
    """The keys the model at ``loc`` accepts (aliases included)."""
    model: Any = CostflowConfig
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(part)
        model = _model_of(field.annotation) if field else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    keys = []
    for name, field in model.model_fields.items():
        keys.append(name)
        choices = getattr(field.validation_alias, "choices", ())
        keys += [c for c in choices if isinstance(c, str) and c != name]
    return keys


def _model_of(annotation: Any) -> Any:
    """The BaseModel inside ``X``, ``X | None`` or ``tuple[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (tuple, list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None
