-- The speed bar for costflow's ingest: a legacy AWS CUR CSV(.gz) -> FOCUS Parquet in ONE DuckDB
-- statement. It maps the same FOCUS columns, with the same rules, as
-- costflow/transforms/aws_cur.py (ChargeCategory/Frequency/PricingCategory per line item type,
-- ListCost and ContractedCost, EffectiveCost with the Savings Plan / Reserved Instance
-- amortization of provider_formats.md §2.1, CommitmentDiscount*, quantities, service category
-- from the same mapping file, region, SKU and Tags as JSON), so that the two do the same work.
-- It does not validate, dead-letter, reconcile or load a warehouse; ours does.
--
-- Rendered by bench/ingest_bench.py (string.Template):
--   ${source}, ${services}, ${out}: quoted SQL string literals (paths)
--   ${money}: DECIMAL(38, 18) (exact, like ours) or DOUBLE (for reference)
--   ${tags}: a list of {k, v} structs, one per resourceTags/ column of the file's header
COPY (
    WITH source AS (
        SELECT *
        FROM read_csv(${source}, header = true, all_varchar = true, delim = ',', quote = '"',
                      escape = '"', filename = true)
    ),

    services AS (
        SELECT product_code, service_category, service_subcategory
        FROM read_csv(${services}, header = true, all_varchar = true)
    ),

    typed AS (
        SELECT
            s.*,
            "lineItem/LineItemType" AS kind,
            CAST("lineItem/UnblendedCost" AS ${money}) AS billed,
            CAST("lineItem/UsageAmount" AS ${money}) AS usage_amount,
            CAST("lineItem/UnblendedRate" AS ${money}) AS unblended_rate,
            CAST("pricing/publicOnDemandCost" AS ${money}) AS public_cost,
            CAST("pricing/publicOnDemandRate" AS ${money}) AS public_rate,
            CAST("reservation/EffectiveCost" AS ${money}) AS ri_effective,
            CAST("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod" AS ${money})
                + CAST("reservation/UnusedRecurringFee" AS ${money}) AS ri_unused,
            CAST("reservation/UnusedQuantity" AS ${money}) AS ri_unused_quantity,
            CAST("savingsPlan/SavingsPlanEffectiveCost" AS ${money}) AS sp_effective,
            CAST("savingsPlan/TotalCommitmentToDate" AS ${money})
                - CAST("savingsPlan/UsedCommitment" AS ${money}) AS sp_unused,
            kind IN ('SavingsPlanCoveredUsage', 'SavingsPlanNegation', 'SavingsPlanRecurringFee',
                     'SavingsPlanUpfrontFee') AS is_sp,
            kind IN ('DiscountedUsage', 'RIFee')
                OR (kind = 'Fee' AND "reservation/ReservationARN" IS NOT NULL) AS is_ri,
            kind IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage', 'SavingsPlanUpfrontFee',
                     'SavingsPlanRecurringFee', 'RIFee', 'Fee') AS priced
        FROM source AS s
    ),

    commitments AS (
        SELECT
            t.*,
            CASE WHEN is_sp THEN "savingsPlan/SavingsPlanARN"
                 WHEN is_ri THEN "reservation/ReservationARN" END AS commitment_id
        FROM typed AS t
    ),

    final AS (
        SELECT
            billed AS BilledCost,
            "bill/PayerAccountId" AS BillingAccountId,
            NULL::VARCHAR AS BillingAccountName,
            'Payer Account' AS BillingAccountType,
            "lineItem/UsageAccountId" AS SubAccountId,
            NULL::VARCHAR AS SubAccountName,
            CASE WHEN "lineItem/UsageAccountId" IS NOT NULL THEN 'Linked Account' END
                AS SubAccountType,
            "lineItem/CurrencyCode" AS BillingCurrency,
            CASE WHEN "pricing/currency" <> "lineItem/CurrencyCode" THEN "pricing/currency" END
                AS PricingCurrency,
            "bill/InvoiceId" AS InvoiceId,
            'AWS' AS ProviderName,
            'AWS' AS PublisherName,
            'AWS' AS ServiceProviderName,
            'AWS' AS HostProviderName,
            'AWS' AS InvoiceIssuerName,
            "bill/InvoicingEntity" AS x_InvoicingEntity,
            "bill/BillingEntity" AS x_BillingEntity,
            CASE
                WHEN kind IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage',
                              'SavingsPlanNegation') THEN 'Usage'
                WHEN kind IN ('SavingsPlanUpfrontFee', 'SavingsPlanRecurringFee', 'RIFee', 'Fee')
                    THEN 'Purchase'
                WHEN kind = 'Tax' THEN 'Tax'
                WHEN kind = 'Refund' THEN 'Adjustment'
                WHEN kind IN ('Credit', 'BundledDiscount', 'Discount', 'EdpDiscount',
                              'PrivateRateDiscount') THEN 'Credit'
            END AS ChargeCategory,
            CASE WHEN kind = 'Refund' THEN 'Correction' END AS ChargeClass,
            CASE
                WHEN kind IN ('SavingsPlanUpfrontFee', 'Fee', 'Credit', 'Refund') THEN 'One-Time'
                WHEN kind IN ('SavingsPlanRecurringFee', 'RIFee') THEN 'Recurring'
                ELSE 'Usage-Based'
            END AS ChargeFrequency,
            CASE
                WHEN kind = 'Usage' AND ("pricing/term" = 'Spot'
                                         OR "lineItem/UsageType" LIKE '%SpotUsage%') THEN 'Dynamic'
                WHEN kind = 'Usage' AND "pricing/term" = 'Reserved' THEN 'Committed'
                WHEN kind = 'Usage' THEN 'Standard'
                WHEN kind IN ('DiscountedUsage', 'SavingsPlanCoveredUsage', 'SavingsPlanNegation')
                    THEN 'Committed'
                WHEN kind IN ('SavingsPlanUpfrontFee', 'SavingsPlanRecurringFee', 'RIFee', 'Fee')
                    THEN 'Standard'
            END AS PricingCategory,
            "lineItem/LineItemDescription" AS ChargeDescription,
            CAST("bill/BillingPeriodStartDate" AS TIMESTAMP) AS BillingPeriodStart,
            CAST("bill/BillingPeriodEndDate" AS TIMESTAMP) AS BillingPeriodEnd,
            CAST("lineItem/UsageStartDate" AS TIMESTAMP) AS ChargePeriodStart,
            CAST("lineItem/UsageEndDate" AS TIMESTAMP) AS ChargePeriodEnd,
            kind AS x_LineItemType,
            "lineItem/UsageType" AS x_UsageType,
            "lineItem/Operation" AS x_Operation,
            CASE
                WHEN priced THEN coalesce(public_cost, billed)
                WHEN kind IN ('Tax', 'Credit', 'Refund') THEN billed
                ELSE CAST(0 AS ${money})
            END AS ListCost,
            CASE WHEN priced AND public_cost IS NOT NULL THEN public_rate END AS ListUnitPrice,
            CASE
                WHEN kind = 'DiscountedUsage' THEN coalesce(public_cost, billed)
                WHEN kind = 'SavingsPlanNegation' THEN CAST(0 AS ${money})
                ELSE billed
            END AS ContractedCost,
            CASE
                WHEN kind IN ('Usage', 'SavingsPlanCoveredUsage') THEN unblended_rate
                WHEN kind = 'DiscountedUsage' THEN public_rate
            END AS ContractedUnitPrice,
            CASE
                WHEN kind = 'SavingsPlanCoveredUsage' THEN sp_effective
                WHEN kind = 'SavingsPlanRecurringFee' THEN sp_unused
                WHEN kind = 'DiscountedUsage' THEN ri_effective
                WHEN kind = 'RIFee' THEN ri_unused
                WHEN kind IN ('SavingsPlanNegation', 'SavingsPlanUpfrontFee')
                     OR (kind = 'Fee' AND is_ri) THEN CAST(0 AS ${money})
                ELSE billed
            END AS EffectiveCost,
            commitment_id AS CommitmentDiscountId,
            regexp_replace(commitment_id, '^.*/', '') AS CommitmentDiscountName,
            CASE WHEN commitment_id IS NULL THEN NULL WHEN is_sp THEN 'Spend' ELSE 'Usage' END
                AS CommitmentDiscountCategory,
            CASE WHEN commitment_id IS NULL THEN NULL WHEN is_sp THEN 'Savings Plan'
                 ELSE 'Reserved Instance' END AS CommitmentDiscountType,
            CASE
                WHEN commitment_id IS NULL THEN NULL
                WHEN kind IN ('DiscountedUsage', 'SavingsPlanCoveredUsage', 'SavingsPlanNegation')
                    THEN 'Used'
                WHEN kind IN ('RIFee', 'SavingsPlanRecurringFee') THEN 'Unused'
            END AS CommitmentDiscountStatus,
            CASE
                WHEN commitment_id IS NULL THEN NULL
                WHEN kind = 'SavingsPlanCoveredUsage' THEN sp_effective
                WHEN kind = 'SavingsPlanRecurringFee' THEN sp_unused
                WHEN kind = 'SavingsPlanUpfrontFee' THEN billed
                WHEN kind = 'DiscountedUsage' THEN usage_amount
                WHEN kind = 'RIFee' THEN ri_unused_quantity
            END AS CommitmentDiscountQuantity,
            CASE WHEN commitment_id IS NULL THEN NULL WHEN is_sp THEN "lineItem/CurrencyCode"
                 ELSE 'Hours' END AS CommitmentDiscountUnit,
            CASE WHEN kind <> 'Tax' THEN usage_amount END AS PricingQuantity,
            CASE WHEN kind <> 'Tax' THEN "pricing/unit" END AS PricingUnit,
            CASE WHEN kind IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage')
                 THEN usage_amount END AS ConsumedQuantity,
            CASE WHEN kind IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage')
                 THEN "pricing/unit" END AS ConsumedUnit,
            coalesce("product/ProductName", "lineItem/ProductCode") AS ServiceName,
            coalesce(svc.service_category, 'Other') AS ServiceCategory,
            coalesce(svc.service_subcategory, 'Other (Other)') AS ServiceSubcategory,
            "lineItem/ProductCode" AS x_ServiceCode,
            coalesce("product/regionCode", "product/region") AS RegionId,
            "product/location" AS RegionName,
            "lineItem/AvailabilityZone" AS AvailabilityZone,
            "lineItem/ResourceId" AS ResourceId,
            "product/sku" AS SkuId,
            "pricing/RateCode" AS SkuPriceId,
            "product/productFamily" AS SkuMeter,
            nullif(to_json(map_from_entries(list_filter(${tags}, lambda e: e.v <> ''))),
                   '{}')::VARCHAR AS Tags,
            'aws' AS x_SourceProvider,
            'aws_cur_legacy' AS x_SourceFormat,
            filename AS x_SourceUri
        FROM commitments AS c
        LEFT JOIN services AS svc ON svc.product_code = c."lineItem/ProductCode"
    )

    SELECT * FROM final
) TO ${out} (FORMAT parquet)
