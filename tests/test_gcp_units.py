"""GCP units through mappings/gcp_units.csv to the FOCUS UnitFormat, the provider's text kept."""

from __future__ import annotations

import copy
import json
import re

import pyarrow as pa
import pytest

from costflow.providers.gcp.billing import UNITS
from costflow.providers.gcp.samples import billing as gs
from costflow.providers.gcp.samples import world
from tests.gcp_rows import map_rows

# The validator's UnitFormat patterns (focus-validator 2.2.1 FormatUnit), narrowed to what the
# spec's examples use: abbreviated data sizes, capitalized plural time units.
_SIZE = "B|KB|MB|GB|TB|PB|KiB|MiB|GiB|TiB|PiB"
_TIME = "Years|Months|Days|Hours|Minutes|Seconds"
_COUNT = "[A-Za-z][A-Za-z0-9]*(?: [A-Za-z][A-Za-z0-9]*)*"
UNIT_FORMAT = re.compile(rf"^(?:(?:{_SIZE}|{_TIME}|{_COUNT})|(?:{_SIZE}|{_COUNT})-(?:{_TIME})|"
                         rf"[0-9]+ (?:{_COUNT}))$")



def test_every_unit_of_the_generators_catalog_is_in_the_table() -> None:
    catalog = {u for s in world.SKUS for u in (s.unit, s.pricing_unit)}
    fixture = {r["usage"][k] for r in gs.fixture_rows() if r.get("usage")
               for k in ("unit", "pricing_unit") if r["usage"].get(k)}
    assert catalog | fixture <= set(UNITS)


@pytest.mark.parametrize(("gcp", "focus"), sorted(UNITS.items()))
def test_the_table_maps_to_the_unit_format(gcp: str, focus: str) -> None:
    assert UNIT_FORMAT.match(focus), (gcp, focus)
    assert focus != gcp  # a row is for a unit Google spells differently


def test_units_are_mapped_and_the_provider_text_kept() -> None:
    row = next(r for r in gs.fixture_rows()
               if (r.get("usage") or {}).get("pricing_unit") == "gibibyte month")
    odd = copy.deepcopy(row)
    odd["usage"]["unit"] = odd["usage"]["pricing_unit"] = "furlong-fortnights"
    cols = map_rows([row, odd]).columns
    assert cols["PricingUnit"].to_pylist() == ["GiB-Months", "furlong-fortnights"]
    assert cols["x_PricingUnitDescription"].to_pylist() == ["gibibyte month",
                                                            "furlong-fortnights"]
    assert cols["ConsumedUnit"].to_pylist()[0] == UNITS[row["usage"]["unit"]]
    assert cols["x_ConsumedUnitDescription"].to_pylist()[0] == row["usage"]["unit"]
    flags = [json.loads(f) if f else [] for f in cols["x_DataQualityFlags"].to_pylist()]
    assert "PricingUnit:unmapped" not in flags[0]
    assert {"PricingUnit:unmapped", "ConsumedUnit:unmapped"} <= set(flags[1])
    assert isinstance(cols["PricingUnit"], pa.Array | pa.ChunkedArray)
