"""The Flex Template's parameters are exactly the ingest pipeline's own flags."""

from __future__ import annotations

import json

from apache_beam.options.pipeline_options import PipelineOptions

from costflow.pipelines.options import QualityOptions, SourceOptions, WarehouseOptions
from tests.conftest import ROOT


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


def test_flags_parse_as_snake_case_options():
    opts = PipelineOptions(["--source=a.csv", "--source=b.csv", "--max_dead_letter_ratio=0.5",
                            "--format=aws_cur_legacy"])
    assert opts.view_as(SourceOptions).source == ["a.csv", "b.csv"]
    assert opts.view_as(SourceOptions).source_format == "aws_cur_legacy"
    assert opts.view_as(QualityOptions).max_dead_letter_ratio == 0.5
