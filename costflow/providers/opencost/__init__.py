"""OpenCost (Kubernetes cost allocation): the allocation API over HTTP (``opencost://``), its
saved JSON answers, and OpenCost's CSV export (``EXPORT_CSV_FILE``).

Everything costflow knows about OpenCost is in this folder and is declared once, below.
"""

from __future__ import annotations

from costflow.providers.base import Provider
from costflow.providers.opencost import answers, http_api, plan_finish
from costflow.providers.opencost.allocation import OpencostAllocationNormalizer
from costflow.providers.opencost.csv_export import OpencostCsvExportNormalizer
from costflow.providers.opencost.focus_rows import TAG_PREFIX
from costflow.sources.contract import Container, Scheme

PROVIDER = Provider(
    "opencost",
    formats=(OpencostAllocationNormalizer(), OpencostCsvExportNormalizer()),
    schemes=tuple(Scheme(name, http_api.plan_api, period=True) for name in http_api.SCHEMES),
    containers=(Container(answers.CONTAINER, answers.read_answer),
                Container(plan_finish.CSV_CONTAINER, plan_finish.read_csv_export)),
    # Saved allocation API answers (.json, which GCP's JSON-lines files also end in).
    local_layouts=(answers.plan_saved,),
    plan_finishers=(plan_finish.finish_plan,),
    # opencost:<property>: the Kubernetes properties costflow adds to a row's labels.
    tag_prefixes=(TAG_PREFIX,),
)
