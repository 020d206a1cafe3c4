"""AWS: CUR (legacy, Parquet, 2.0) and FOCUS exports from S3, Cost Explorer, Compute Optimizer.

Everything costflow knows about AWS is in this folder and is declared once, below.
"""

from __future__ import annotations

from costflow.providers.aws import (
    compute_optimizer,
    cost_explorer_api,
    forecast,
    organizations,
    s3,
)
from costflow.providers.aws.cost_explorer import AwsCostExplorerNormalizer
from costflow.providers.aws.cur import (
    AwsCur2Normalizer,
    AwsCurLegacyNormalizer,
    AwsCurParquetNormalizer,
)
from costflow.providers.aws.focus import AwsFocusNormalizer
from costflow.providers.aws.samples.demo import write_demo
from costflow.providers.base import Provider
from costflow.sources.contract import Container, Scheme

PROVIDER = Provider(
    "aws",
    formats=(AwsCurLegacyNormalizer(), AwsCurParquetNormalizer(), AwsCur2Normalizer(),
             AwsFocusNormalizer(), AwsCostExplorerNormalizer()),
    schemes=(Scheme("s3", s3.plan_s3, opener=s3.open_s3),
             Scheme(cost_explorer_api.SCHEME, cost_explorer_api.plan_ce, period=True)),
    containers=(Container(cost_explorer_api.CONTAINER, cost_explorer_api.read_ce),),
    # A local copy of a CUR / Data Exports bucket is read manifest-first, like the bucket.
    local_layouts=(s3.plan_local,),
    recommender=compute_optimizer.fetch,
    forecast=forecast.fetch_cost_forecast,
    demo=write_demo,
    # aws: tags AWS generates; user: user-defined cost allocation tags (CUR's own prefix).
    tag_prefixes=("aws:", "user:"),
    # The legacy CUR names no account: AWS Organizations does (SubAccountName in the views).
    account_names=organizations.fetch_account_names,
)
