"""Any provider's FOCUS export (``costflow ingest --provider focus``): FOCUS 1.0 to 1.3 files
(CSV, CSV.gz, Parquet) of any provider, several providers in one file.

Everything the reading needs is the shared FOCUS reader (`costflow.transforms.from_focus`);
this folder adds which provider each row's slice belongs to (`normalizer`) and the FOCUS
dataset directory, data files beside their metadata (`dataset`).
"""

from __future__ import annotations

from costflow.providers.base import Provider
from costflow.providers.focus.dataset import plan_dataset
from costflow.providers.focus.normalizer import FocusNormalizer

PROVIDER = Provider("focus", formats=(FocusNormalizer(),), local_layouts=(plan_dataset,))
