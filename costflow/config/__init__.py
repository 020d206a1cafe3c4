"""costflow.yaml: the tenants, cloud accounts and sources a team's cost platform runs from.

    config = load_config()                       # --config PATH, $COSTFLOW_CONFIG, ./costflow.yaml
    for account in config.select(tenants=["acme"]):
        for source in account.sources:
            argv = source.ingest_argv()          # the `costflow ingest` flags of this source
    config.compute_config("sync-job")            # Cloud Run settings (design F6 §4.2)

`costflow init` writes a commented file for the demo data (`costflow.config.template`).
Importing this package is light (pydantic only): the providers' catalog, Beam and the SDKs
are never imported here, so commands that only read the config stay fast.
"""

from __future__ import annotations

from costflow.config.compute import DEFAULTS as COMPUTE_DEFAULTS
from costflow.config.compute import ComputeConfig, ComputeSettings, ServiceOverride
from costflow.config.loader import DEFAULT_PATH, ENV_VAR, load_config, parse_config, resolve_path
from costflow.config.models import (
    AccountConfig,
    CostflowConfig,
    SecretRef,
    SourceConfig,
    SyncSettings,
    TenantConfig,
)
from costflow.config.problems import ConfigFileError

__all__ = ["COMPUTE_DEFAULTS", "DEFAULT_PATH", "ENV_VAR", "AccountConfig", "ComputeConfig",
           "ComputeSettings", "ConfigFileError", "CostflowConfig", "SecretRef",
           "ServiceOverride", "SourceConfig", "SyncSettings", "TenantConfig", "load_config",
           "parse_config", "resolve_path"]
