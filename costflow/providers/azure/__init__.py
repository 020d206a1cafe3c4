"""Azure: Cost Management exports (EA, MCA, PAYG; actual and amortized), Microsoft's FOCUS
export, Blob Storage, the Cost Management Query API and Advisor recommendations.

Everything costflow knows about Azure is in this folder and is declared once, below.
"""

from __future__ import annotations

from costflow.providers.azure import advisor, blob, exports, query_api
from costflow.providers.azure.cost_details import AzureCostNormalizer, AzureQueryNormalizer
from costflow.providers.azure.focus import AzureFocusNormalizer
from costflow.providers.azure.samples.demo import write_demo
from costflow.providers.base import Provider
from costflow.sources.contract import Container, Scheme

PROVIDER = Provider(
    "azure",
    formats=(AzureCostNormalizer(), AzureQueryNormalizer(), AzureFocusNormalizer()),
    schemes=(Scheme("az", blob.plan_az, opener=blob.open_blob),
             Scheme("azure-query", query_api.plan_query, period=True)),
    containers=(Container(exports.CONTAINER, exports.read_azure),
                Container(query_api.CONTAINER, query_api.read_query)),
    # Export runs: latest run per month, then actual and amortized files paired.
    plan_finishers=(exports.finish_plan,),
    recommender=advisor.fetch,
    demo=write_demo,
    tag_prefixes=("microsoft",),
)
