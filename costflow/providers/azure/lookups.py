"""Azure lookup tables: services -> FOCUS categories, regions, pricing units, resource types.

Why this module exists: Azure exports name services by meter and consumed service, regions in
half a dozen spellings (``US East``, ``eastus``, ``EastUS2``) and units as blocks (``10K``,
``100 Hours``). Microsoft publishes the tables that map them to FOCUS in the FinOps toolkit
(``src/open-data/``, MIT). The project ships its own derived copies under
``costflow/transforms/mappings/azure_*.csv`` (attribution in ``mappings/AZURE_ATTRIBUTION.md``)
and loads them once here; ``python -m costflow.providers.azure.lookups --derive DIR``
regenerates them from a toolkit checkout (or ../shared/samples/mappings/azure).
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from costflow.transforms.service_mapping import read_service_table

MAPPINGS = Path(__file__).with_name("mappings")

# The toolkit's Services.csv uses two subcategory names that FOCUS 1.2 spells differently
# [FOCUS 1.2 servicesubcategory.md]; the derived copy uses the FOCUS spelling.
_SUBCATEGORY_FIXES = {("Compute", "Quantum"): "Quantum Compute",
                      ("Migration", "Data Transfer"): "Data Migration"}


@dataclass(frozen=True)
class Tables:
    service_keys: list[str]          # "consumed service|resource type", lowercase
    service_names: list[str]
    service_categories: list[str]
    service_subcategories: list[str]
    region_keys: list[str]           # lowercase original spelling
    region_ids: list[str]
    region_names: list[str]
    unit_keys: list[str]             # UnitOfMeasure as exported
    unit_block_sizes: list[str]      # decimal text
    unit_distinct: list[str]
    type_keys: list[str]             # lowercase resource type, e.g. microsoft.compute/disks
    type_names: list[str]            # singular display name, e.g. Disk


def _rows(name: str) -> list[dict[str, str]]:
    with (MAPPINGS / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@cache
def tables() -> Tables:
    """The derived tables, loaded once; every service subcategory checked against FOCUS."""
    services = read_service_table(MAPPINGS / "azure_services.csv", key=None)
    regions, units, types = (_rows("azure_regions.csv"), _rows("azure_pricing_units.csv"),
                             _rows("azure_resource_types.csv"))
    return Tables(
        service_keys=[f"{r['consumed_service']}|{r['resource_type']}" for r in services],
        service_names=[r["service_name"] for r in services],
        service_categories=[r["service_category"] for r in services],
        service_subcategories=[r["service_subcategory"] for r in services],
        region_keys=[r["original_value"] for r in regions],
        region_ids=[r["region_id"] for r in regions],
        region_names=[r["region_name"] for r in regions],
        unit_keys=[r["unit_of_measure"] for r in units],
        unit_block_sizes=[r["pricing_block_size"] for r in units],
        unit_distinct=[r["distinct_units"] for r in units],
        type_keys=[r["resource_type"] for r in types],
        type_names=[r["singular_display_name"] for r in types],
    )


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def _write(name: str, header: list[str], rows: list[list[str]]) -> None:
    with (MAPPINGS / name).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def derive(source: Path) -> None:
    """Write the azure_*.csv copies from the toolkit's open-data CSVs in ``source``."""
    services: dict[str, list[str]] = {}
    for r in _read(source / "Services.csv"):
        consumed, rtype = r["ConsumedService"].strip().lower(), r["ResourceType"].strip().lower()
        sub = _SUBCATEGORY_FIXES.get((r["ServiceCategory"], r["ServiceSubcategory"]),
                                     r["ServiceSubcategory"])
        services.setdefault(f"{consumed}|{rtype}",
                            [consumed, rtype, r["ServiceName"], r["ServiceCategory"], sub])
    _write("azure_services.csv", ["consumed_service", "resource_type", "service_name",
                                  "service_category", "service_subcategory"],
           sorted(services.values()))
    regions = {r["OriginalValue"].strip().lower(): [r["OriginalValue"].strip().lower(),
                                                   r["RegionId"], r["RegionName"]]
               for r in _read(source / "Regions.csv")}
    _write("azure_regions.csv", ["original_value", "region_id", "region_name"],
           sorted(regions.values()))
    units = {r["UnitOfMeasure"]: [r["UnitOfMeasure"], r["PricingBlockSize"], r["DistinctUnits"]]
             for r in _read(source / "PricingUnits.csv")}
    _write("azure_pricing_units.csv", ["unit_of_measure", "pricing_block_size",
                                       "distinct_units"], sorted(units.values()))
    types = {r["ResourceType"].lower(): [r["ResourceType"].lower(), r["SingularDisplayName"]]
             for r in _read(source / "ResourceTypes.csv")}
    _write("azure_resource_types.csv", ["resource_type", "singular_display_name"],
           sorted(types.values()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--derive", type=Path, required=True,
                        help="Directory holding the toolkit's Services/Regions/PricingUnits/"
                             "ResourceTypes CSVs.")
    derive(parser.parse_args().derive)
