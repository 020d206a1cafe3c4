"""Microsoft's FOCUS export (Cost Management dataset ``FocusCost``) loaded as is.

Why this module exists: Microsoft exports FOCUS directly (versions 1.0-preview, 1.0, 1.0r2,
1.2-preview, 1.2; CSV, CSV.gz or Parquet) [PF §3.2]. The reader is shared with every FOCUS
export (`costflow.transforms.from_focus`); this module is its Microsoft fix-ups: how Microsoft's
export is recognized, that its rows are Microsoft's only (a file of several providers' rows is
read by ``--provider focus``), and what it adds:

* recognized by Microsoft's own ``x_`` columns (x_BillingProfileId, x_SkuMeterCategory,
  x_ResourceGroupName, ...) [PF §3.2, finops-toolkit ``focuscost_1.0.json``];
* x_ResourceGroupName is our declared column and is kept; when the file lacks it (a plain FOCUS
  file such as the FOCUS sample data) it is read from the ``/resourceGroups/<name>/`` segment of
  the Azure ResourceId, and the row says so in x_DataQualityFlags;
* Microsoft's USD amounts (x_BilledCostInUsd, x_EffectiveCostInUsd, x_ListCostInUsd,
  x_ContractedCostInUsd) have no FOCUS column; they are metrics, so they go to
  x_ProviderMetrics as exact decimal text with a ``<metric>Unit`` of ``USD``. Microsoft's other
  ``x_`` columns (identifiers and names such as x_BillingProfileId, x_InvoiceSectionName,
  x_SkuMeterCategory, x_PricingSubcategory) have no declared column: the shared reader keeps
  them, as written, in x_ProviderColumns;
* BillingAccountType (1.2) is derived when a 1.0 export lacks it: for MCA, BillingAccountId is
  the billing *profile* (``.../billingAccounts/<a>/billingProfiles/<p>``), for EA the billing
  account (enrollment) [PF §3.2, finops-toolkit ``docs-mslearn/focus/mapping.md``].

The slice key uses BillingAccountId exactly as the export states it; BilledCost is the invoice
basis. [PF §3.2] = ../shared/reference/provider_formats.md §3.2.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from costflow.transforms.arrow_ops import (
    any_true,
    constant,
    fill_false,
    json_object_from_columns,
    null_where,
    parse_decimal,
)
from costflow.transforms.contract import RowError
from costflow.transforms.from_focus import FocusExportNormalizer, text

# Microsoft's USD amounts without a FOCUS column [PF §3.2; focuscost_1.0.json].
USD_METRICS = ("x_BilledCostInUsd", "x_EffectiveCostInUsd", "x_ListCostInUsd",
               "x_ContractedCostInUsd")
_RESOURCE_GROUP = r"(?i)/resourcegroups/(?P<name>[^/]+)"
_BILLING_PROFILE = r"(?i)/billingprofiles/[^/]+"


class AzureFocusNormalizer(FocusExportNormalizer):
    """Microsoft FOCUS export (FocusCost 1.0 / 1.0r2 / 1.2; CSV or Parquet) -> cost_line_items."""

    provider: ClassVar[str] = "azure"
    source_format: ClassVar[str] = "azure_focus"
    basis_column: ClassVar[str] = "BilledCost"
    # Microsoft's FOCUS export writes ProviderName "Microsoft" [finops-toolkit mapping.md].
    provider_names: ClassVar[tuple[str, ...]] = ("Microsoft",)
    # Microsoft's own extension columns in every FocusCost version [PF §3.2].
    markers: ClassVar[tuple[str, ...]] = (
        "x_BillingProfileId", "x_SkuMeterCategory", "x_ResourceGroupName", "x_BilledCostInUsd",
        "x_AccountId", "x_PricingSubcategory", "x_SkuMeterId", "x_InvoiceSectionName")

    def complete(self, batch: pa.RecordBatch, out: dict[str, pa.Array],
                 flags: dict[str, pa.Array], errors: list[RowError]) -> None:
        """BillingAccountType, the resource group, and the USD metrics."""
        n = batch.num_rows
        if "BillingAccountType" not in out:
            account = out["BillingAccountId"]
            profile = fill_false(pc.match_substring_regex(account, _BILLING_PROFILE))
            kind = pc.if_else(profile, "Billing Profile", "Billing Account")
            out["BillingAccountType"] = null_where(kind, pc.is_null(account))
        if "x_ResourceGroupName" not in out and "ResourceId" in out:
            found = pc.extract_regex(out["ResourceId"], _RESOURCE_GROUP)
            group = null_where(pc.struct_field(found, [0]), pc.is_null(found))
            derived = pc.is_valid(group)
            if any_true(derived):
                flags["x_ResourceGroupName:from_ResourceId"] = derived
            out["x_ResourceGroupName"] = group
        metrics: dict[str, pa.Array] = {}
        for name in USD_METRICS:
            index = batch.schema.get_field_index(name)
            if index < 0:
                continue
            amount = text(batch.column(index))
            _, errs = parse_decimal(amount, name)  # exact decimal text, or a dead letter
            errors.extend(errs)
            metric = name.removeprefix("x_")
            metrics[metric] = amount
            metrics[f"{metric}Unit"] = null_where(constant("USD", n), pc.is_null(amount))
        if metrics:
            table = pa.RecordBatch.from_arrays(list(metrics.values()), names=list(metrics))
            out["x_ProviderMetrics"] = json_object_from_columns(
                table, {k: k for k in metrics})
