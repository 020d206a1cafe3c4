"""The providers are declared once: one folder each, one list, read by every enumeration."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from costflow import cli
from costflow.pipelines.options import SourceOptions
from costflow.providers import CATALOG, NAMES, PROVIDERS
from costflow.services.tenancy import PROVIDERS as TENANCY_PROVIDERS
from costflow.usage import USAGE_SOURCES
from tests.conftest import ROOT

PACKAGE = ROOT / "costflow"


def test_every_listed_provider_is_a_folder_declaring_itself() -> None:
    folders = sorted(p.parent.name for p in (PACKAGE / "providers").glob("*/__init__.py"))
    assert sorted(NAMES) == folders
    assert [p.name for p in PROVIDERS] == list(NAMES) == list(CATALOG.names)
    for provider in PROVIDERS:
        assert provider.formats, provider.name
        assert {n.provider for n in provider.formats} == {provider.name}


def _collections_of_provider_names(path: Path) -> list[int]:
    """Lines of tuple/list/set literals naming two or more providers: a second provider list."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            named = {e.value for e in node.elts if isinstance(e, ast.Constant)} & set(NAMES)
            if len(named) >= 2:
                found.append(node.lineno)
    return found


def test_no_second_provider_list_outside_the_provider_folders() -> None:
    lists = {str(p.relative_to(ROOT)): lines for p in PACKAGE.rglob("*.py")
             if "providers" not in p.relative_to(PACKAGE).parts
             and (lines := _collections_of_provider_names(p))}
    assert lists == {}


def test_the_check_above_can_fail(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('CHOICES = ["aws", "gcp", "azure"]\n')
    assert _collections_of_provider_names(probe) == [1]


def _choices(parser: argparse.ArgumentParser, *path: str, flag: str = "--provider") -> list:
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    (action,) = [a for a in parser._actions if flag in a.option_strings]
    return list(action.choices)


def test_every_enumeration_reads_the_one_list() -> None:
    parser = cli._parser()
    assert _choices(parser, "ingest") == [*NAMES, *USAGE_SOURCES]  # + usage, no cost
    assert _choices(parser, "demo") == list(NAMES)
    assert _choices(parser, "recommendations", "fetch") == list(NAMES)
    assert _choices(parser, "query", "costs") == ["all", *NAMES]
    assert _choices(parser, "mcp") == ["all", *NAMES]
    options = argparse.ArgumentParser()
    SourceOptions._add_argparse_args(options)
    assert _choices(options) == list(NAMES)
    assert TENANCY_PROVIDERS == NAMES


@pytest.mark.parametrize("module", ["costflow.services.mcp_server", "costflow.cli"])
def test_the_query_side_does_not_load_the_provider_folders(module: str) -> None:
    """The MCP server and the CLI start without importing Beam or any provider's readers."""
    probe = (f"import sys, {module}; "
             "print(sorted(m for m in sys.modules if m.startswith('costflow.providers.') "
             "or m == 'apache_beam'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
