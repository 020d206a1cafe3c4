"""The Flex Template's parameters are exactly the ingest pipeline's own flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

from costflow.pipelines.options import QualityOptions, SourceOptions, WarehouseOptions
from tests.conftest import ROOT
from tests.flex_template import dockerfile_copies

TEMPLATE = ROOT / "dataflow_templates/ingest"


def _flags(options_class) -> set[str]:
    import argparse

    parser = argparse.ArgumentParser()
    options_class._add_argparse_args(parser)
    return {a.option_strings[0].removeprefix("--") for a in parser._actions if a.option_strings
            and a.option_strings[0] != "-h"}


def test_metadata_parameters_match_pipeline_options():
    metadata = json.loads((ROOT / "dataflow_templates/ingest/metadata.json").read_text())
    params = {p["name"] for p in metadata["parameters"]}
    flags = set().union(*(_flags(c) for c in (SourceOptions, WarehouseOptions, QualityOptions)))
    assert params == flags


def test_the_run_id_parameter_is_validated_with_the_pipelines_own_patterns():
    from costflow.warehouse.ledger import RUN_ID_PATTERNS, is_run_id

    metadata = json.loads((ROOT / "dataflow_templates/ingest/metadata.json").read_text())
    (run_id,) = [p for p in metadata["parameters"] if p["name"] == "run_id"]
    assert run_id["regexes"] == list(RUN_ID_PATTERNS)
    for value in ("..", "/etc", "a/b", "a..b", ".x", "", "x" * 129, "../../w"):
        assert not is_run_id(value), value
    for value in ("nightly", "2026-11.aws_cur-1", "A" * 128, "x.y"):
        assert is_run_id(value), value


def test_flags_parse_as_snake_case_options():
    opts = PipelineOptions(["--source=a.csv", "--source=b.csv", "--max_dead_letter_ratio=0.5",
                            "--format=aws_cur_legacy"])
    assert opts.view_as(SourceOptions).source == ["a.csv", "b.csv"]
    assert opts.view_as(SourceOptions).source_format == "aws_cur_legacy"
    assert opts.view_as(QualityOptions).max_dead_letter_ratio == 0.5


def test_launcher_reports_a_missing_source_and_exits_2(tmp_path: Path):
    # Run from an empty directory, so nothing of the repository's working tree is on sys.path
    # but the launcher's own directory: it must reach costflow as the installed package.
    done = subprocess.run([sys.executable, str(TEMPLATE / "main.py"), "--provider=aws"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "error: No --source given" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""



def test_dockerfile_launches_a_copied_file_outside_the_package():
    py_file, copies = dockerfile_copies(TEMPLATE)
    assert py_file in copies, f"{py_file} is not COPY'd into the image ({copies})"
    source = copies[py_file]
    assert (ROOT / source).is_file(), f"{source} is not a file of the repository"
    assert Path(source).parts[0] != "costflow", (
        f"{source} is inside the package: run as a script, its directory goes on sys.path")
    package_dirs = [path for path, src in copies.items() if src == "costflow"]
    assert not any(py_file.startswith(d + "/") for d in package_dirs), py_file
