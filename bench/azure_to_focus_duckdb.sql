-- The speed bar for costflow's Azure ingest: an EA cost-details export (actual cost, CSV or
-- CSV.gz, as Cost Management writes it) -> FOCUS Parquet in ONE DuckDB statement.
-- It produces 40 FOCUS columns with the rules of costflow/providers/azure/cost_details.py for
-- an actual-cost file read alone: money exact (the CSV text cast to DECIMAL(38, 18); ListCost =
-- PayGPrice x Quantity and ContractedCost = UnitPrice x Quantity in decimals, see below), MM/dd/yyyy
-- dates to [start, end) periods (Azure's end date is inclusive), the billing profile as
-- BillingAccountId, ChargeCategory/Class/Frequency and PricingCategory from ChargeType,
-- Frequency and PricingModel, commitment columns from benefitId/ReservationId, pricing units
-- and block sizes, service, region and resource type from the same mapping files (service by
-- consumed service and resource type, then by type alone), SkuPriceId "<SkuId>_<MeterId>", and
-- Tags as JSON (EA writes them without the outer braces). It does not validate, dead-letter,
-- reconcile or load a warehouse, parse localized headers, or join an amortized twin; ours does.
--
-- Rendered by bench/azure_ingest_bench.py (string.Template):
--   ${source}: the export's CSV(.gz) path; ${services}, ${regions}, ${units}, ${types}: the
--   mapping files; ${out}: the output Parquet path (all quoted SQL string literals)
COPY (
    WITH source AS (
        SELECT * FROM read_csv(${source}, header = true, all_varchar = true)
    ),

    services AS (
        SELECT lower(coalesce(consumed_service, '')) || '|' || resource_type AS service_key,
               service_name, service_category, service_subcategory
        FROM read_csv(${services}, header = true, all_varchar = true)
    ),

    regions AS (
        SELECT original_value, region_id, region_name
        FROM read_csv(${regions}, header = true, all_varchar = true)
    ),

    units AS (
        SELECT unit_of_measure, pricing_block_size, distinct_units
        FROM read_csv(${units}, header = true, all_varchar = true)
    ),

    types AS (
        SELECT resource_type, singular_display_name
        FROM read_csv(${types}, header = true, all_varchar = true)
    ),

    typed AS (
        SELECT
            s.*,
            CAST(strptime(s."Date", '%m/%d/%Y') AS DATE) AS usage_day,
            CAST(strptime(s."BillingPeriodStartDate", '%m/%d/%Y') AS DATE) AS period_first,
            CAST(strptime(s."BillingPeriodEndDate", '%m/%d/%Y') AS DATE) AS period_last,
            lower(replace(s."ChargeType", ' ', '')) AS charge,
            lower(replace(s."PricingModel", ' ', '')) AS model,
            CAST(s."CostInBillingCurrency" AS DECIMAL(38, 18)) AS cost,
            CAST(s."Quantity" AS DECIMAL(38, 18)) AS quantity,
            -- DuckDB multiplies decimals of at most 38 digits together: prices, quantities and blocks
            -- narrowed to 19 digits (10, 8 and 4 places; the generated export has 4, 4 and 0).
            CAST(s."Quantity" AS DECIMAL(19, 8)) AS quantity_factor,
            lower(regexp_extract(s."ResourceId", '/providers/([^/]+/[^/]+)', 1)) AS rtype
        FROM source AS s
    ),

    mapped AS (
        SELECT
            t.*,
            coalesce(sv.service_name, st.service_name) AS service_name,
            coalesce(sv.service_category, st.service_category) AS service_category,
            coalesce(sv.service_subcategory, st.service_subcategory) AS service_subcategory,
            r.region_id, r.region_name,
            CAST(coalesce(u.pricing_block_size, '1') AS DECIMAL(19, 4)) AS block,
            coalesce(u.distinct_units, t."UnitOfMeasure") AS pricing_unit,
            ty.singular_display_name AS type_name
        FROM typed AS t
        LEFT JOIN services AS sv
            ON sv.service_key = lower(coalesce(t."ConsumedService", '')) || '|' || t.rtype
        LEFT JOIN services AS st ON st.service_key = '|' || t.rtype
        LEFT JOIN regions AS r ON r.original_value = lower(t."ResourceLocation")
        LEFT JOIN units AS u ON u.unit_of_measure = t."UnitOfMeasure"
        LEFT JOIN types AS ty ON ty.resource_type = t.rtype
    )

    SELECT
        make_timestamptz(year(usage_day), month(usage_day), day(usage_day), 0, 0, 0, 'UTC')
            AS ChargePeriodStart,
        make_timestamptz(year(usage_day), month(usage_day), day(usage_day), 0, 0, 0, 'UTC')
            + INTERVAL 1 DAY AS ChargePeriodEnd,
        coalesce(CAST(period_first AS TIMESTAMPTZ), date_trunc('month', usage_day))
            AS BillingPeriodStart,
        coalesce(CAST(period_last + INTERVAL 1 DAY AS TIMESTAMPTZ),
                 date_trunc('month', usage_day) + INTERVAL 1 MONTH) AS BillingPeriodEnd,
        coalesce("BillingProfileId", "BillingAccountId", "SubscriptionId") AS BillingAccountId,
        CASE WHEN "BillingProfileId" IS NOT NULL
                  AND "BillingProfileId" <> coalesce("BillingAccountId", "BillingProfileId")
             THEN "BillingProfileName"
             ELSE coalesce("BillingAccountName", "BillingProfileName") END AS BillingAccountName,
        "SubscriptionId" AS SubAccountId,
        "SubscriptionName" AS SubAccountName,
        "ResourceGroup" AS x_ResourceGroupName,
        "BillingCurrencyCode" AS BillingCurrency,
        CASE charge WHEN 'usage' THEN 'Usage' WHEN 'purchase' THEN 'Purchase' WHEN 'tax' THEN 'Tax'
             WHEN 'refund' THEN 'Adjustment' WHEN 'roundingadjustment' THEN 'Adjustment'
             WHEN 'unusedreservation' THEN 'Usage' WHEN 'unusedsavingsplan' THEN 'Usage'
        END AS ChargeCategory,
        CASE charge WHEN 'refund' THEN 'Correction' END AS ChargeClass,
        coalesce(CASE lower("Frequency") WHEN 'onetime' THEN 'One-Time'
                      WHEN 'recurring' THEN 'Recurring' WHEN 'usagebased' THEN 'Usage-Based' END,
                 CASE WHEN charge IN ('usage', 'unusedreservation', 'unusedsavingsplan')
                      THEN 'Usage-Based' ELSE 'One-Time' END) AS ChargeFrequency,
        CASE WHEN charge = 'usage' AND model IN ('reservation', 'savingsplan') THEN 'Committed'
             WHEN charge = 'usage' AND model = 'spot' THEN 'Dynamic'
             WHEN charge IN ('usage', 'purchase') THEN 'Standard'
             WHEN charge IN ('unusedreservation', 'unusedsavingsplan') THEN 'Committed'
        END AS PricingCategory,
        coalesce("ProductName", "MeterName") AS ChargeDescription,
        CASE WHEN model IN ('reservation', 'savingsplan')
                  OR charge IN ('unusedreservation', 'unusedsavingsplan')
             THEN coalesce("benefitId", "ReservationId") END AS CommitmentDiscountId,
        cost AS BilledCost,
        cost AS EffectiveCost,
        coalesce(CASE WHEN charge IN ('usage', 'unusedreservation', 'unusedsavingsplan')
                      THEN CAST(CAST("PayGPrice" AS DECIMAL(19, 10)) * quantity_factor
                                AS DECIMAL(38, 18)) END, cost) AS ListCost,
        CASE WHEN charge = 'usage'
             THEN coalesce(CAST(CAST("UnitPrice" AS DECIMAL(19, 10)) * quantity_factor
                                AS DECIMAL(38, 18)), cost)
             ELSE cost END AS ContractedCost,
        CASE WHEN charge <> 'tax' THEN CAST(quantity_factor * block AS DECIMAL(38, 18))
        END AS PricingQuantity,
        CASE WHEN charge <> 'tax' THEN pricing_unit END AS PricingUnit,
        CASE WHEN charge = 'usage' THEN CAST(quantity_factor * block AS DECIMAL(38, 18))
        END AS ConsumedQuantity,
        CASE WHEN charge = 'usage' THEN pricing_unit END AS ConsumedUnit,
        coalesce(service_name, "MeterCategory", "ConsumedService") AS ServiceName,
        coalesce(service_category, 'Other') AS ServiceCategory,
        coalesce(service_subcategory, 'Other (Other)') AS ServiceSubcategory,
        coalesce(region_id, "ResourceLocation") AS RegionId,
        coalesce(region_name, "ResourceLocation") AS RegionName,
        "ResourceId" AS ResourceId,
        nullif(coalesce("ResourceName", regexp_replace("ResourceId", '^.*/', '')), '')
            AS ResourceName,
        coalesce(type_name, rtype) AS ResourceType,
        "PartNumber" AS SkuId,
        CASE WHEN "PartNumber" IS NULL THEN "MeterId"
             WHEN "MeterId" IS NOT NULL THEN "PartNumber" || '_' || "MeterId" END AS SkuPriceId,
        "MeterName" AS SkuMeter,
        CASE WHEN "Tags" IS NULL OR trim("Tags") IN ('', '{}') THEN NULL
             WHEN starts_with(trim("Tags"), '{') THEN json(trim("Tags"))
             ELSE json('{' || trim("Tags") || '}') END AS Tags,
        'Microsoft' AS ProviderName,
        'Microsoft' AS InvoiceIssuerName,
        coalesce("PublisherName", 'Microsoft') AS PublisherName,
        'azure' AS x_SourceProvider
    FROM mapped
) TO ${out} (FORMAT parquet, COMPRESSION snappy);
