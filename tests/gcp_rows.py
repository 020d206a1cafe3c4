"""GCP billing-export records (dicts, as the JSON lines hold them) through the GCP normalizer:
what the unit, region and resource-type tests feed a handful of edited real rows through."""

from __future__ import annotations

import io
import json

import pyarrow.json as pajson

from costflow.providers import CATALOG
from costflow.providers.gcp.export_schema import READER_SCHEMA
from costflow.transforms.contract import Mapped


def map_rows(rows: list[dict]) -> Mapped:
    """The records read with the export's reader schema, then mapped to FOCUS."""
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    table = pajson.read_json(io.BytesIO(data), parse_options=pajson.ParseOptions(
        explicit_schema=READER_SCHEMA, unexpected_field_behavior="ignore"))
    return CATALOG.formats.get("gcp_billing_export_resource_v1").map(
        table.combine_chunks().to_batches()[0])
